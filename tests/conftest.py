"""Suite-wide fixtures: one real ComfyUI server per session, and ComfyUI imported in-process.

Tests of the host-free cores (tests/npnet, tests/dpsl) use neither and run without ComfyUI.
"""

from __future__ import annotations

import os
import types
from pathlib import Path

import pytest

from dev.comfy_harness import (
    TESTING_PACK_NAME,
    ComfyServer,
    import_inprocess,
    pack_import_failures,
    start_server,
)
from tests.support import REPO_ROOT

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
    return import_inprocess(tmp_path_factory.mktemp("comfy_inprocess"), "golden_noise_under_test")


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """A headless Chromium (dev/browser.py) for the front-end tests."""
    from dev.browser import Browser, find_browser

    binary = find_browser()
    if binary is None:
        reason = "no Chromium-family browser on PATH (Debian: apt-get install chromium); set $CHROMIUM to use another"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " - CI=true requires the browser test to run")
        pytest.skip(reason)
    b = Browser(binary, tmp_path_factory.mktemp("chromium"))
    try:
        yield b
    finally:
        b.close()
