"""The two branches of the `latent` architecture, for networks users train on their own model's data.

The paper's network sees the prompt only through a per-channel scale and shift (`text_branch`) and runs
its noise branch as a Swin-T on a 224x224 resampling of the latent, whatever the latent's size. On a
small real world (`dev/digits_world.py`) a per-prompt constant per channel explains almost none of what
re-denoise sampling changes, a per-prompt spatial template most of it, and the Swin-T costs the same
28M parameters for an 8x8 latent as for a 128x128 one. These branches replace that:

- `PromptMap`: a prompt-dependent spatial term. The token states are pooled by attention (a few learned
  queries) into one prompt vector, which modulates a Fourier encoding of each latent position's
  normalised coordinates; a per-position MLP decodes the result into C channels. Its cost is linear in
  H*W and in T*D (no dense T*D -> C*H*W layer), and it works at any latent size.
- `ConvBranch`: the noise branch at the latent's own resolution, a stack of 3x3 convolutions.

Both end in a zero-initialised layer, so a new network starts from the SVD branch and the text branch
alone and grows these terms as training finds them useful.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .config import NPNetConfig


def fourier_coordinates(height: int, width: int, frequencies: int, device, dtype) -> torch.Tensor:
    """[1, 4F, H, W]: sin and cos of (2^k pi) * y and * x, k < F, with y, x in [-1, 1] at pixel centres."""
    ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width * 2 - 1
    scales = math.pi * 2.0 ** torch.arange(frequencies, device=device, dtype=dtype)
    y = (ys[None, :, None] * scales[:, None, None]).expand(-1, height, width)
    x = (xs[None, None, :] * scales[:, None, None]).expand(-1, height, width)
    return torch.cat([y.sin(), y.cos(), x.sin(), x.cos()])[None]


class PromptMap(nn.Module):
    """A spatial map [B, C, H, W] from the prompt's token states [B, T, D] (see the module docstring)."""

    def __init__(self, config: NPNetConfig, width: int = 128, queries: int = 4, frequencies: int = 4) -> None:
        super().__init__()
        self.config, self.frequencies = config, frequencies
        key_width = 64
        self.keys = nn.Linear(config.embed_dim, key_width)
        self.queries = nn.Parameter(torch.randn(queries, key_width) / math.sqrt(key_width))
        self.values = nn.Linear(config.embed_dim, width // queries)
        self.position = nn.Conv2d(4 * frequencies, width, 1)
        self.modulation = nn.Linear(width // queries * queries, 2 * width)
        self.decode = nn.Sequential(
            nn.SiLU(), nn.Conv2d(width, width, 1), nn.SiLU(), nn.Conv2d(width, config.channels, 1)
        )
        nn.init.zeros_(self.decode[-1].weight)
        nn.init.zeros_(self.decode[-1].bias)

    def forward(self, e: torch.Tensor, height: int, width: int) -> torch.Tensor:
        weights = torch.einsum("qk,btk->bqt", self.queries, self.keys(e)) / math.sqrt(self.queries.shape[1])
        pooled = torch.einsum("bqt,btv->bqv", weights.softmax(-1), self.values(e)).flatten(1)
        scale, shift = self.modulation(pooled)[:, :, None, None].chunk(2, 1)
        where = self.position(fourier_coordinates(height, width, self.frequencies, e.device, e.dtype))
        return self.decode(where * (1 + scale) + shift)


class ConvBranch(nn.Module):
    """The noise branch at the latent's resolution: [B, C, H, W] -> [B, C, H, W], cost linear in H*W."""

    def __init__(self, config: NPNetConfig, width: int = 64, depth: int = 4) -> None:
        super().__init__()
        c = config.channels
        self.inp = nn.Conv2d(c, width, 3, padding=1)
        self.norms = nn.ModuleList(nn.GroupNorm(8, width) for _ in range(depth))
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(depth - 1))
        self.out = nn.Conv2d(width, c, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for norm, conv in zip(self.norms[:-1], self.convs, strict=True):
            h = h + conv(F.silu(norm(h)))
        return self.out(F.silu(self.norms[-1](h)))
