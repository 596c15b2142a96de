"""Fit text-encoder hidden states to the [B, T, D] prompt embedding an NPNet reads (T = 77 when released)."""

from __future__ import annotations

import logging

import torch

from .config import OFFICIAL, NPNetConfig
from .inputs import InputError, check_batches, check_choice, check_prompt_embeds

logger = logging.getLogger(__name__)

POLICIES = ("first_chunk", "chunk_average", "chain", "average_outputs")
# Policies that run the network once per chunk: `fit_checked` returns the chunks [B, K, T, D] for them.
PER_CHUNK = ("chain", "average_outputs")


def broadcast_prompt(prompt_embeds: torch.Tensor, batch_size: int) -> torch.Tensor:
    """[1 or batch_size, L, D] -> [batch_size, L, D]: one prompt serves every noise in the batch."""
    check_batches(prompt_embeds.shape[0], batch_size)
    return prompt_embeds.expand(batch_size, -1, -1)


def _pad_to(embeds: torch.Tensor, length: int) -> torch.Tensor:
    # The encoders emit pad tokens after the prompt: CLIP-L pads with <|endoftext|>, OpenCLIP-bigG with
    # "!", BERT with [PAD], so the tail of a real sequence is a run of near-identical pad-token states.
    # We cannot re-run the encoder here; repeating the last state is the closest stand-in we have. It is
    # an approximation, good when the shortened sequence already ends in padding, rough when it was cut
    # mid-prompt.
    missing = length - embeds.shape[1]
    return torch.cat([embeds, embeds[:, -1:].expand(-1, missing, -1)], dim=1)


def first_tokens(embeds: torch.Tensor, tokens: int) -> torch.Tensor:
    """The first `tokens` states of [B, L, D], padded as `fit_tokens` pads: what a network of that many
    tokens reads with policy "first_chunk" (so collection stores exactly what inference will feed)."""
    if embeds.shape[1] < tokens:
        return _pad_to(embeds, tokens)
    return embeds[:, :tokens]


def fit_checked(embeds: torch.Tensor, config: NPNetConfig, policy: str) -> torch.Tensor:
    """`fit_tokens` for inputs already validated against `config` (policy included)."""
    tokens = config.tokens
    if policy != "first_chunk" and config.family == "dit":
        raise InputError(
            "token_policy",
            f"policy {policy!r} works on the 77-token CLIP chunks of SDXL-like encoders; dit conditioning "
            "is one encoder sequence, not chunks. Use policy='first_chunk'.",
        )
    length = embeds.shape[1]
    if policy == "first_chunk" or length <= tokens:
        if length < tokens:
            logger.info("prompt has %d tokens; padded to %d by repeating the last token", length, tokens)
        fitted = first_tokens(embeds, tokens)
        return fitted[:, None] if policy in PER_CHUNK else fitted
    chunks = -(-length // tokens)
    if length % tokens:
        logger.info(
            "last chunk has %d tokens; padded to %d by repeating its last token", length % tokens, tokens
        )
        embeds = _pad_to(embeds, chunks * tokens)
    split = embeds.unflatten(1, (chunks, tokens))
    return split if policy in PER_CHUNK else split.mean(dim=1)


def fit_tokens(embeds: torch.Tensor, *, family: str, policy: str = "first_chunk") -> torch.Tensor:
    """Fit a [B, L, D] token sequence to the [B, 77, D] the released NPNets read.

    family: "sdxl" (D = 2048, also DreamShaper XL) or "dit" (D = 1024, Hunyuan-DiT); `NPNet.family` says.
    policy:
      - "first_chunk" (default): the first 77 tokens. For SDXL, hosts emit one 77-token CLIP chunk per
        75 prompt tokens and the first chunk is what the authors' pipeline (which truncates) fed to
        NPNet. For Hunyuan-DiT it is the first 77 states of the one BERT sequence: BERT attends both
        ways, so for prompts over 75 tokens this differs from encoding a truncated prompt.
      - "chunk_average" (not for "dit"): the mean of the 77-token chunks, so later chunks count too; NPNet
        never saw such averages in training.
      - "chain" (not for "dit"): the network once per chunk, each output the next call's noise
        (LucipherDev's pack always; asagi4's `on_long_prompt: recurse`). Returned as chunks [B, K, 77, D].
      - "average_outputs" (not for "dit"): the network once per chunk on the same noise, the outputs
        averaged (asagi4's `on_long_prompt: average`). Returned as chunks [B, K, 77, D].
    A prompt of one chunk gives the same noise under every policy.
    A sequence shorter than 77 tokens (or a last partial chunk) is padded by repeating its last token,
    standing in for the encoders' pad tokens. `npnet.golden_noise` does this itself for any network.
    """
    check_choice("token_policy", policy, POLICIES)
    if family not in OFFICIAL:
        raise InputError("family", f"family must be one of {sorted(OFFICIAL)}, got {family!r}.")
    check_prompt_embeds(embeds, OFFICIAL[family])
    return fit_checked(embeds, OFFICIAL[family], policy)
