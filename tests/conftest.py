"""Suite-wide fixtures: one real ComfyUI server per session, and ComfyUI imported in-process.

Tests of the host-free cores (tests/npnet, tests/dpsl) use neither and run without ComfyUI.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import types
from pathlib import Path

import pytest

from tests.comfy_harness import (
    TESTING_PACK_NAME,
    ComfyServer,
    comfyui_dir,
    pack_import_failures,
    start_server,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Files a person may want to look at after the run (screenshots, charts)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory) -> ComfyServer:
    """The real ComfyUI server with this pack and the test-only pack loaded."""
    server = start_server(tmp_path_factory.mktemp("comfyui"))
    try:
        failures = pack_import_failures(server.log()) + pack_import_failures(server.log(), TESTING_PACK_NAME)
        assert not failures, "a pack failed to import:\n" + "\n".join(failures) + "\n" + server.log()[-4000:]
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def comfy_inprocess(tmp_path_factory) -> types.SimpleNamespace:
    """ComfyUI's modules imported in this process (CPU mode) and this pack imported as ComfyUI does.

    For fast node tests that call `Node.execute(...)` directly. Returns a namespace with `pack` (our
    package module) and ComfyUI's `folder_paths`, with output/temp folders under a pytest tmp dir.
    """
    comfy = str(comfyui_dir())
    if comfy not in sys.path:
        # Before the repo root: ComfyUI's top-level `nodes.py` must win over our `nodes/` package.
        sys.path.insert(0, comfy)
    from comfy.cli_args import args

    args.cpu = True
    args.disable_api_nodes = True
    import comfy.model_management  # noqa: F401  (reads args.cpu on import)
    import folder_paths

    base = tmp_path_factory.mktemp("comfy_inprocess")
    folder_paths.set_output_directory(str(base / "output"))
    folder_paths.set_temp_directory(str(base / "temp"))
    folder_paths.models_dir = str(base / "models")

    name = "golden_noise_under_test"
    spec = importlib.util.spec_from_file_location(
        name, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
    )
    pack = importlib.util.module_from_spec(spec)
    sys.modules[name] = pack
    spec.loader.exec_module(pack)
    # What the host does when it loads the pack: the entry point sets the pack up (model folder).
    asyncio.run(pack.comfy_entrypoint())
    return types.SimpleNamespace(pack=pack, folder_paths=folder_paths, base_dir=base)
