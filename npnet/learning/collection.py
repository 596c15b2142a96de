"""Collecting a noise prompt dataset: which samples to make, where they go, and resuming.

The host makes each pair (it owns the diffusion model, the text encoder, the VAE and the reward model);
this module decides everything else, so every host collects the same dataset from the same settings:

- `plan` numbers the samples. Sample g (g = k·P + p for the k-th sample of prompt p, P prompts) uses
  seed base_seed + g (or seed_p + k when the prompt file gives prompt p its own seed, so a published
  (prompt, seed) list is replayed exactly) and belongs to shard `g % shard_count`: several hosts (one per GPU or machine), each
  given its own `shard_index`, split one dataset without talking to each other, and together write
  exactly the samples one host would have written.
- `DatasetWriter` writes NPD shards (`npnet.learning.dataset`) into one folder as it goes, a shard every
  `samples_per_shard` samples or `flush_seconds` of work, whichever comes first, and whatever is pending
  when the run stops (finished, cancelled or failed): a kill -9 loses at most that much work. Each shard
  carries the global index of every sample (`index`), so a re-run skips what is already written. A
  folder collected with other settings is refused, never mixed.
- Several servers may write one folder at once, with any `samples_per_shard`: a shard's name is claimed
  atomically and never overwritten, and before each shard is written the folder is read again, so
  samples another server wrote meanwhile are dropped from it and skipped afterwards. Should two writes
  still race, readers keep one copy of each sample (`npnet.learning.dataset`).
- `collect` runs the loop with progress and cancel callbacks. Memory stays bounded by one shard's
  tensors: the plan is lazy and images are never kept in the pending shard.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..golden import Cancelled
from ..inputs import InputError
from .dataset import (
    DatasetError,
    collection_settings,
    open_shard,
    shard_index,
    shard_metadata,
    write_shard,
)

SHARD_NAME = re.compile(r"^part-(?P<index>\d{3,})-of-(?P<count>\d{3,})-(?P<seq>\d{5,})\.safetensors$")
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_NAME = 100  # a folder name every filesystem takes, with room for the shard names under it
FLOAT16_MAX = 65504.0


@dataclass(frozen=True)
class Sample:
    index: int  # global sample number over the whole dataset
    prompt_index: int
    prompt: str
    seed: int


@dataclass(frozen=True)
class Pair:
    """What the host made for one sample: the NPD row, and the two images for previews."""

    noise: torch.Tensor  # [1, C, H, W], unit variance
    golden: torch.Tensor  # [1, C, H, W]
    embeds: torch.Tensor  # [1, T, D]
    gain: float  # reward(golden image) - reward(plain image)
    images: torch.Tensor | None = None  # [2, H, W, 3]: plain, golden


def read_prompts(text: str) -> list[str]:
    """One prompt per line; blank lines and lines starting with '#' are skipped."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


class PromptList(list):
    """Prompts, and the seed each one was given in its file (`seeds`, None when the file gives none)."""

    def __init__(
        self, prompts: Iterable[str] = (), seeds: Sequence[int] | None = None, where: Sequence[str] = ()
    ):
        super().__init__(prompts)
        self.seeds = list(seeds) if seeds is not None else None
        self.where = list(where)  # "file line n" of each prompt, for errors found later


def given_seeds(prompts: Sequence[str]) -> list[int] | None:
    return getattr(prompts, "seeds", None)


