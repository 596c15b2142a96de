"""Collecting a noise prompt dataset: which samples to make, where they go, and resuming.

The host makes each pair (it owns the diffusion model, the text encoder, the VAE and the reward model);
this module decides everything else, so every host collects the same dataset from the same settings:

- `plan` numbers the samples. Sample g (g = k·P + p for the k-th sample of prompt p, P prompts) uses
  seed base_seed + g and belongs to shard `g % shard_count`: several hosts (one per GPU or machine), each
  given its own `shard_index`, split one dataset without talking to each other, and together write
  exactly the samples one host would have written.
- `DatasetWriter` writes NPD shards (`npnet.dataset`) into one folder as it goes, a shard every
  `samples_per_shard` samples and whatever is pending when the run stops (finished, cancelled or
  failed). Each shard carries the global index of every sample (`index`), so a re-run skips what is
  already written: no sample is lost or written twice. A folder collected with other settings is
  refused, never mixed.
- `collect` runs the loop with progress and cancel callbacks.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from .dataset import METADATA_KEY, write_shard
from .golden import Cancelled
from .inputs import InputError

SHARD_NAME = re.compile(r"^part-(?P<index>\d{3,})-of-(?P<count>\d{3,})-(?P<seq>\d{5,})\.safetensors$")
# Metadata that differs from shard to shard (the rest are the dataset's settings, equal in every shard).
PER_SHARD = ("shard_index", "prompts", "version")


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


def read_prompt_file(path: str | os.PathLike, input_name: str = "prompt_file") -> list[str]:
    """Prompts from a .txt (one per line) or .jsonl file (a JSON string, or an object with "prompt")."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            input_name, f"{input_name} {path.name} cannot be read as UTF-8 text ({error})."
        ) from None
    if path.suffix.lower() != ".jsonl":
        return read_prompts(text)
    prompts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise InputError(input_name, f"{input_name} {path.name} line {number} is not JSON.") from None
        prompt = item.get("prompt") if isinstance(item, dict) else item
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(
                input_name,
                f"{input_name} {path.name} line {number}: expected a JSON string or an object with a "
                '"prompt" string.',
            )
        prompts.append(prompt.strip())
    return prompts


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


def plan(
    prompts: Sequence[str],
    samples_per_prompt: int,
    base_seed: int,
    shard_index: int = 0,
    shard_count: int = 1,
) -> list[Sample]:
    """The samples this host makes, in order; see the module docstring for the numbering."""
    if not prompts:
        raise InputError("prompts", "no prompts: give one prompt per line (or a .txt / .jsonl prompt file).")
    if samples_per_prompt < 1:
        raise InputError("samples_per_prompt", f"samples_per_prompt must be >= 1, got {samples_per_prompt}.")
    check_shards(shard_index, shard_count)
    count = len(prompts)
    return [
        Sample(g, g % count, prompts[g % count], base_seed + g)
        for g in range(count * samples_per_prompt)
        if g % shard_count == shard_index
    ]


def check_dataset_name(name: str) -> str:
    """A dataset name is one folder name: no separators, no '..', nothing hidden."""
    name = name.strip()
    if not name or name in (".", "..") or name.startswith(".") or re.search(r"[/\\:\x00]", name):
        raise InputError(
            "dataset_name",
            f"dataset_name must be a plain folder name (letters, digits, '-', '_'; no path separators), "
            f"got {name!r}.",
        )
    return name


def _shard_metadata(path: Path) -> tuple[dict, list[int]]:
    with safe_open(path, "pt") as f:
        info = json.loads((f.metadata() or {}).get(METADATA_KEY, "{}"))
        index = f.get_tensor("index").tolist() if "index" in f.keys() else []
    return info, index


