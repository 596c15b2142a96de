"""Fixtures of the Golden Noise node tests: NPNet checkpoints the tests write, and the test-only probes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from dev.checkpoints import write_checkpoint
from tests.support import REPO_ROOT

PROBES_FILE = REPO_ROOT / "tests" / "testing_pack" / "golden_noise_probes.py"


@pytest.fixture(scope="session")
def probes(comfy_inprocess):
    """The test pack's probe module, imported in this process (ComfyUI is importable by now)."""
    spec = importlib.util.spec_from_file_location("golden_noise_probes_inprocess", PROBES_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def gn_nodes(comfy_inprocess):
    """Our node module as ComfyUI imports it (through the pack package)."""
    return importlib.import_module(comfy_inprocess.pack.__name__ + ".nodes.golden_noise")


@pytest.fixture(scope="session")
def server_checkpoints(comfy_server) -> dict[str, Path]:
    """Small-but-real NPNet checkpoints in the session server's models/golden_noise (names no variant uses)."""
    folder = comfy_server.models_dir / "golden_noise"
    return {
        "sdxl": write_checkpoint(folder / "test-sdxl.safetensors", 2048, seed=1),
        "dit": write_checkpoint(folder / "test-dit.safetensors", 1024, seed=2),
    }


@pytest.fixture(scope="session")
def inprocess_checkpoint(comfy_inprocess) -> Path:
    """An SDXL-family NPNet in the in-process ComfyUI's models/npnet."""
    return write_checkpoint(
        Path(comfy_inprocess.folder_paths.models_dir) / "golden_noise" / "test-sdxl.safetensors", 2048, seed=1
    )
