"""The whole network against the independent reference, its determinism and its input checks."""

from __future__ import annotations

import pytest
import torch

from tests.npnet.reference import make_inputs


def test_matches_reference(sdxl_model, reference_model):
    noise, embeds = make_inputs(2, seed=3)
    with torch.no_grad():
        expected = reference_model(noise, embeds)
    got = sdxl_model(noise, embeds)
    assert got.shape == (2, 4, 128, 128)
    assert (got - expected).abs().max().item() <= 1e-5


def test_one_prompt_serves_the_batch(sdxl_model, reference_model):
    noise, embeds = make_inputs(2, seed=4)
    one = embeds[:1]
    with torch.no_grad():
        expected = reference_model(noise, one.expand(2, -1, -1))
    assert (sdxl_model(noise, one) - expected).abs().max().item() <= 1e-5


def test_same_inputs_give_bit_identical_outputs(sdxl_model):
    noise, embeds = make_inputs(1, seed=5)
    assert torch.equal(sdxl_model(noise, embeds), sdxl_model(noise.clone(), embeds.clone()))


def test_batch_of_four_equals_four_single_calls(sdxl_model):
    noise, embeds = make_inputs(4, seed=6)
    batched = sdxl_model(noise, embeds)
    singles = torch.cat([sdxl_model(noise[i : i + 1], embeds[i : i + 1]) for i in range(4)])
    assert (batched - singles).abs().max().item() <= 1e-5


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_computes_in_float32_and_returns_input_dtype(sdxl_model, dtype):
    noise, embeds = make_inputs(1, seed=7)
    low = noise.to(dtype)
    got = sdxl_model(low, embeds.to(dtype))
    assert got.dtype == dtype and got.device == noise.device
    expected = sdxl_model(low.float(), embeds.to(dtype).float())
    assert torch.equal(got, expected.to(dtype))


def test_call_builds_no_autograd_graph(sdxl_model):
    noise, embeds = make_inputs(1, seed=8)
    out = sdxl_model(noise.requires_grad_(), embeds)
    assert not out.requires_grad and out.grad_fn is None
    assert not any(p.requires_grad for p in sdxl_model.parameters())


def test_variant_and_family(sdxl_model):
    assert sdxl_model.family == "sdxl" and sdxl_model.embed_dim == 2048


@pytest.mark.parametrize(
    "noise_shape, embeds_shape, message",
    [
        ((1, 16, 128, 128), (1, 77, 2048), "16-channel latents come from SD3 / Flux"),
        ((1, 4, 96, 96), (1, 77, 2048), "only accept 128x128 latents (1024x1024 px)"),
        ((1, 4, 128, 96), (1, 77, 2048), "perturbation_transfer"),
        ((1, 4, 128, 128), (1, 77, 768), "looks like SD 1.x"),
        ((1, 4, 128, 128), (1, 77, 4096), "looks like Flux or SD3"),
        ((1, 4, 128, 128), (1, 77, 1024), "SD 2.x (OpenCLIP-H) or Hunyuan-DiT"),
        ((2, 4, 128, 128), (3, 77, 2048), "batch mismatch: 3 prompt embeddings for 2 noise samples"),
        ((1, 4, 128, 128), (0, 77, 2048), "conditioning is empty"),
        ((1, 4, 128, 128), (1, 0, 2048), "conditioning is empty"),
        ((1, 4, 128, 128), (1, 154, 2048), "npnet.fit_tokens"),
        ((1, 4, 128, 128), (77, 2048), "[B, L, D]"),
        ((4, 128, 128), (1, 77, 2048), "shape [B, 4, 128, 128]"),
    ],
)
def test_bad_inputs_are_clear_value_errors(sdxl_model, noise_shape, embeds_shape, message):
    with pytest.raises(ValueError) as error:
        sdxl_model(torch.randn(noise_shape), torch.randn(embeds_shape))
    assert message in str(error.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_noise_is_rejected(sdxl_model, bad):
    noise, embeds = make_inputs(1)
    noise[0, 1, 2, 3] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        sdxl_model(noise, embeds)


def test_missing_conditioning_is_rejected(sdxl_model):
    noise, _ = make_inputs(1)
    with pytest.raises(ValueError, match="conditioning is empty"):
        sdxl_model(noise, None)