def read_prompt_file(path: str | os.PathLike, input_name: str = "prompt_file") -> list[str]:
    """Prompts from a .txt (one per line) or .jsonl file: a JSON string, or an object with "prompt" (or
    "caption", as the authors' lists) and an optional integer "seed" on every line or on none."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is not part of the first prompt
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            input_name, f"{input_name} {path.name} cannot be read as UTF-8 text ({error})."
        ) from None
    if path.suffix.lower() != ".jsonl":
        return read_prompts(text)
    prompts, seeds, where = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise InputError(input_name, f"{input_name} {path.name} line {number} is not JSON.") from None
        prompt = item.get("prompt", item.get("caption")) if isinstance(item, dict) else item
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(
                input_name,
                f"{input_name} {path.name} line {number}: expected a JSON string or an object with a "
                '"prompt" string.',
            )
        seed = item.get("seed") if isinstance(item, dict) else None
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise InputError(
                input_name,
                f'{input_name} {path.name} line {number}: "seed" must be an integer >= 0, got {seed!r}.',
            )
        if prompts and (seed is None) != (seeds[-1] is None):
            raise InputError(
                input_name,
                f'{input_name} {path.name} line {number}: give a "seed" on every line or on none '
                "(a mix would leave some samples' seeds undefined).",
            )
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                input_name,
                f"{input_name} {path.name} line {number}: the prompt holds a lone surrogate (an unpaired "
                "\\ud800-\\udfff escape), which is no text; fix that line.",
            ) from None
        if seed is not None and seed >= 2**64:
            raise InputError(
                input_name, f'{input_name} {path.name} line {number}: "seed" must be below 2**64, got {seed}.'
            )
        prompts.append(prompt.strip())
        seeds.append(seed)
        where.append(f"{input_name} {path.name} line {number}")
    return PromptList(prompts, seeds if seeds and seeds[0] is not None else None, where)


def check_shards(shard_index: int, shard_count: int) -> None:
    if isinstance(shard_count, bool) or not isinstance(shard_count, int) or shard_count < 1:
        raise InputError("shard_count", f"shard_count must be an integer >= 1, got {shard_count!r}.")
    if (
        isinstance(shard_index, bool)
        or not isinstance(shard_index, int)
        or not 0 <= shard_index < shard_count
    ):
        raise InputError(
            "shard_index",
            f"shard_index must be in 0..{shard_count - 1} (shard_count - 1), got {shard_index!r}.",
        )


class LazySequence(Sequence):
    """A sequence whose items are computed on demand from their position (`item`, 0 <= i < len)."""

    def item(self, i: int):
        raise NotImplementedError

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.item(k) for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.item(i)

    def __iter__(self) -> Iterator:
        return (self.item(i) for i in range(len(self)))


class Plan(LazySequence):
    """The samples one host makes, in order, computed on demand (a million-sample plan costs nothing)."""

    def __init__(
        self, prompts: Sequence[str], total: int, base_seed: int, shard_index: int, shard_count: int
    ):
        self.prompts, self.total, self.base_seed = list(prompts), total, base_seed
        self.seeds = given_seeds(prompts)
        self.shard_index, self.shard_count = shard_index, shard_count

    def __len__(self) -> int:
        return max(0, (self.total - self.shard_index + self.shard_count - 1) // self.shard_count)

    def item(self, i: int) -> Sample:
        g = self.shard_index + i * self.shard_count
        count = len(self.prompts)
        p, k = g % count, g // count
        return Sample(g, p, self.prompts[p], self.seeds[p] + k if self.seeds else self.base_seed + g)

    def holds(self, index: int) -> bool:
        """Whether sample number `index` is this host's to make (arithmetic: no walk over the plan)."""
        return 0 <= index < self.total and index % self.shard_count == self.shard_index

    def __contains__(self, sample) -> bool:
        return isinstance(sample, Sample) and self.holds(sample.index)


def plan(
    prompts: Sequence[str],
    samples_per_prompt: int,
    base_seed: int,
    shard_index: int = 0,
    shard_count: int = 1,
) -> Plan:
    """The samples this host makes, in order; see the module docstring for the numbering."""
    if not prompts:
        raise InputError("prompts", "no prompts: give one prompt per line (or a .txt / .jsonl prompt file).")
    if samples_per_prompt < 1:
        raise InputError("samples_per_prompt", f"samples_per_prompt must be >= 1, got {samples_per_prompt}.")
    check_shards(shard_index, shard_count)
    check_seed_range(prompts, base_seed, samples_per_prompt, len(prompts) * samples_per_prompt)
    return Plan(prompts, len(prompts) * samples_per_prompt, base_seed, shard_index, shard_count)


SEED_LIMIT = 2**64  # ComfyUI's seeds are unsigned 64-bit


def check_seed_range(prompts: Sequence[str], base_seed: int, per_prompt: int, total: int) -> None:
    """Every seed a run will use must be below 2**64, found before the first sample, not at one of them:
    a file's seed s gives s .. s + per_prompt - 1, the base seed base .. base + total - 1."""
    seeds = given_seeds(prompts)
    if seeds is None:
        if base_seed + total - 1 >= SEED_LIMIT:
            raise InputError(
                "seed",
                f"seed {base_seed} + {total - 1} samples passes 2**64 - 1, the largest seed; lower it.",
            )
        return
    for p, seed in enumerate(seeds):
        if seed + per_prompt - 1 >= SEED_LIMIT:
            where = getattr(prompts, "where", [])
            line = where[p] if p < len(where) else f"prompt {p + 1}"
            raise InputError(
                "prompt_file",
                f'{line}: "seed" {seed} + {per_prompt - 1} more samples passes 2**64 - 1, the largest seed; '
                "lower it.",
            )


def check_dataset_name(name: str) -> str:
    """A dataset name is one plain folder name: letters, digits, '-', '_' and '.', not starting with '.'."""
    name = name.strip()
    if not DATASET_NAME.match(name) or len(name) > MAX_NAME:
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise InputError(
            "dataset_name",
            f"dataset_name must be a plain folder name of 1 to {MAX_NAME} characters: letters, digits, "
            f"'-', '_' and '.', starting with a letter or digit; got {shown!r} ({len(name)} characters).",
        )
    return name


