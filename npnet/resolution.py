"""Golden noise for latents other than 128x128, by carrying NPNet's perturbation across sizes."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .model import NPNet, check_noise
from .variants import LATENT_SIZE


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    # Bilinear with antialiasing: a smooth, alias-free resampling both ways, so nothing blocky is made.
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def _unit_std(x: torch.Tensor) -> torch.Tensor:
    return x / x.std(dim=(1, 2, 3), keepdim=True)


def perturbation_transfer(model: NPNet, noise: torch.Tensor, prompt_embeds: torch.Tensor) -> torch.Tensor:
    """Golden noise at any latent size: NPNet's change to a 128x128 resampling, added to the native noise.

    Steps, per sample: resample `noise` [B, 4, H, W] to 128x128 and rescale it to unit variance; run
    NPNet on it; take the perturbation (golden minus that input); resample the perturbation to H x W;
    add it to the native noise; rescale the sum to unit variance. A 128x128 input is passed straight
    to `model` (the exact network output, no rescaling).

    Trade-off: the output is always a valid noise at the native size (unit variance, the seed's own
    fine-grained values kept wherever the network changes little, no nearest-neighbour blocks, unlike
    resizing the golden noise itself). But it is an approximation that the authors never trained or
    evaluated: NPNet sees a resampled, spatially correlated noise instead of the i.i.d. noise it was
    trained on, and only the smooth part of its correction survives the resampling. Expect a weaker
    effect than at 1024x1024; use it for sizes near 1024 px, and judge the results yourself.
    """
    check_noise(noise, any_size=True)
    h, w = noise.shape[-2:]
    if (h, w) == (LATENT_SIZE, LATENT_SIZE):
        return model(noise, prompt_embeds)
    x = noise.float()
    small = _unit_std(_resize(x, (LATENT_SIZE, LATENT_SIZE)))
    perturbation = model(small, prompt_embeds) - small
    out = _unit_std(x + _resize(perturbation, (h, w)))
    return out.to(dtype=noise.dtype)
