"""Shared NPNet test fixtures: one set of random weights, written once in every accepted format."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import npnet
from dev.npnet_reference import (
    build_reference,
    official_checkpoint,
    random_state_dict,
    text_embedding_flavour,
)


@pytest.fixture(scope="session")
def sdxl_state_dict() -> dict[str, torch.Tensor]:
    return random_state_dict(2048, seed=0)


@pytest.fixture(scope="session")
def dit_state_dict(sdxl_state_dict) -> dict[str, torch.Tensor]:
    state_dict = dict(sdxl_state_dict)
    generator = torch.Generator().manual_seed(1)
    state_dict["embeeding.linear.weight"] = torch.randn(8, 77 * 1024, generator=generator) * 77**-0.5 / 32
    return state_dict


@pytest.fixture(scope="session")
def checkpoint_files(tmp_path_factory, sdxl_state_dict) -> dict[str, object]:
    """The same SDXL-family weights as official .pth, `embeeding.*` and `text_embedding.*` safetensors."""
    folder = tmp_path_factory.mktemp("checkpoints")
    files = {
        "official": folder / "sdxl.pth",
        "embeeding": folder / "lucipher-sdxl.safetensors",
        "text_embedding": folder / "asagi4-npnet-sdxl.safetensors",
    }
    torch.save(official_checkpoint(sdxl_state_dict), files["official"])
    save_file(sdxl_state_dict, files["embeeding"])
    save_file(text_embedding_flavour(sdxl_state_dict), files["text_embedding"])
    return files


@pytest.fixture(scope="session")
def sdxl_model(checkpoint_files) -> npnet.NPNet:
    return npnet.load(checkpoint_files["embeeding"])


@pytest.fixture(scope="session")
def reference_model(sdxl_state_dict):
    return build_reference(sdxl_state_dict)
