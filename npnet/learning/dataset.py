"""The noise prompt dataset (NPD): the format collection writes and `npnet.train` reads.

A dataset is a folder of shard files `*.safetensors`, each holding N samples:
- `noise`  [N, C, H, W]: the initial Gaussian noise x_T (unit variance), float16 or float32;
- `golden` [N, C, H, W]: its target x'_T, same dtype;
- `embeds` [N, T, D]: the positive prompt's token states as the host's text encoder produced them;
- `gain`   [N] float32, optional: reward(image from x'_T) - reward(image from x_T);
- `index`  [N] int64, optional: each sample's number in its collection run (`npnet.learning.collection`), so a
  resumed or split collection never writes a sample twice.
The metadata key `npd` holds a JSON object with at least {"version": 1} and, when known, the base model,
sampler settings, reward model and prompts. Shards are read memory-mapped, one sample at a time, so a
dataset larger than RAM trains.

A sample is identified by its collection settings (the metadata less the per-shard keys) and its
`index`: when several servers raced on one folder and a sample landed in two shards, readers keep the
first copy (by file name) and count the others in `duplicates`, so every sample is trained on once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..config import OFFICIAL, NPNetConfig
from ..files import atomic_write

VERSION = 1
METADATA_KEY = "npd"
TENSORS = ("noise", "golden", "embeds")
FLOAT_DTYPES = (torch.float16, torch.float32)
_BLOCK = 1 << 22  # bytes read at a time when scanning a shard: bounded memory for any shard size
# FLOAT_DTYPES by their safetensors header names, for reading raw bytes while scanning a shard.
_HEADER_DTYPES = {"F16": torch.float16, "F32": torch.float32}
# Metadata that differs from shard to shard of one collection; the rest are the collection's settings.
PER_SHARD = ("shard_index", "prompts", "version")


class DatasetError(ValueError):
    """The dataset cannot be trained on; the message names the folder, shard and tensor."""


def write_shard(
    path: str | os.PathLike,
    noise: torch.Tensor,
    golden: torch.Tensor,
    embeds: torch.Tensor,
    gain: torch.Tensor | None = None,
    metadata: Mapping | None = None,
    index: torch.Tensor | None = None,
    exclusive: bool = False,
) -> Path:
    """Write one NPD shard atomically (a crash leaves no file a reader would take for a shard).

    `exclusive`: never replace an existing file; raise FileExistsError instead. The finished file is
    hard-linked into place, which fails atomically when the name is taken, so several writers sharing a
    folder (one per server) can each claim a free name without overwriting another's shard.
    """
    path = Path(path)
    tensors = {"noise": noise, "golden": golden, "embeds": embeds}
    if gain is not None:
        tensors["gain"] = gain.float()
    if index is not None:
        tensors["index"] = index.long()
    info = {"version": VERSION, **(metadata or {})}
    return atomic_write(
        path,
        lambda partial: save_file(
            {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
            partial,
            metadata={METADATA_KEY: json.dumps(info)},
        ),
        exclusive=exclusive,
    )


def open_shard(path: Path):
    """`safe_open` of one shard, refusing what is not a regular file before opening it (a FIFO named like
    a shard would block a reader forever); every failure is a DatasetError naming the file."""
    name = path.name
    try:
        mode = path.stat().st_mode  # follows links: a dangling link fails here
    except OSError as error:
        raise DatasetError(f"{name} cannot be read ({error.strerror or error}).") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise DatasetError(f"{name} is {kind}, not an NPD shard.")
    try:
        return safe_open(path, "pt")
    except Exception as error:  # SafetensorError, OSError, and whatever a corrupt header raises
        raise DatasetError(f"{name} is not a readable .safetensors file ({error}).") from None


def shard_metadata(f, name: str) -> dict:
    """The `npd` metadata object of an open shard."""
    try:
        metadata = json.loads((f.metadata() or {}).get(METADATA_KEY, "{}"))
    except ValueError:
        raise DatasetError(f"{name}: its '{METADATA_KEY}' metadata is not JSON.") from None
    if not isinstance(metadata, dict):
        raise DatasetError(f"{name}: its '{METADATA_KEY}' metadata must be a JSON object.")
    return metadata


def shard_index(f, name: str, rows: int | None = None) -> list[int] | None:
    """The sample numbers of an open shard (None when it has no `index`), checked: 1-D integers, one
    per row, no number twice."""
    if "index" not in f.keys():
        return None
    index = f.get_slice("index")
    shape = tuple(index.get_shape())
    if len(shape) != 1 or (rows is not None and shape[0] != rows):
        expected = f"[{rows}]" if rows is not None else "[N]"
        raise DatasetError(f"{name}: 'index' has shape {list(shape)}; expected {expected}.")
    values = index[:]
    if values.dtype not in (torch.int64, torch.int32):
        raise DatasetError(f"{name}: 'index' is {values.dtype}; expected int64.")
    numbers = values.tolist()
    if len(set(numbers)) != len(numbers) or any(n < 0 for n in numbers):
        raise DatasetError(f"{name}: 'index' holds a negative or repeated sample number.")
    return numbers


def collection_settings(metadata: Mapping) -> dict:
    """A shard's metadata less the per-shard keys: the settings of its collection, equal for every shard
    of it, whichever server wrote it."""
    return {k: v for k, v in metadata.items() if k not in PER_SHARD}


def collection_key(metadata: Mapping) -> str:
    """`collection_settings` as a hashable key."""
    return json.dumps(collection_settings(metadata), sort_keys=True)


@dataclass(frozen=True)
class Shard:
    path: Path
    rows: int
    metadata: dict


class NoisePromptDataset(torch.utils.data.Dataset):
    """The samples of an NPD folder whose gain exceeds `min_gain` (all samples of shards without gains).

    Opening checks every shard: the three tensors present, one shape for all shards, float16/float32,
    finite values, a `gain` of N values if present. It reads every byte once, in order, and keeps their
    SHA-256 (with the file names) in `sha256`, the fingerprint a resumed run's data must match.
    `interrupt()`, called between blocks, may raise to abandon the opening (a stop asked for).
    `__getitem__` returns float32 (noise, golden, embeds).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        min_gain: float | None = None,
        interrupt: Callable[[], None] = lambda: None,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DatasetError(f"the dataset folder {self.folder} does not exist.")
        paths = sorted(p for p in self.folder.glob("*.safetensors") if not p.name.startswith("."))
        if not paths:
            raise DatasetError(f"{self.folder} holds no NPD shards (*.safetensors).")
        self.shards: list[Shard] = []
        self.index: list[tuple[int, int]] = []
        self.duplicates = 0  # rows skipped because an earlier shard holds the same sample
        seen: set[tuple[str, int]] = set()
        shapes = None
        digest = hashlib.sha256()
        for number, path in enumerate(paths):
            interrupt()
            shard, shard_shapes, keep, numbers = _check_shard(path, min_gain, digest, interrupt)
            if numbers is not None:
                key = collection_key(shard.metadata)
                unique = [row for row in keep if (key, numbers[row]) not in seen]
                self.duplicates += len(keep) - len(unique)
                seen.update((key, n) for n in numbers)
                keep = unique
            if shapes is None:
                shapes, first = shard_shapes, path
            elif shard_shapes != shapes:
                raise DatasetError(
                    f"{path.name} holds {_describe(shard_shapes)}, but {first.name} holds {_describe(shapes)}: "
                    "all shards of a dataset must come from one model at one size."
                )
            self.shards.append(shard)
            self.index.extend((number, row) for row in keep)
        (c, h, w), (tokens, embed_dim) = shapes
        self.sha256 = digest.hexdigest()
        self.config = _config_for(c, h, w, tokens, embed_dim, self.shards[0].metadata.get("family"))
        self._files: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        number, row = self.index[i]
        f = self._files.get(number)
        if f is None:  # opened lazily, per process: DataLoader workers each get their own handles
            f = self._files[number] = safe_open(self.shards[number].path, "pt")
        return tuple(f.get_slice(name)[row].float() for name in TENSORS)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_files": {}}


