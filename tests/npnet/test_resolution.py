"""Perturbation transfer (golden_noise's resolution_mode) for latents other than 128x128: valid noise
statistics, no blocks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import npnet
from dev.npnet_reference import make_inputs


def transfer(model, noise, embeds):
    return npnet.golden_noise(model, noise, embeds, resolution_mode="perturbation_transfer")


def _neighbour_correlation(x: torch.Tensor) -> float:
    """Mean correlation of horizontally and vertically adjacent values: ~0 for i.i.d. noise."""
    x = (x - x.mean()) / x.std()
    return float(((x[..., :, 1:] * x[..., :, :-1]).mean() + (x[..., 1:, :] * x[..., :-1, :]).mean()) / 2)


@pytest.fixture(scope="module")
def identity_model(tmp_path_factory, sdxl_state_dict):
    """NPNet whose golden noise is its input: text gate 0, Swin weight 0, singular values unchanged."""
    state_dict = dict(sdxl_state_dict)
    state_dict["alpha"] = torch.zeros(1)
    state_dict["beta"] = torch.zeros(1)
    state_dict["unet_svd.mlp4.2.weight"] = torch.zeros(256, 1024)
    state_dict["unet_svd.mlp4.2.bias"] = torch.zeros(256)
    path = tmp_path_factory.mktemp("identity") / "identity.safetensors"
    save_file(state_dict, path)
    return npnet.load(path)


@pytest.mark.parametrize("size", [(96, 96), (128, 192), (168, 96)])
def test_output_is_unit_noise_at_the_native_size(sdxl_model, size):
    noise, embeds = make_inputs(2, seed=21, size=size)
    out = transfer(sdxl_model, noise, embeds[:1])
    assert out.shape == noise.shape and out.dtype == noise.dtype
    per_sample = out.flatten(1)
    assert per_sample.std(dim=1).sub(1).abs().max().item() < 1e-4
    # The random test network shifts the mean itself (its text branch's `shift`: up to 0.35 on 128x128
    # golden noise); the transfer carries that shift and adds none of its own.
    golden_mean = sdxl_model(*make_inputs(2, seed=21)).flatten(1).mean(dim=1).abs().max().item()
    assert per_sample.mean(dim=1).abs().max().item() < golden_mean
    # The network's change is really carried over, not dropped.
    assert (out - noise / noise.flatten(1).std(1).view(-1, 1, 1, 1)).abs().mean().item() > 0.05


def test_unperturbed_noise_is_kept_without_blocks(identity_model):
    noise, embeds = make_inputs(1, seed=22, size=(96, 144))
    out = transfer(identity_model, noise, embeds)
    assert (out - noise / noise.std()).abs().max().item() < 1e-3
    assert abs(out.mean().item()) < 0.02 and abs(out.std().item() - 1) < 1e-4
    assert abs(_neighbour_correlation(out)) < 0.02
    # What resizing the noise itself (the usual workaround) would have produced: strongly blocky.
    blocky = F.interpolate(
        F.interpolate(noise, size=(128, 128), mode="nearest"), size=(96, 144), mode="nearest"
    )
    assert _neighbour_correlation(blocky) > 0.2


def test_native_128_is_the_exact_network_output(sdxl_model):
    noise, embeds = make_inputs(1, seed=23)
    assert torch.equal(transfer(sdxl_model, noise, embeds), sdxl_model(noise, embeds))


def test_half_precision_noise_keeps_its_dtype(sdxl_model):
    noise, embeds = make_inputs(1, seed=24, size=(96, 96))
    out = transfer(sdxl_model, noise.half(), embeds)
    assert out.dtype == torch.float16 and torch.isfinite(out).all()


def test_bad_inputs_still_rejected(sdxl_model):
    noise, embeds = make_inputs(1, size=(96, 96))
    with pytest.raises(ValueError, match="16-channel"):
        transfer(sdxl_model, torch.randn(1, 16, 96, 96), embeds)
    noise[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        transfer(sdxl_model, noise, embeds)
