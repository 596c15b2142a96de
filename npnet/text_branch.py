"""Text branch: diffusers' `AdaGroupNorm(77 * D, 4, num_groups=1, act_fn=None, eps=1e-6)`, without diffusers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .variants import LATENT_CHANNELS, TOKENS

EPS = 1e-6


class TextModulation(nn.Module):
    """Group-normalised noise, scaled and shifted per channel by a Linear of the flattened prompt."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(TOKENS * embed_dim, 2 * LATENT_CHANNELS)

    def forward(self, x: torch.Tensor, prompt_embeds: torch.Tensor) -> torch.Tensor:
        """x: [B, 4, H, W]; prompt_embeds: [B or 1, 77, D] -> [B, 4, H, W]."""
        # Token-major flatten (index = token * D + feature), as the official `view(B, -1)`.
        scale, shift = self.linear(prompt_embeds.flatten(1))[:, :, None, None].chunk(2, dim=1)
        return F.group_norm(x, 1, eps=EPS) * (1 + scale) + shift
