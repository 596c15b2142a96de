"""Fit text-encoder hidden states to the [B, 77, D] prompt embedding NPNet was trained on."""

from __future__ import annotations

import logging

import torch

from .variants import FAMILIES, TOKENS

logger = logging.getLogger(__name__)

POLICIES = ("first_chunk", "chunk_average")

# What a token width usually means, so a wrong embedding can be traced to the node that made it.
_KNOWN_WIDTHS = {
    768: "SD 1.x (CLIP-L)",
    1024: "SD 2.x (OpenCLIP-H) or Hunyuan-DiT (BERT)",
    1280: "the SDXL refiner (OpenCLIP-bigG only)",
    2048: "SDXL / DreamShaper XL (CLIP-L + OpenCLIP-bigG)",
    4096: "Flux or SD3 (T5-XXL)",
}


def describe_width(width: int) -> str:
    """Which base-model family produces `width`-wide text tokens, in words."""
    return _KNOWN_WIDTHS.get(width, "no base model NPNet knows")


def _family(family: str):
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}.")
    return FAMILIES[family]


def check_prompt_embeds(prompt_embeds: torch.Tensor, family: str, *, tokens: int | None = TOKENS) -> None:
    """ValueError unless `prompt_embeds` is a finite, non-empty [B, L, D] float tensor of `family`'s width.

    `tokens` is the required L (None: any L >= 1).
    """
    fam = _family(family)
    if prompt_embeds is None:
        raise ValueError("the conditioning is empty: NPNet needs the positive prompt's token embeddings.")
    if not isinstance(prompt_embeds, torch.Tensor):
        raise ValueError(
            f"prompt_embeds must be a torch.Tensor [B, L, D], got {type(prompt_embeds).__name__}."
        )
    if prompt_embeds.ndim != 3:
        raise ValueError(
            f"prompt_embeds must have shape [B, L, D] (token hidden states, not pooled), got shape "
            f"{tuple(prompt_embeds.shape)}."
        )
    b, length, width = prompt_embeds.shape
    if b == 0 or length == 0 or width == 0:
        raise ValueError(
            f"the conditioning is empty (prompt_embeds shape {tuple(prompt_embeds.shape)}): encode a prompt first."
        )
    if width != fam.embed_dim:
        raise ValueError(
            f"prompt_embeds are {width} wide, which looks like {describe_width(width)}; this NPNet ({fam.name} "
            f"weights) needs {fam.embed_dim}-wide tokens: {fam.encoder}."
        )
    if tokens is not None and length != tokens:
        raise ValueError(
            f"prompt_embeds have {length} tokens; NPNet reads exactly {tokens}. "
            "Use npnet.fit_tokens to take the first 77-token chunk or to average the chunks."
        )
    if not prompt_embeds.is_floating_point():
        raise ValueError(f"prompt_embeds must be floating point, got {prompt_embeds.dtype}.")
    if not torch.isfinite(prompt_embeds).all():
        raise ValueError("prompt_embeds contain NaN or Inf values.")


def broadcast_prompt(prompt_embeds: torch.Tensor, batch_size: int) -> torch.Tensor:
    """[1 or batch_size, L, D] -> [batch_size, L, D]: one prompt serves every noise in the batch."""
    b = prompt_embeds.shape[0]
    if b == batch_size:
        return prompt_embeds
    if b == 1:
        return prompt_embeds.expand(batch_size, -1, -1)
    raise ValueError(
        f"batch mismatch: {b} prompt embeddings for {batch_size} noise samples; give one embedding per "
        "noise sample or a single one for the whole batch."
    )


def _pad_to(embeds: torch.Tensor, length: int) -> torch.Tensor:
    # The encoders emit pad tokens after the prompt: CLIP-L pads with <|endoftext|>, OpenCLIP-bigG with
    # "!", BERT with [PAD], so the tail of a real sequence is a run of near-identical pad-token states.
    # We cannot re-run the encoder here; repeating the last state is the closest stand-in we have. It is
    # an approximation, good when the shortened sequence already ends in padding, rough when it was cut
    # mid-prompt.
    missing = length - embeds.shape[1]
    return torch.cat([embeds, embeds[:, -1:].expand(-1, missing, -1)], dim=1)


def fit_tokens(embeds: torch.Tensor, *, family: str, policy: str = "first_chunk") -> torch.Tensor:
    """Fit a [B, L, D] token sequence to the [B, 77, D] NPNet reads.

    family: "sdxl" (D = 2048, also DreamShaper XL) or "dit" (D = 1024, Hunyuan-DiT); `NPNet.family` says.
    policy:
      - "first_chunk" (default): the first 77 tokens. For SDXL, hosts emit one 77-token CLIP chunk per
        75 prompt tokens and the first chunk is what the authors' pipeline (which truncates) fed to
        NPNet. For Hunyuan-DiT it is the first 77 states of the one BERT sequence: BERT attends both
        ways, so for prompts over 75 tokens this differs from encoding a truncated prompt.
      - "chunk_average" (SDXL only): the mean of the 77-token chunks, so later chunks count too; NPNet
        never saw such averages in training.
    A sequence shorter than 77 tokens (or a last partial chunk) is padded by repeating its last token,
    standing in for the encoders' pad tokens.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}.")
    check_prompt_embeds(embeds, family, tokens=None)
    if policy == "chunk_average" and family != "sdxl":
        raise ValueError(
            f"policy 'chunk_average' averages SDXL's 77-token CLIP chunks; {family} conditioning is one "
            "encoder sequence, not chunks. Use policy='first_chunk'."
        )
    length = embeds.shape[1]
    if policy == "first_chunk" or length <= TOKENS:
        if length < TOKENS:
            logger.info("prompt has %d tokens; padded to %d by repeating the last token", length, TOKENS)
            return _pad_to(embeds, TOKENS)
        return embeds[:, :TOKENS]
    chunks = -(-length // TOKENS)
    if length % TOKENS:
        logger.info(
            "last chunk has %d tokens; padded to %d by repeating its last token", length % TOKENS, TOKENS
        )
        embeds = _pad_to(embeds, chunks * TOKENS)
    return embeds.unflatten(1, (chunks, TOKENS)).mean(dim=1)