def _read_shard(path: Path) -> tuple[dict, list[int]]:
    """(metadata, sample numbers) of a collection shard; a shard without numbers cannot be resumed."""
    f = open_shard(path)
    info = shard_metadata(f, path.name)
    numbers = shard_index(f, path.name)
    if numbers is None:
        raise DatasetError(
            f"{path.name} is named like a collection shard but has no 'index' of sample numbers, so its "
            "samples cannot be told apart from the ones still to make."
        )
    return info, numbers


class DatasetWriter:
    """Appends NPD shards of one host (`shard_index`) to a dataset folder; resumable."""

    def __init__(
        self,
        folder: str | os.PathLike,
        settings: Mapping,
        shard_index: int = 0,
        shard_count: int = 1,
        samples_per_shard: int = 64,
        flush_seconds: float = 120.0,
    ) -> None:
        check_shards(shard_index, shard_count)
        if samples_per_shard < 1:
            raise InputError("samples_per_shard", f"samples_per_shard must be >= 1, got {samples_per_shard}.")
        self.folder = Path(folder)
        self.settings = {**settings, "shard_count": shard_count}
        self.shard_index, self.shard_count = shard_index, shard_count
        self.samples_per_shard = samples_per_shard
        self.flush_seconds = flush_seconds
        self.done: set[int] = set()  # every sample number in the folder, whichever server wrote it
        self.written = 0
        self._pending: list[tuple[Sample, Pair]] = []
        self._pending_since = 0.0
        self._seen: set[str] = set()  # shard files already read
        self.refresh()

    def refresh(self) -> None:
        """Read the shards that appeared since the last call (this server's or another's)."""
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.safetensors")):
            if path.name in self._seen or SHARD_NAME.match(path.name) is None:
                continue
            try:
                info, indices = _read_shard(path)
            except DatasetError as error:
                raise InputError(
                    "dataset_name",
                    f"the dataset folder {self.folder.name} cannot be resumed: {error} Move that file out "
                    "of the folder (its samples will be made again), or choose a new dataset_name.",
                ) from None
            theirs = collection_settings(info)
            if theirs != self.settings:
                changed = sorted(
                    k for k in set(theirs) | set(self.settings) if theirs.get(k) != self.settings.get(k)
                )
                raise InputError(
                    "dataset_name",
                    f"the dataset folder {self.folder.name} already holds shards collected with other settings "
                    f"({', '.join(changed)} differ, e.g. {path.name}); choose a new dataset_name, or the same "
                    "settings to resume it.",
                )
            self._seen.add(path.name)
            self.done.update(indices)

    def add(self, sample: Sample, pair: Pair) -> None:
        """Queue one finished sample (stored as float16, without its images); write a shard when due."""
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append((sample, as_stored(sample, pair)))
        due = time.monotonic() - self._pending_since >= self.flush_seconds
        if len(self._pending) >= self.samples_per_shard or due:
            self.flush()

    def flush(self) -> Path | None:
        """Write the pending samples that no shard holds yet as one new shard; None when none are left."""
        if not self._pending:
            return None
        self.refresh()  # another server may have written some of them meanwhile
        pending = [(s, p) for s, p in self._pending if s.index not in self.done]
        self._pending.clear()
        if not pending:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        samples = [s for s, _ in pending]
        pairs = [p for _, p in pending]
        tensors = dict(
            noise=torch.cat([p.noise for p in pairs]),
            golden=torch.cat([p.golden for p in pairs]),
            embeds=torch.cat([p.embeds for p in pairs]),
            gain=torch.tensor([p.gain for p in pairs], dtype=torch.float32),
            index=torch.tensor([s.index for s in samples], dtype=torch.int64),
            metadata={
                **self.settings,
                "shard_index": self.shard_index,
                "prompts": [s.prompt for s in samples],
            },
        )
        path = self._claim_and_write(tensors)
        self._seen.add(path.name)
        self.done.update(s.index for s in samples)
        self.written += len(samples)
        return path

    def _claim_and_write(self, tensors: dict) -> Path:
        prefix = f"part-{self.shard_index:03d}-of-{self.shard_count:03d}-"
        taken = [int(m["seq"]) for m in map(SHARD_NAME.match, os.listdir(self.folder)) if m]
        seq = max(taken, default=-1) + 1
        while True:  # a name another server takes between the listing and the write is skipped
            try:
                return write_shard(self.folder / f"{prefix}{seq:05d}.safetensors", **tensors, exclusive=True)
            except FileExistsError:
                seq += 1


