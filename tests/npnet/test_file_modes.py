"""Files the pack writes follow the umask like any other file (safetensors 0.8 alone writes 0600), so a
ComfyUI or webui running as another user (Docker) can read them."""

from __future__ import annotations

import os
import stat

import pytest
import torch

import npnet
from npnet.files import atomic_write
from npnet.learning.dataset import write_shard


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_saved_network_a_shard_and_an_atomic_write_are_0644_under_umask_022(tmp_path, umask_022):
    config = npnet.NPNetConfig(4, 8, 8, 8, 32, family=None)
    network = npnet.NPNet(config)
    assert mode(npnet.save(network, tmp_path / "net.safetensors")) == 0o644
    shard = write_shard(
        tmp_path / "part.safetensors", torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 8, 8), torch.zeros(1, 8, 32)
    )
    assert mode(shard) == 0o644
    assert mode(atomic_write(tmp_path / "x.txt", lambda p: p.write_text("x"))) == 0o644


def test_a_stricter_umask_is_kept(tmp_path):
    previous = os.umask(0o077)
    try:
        path = npnet.save(
            npnet.NPNet(npnet.NPNetConfig(4, 8, 8, 8, 32, family=None)), tmp_path / "n.safetensors"
        )
    finally:
        os.umask(previous)
    assert mode(path) == 0o600
