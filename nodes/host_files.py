"""Every file-name input of the pack, checked in one place against the host's folders.

A widget value reaches `execute` as the client sent it: ComfyUI 0.3.75 does not check V3 combo values
against their options, and a string widget takes anything. So a name is never joined to a folder
unchecked: input files must be plain names listed in ComfyUI's input folder, and output paths must stay
inside its output folder, symbolic links followed (a link inside input/ or output/ that points outside
is refused like a '..'). Errors name the input and say what would be accepted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from .comfy_host import folder_paths

# error(input_name, cause) -> the node's own exception type
ErrorFactory = Callable[[str, str], Exception]
NO_FILE = "(none)"
NAME_MAX = 255  # bytes in one file name on the usual file systems (ext4, xfs, btrfs, APFS, NTFS in chars)
# What the nodes append to a filename_prefix's last part: "_00001_", a reward's name and input name (up to
# 51), "scores.csv" / "summary.json". A longer prefix would fail only when the first file is written.
SUFFIX_ROOM = 96


def input_folder() -> Path:
    return Path(folder_paths.get_input_directory())


def input_files(suffixes: Sequence[str]) -> list[str]:
    """The plain files in ComfyUI's input folder with one of `suffixes` (the combo's options)."""
    root = input_folder()
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.suffix.lower() in suffixes and p.is_file() and _plain(p.name) and _inside(p, root)
    )


def input_file(name: str, suffixes: Sequence[str], input_name: str, error: ErrorFactory) -> Path:
    """The file `name` in ComfyUI's input folder, refused unless it is one of `input_files(suffixes)`."""
    if not isinstance(name, str) or not _plain(name) or name not in input_files(suffixes):
        shown = name if isinstance(name, str) and len(name) <= 80 else f"{str(name)[:80]}..."
        if isinstance(name, str) and _plain(name) and (input_folder() / name).is_symlink():
            raise error(
                input_name,
                f"{shown!r} is a symbolic link to a file outside ComfyUI's input folder ({input_folder()}), "
                "which the pack does not read; copy the file into that folder.",
            )
        raise error(
            input_name,
            f"{shown!r} is not a {' / '.join(suffixes)} file in ComfyUI's input folder ({input_folder()}); "
            f"pick one of the listed files (put the file in that folder and refresh), or {NO_FILE}.",
        )
    return input_folder() / name


def output_path(prefix: str, input_name: str, error: ErrorFactory) -> tuple[Path, str, int, str]:
    """(folder, file stem, counter, subfolder) for a filename_prefix, as ComfyUI's save nodes resolve it;
    a prefix that would leave the output folder is refused before any work is done."""
    root = folder_paths.get_output_directory()
    parts = Path(prefix).parts if isinstance(prefix, str) else ()
    if (
        not isinstance(prefix, str)
        or not prefix.strip()
        or "\x00" in prefix
        or Path(prefix).is_absolute()
        or ".." in parts
        or prefix.endswith(("/", "\\"))
    ):
        raise error(
            input_name,
            f"{prefix!r} is not a file name prefix inside ComfyUI's output folder; use a relative path "
            "such as 'golden_noise/evaluation' (no '..', not absolute, ending in a file name).",
        )
    shown = prefix if len(prefix) <= 80 else f"{prefix[:80]}..."
    *folders, last = Path(prefix).parts
    too_long = [part for part in folders if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX]
    if too_long or len(last.encode("utf-8", "surrogatepass")) > NAME_MAX - SUFFIX_ROOM:
        raise error(
            input_name,
            f"{shown!r} is too long for a file name: each folder name may have at most {NAME_MAX} bytes and "
            f"the last part at most {NAME_MAX - SUFFIX_ROOM} (the node adds a counter and suffixes to it).",
        )
    try:
        folder, stem, counter, subfolder, _ = folder_paths.get_save_image_path(prefix, root)
    except OSError as cause:  # a file where a folder should be
        raise error(input_name, f"{shown!r} cannot be used in the output folder: {cause.strerror}.") from None
    except Exception as cause:  # the host's own outside-the-folder refusal
        raise error(input_name, f"{shown!r} points outside ComfyUI's output folder ({cause}).") from None
    if not _inside(Path(folder), Path(root)):
        raise error(
            input_name,
            f"{shown!r} leads through a symbolic link to {Path(folder).resolve()}, outside ComfyUI's output "
            f"folder ({root}); use a folder inside it.",
        )
    return Path(folder), stem, counter, subfolder


def output_folder(name: str, parent: str, input_name: str, error: ErrorFactory) -> Path:
    """output/<parent>/<name>, for a name already checked by the core as one plain folder name."""
    root = Path(folder_paths.get_output_directory())
    folder = root / parent / name
    if not _inside(folder, root):
        raise error(input_name, f"{name!r} resolves outside ComfyUI's output folder.")
    return folder


def _inside(path: Path, root: Path) -> bool:
    """Whether `path`, every symbolic link on the way followed, lies in `root` (itself resolved too)."""
    root = root.resolve()
    return os.path.commonpath([root, path.resolve()]) == str(root)


def _plain(name: str) -> bool:
    return (
        bool(name)
        and name not in (".", "..")
        and not name.startswith(".")
        and not any(c in name for c in "/\\\x00")
    )