def _config_for(c: int, h: int, w: int, tokens: int, embed_dim: int, family: object) -> NPNetConfig:
    """The network shape the data asks for; a released family when the metadata or the shape says so."""
    if family in OFFICIAL and OFFICIAL[family].embed_dim == embed_dim:
        return NPNetConfig(c, h, w, tokens, embed_dim, family=family)
    for official in OFFICIAL.values():
        if (official.latent_shape, official.tokens, official.embed_dim) == ((c, h, w), tokens, embed_dim):
            return official
    return NPNetConfig(c, h, w, tokens, embed_dim, family=None)


def _describe(shapes) -> str:
    (c, h, w), (t, d) = shapes
    return f"{c}x{h}x{w} latents with {t}x{d} prompt tokens"


def _check_shard(path: Path, min_gain: float | None, digest, interrupt: Callable[[], None]):
    name = path.name
    f = open_shard(path)
    keys = set(f.keys())
    missing = [t for t in TENSORS if t not in keys]
    if missing:
        raise DatasetError(
            f"{name} lacks the tensor(s) {missing}; an NPD shard holds {list(TENSORS)} (+ gain)."
        )
    metadata = shard_metadata(f, name)
    slices = {t: f.get_slice(t) for t in keys & {*TENSORS, "gain"}}
    shapes = {t: tuple(s.get_shape()) for t, s in slices.items()}
    noise = shapes["noise"]
    if len(noise) != 4 or 0 in noise:
        raise DatasetError(f"{name}: 'noise' has shape {list(noise)}; expected [N, C, H, W] with N >= 1.")
    if shapes["golden"] != noise:
        raise DatasetError(
            f"{name}: 'golden' has shape {list(shapes['golden'])}, 'noise' {list(noise)}; they must match."
        )
    embeds = shapes["embeds"]
    if len(embeds) != 3 or embeds[0] != noise[0] or 0 in embeds:
        raise DatasetError(
            f"{name}: 'embeds' has shape {list(embeds)}; expected [{noise[0]}, T, D] (one prompt per sample)."
        )
    for t in TENSORS:
        dtype = f.get_slice(t)[:1].dtype
        if dtype not in FLOAT_DTYPES:
            raise DatasetError(f"{name}: '{t}' is {dtype}; NPD tensors are float16 or float32.")
    rows = noise[0]
    _scan(path, digest, interrupt)
    keep = range(rows)
    if "gain" in slices:
        if shapes["gain"] != (rows,):
            raise DatasetError(f"{name}: 'gain' has shape {list(shapes['gain'])}; expected [{rows}].")
        gain = slices["gain"][:].float()
        if not torch.isfinite(gain).all():
            raise DatasetError(f"{name}: 'gain' contains NaN or Inf values.")
        if min_gain is not None:
            keep = torch.nonzero(gain > min_gain).flatten().tolist()
    numbers = shard_index(f, name, rows)
    return Shard(path, rows, metadata), (tuple(noise[1:]), tuple(embeds[1:])), list(keep), numbers


