"""Fixtures for the host-free dpsl tests (no ComfyUI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support import REPO_ROOT


@pytest.fixture
def run_cli():
    """Run `python -m dpsl ...` in a subprocess from the repo root; returns (returncode, stdout, stderr)."""

    def run(*args: str, timeout: float = 120):
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        proc = subprocess.run(
            [sys.executable, "-m", "dpsl", *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return proc.returncode, proc.stdout, proc.stderr

    return run


@pytest.fixture
def cli_json(run_cli):
    def run(*args: str):
        code, out, err = run_cli(*args)
        assert code == 0, err
        return json.loads(out)

    return run


@pytest.fixture
def cuda_device():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device available")
    return "cuda"
