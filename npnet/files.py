"""Writing a file so that a crash, a full disk or a kill never leaves a half-written file under its name."""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], exclusive: bool = False) -> Path:
    """Call `write(partial)` on a hidden temporary file beside `path`, then move it into place in one step.

    The temporary file is removed whatever happens. `exclusive`: never replace an existing file; raise
    FileExistsError instead. The finished file is then hard-linked into place, which fails atomically when
    the name is taken, so several writers sharing a folder can each claim a free name.
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        try:
            write(partial)
        except Exception as error:
            # One kind of failure for every writer: safetensors raises its own error for a missing folder
            # or a full disk, torch.save a RuntimeError ("unexpected pos ..."). The name is the file's.
            code = getattr(error, "errno", None) or errno.EIO
            reason = getattr(error, "strerror", None) or f"{type(error).__name__}: {str(error)[:300]}"
            raise OSError(code, f"cannot write {path}: {reason}") from None
        # Some writers (safetensors 0.8) create files 0600 whatever the umask; a file the pack writes is
        # readable as any other file is (0644 under umask 022), e.g. by a host running as another user.
        os.chmod(partial, 0o666 & ~umask())
        if exclusive:
            _link_exclusive(partial, path)
        else:
            os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _link_exclusive(source: Path, path: Path) -> None:
    try:
        os.link(source, path)
    except FileExistsError:
        raise
    except OSError:
        # A filesystem without hard links: claim the name with an exclusive create, then move the file
        # over the (empty) claim. Readers refuse an empty file by name until the move lands.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        os.replace(source, path)


def umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def folder_problem(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be or become a folder (it is a file, or lies under one), or None."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a folder"
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else f"{path} lies under {parent}, which is a file"
    return None


def make_folder(path: str | os.PathLike) -> Path:
    """Create the folder `path` (and its parents) and check that a file can be created in it, so a run
    finds a read-only or unusable folder before its work, not at its first save. OSError naming it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-check-{uuid.uuid4().hex[:8]}"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise OSError(error.errno, f"cannot write into {path}: {error.strerror or error}") from None
    return path
