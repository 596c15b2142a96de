"""Golden noise for latents other than the network's size, by carrying its perturbation across sizes."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .model import NPNet


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    # Bilinear with antialiasing: a smooth, alias-free resampling both ways, so nothing blocky is made.
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def _unit_std(x: torch.Tensor) -> torch.Tensor:
    return x / x.std(dim=(1, 2, 3), keepdim=True)


def perturbation_transfer(model: NPNet, noise: torch.Tensor, prompt_embeds: torch.Tensor) -> torch.Tensor:
    """Golden noise at any latent size: the network's change to a resampling at its own size, added to
    the native noise. Takes validated float32 tensors on the model's device (`npnet.golden_noise` checks).

    Steps, per sample: resample `noise` [B, C, H, W] to the network's size and rescale it to unit
    variance; run the network on it; take the perturbation (golden minus that input); resample the
    perturbation to H x W; add it to the native noise; rescale the sum to unit variance. Noise of the
    network's own size is passed straight to it (the exact network output, no rescaling).

    Trade-off: the output is always a valid noise at the native size (unit variance, the seed's own
    fine-grained values kept wherever the network changes little, no nearest-neighbour blocks, unlike
    resizing the golden noise itself). But it is an approximation that the authors never trained or
    evaluated: NPNet sees a resampled, spatially correlated noise instead of the i.i.d. noise it was
    trained on, and only the smooth part of its correction survives the resampling. Expect a weaker
    effect than at the trained size; use it for sizes near it, and judge the results yourself.
    """
    size = (model.config.height, model.config.width)
    native = tuple(noise.shape[-2:])
    if native == size:
        return model(noise, prompt_embeds)
    small = _unit_std(_resize(noise, size))
    perturbation = model(small, prompt_embeds) - small
    return _unit_std(noise + _resize(perturbation, native))