def _scan(path: Path, digest, interrupt: Callable[[], None]) -> None:
    """Read the shard's bytes once, in order: `digest` takes the name and every byte (the same SHA-256 as
    hashing the file whole), and the float tensors of TENSORS are checked finite on the way."""
    name = path.name
    digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
    with path.open("rb") as f:
        size_bytes = f.read(8)
        header_bytes = f.read(int.from_bytes(size_bytes, "little"))
        digest.update(size_bytes + header_bytes)
        header = json.loads(header_bytes)
        start = 8 + len(header_bytes)
        spans = sorted(
            (info["data_offsets"][0], info["data_offsets"][1], tensor, info)
            for tensor, info in header.items()
            if tensor != "__metadata__"
        )
        cursor = start  # the file position: every byte before it has been hashed
        for first, end, tensor, info in spans:  # safetensors refuses overlapping tensors when opening
            first, end = start + first, start + end
            if first > cursor:
                digest.update(f.read(first - cursor))
                cursor = first
            # The float tensors were checked F16/F32 before the scan; others are hashed, not read as floats.
            dtype = _HEADER_DTYPES.get(info["dtype"]) if tensor in TENSORS else None
            itemsize = dtype.itemsize if dtype is not None else None
            block = _BLOCK - _BLOCK % itemsize if itemsize else _BLOCK
            while cursor < end:
                interrupt()
                chunk = f.read(min(block, end - cursor))
                if not chunk:
                    raise DatasetError(f"{name} is truncated (its '{tensor}' ends early).")
                digest.update(chunk)
                if itemsize:
                    values = torch.frombuffer(bytearray(chunk), dtype=dtype)
                    if not torch.isfinite(values).all():
                        row = (cursor - first) // itemsize // max(math.prod(info["shape"][1:]), 1)
                        raise DatasetError(f"{name}: '{tensor}' contains NaN or Inf values (row {row}..).")
                cursor += len(chunk)
        while chunk := f.read(_BLOCK):  # whatever follows the last tensor is part of the file's bytes too
            interrupt()
            digest.update(chunk)
