"""Text branch: diffusers' `AdaGroupNorm(T * D, C, num_groups=1, act_fn=None, eps=1e-6)`, without diffusers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import NPNetConfig

EPS = 1e-6


class TextModulation(nn.Module):
    """Group-normalised noise, scaled and shifted per channel by a Linear T * D -> 2C of the flat prompt."""

    def __init__(self, config: NPNetConfig) -> None:
        super().__init__()
        self.linear = nn.Linear(config.tokens * config.embed_dim, 2 * config.channels)

    def forward(self, x: torch.Tensor, prompt_embeds: torch.Tensor) -> torch.Tensor:
        """x: [B, C, H, W]; prompt_embeds: [B, T, D] -> [B, C, H, W]."""
        # Token-major flatten (index = token * D + feature), as the official `view(B, -1)`.
        scale, shift = self.linear(prompt_embeds.flatten(1))[:, :, None, None].chunk(2, dim=1)
        return F.group_norm(x, 1, eps=EPS) * (1 + scale) + shift