class DatasetWriter:
    """Appends NPD shards of one host (`shard_index`) to a dataset folder; resumable."""

    def __init__(
        self,
        folder: str | os.PathLike,
        settings: Mapping,
        shard_index: int = 0,
        shard_count: int = 1,
        samples_per_shard: int = 64,
    ) -> None:
        check_shards(shard_index, shard_count)
        if samples_per_shard < 1:
            raise InputError("samples_per_shard", f"samples_per_shard must be >= 1, got {samples_per_shard}.")
        self.folder = Path(folder)
        self.settings = {**settings, "shard_count": shard_count}
        self.shard_index, self.shard_count = shard_index, shard_count
        self.samples_per_shard = samples_per_shard
        self.done: set[int] = set()
        self.written = 0
        self._pending: list[tuple[Sample, Pair]] = []
        self._next_seq = 0
        self._read_existing()

    def _read_existing(self) -> None:
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.safetensors")):
            match = SHARD_NAME.match(path.name)
            if match is None:
                continue
            info, indices = _shard_metadata(path)
            theirs = {k: v for k, v in info.items() if k not in PER_SHARD}
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
            if int(match["index"]) == self.shard_index:
                self.done.update(indices)
                self._next_seq = max(self._next_seq, int(match["seq"]) + 1)

    def add(self, sample: Sample, pair: Pair) -> None:
        self._pending.append((sample, pair))
        if len(self._pending) >= self.samples_per_shard:
            self.flush()

    def flush(self) -> Path | None:
        """Write the pending samples as one shard (atomic); nothing to do when none are pending."""
        if not self._pending:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        samples = [s for s, _ in self._pending]
        pairs = [p for _, p in self._pending]
        name = f"part-{self.shard_index:03d}-of-{self.shard_count:03d}-{self._next_seq:05d}.safetensors"
        path = write_shard(
            self.folder / name,
            noise=torch.cat([p.noise for p in pairs]).half(),
            golden=torch.cat([p.golden for p in pairs]).half(),
            embeds=torch.cat([p.embeds for p in pairs]).half(),
            gain=torch.tensor([p.gain for p in pairs], dtype=torch.float32),
            index=torch.tensor([s.index for s in samples], dtype=torch.int64),
            metadata={
                **self.settings,
                "shard_index": self.shard_index,
                "prompts": [s.prompt for s in samples],
            },
        )
        self._next_seq += 1
        self.done.update(s.index for s in samples)
        self.written += len(samples)
        self._pending.clear()
        return path


def collect(
    samples: Iterable[Sample],
    make: Callable[[Sample], Pair],
    writer: DatasetWriter,
    progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    on_pair: Callable[[Sample, Pair], None] | None = None,
) -> int:
    """Make and write every sample the writer does not hold yet; returns how many were written.

    Whatever was made is written before this returns or raises (Cancel, a host error): a re-run with
    the same settings goes on from there.
    """
    todo = [s for s in samples if s.index not in writer.done]
    before = writer.written
    try:
        for number, sample in enumerate(todo):
            if should_cancel is not None and should_cancel():
                raise Cancelled(f"cancelled after {number} of {len(todo)} samples")
            pair = make(sample)
            if not (math.isfinite(pair.gain) and torch.isfinite(pair.golden).all()):
                raise ValueError(
                    f"sample {sample.index} (prompt {sample.prompt_index}, seed {sample.seed}) produced NaN or "
                    "Inf values; the model or reward is unstable at these settings (try float32 or other cfg)."
                )
            writer.add(sample, pair)
            if on_pair is not None:
                on_pair(sample, pair)
            if progress is not None:
                progress(number + 1, len(todo))
    finally:
        writer.flush()
    return writer.written - before


def dataset_gains(folder: str | os.PathLike) -> torch.Tensor:
    """The gains of every collected sample in a dataset folder (all hosts' shards)."""
    gains = []
    for path in sorted(Path(folder).glob("*.safetensors")):
        if SHARD_NAME.match(path.name):
            with safe_open(path, "pt") as f:
                if "gain" in f.keys():
                    gains.append(f.get_tensor("gain").float())
    return torch.cat(gains) if gains else torch.zeros(0)


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
    """A short digest of the prompt list, kept in the settings so a resumed run uses the same prompts."""
    return hashlib.sha256("\n".join(prompts).encode("utf-8")).hexdigest()[:16]
