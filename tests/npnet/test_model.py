"""The whole network against the independent reference, its determinism, and `npnet.golden_noise`'s
input checks (the one validated entry point hosts call)."""

from __future__ import annotations

import pytest
import torch

import npnet
from dev.npnet_reference import make_inputs


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
    got = npnet.golden_noise(sdxl_model, low, embeds.to(dtype))
    assert got.dtype == dtype and got.device == noise.device
    expected = npnet.golden_noise(sdxl_model, low.float(), embeds.to(dtype).float())
    assert torch.equal(got, expected.to(dtype))


def test_call_builds_no_autograd_graph(sdxl_model):
    noise, embeds = make_inputs(1, seed=8)
    out = npnet.golden_noise(sdxl_model, noise.requires_grad_(), embeds)
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
        ((1, 4, 128, 128), (77, 2048), "[B, L, D]"),
        ((4, 128, 128), (1, 77, 2048), "shape [B, 4, 128, 128]"),
    ],
)
def test_bad_inputs_are_clear_value_errors(sdxl_model, noise_shape, embeds_shape, message):
    with pytest.raises(ValueError) as error:
        npnet.golden_noise(sdxl_model, torch.randn(noise_shape), torch.randn(embeds_shape))
    assert message in str(error.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_noise_is_rejected(sdxl_model, bad):
    noise, embeds = make_inputs(1)
    noise[0, 1, 2, 3] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        npnet.golden_noise(sdxl_model, noise, embeds)


def test_missing_conditioning_is_rejected(sdxl_model):
    noise, _ = make_inputs(1)
    with pytest.raises(ValueError, match="conditioning is empty"):
        npnet.golden_noise(sdxl_model, noise, None)


def test_long_prompts_are_fitted_by_the_entry_point(sdxl_model):
    # The bare network reads exactly 77 tokens; golden_noise fits longer prompts by the token policy
    # (it used to refuse them and point at npnet.fit_tokens).
    noise, embeds = make_inputs(1, seed=9)
    long = torch.cat([embeds, torch.randn(1, 77, 2048)], dim=1)
    assert torch.equal(
        npnet.golden_noise(sdxl_model, noise, long), npnet.golden_noise(sdxl_model, noise, embeds)
    )
    averaged = npnet.golden_noise(sdxl_model, noise, long, token_policy="chunk_average")
    expected = npnet.golden_noise(sdxl_model, noise, long.unflatten(1, (2, 77)).mean(dim=1))
    assert torch.equal(averaged, expected)


@pytest.mark.parametrize("strength", [float("nan"), float("inf"), -0.5, 1.5])
def test_strength_outside_zero_one_names_strength(sdxl_model, strength):
    noise, embeds = make_inputs(1, seed=10)
    with pytest.raises(npnet.InputError, match="strength must be") as error:
        npnet.golden_noise(sdxl_model, noise, embeds, strength=strength)
    assert error.value.input == "strength"


def test_weights_that_produce_nan_are_an_error_not_a_result(sdxl_model):
    noise, embeds = make_inputs(1, seed=11)
    broken = npnet.NPNet(sdxl_model.config)
    broken.load_state_dict(sdxl_model.state_dict())
    broken.init_non_persistent_buffers(torch.device("cpu"))
    with torch.no_grad():
        broken.beta.fill_(float("nan"))
    with pytest.raises(npnet.InputError, match="NaN or Inf") as error:
        npnet.golden_noise(broken, noise, embeds)
    assert error.value.input == "npnet"


def test_progress_and_cancel_between_samples(sdxl_model):
    noise, embeds = make_inputs(3, seed=12)
    seen = []
    npnet.golden_noise(sdxl_model, noise, embeds, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    calls = []

    def cancel_after_one() -> bool:
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(npnet.Cancelled):
        npnet.golden_noise(sdxl_model, noise, embeds, should_cancel=cancel_after_one)
    assert len(calls) == 2


def test_chain_and_average_outputs_reproduce_the_other_packs_long_prompt_rules(sdxl_model, reference_model):
    """LucipherDev (always) and asagi4 `recurse`: r = npnet(r, chunk) over torch.split(cond, 77, 1);
    asagi4 `average`: mean of npnet(noise, chunk). Written here with the independent reference network."""
    noise, embeds = make_inputs(1, seed=12)
    long = torch.cat([embeds, torch.randn(1, 77, 2048, generator=torch.Generator().manual_seed(13))], dim=1)
    with torch.no_grad():
        chained = noise.float()
        for chunk in torch.split(long, 77, 1):
            chained = reference_model(chained, chunk)
        averaged = torch.stack([reference_model(noise.float(), c) for c in torch.split(long, 77, 1)]).mean(0)
    got_chain = npnet.golden_noise(sdxl_model, noise, long, token_policy="chain")
    got_average = npnet.golden_noise(sdxl_model, noise, long, token_policy="average_outputs")
    assert torch.allclose(got_chain, chained, atol=1e-4), (got_chain - chained).abs().max()
    assert torch.allclose(got_average, averaged, atol=1e-4), (got_average - averaged).abs().max()
    # chunk_average (ours) averages the inputs, not the outputs: a different noise
    assert (
        npnet.golden_noise(sdxl_model, noise, long, token_policy="chunk_average") - got_average
    ).abs().max() > 1e-3
    # one chunk: every policy gives the same noise
    one = {p: npnet.golden_noise(sdxl_model, noise, embeds, token_policy=p) for p in npnet.POLICIES}
    assert all(torch.equal(v, one["first_chunk"]) for v in one.values())
