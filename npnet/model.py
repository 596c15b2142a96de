"""NPNet: the noise prompt network of "Golden Noise for Diffusion Models" (arXiv 2411.09502)."""

from __future__ import annotations

import torch
from torch import nn

from .conditioning import broadcast_prompt, check_prompt_embeds
from .svd_branch import SVDBranch
from .swin_branch import SwinBranch
from .text_branch import TextModulation
from .variants import LATENT_CHANNELS, LATENT_SIZE, family_for_embed_dim


def check_noise(noise: torch.Tensor, *, any_size: bool = False) -> None:
    """ValueError unless `noise` is a finite [B, 4, H, W] float latent (H = W = 128 unless `any_size`)."""
    if not isinstance(noise, torch.Tensor):
        raise ValueError(
            f"noise must be a torch.Tensor of shape [B, 4, 128, 128], got {type(noise).__name__}."
        )
    if noise.ndim != 4:
        raise ValueError(
            f"noise must have shape [B, 4, 128, 128] (an image latent), got shape {tuple(noise.shape)}; "
            "video latents and unbatched latents are not supported."
        )
    b, c, h, w = noise.shape
    if c != LATENT_CHANNELS:
        hint = " 16-channel latents come from SD3 / Flux, which NPNet was not trained for." if c == 16 else ""
        raise ValueError(
            f"noise has {c} channels; NPNet only accepts 4-channel latents (SDXL, DreamShaper XL, Hunyuan-DiT).{hint}"
        )
    if b == 0 or h == 0 or w == 0:
        raise ValueError(f"noise is empty (shape {tuple(noise.shape)}).")
    if not noise.is_floating_point():
        raise ValueError(f"noise must be a floating-point tensor, got {noise.dtype}.")
    if not any_size and (h, w) != (LATENT_SIZE, LATENT_SIZE):
        raise ValueError(
            f"noise is {h}x{w} (a {8 * w}x{8 * h} px image); the released NPNet weights only accept "
            f"{LATENT_SIZE}x{LATENT_SIZE} latents (1024x1024 px). Use npnet.perturbation_transfer to opt in "
            "to an approximation at other sizes."
        )
    if not torch.isfinite(noise).all():
        raise ValueError("noise contains NaN or Inf values; NPNet needs finite Gaussian noise.")


class NPNet(nn.Module):
    """golden = SVD(x) + (2*sigmoid(alpha) - 1) * T + beta * Swin(x + T), with T = TextModulation(x, e).

    Attribute names mirror the official checkpoint (including its `embeeding` typo) so weights load with a
    plain strict `load_state_dict`. Build one with `npnet.load`; calling it runs without autograd.
    """

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.family = family_for_embed_dim(embed_dim).name
        self.embed_dim = embed_dim
        self.unet_svd = SVDBranch()
        self.unet_embedding = SwinBranch()
        self.embeeding = TextModulation(embed_dim)
        self.alpha = nn.Parameter(torch.zeros(1))
        self.beta = nn.Parameter(torch.zeros(1))

    def init_non_persistent_buffers(self, device: torch.device) -> None:
        self.unet_embedding.swin.init_non_persistent_buffers(device)

    def forward(self, noise: torch.Tensor, prompt_embeds: torch.Tensor) -> torch.Tensor:
        """Golden noise for `noise` [B, 4, 128, 128] and `prompt_embeds` [B or 1, 77, D].

        Computes in float32 on the model's device; returns the input's dtype and device. Inputs are
        validated first, so a wrong shape or family is a ValueError saying what would be accepted.
        """
        check_noise(noise)
        check_prompt_embeds(prompt_embeds, self.family)
        prompt_embeds = broadcast_prompt(prompt_embeds, noise.shape[0])
        device = self.alpha.device
        with torch.no_grad():
            golden = self._golden_noise(
                noise.to(device=device, dtype=torch.float32),
                prompt_embeds.to(device=device, dtype=torch.float32),
            )
        return golden.to(device=noise.device, dtype=noise.dtype)

    def _golden_noise(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """The network itself, on validated float32 tensors on the model's device."""
        t = self.embeeding(x, e)
        gate = 2 * torch.sigmoid(self.alpha) - 1
        return self.unet_svd(x) + gate * t + self.beta * self.unet_embedding(x + t)
