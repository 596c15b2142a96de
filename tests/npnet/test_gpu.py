"""CUDA runs: same golden noise as on CPU (to a tolerance), the input's device and dtype kept."""

from __future__ import annotations

import pytest
import torch

import npnet
from dev.npnet_reference import make_inputs

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return ((got.float().cpu() - expected).norm() / expected.norm()).item()


@pytest.mark.parametrize("layout", ["embeeding", "official"])
def test_cuda_matches_cpu(checkpoint_files, sdxl_model, layout):
    model = npnet.load(checkpoint_files[layout], device="cuda")
    assert model.alpha.device.type == "cuda"
    noise, embeds = make_inputs(2, seed=31)
    expected = npnet.golden_noise(sdxl_model, noise, embeds)
    # CPU tensors in: computed on the GPU, handed back on the CPU.
    got = npnet.golden_noise(model, noise, embeds)
    assert got.device == noise.device and got.dtype == noise.dtype
    # SVD sign choices, cuDNN TF32 convolutions and other kernels differ from the CPU: not bit-equal.
    assert _relative_error(got, expected) <= 1e-3


def test_cuda_half_inputs_keep_device_and_dtype(sdxl_model, checkpoint_files):
    model = npnet.load(checkpoint_files["embeeding"], device="cuda")
    noise, embeds = make_inputs(1, seed=32)
    got = npnet.golden_noise(model, noise.cuda().half(), embeds.cuda().half())
    assert got.device.type == "cuda" and got.dtype == torch.float16
    expected = npnet.golden_noise(sdxl_model, noise.half(), embeds.half()).float()
    assert _relative_error(got, expected) <= 1e-3


def test_cuda_perturbation_transfer(checkpoint_files):
    model = npnet.load(checkpoint_files["embeeding"], device="cuda")
    noise, embeds = make_inputs(1, seed=33, size=(96, 160))
    out = npnet.golden_noise(model, noise.cuda(), embeds.cuda(), resolution_mode="perturbation_transfer")
    assert out.shape == noise.shape and out.device.type == "cuda"
    assert abs(out.std().item() - 1) < 1e-3
