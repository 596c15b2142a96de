"""NPNet weights in ComfyUI: the `npnet` model folder, a first-use download, and the loaded networks.

The loaded network travels on NPNET wires as an `NPNetWeights`: the network wrapped in ComfyUI's
ModelPatcher, so model management moves it to the GPU when a node needs it and can offload it like any
other model. ComfyUI owns its lifetime: the executor's output cache holds it between runs, and our own
cache only refers to it weakly, so when the host drops it ("free model and node cache") it is freed.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from pathlib import Path

from .. import npnet
from ..npnet import VARIANTS, shown
from .comfy_host import (
    folder_paths,
    model_management,
    model_patcher,
    progress_and_cancel,
    register_model_folder,
)
from .errors import GoldenNoiseError

log = logging.getLogger(__name__)

FOLDER = "npnet"
EXTENSIONS = {".pth", ".safetensors"}

# What the loader's combo shows for each released checkpoint.
LABEL_TO_VARIANT = {variant.label: name for name, variant in VARIANTS.items()}


def default_folder() -> Path:
    """`models/npnet`: where first-use downloads go."""
    return Path(folder_paths.models_dir) / FOLDER


def register_folder() -> None:
    """Declare the `npnet` model folder: `models/npnet`, plus any `npnet:` folders of extra_model_paths.yaml;
    only weight files are listed."""
    register_model_folder(FOLDER, str(default_folder()), EXTENSIONS)


def weight_choices() -> list[str]:
    """The loader's combo: the released variants first, then every file in the npnet folders.

    A file whose name is not valid UTF-8 is left out (with a warning that shows it escaped): its name
    would reach the front end and ComfyUI's log as surrogates, which the log cannot write, and a failed
    log write stops ComfyUI's prompt worker (a guard for ComfyUI's own logging).
    """
    files = []
    for name in folder_paths.get_filename_list(FOLDER):
        if shown(name) != name:
            log.warning("npnet folder: skipping %s, whose name is not valid UTF-8; rename it", shown(name))
            continue
        files.append(name)
    return list(LABEL_TO_VARIANT) + files


def resolve(choice: str, node_id: str | None) -> Path:
    """The file behind a combo choice; a released variant missing from every npnet folder is downloaded
    into models/npnet (a copy in any npnet folder, e.g. one from extra_model_paths.yaml, is used as is)."""
    if choice not in LABEL_TO_VARIANT:
        path = folder_paths.get_full_path(FOLDER, choice)
        if path is None:
            raise GoldenNoiseError(
                "Golden Noise Loader",
                node_id,
                "weights",
                f"{choice!r} is not in any npnet folder ({_folders()}).",
            )
        return Path(path)
    variant = LABEL_TO_VARIANT[choice]
    folders = [Path(p) for p in folder_paths.get_folder_paths(FOLDER)]
    dest = next(
        (f for f in folders if any((f / name).is_file() for name in VARIANTS[variant].local_names)),
        default_folder(),
    )
    # progress_and_cancel: the byte count on the node's bar, and Cancel stops the download within a
    # fraction of a second (reported by ComfyUI as interrupted, not as an error).
    with progress_and_cancel(1, node_id) as (progress, cancel):
        try:
            # A file already in `dest` is returned (a .pth converted once) without any network request.
            return Path(
                npnet.download(
                    variant,
                    dest_dir=dest,
                    progress=progress,
                    should_cancel=cancel,
                )
            )
        except npnet.Cancelled:
            raise
        except Exception as error:  # offline, stalled, network, Hub: every cause needs the user
            raise GoldenNoiseError(
                "Golden Noise Loader",
                node_id,
                "weights",
                f"no {choice} weights in the npnet folders ({_folders()}) and the download failed: {error}",
            ) from error


def _folders() -> str:
    return ", ".join(folder_paths.get_folder_paths(FOLDER))


@dataclass(eq=False)
class NPNetWeights:
    """What an NPNET wire carries: one loaded network and what it was trained for."""

    name: str
    path: Path
    patcher: object  # comfy.model_patcher.ModelPatcher around the npnet.NPNet

    @property
    def model(self) -> npnet.NPNet:
        return self.patcher.model

    @property
    def family(self) -> str | None:
        return self.patcher.model.family

    @property
    def embed_dim(self) -> int:
        return self.patcher.model.embed_dim

    def on_device(self) -> npnet.NPNet:
        """The network on ComfyUI's torch device, loaded through model management (may evict others)."""
        model_management.load_models_gpu([self.patcher])
        return self.patcher.model


class NPNetCache:
    """The networks ComfyUI still holds, keyed on (file, mtime, device): one network per file and device
    while anything uses it, a replaced file reloaded. Weak: it never keeps a network alive by itself."""

    def __init__(self) -> None:
        self._entries: weakref.WeakValueDictionary[tuple[str, int, str], NPNetWeights] = (
            weakref.WeakValueDictionary()
        )

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str, path: Path) -> NPNetWeights:
        device = model_management.get_torch_device()
        key = (str(path.resolve()), path.stat().st_mtime_ns, str(device))
        cached = self._entries.get(key)
        if cached is not None:
            return cached
        log.info("loading NPNet weights from %s", shown(path))
        offload = model_management.unet_offload_device()
        # Loaded on the offload device; model management moves it to `device` when a node uses it.
        model = npnet.load(path, device=offload)
        patcher = model_patcher.ModelPatcher(model, load_device=device, offload_device=offload)
        weights = NPNetWeights(name, path, patcher)
        self._entries[key] = weights
        return weights


CACHE = NPNetCache()


def load_weights(choice: str, node_id: str | None = None) -> NPNetWeights:
    path = resolve(choice, node_id)
    try:
        return CACHE.get(choice, path)
    except ValueError as error:  # npnet's strict checks: wrong format, keys or shapes
        raise GoldenNoiseError("Golden Noise Loader", node_id, "weights", str(error)) from error
