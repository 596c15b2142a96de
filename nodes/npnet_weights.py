"""NPNet weights in ComfyUI: the `golden_noise` model folder, a first-use download, and the loaded networks.

The pack writes into `models/golden_noise` and also lists `models/npnet` (and `npnet:` folders of
extra_model_paths.yaml), where users keep files from other NPNet packs. It never writes into
`models/npnet`: asagi4's ComfyUI-NPNet lists every weight file there and can read only its own layouts,
so a file of ours there shows in that pack's list and fails to load. Files an earlier version of this
pack put there (flat `embeeding.*` keys, which asagi4 cannot read) are moved to `models/golden_noise`
at the first start of this version, with a log line; the loader finds them under the same name, so
workflows keep working. The move touches only what the pack wrote and nothing that might still be
written (`migrate_shared_folder`).

The loaded network travels on NPNET wires as an `NPNetWeights`: the network wrapped in ComfyUI's
ModelPatcher, so model management moves it to the GPU when a node needs it and can offload it like any
other model. ComfyUI owns its lifetime: the executor's output cache holds it between runs, and our own
cache only refers to it weakly, so when the host drops it ("free model and node cache") it is freed.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open

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

FOLDER = "golden_noise"  # the folder type and models/ folder the pack owns
SHARED = "npnet"  # the folder type and models/ folder other NPNet packs list: read, never written
EXTENSIONS = {".pth", ".safetensors"}

# What the loader's combo shows for each released checkpoint.
LABEL_TO_VARIANT = {variant.label: name for name, variant in VARIANTS.items()}


def default_folder() -> Path:
    """`models/golden_noise`: where first-use downloads go, and trained files are copied."""
    return Path(folder_paths.models_dir) / FOLDER


def shared_folder() -> Path:
    return Path(folder_paths.models_dir) / SHARED


def shared_folders() -> list[Path]:
    """The folders other NPNet packs list, read but never written: `npnet:` entries, then models/npnet."""
    entries = folder_paths.folder_names_and_paths.get(SHARED, ([], set()))[0]
    return [*(Path(p) for p in entries), shared_folder()]


def register_folder() -> None:
    """Declare the `golden_noise` folder type: `models/golden_noise` and any `golden_noise:` folders of
    extra_model_paths.yaml, then the shared folders to read; only weight files are listed. Moves the
    pack's old files out of `models/npnet` first (see the module docstring)."""
    migrate_shared_folder(shared_folder(), default_folder())
    register_model_folder(FOLDER, str(default_folder()), EXTENSIONS)
    paths, _ = folder_paths.folder_names_and_paths[FOLDER]
    for path in map(str, shared_folders()):
        if path not in paths:
            paths.append(path)


MOVED_MARKER = ".moved-from-models-npnet"  # in models/golden_noise: the move has run, never again
QUIET_SECONDS = 600  # a file modified more recently may still be being written (a download tool)


def _ours_in_a_layout_asagi4_cannot_read(path: Path) -> bool:
    """A flat .safetensors with `embeeding.*` keys (the layout asagi4 KeyErrors on) that this pack wrote
    (`npnet.written_by_this_pack`). A LucipherDev file of the same layout is not ours."""
    try:
        with safe_open(path, "pt") as f:
            layout = "embeeding.linear.weight" in f.keys()
    except Exception:  # not a safetensors file: not one of ours, not ours to move
        return False
    return layout and npnet.written_by_this_pack(path)


def _still_written(path: Path) -> str | None:
    """Why `path` may still be being written (modified recently, or open for writing by a process this
    user can see), or None."""
    age = time.time() - path.stat().st_mtime
    if age < QUIET_SECONDS:
        return f"it was modified {age:.0f} s ago"
    target = os.path.realpath(path)
    for fdinfo in Path("/proc").glob("[0-9]*/fdinfo/*"):  # Linux; elsewhere the age check alone
        try:
            if os.readlink(fdinfo.parent.parent / "fd" / fdinfo.name) != target:
                continue
            flags = int(fdinfo.read_text().split("flags:")[1].split()[0], 8)
        except (OSError, IndexError, ValueError):
            continue
        if flags & (os.O_WRONLY | os.O_RDWR):
            return f"process {fdinfo.parent.parent.name} has it open for writing"
    return None


