"""Careless and hostile files and tensors given to the core: each refused with the input it concerns.

Regression tests of the hostile-input review (files that are not checkpoints, damaged weights, scaled
noise, names that are not UTF-8)."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import npnet
from npnet.inputs import shown

CONFIG = npnet.NPNetConfig(channels=4, height=16, width=16, tokens=8, embed_dim=32, family=None)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("hostile") / "good.safetensors"
    npnet.save(npnet.NPNet(CONFIG), path)
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
    return path, load_file(path), metadata


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("text.pth", b"hello, not a checkpoint", r"is not a readable PyTorch checkpoint \(KeyError"),
        ("zero.pth", b"", r"is empty \(0 bytes\)"),
        ("noise.safetensors", os.urandom(256), "is not a readable .safetensors file"),
    ],
)
def test_files_that_are_not_checkpoints_are_a_value_error_with_a_reason(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message):
        npnet.load(tmp_path / name)


def test_integer_and_nan_weights_are_refused_at_load(tmp_path, saved):
    _, state, metadata = saved
    save_file(
        {k: v.to(torch.int32) for k, v in state.items()}, str(tmp_path / "int.safetensors"), metadata=metadata
    )
    with pytest.raises(ValueError, match="not floating point"):
        npnet.load(tmp_path / "int.safetensors")
    broken = {**state, "alpha": torch.full_like(state["alpha"], float("nan"))}
    save_file(broken, str(tmp_path / "nan.safetensors"), metadata=metadata)
    with pytest.raises(ValueError, match=r"NaN or Inf values \(1\): alpha; the file is damaged"):
        npnet.load(tmp_path / "nan.safetensors")


def test_an_upper_case_suffix_loads_as_safetensors(tmp_path, saved):
    path, _, _ = saved
    (tmp_path / "UPPER.SAFETENSORS").write_bytes(path.read_bytes())
    assert npnet.load(tmp_path / "UPPER.SAFETENSORS").config == CONFIG


@pytest.mark.parametrize(
    "noise, input_name, message",
    [
        (torch.zeros(0, 4, 16, 16), "noise", "is empty"),
        (torch.zeros(1, 4, 16, 16, dtype=torch.int64), "noise", "floating-point"),
        (torch.full((1, 4, 16, 16), float("nan")), "noise", "NaN or Inf"),
        (torch.randn(1, 4, 16, 16) * 1e30, "noise", "unit-variance Gaussian noise"),
    ],
)
def test_bad_noise_is_blamed_on_the_noise(saved, noise, input_name, message):
    model = npnet.load(saved[0])
    with pytest.raises(npnet.InputError, match=message) as error:
        npnet.golden_noise(model, noise, torch.randn(1, 8, 32))
    assert error.value.input == input_name


def test_nan_conditioning_is_blamed_on_the_prompt(saved):
    with pytest.raises(npnet.InputError) as error:
        npnet.golden_noise(
            npnet.load(saved[0]), torch.randn(1, 4, 16, 16), torch.full((1, 8, 32), float("nan"))
        )
    assert error.value.input == "prompt_embeds"


def test_a_name_that_is_not_utf8_is_shown_escaped_and_can_be_written(tmp_path):
    name = os.fsdecode(b"bad\xff.pth")
    (tmp_path / name).write_bytes(b"")
    text = shown(tmp_path / name)
    assert text.endswith("bad\\xff.pth")
    text.encode("utf-8")  # what a log handler does; the raw name would raise UnicodeEncodeError
    with pytest.raises(ValueError) as error:
        npnet.load(tmp_path / name)
    str(error.value).encode("utf-8")
