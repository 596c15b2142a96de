"""Fitting encoder token sequences to NPNet's 77 tokens, broadcasting, and family checks."""

from __future__ import annotations

import pytest
import torch

from npnet import broadcast_prompt, fit_tokens


def _tokens(batch, length, width=2048, seed=0):
    return torch.randn(batch, length, width, generator=torch.Generator().manual_seed(seed))


def test_first_chunk_of_a_long_sdxl_prompt():
    embeds = _tokens(2, 154)
    assert torch.equal(fit_tokens(embeds, family="sdxl"), embeds[:, :77])


def test_exactly_77_tokens_pass_unchanged():
    embeds = _tokens(1, 77)
    assert torch.equal(fit_tokens(embeds, family="sdxl", policy="chunk_average"), embeds)


def test_chunk_average():
    embeds = _tokens(1, 231)
    expected = (embeds[:, :77] + embeds[:, 77:154] + embeds[:, 154:]) / 3
    assert torch.allclose(fit_tokens(embeds, family="sdxl", policy="chunk_average"), expected, atol=1e-6)


def test_partial_last_chunk_is_padded_with_its_last_token():
    embeds = _tokens(1, 100)
    last = torch.cat([embeds[:, 77:], embeds[:, -1:].expand(-1, 54, -1)], dim=1)
    expected = (embeds[:, :77] + last) / 2
    assert torch.allclose(fit_tokens(embeds, family="sdxl", policy="chunk_average"), expected, atol=1e-6)


@pytest.mark.parametrize("family, width", [("sdxl", 2048), ("dit", 1024)])
def test_short_sequence_is_padded_by_repeating_the_last_token(family, width):
    embeds = _tokens(2, 10, width)
    fitted = fit_tokens(embeds, family=family)
    assert fitted.shape == (2, 77, width)
    assert torch.equal(fitted[:, :10], embeds)
    assert torch.equal(fitted[:, 10:], embeds[:, 9:10].expand(-1, 67, -1))


def test_dit_takes_the_first_77_bert_states():
    embeds = _tokens(1, 256, 1024)
    assert torch.equal(fit_tokens(embeds, family="dit"), embeds[:, :77])


def test_dit_has_no_chunks_to_average():
    with pytest.raises(ValueError, match="Use policy='first_chunk'"):
        fit_tokens(_tokens(1, 154, 1024), family="dit", policy="chunk_average")


@pytest.mark.parametrize(
    "width, family, message",
    [
        (768, "sdxl", "768 wide, which looks like SD 1.x (CLIP-L)"),
        (4096, "sdxl", "looks like Flux or SD3 (T5-XXL)"),
        (2048, "dit", "looks like SDXL / DreamShaper XL"),
        (1024, "sdxl", "SD 2.x (OpenCLIP-H) or Hunyuan-DiT (BERT)"),
        (1280, "sdxl", "SDXL refiner"),
    ],
)
def test_wrong_width_names_the_family_it_looks_like(width, family, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fit_tokens(_tokens(1, 77, width), family=family)


@pytest.mark.parametrize("shape", [(0, 77, 2048), (1, 0, 2048)])
def test_empty_conditioning(shape):
    with pytest.raises(ValueError, match="conditioning is empty"):
        fit_tokens(torch.zeros(shape), family="sdxl")


def test_unknown_policy_and_family():
    with pytest.raises(ValueError, match="policy must be one of"):
        fit_tokens(_tokens(1, 77), family="sdxl", policy="recurse")
    with pytest.raises(ValueError, match="family must be one of"):
        fit_tokens(_tokens(1, 77), family="flux")


def test_broadcast_one_prompt_over_a_batch():
    embeds = _tokens(1, 77)
    out = broadcast_prompt(embeds, 3)
    assert out.shape == (3, 77, 2048) and torch.equal(out[2], embeds[0])
    assert broadcast_prompt(_tokens(3, 77), 3).shape[0] == 3
    with pytest.raises(ValueError, match="batch mismatch: 2 prompt embeddings for 3 noise samples"):
        broadcast_prompt(_tokens(2, 77), 3)
