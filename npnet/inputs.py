"""Validation of what a host hands to `npnet.golden_noise`, done once, at that boundary.

Every failure is an `InputError` naming the input that is wrong (`.input`), so an adapter can point the
user at the right widget or wire, and saying what would be accepted.
"""

from __future__ import annotations

import math

import torch

from .config import NPNetConfig
from .variants import FAMILIES, VARIANTS


class InputError(ValueError):
    """A value handed to npnet is unusable; `.input` names it ("noise", "prompt_embeds", "strength", ...)."""

    def __init__(self, input_name: str, message: str) -> None:
        super().__init__(message)
        self.input = input_name


# What a token width usually means, so a wrong embedding can be traced to the node that made it.
_KNOWN_WIDTHS = {
    768: "SD 1.x (CLIP-L)",
    1024: "SD 2.x (OpenCLIP-H) or Hunyuan-DiT (BERT)",
    1280: "the SDXL refiner (OpenCLIP-bigG only)",
    2048: "SDXL / DreamShaper XL (CLIP-L + OpenCLIP-bigG)",
    4096: "Flux or SD3 (T5-XXL)",
}


# Unit-variance Gaussian noise never comes near this; a latent scaled by ~1e30 would overflow the
# network and be blamed on its weights.
NOISE_LIMIT = 1e4


def shown(path: object) -> str:
    """A path as a message or log line may hold it: a file name that is not valid UTF-8 (its bytes kept as
    surrogate escapes by Python) is shown with \\x escapes, never as surrogates a logger cannot write."""
    text = str(path)
    return (
        text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        if _unencodable(text)
        else text
    )


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def describe_width(width: int) -> str:
    """Which base-model family produces `width`-wide text tokens, in words."""
    return _KNOWN_WIDTHS.get(width, "no base model NPNet knows")


def variants_for_width(width: int) -> list[str]:
    """Display labels of the released variants whose network reads `width`-wide prompt tokens."""
    return [v.label for v in VARIANTS.values() if FAMILIES[v.family].embed_dim == width]


def check_choice(input_name: str, value: object, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise InputError(input_name, f"{input_name} must be one of {accepted}, got {value!r}.")


def check_strength(strength: object) -> float:
    """A finite number in [0, 1] (NaN passes range checks written as min/max comparisons)."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength):
        raise InputError("strength", f"strength must be a finite number between 0 and 1, got {strength!r}.")
    if not 0.0 <= strength <= 1.0:
        raise InputError("strength", f"strength must be between 0 and 1, got {strength}.")
    return float(strength)


def check_noise(noise: object, config: NPNetConfig, *, any_size: bool = False) -> None:
    """InputError unless `noise` is a finite [B, C, H, W] float latent of the network's C (and H x W)."""
    c, h, w = config.latent_shape
    wanted = f"[B, {c}, {h}, {w}]"
    if not isinstance(noise, torch.Tensor):
        raise InputError(
            "noise", f"noise must be a torch.Tensor of shape {wanted}, got {type(noise).__name__}."
        )
    if getattr(noise, "is_nested", False) or noise.ndim != 4:
        raise InputError(
            "noise",
            f"noise must have shape {wanted} (an image latent), got shape {tuple(noise.shape)}; "
            "video latents and unbatched latents are not supported.",
        )
    if noise.shape[1] != c:
        hint = " 16-channel latents come from SD3 / Flux." if noise.shape[1] == 16 else ""
        raise InputError(
            "noise",
            f"noise has {noise.shape[1]} channels; this NPNet was trained on {c}-channel latents "
            f"({config.describe()}).{hint}",
        )
    if noise.numel() == 0:
        raise InputError("noise", f"noise is empty (shape {tuple(noise.shape)}): the batch holds no latent.")
    if not noise.is_floating_point():
        raise InputError("noise", f"noise must be a floating-point tensor, got {noise.dtype}.")
    if not torch.isfinite(noise).all():
        raise InputError("noise", "noise contains NaN or Inf values; NPNet needs finite Gaussian noise.")
    largest = float(noise.detach().abs().max())  # a check reads a value: no autograd
    if largest > NOISE_LIMIT:
        raise InputError(
            "noise",
            f"noise reaches {largest:.3g}; NPNet refines unit-variance Gaussian noise (values within a few "
            "units), not a scaled latent. Feed it the sampler's noise before any sigma scaling.",
        )
    got_h, got_w = noise.shape[-2:]
    if not any_size and (got_h, got_w) != (h, w):
        raise InputError(
            "resolution_mode",
            f"noise is {got_h}x{got_w} (a {8 * got_w}x{8 * got_h} px image); the weights of this NPNet only accept "
            f"{h}x{w} latents ({8 * w}x{8 * h} px), the size it was trained on. Use resolution mode "
            "'perturbation_transfer' to opt in to an approximation at other sizes.",
        )


def check_prompt_embeds(prompt_embeds: object, config: NPNetConfig) -> None:
    """InputError unless `prompt_embeds` is a finite, non-empty [B, L, D] float tensor of the network's D
    (any L >= 1: `fit_checked` fits it to the network's T)."""
    if prompt_embeds is None:
        raise InputError(
            "prompt_embeds", "the conditioning is empty: NPNet needs the positive prompt's token embeddings."
        )
    if not isinstance(prompt_embeds, torch.Tensor):
        raise InputError(
            "prompt_embeds",
            f"prompt_embeds must be a torch.Tensor [B, L, D], got {type(prompt_embeds).__name__}.",
        )
    if prompt_embeds.ndim != 3:
        raise InputError(
            "prompt_embeds",
            f"prompt_embeds must have shape [B, L, D] (token hidden states, not pooled), got shape "
            f"{tuple(prompt_embeds.shape)}.",
        )
    if prompt_embeds.numel() == 0:
        raise InputError(
            "prompt_embeds",
            f"the conditioning is empty (prompt_embeds shape {tuple(prompt_embeds.shape)}): encode a prompt first.",
        )
    width = prompt_embeds.shape[2]
    if width != config.embed_dim:
        if config.family is not None:
            fits = variants_for_width(width)
            advice = f" Weights that fit: {' or '.join(fits)}." if fits else ""
            needs = f"this NPNet ({config.family} weights) needs {config.embed_dim}-wide tokens: "
            needs += FAMILIES[config.family].encoder + "."
        else:
            needs, advice = f"this NPNet was trained on {config.embed_dim}-wide tokens.", ""
        raise InputError(
            "prompt_embeds",
            f"prompt_embeds are {width} wide, which looks like {describe_width(width)}; {needs}{advice}",
        )
    if not prompt_embeds.is_floating_point():
        raise InputError("prompt_embeds", f"prompt_embeds must be floating point, got {prompt_embeds.dtype}.")
    if not torch.isfinite(prompt_embeds).all():
        raise InputError("prompt_embeds", "prompt_embeds contain NaN or Inf values.")


def check_batches(prompt_batch: int, noise_batch: int) -> None:
    if prompt_batch not in (1, noise_batch):
        raise InputError(
            "prompt_embeds",
            f"batch mismatch: {prompt_batch} prompt embeddings for {noise_batch} noise samples; give one "
            "embedding per noise sample or a single one for the whole batch.",
        )