def _move_without_replacing(path: Path, target: Path) -> None:
    """Give `path` the name `target`, failing (FileExistsError) if anything has that name, a dangling
    symlink included: a hard link claims the name atomically; across filesystems, an exclusive copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(path, target, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError:
        npnet.atomic_write(target, lambda partial: shutil.copyfile(path, partial), exclusive=True)
    path.unlink()


def migrate_shared_folder(shared: Path, own: Path) -> None:
    """Move the pack's files from `shared` (models/npnet) to `own` (models/golden_noise), keeping names.

    Runs once (a marker in `own`). Moves only files this pack wrote (`_ours_in_a_layout_asagi4_cannot_read`), never a
    symlink, never a file that may still be being written, never over anything of the same name; every
    other file in `shared` is left untouched. When both names are one folder there is nothing to move."""
    if not shared.is_dir() or (own / MOVED_MARKER).exists():
        return
    if own.is_dir() and os.path.samefile(shared, own):
        return
    for path in sorted(shared.rglob("*.safetensors")):
        if path.is_symlink() or not path.is_file() or not _ours_in_a_layout_asagi4_cannot_read(path):
            continue
        target = own / path.relative_to(shared)
        busy = _still_written(path)
        if busy:
            log.warning(
                "Golden Noise: %s is in a layout asagi4's ComfyUI-NPNet cannot read, but %s; left where it "
                "is. Move it to %s yourself once it is complete.",
                path,
                busy,
                target,
            )
            continue
        if os.path.lexists(target):
            if target.exists() and os.path.samefile(path, target):
                continue  # one file under two names (a link): nothing to move
            log.warning(
                "Golden Noise: %s is in a layout asagi4's ComfyUI-NPNet cannot read, and %s already exists "
                "(a different file or link); both were left as they are. The Golden Noise Loader uses %s; "
                "move or rename the one in %s if you want asagi4's list clean.",
                path,
                target,
                target,
                shared,
            )
            continue
        try:
            _move_without_replacing(path, target)
        except OSError as error:
            log.warning("Golden Noise: could not move %s to %s (%s); left where it is.", path, target, error)
            continue
        log.warning(
            "Golden Noise: moved %s to %s: asagi4's ComfyUI-NPNet lists every file in %s and cannot read "
            "this layout; the Golden Noise Loader finds it there under the same name.",
            path,
            target,
            shared,
        )
    try:
        own.mkdir(parents=True, exist_ok=True)
        (own / MOVED_MARKER).write_text(
            "models/npnet was checked for this pack's files once; delete to rerun\n"
        )
    except OSError as error:
        log.warning("Golden Noise: could not write %s (%s); the check runs again next start.", own, error)


def weight_choices() -> list[str]:
    """The loader's combo: the released variants first, then every file in the NPNet folders.

    A file whose name is not valid UTF-8 is left out (with a warning that shows it escaped): its name
    would reach the front end and ComfyUI's log as surrogates, which the log cannot write, and a failed
    log write stops ComfyUI's prompt worker (a guard for ComfyUI's own logging).
    """
    files = []
    for name in folder_paths.get_filename_list(FOLDER):
        if shown(name) != name:
            log.warning("NPNet folders: skipping %s, whose name is not valid UTF-8; rename it", shown(name))
            continue
        files.append(name)
    return list(LABEL_TO_VARIANT) + files


def resolve(choice: str, node_id: str | None) -> Path:
    """The file behind a combo choice; a released variant missing from every NPNet folder is downloaded
    into models/golden_noise (a copy in any listed folder, e.g. models/npnet, is used as is)."""
    if choice not in LABEL_TO_VARIANT:
        path = folder_paths.get_full_path(FOLDER, choice)
        if path is None:
            raise GoldenNoiseError(
                "Golden Noise Loader",
                node_id,
                "weights",
                f"{choice!r} is not in any NPNet folder ({_folders()}).",
            )
        return Path(path)
    variant = LABEL_TO_VARIANT[choice]
    dest = default_folder()
    for folder in (Path(p) for p in folder_paths.get_folder_paths(FOLDER)):
        found = [folder / name for name in VARIANTS[variant].local_names if (folder / name).is_file()]
        if found and folder in shared_folders():
            return found[0]  # read where it is: converting a .pth would write into another pack's folder
        if found:
            dest = folder
            break
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
                f"no {choice} weights in the NPNet folders ({_folders()}) and the download failed: {error}",
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


def wired_weights(value, error, input_name: str) -> NPNetWeights:
    """`value` of an NPNET input as the network it must be. The server type-checks links, not values:
    an API prompt can put a literal (a file name, a number) on the socket, which is refused here,
    naming the input, instead of failing later on a missing attribute. `error(input_name, cause)`
    makes the node's error."""
    if not isinstance(value, NPNetWeights):
        raise error(
            input_name,
            f"{input_name} takes a network from Golden Noise Loader (an NPNET link), got "
            f"{type(value).__name__} {value!r:.60}.",
        )
    return value


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
