"""Output files written whole or not at all: a full disk or a kill never leaves half a report in place of
the previous one."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to a hidden temporary file beside `path`, then move it over `path` in one step."""
    path = Path(os.path.abspath(path))  # "." has no name to put a temporary file beside
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