def as_stored(sample: Sample, pair: Pair) -> Pair:
    """The pair as a shard stores it (float16, no images), refused when a value is not finite there:
    a value beyond float16's range would be written as Inf and make the whole dataset untrainable."""
    where = f"sample {sample.index} (prompt {sample.prompt_index}, seed {sample.seed})"
    if not math.isfinite(pair.gain):
        raise InputError(
            "reward",
            f"{where}: the reward gain is {pair.gain} (NaN or Inf are never stored); the model or reward "
            "is unstable at these settings (try float32 or another cfg).",
        )
    stored = {}
    for name in ("noise", "golden", "embeds"):
        value = getattr(pair, name).detach().float()
        half = value.half()
        if not torch.isfinite(half).all():
            cause = "NaN or Inf" if not torch.isfinite(value).all() else f"values beyond +-{FLOAT16_MAX:g}"
            raise ValueError(
                f"{where}: its {name} holds {cause}, which a float16 shard cannot store; the model or text "
                "encoder is unstable at these settings (try float32 or another cfg)."
            )
        stored[name] = half
    return replace(pair, **stored, images=None)


def collect(
    samples: Iterable[Sample],
    make: Callable[[Sequence[Sample]], Sequence[Pair]],
    writer: DatasetWriter,
    progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    on_pair: Callable[[Sample, Pair], None] | None = None,
    batch_size: int = 1,
) -> int:
    """Make and write every sample the writer does not hold yet, `batch_size` at a time (`make` turns a
    batch of samples into their pairs, `recipe.pair_maker`); returns how many were written.

    A batch is the next `batch_size` samples not written yet, so a resume, a partial last batch and a
    batch across a shard boundary make the same samples as batch 1. Whatever was made is written before
    this returns or raises (Cancel, checked between batches; a host error): a re-run with the same
    settings goes on from there. Samples that another server writes meanwhile are skipped from the next
    shard boundary on.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError("batch_size", f"batch_size must be an integer >= 1, got {batch_size!r}.")
    total = remaining(samples, writer.done)
    before = writer.written
    number = 0
    try:
        for batch in batches(samples, writer.done, batch_size):
            if should_cancel is not None and should_cancel():
                raise Cancelled(f"cancelled after {number} of {total} samples")
            pairs = make(batch)
            for sample, pair in zip(batch, pairs, strict=True):
                writer.add(sample, pair)
                if on_pair is not None:
                    on_pair(sample, pair)
            number += len(batch)
            if progress is not None:
                progress(min(number, total), total)
    finally:
        writer.flush()
    return writer.written - before


def batches(samples: Iterable[Sample], done: set[int], size: int) -> Iterator[list[Sample]]:
    """The samples not in `done`, `size` at a time (the last batch may be shorter); lazy, so `done` is
    read as it grows (samples another server wrote meanwhile are skipped)."""
    batch: list[Sample] = []
    for sample in samples:
        if sample.index in done:
            continue
        batch.append(sample)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def remaining(samples: Iterable[Sample], done: set[int]) -> int:
    """How many of `samples` are not done, without walking a whole plan (it may be huge)."""
    if isinstance(samples, Plan):
        return len(samples) - sum(1 for g in done if samples.holds(g))
    return sum(1 for s in samples if s.index not in done)


def dataset_gains(folder: str | os.PathLike) -> torch.Tensor:
    """The gains of every collected sample in a dataset folder (all hosts' shards), each sample once."""
    gains, seen = [], set()
    for path in sorted(Path(folder).glob("*.safetensors")):
        if SHARD_NAME.match(path.name):
            f = open_shard(path)
            numbers = shard_index(f, path.name) or []
            if "gain" in f.keys():
                values = f.get_tensor("gain").float().tolist()
                gains.extend(v for n, v in zip(numbers, values, strict=False) if n not in seen)
            seen.update(numbers)
    return torch.tensor(gains, dtype=torch.float32)


def summary(folder: str | os.PathLike, written: int) -> str:
    gains = dataset_gains(folder)
    total = len(gains)
    if total == 0:
        return f"{Path(folder).name}: no samples yet."
    kept = int((gains > 0).sum())
    return (
        f"{Path(folder).name}: {written} pairs written now, {total} in the dataset; "
        f"{kept} kept at gain > 0 (win rate {kept / total:.1%}); mean gain {gains.mean().item():+.4g}."
    )


def prompts_fingerprint(prompts: Sequence[str]) -> str:
    """A short digest of the prompt list (and the seeds the file gave them), kept in the settings so a
    resumed run uses the same prompts and seeds."""
    seeds = given_seeds(prompts)
    text = "\n".join(prompts) + ("" if seeds is None else "\n#seeds " + " ".join(map(str, seeds)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
