"""SVD branch: re-weights the singular spectrum of the tiled noise, keeping its singular vectors.

Sizes for any `NPNetConfig`: the C channels are tiled into a rows x cols grid (`NPNetConfig.grid`), giving
one m x n matrix per sample (m = rows * H, n = cols * W) with k = min(m, n) singular values. Each of the k
singular triplets becomes one token of width k: mlp1 maps a left singular vector (length m), mlp2 a right
one (length n) and mlp3 the spectrum (length k) to that width; attention over the k tokens and mlp4 give a
correction to the k singular values. For the released networks (C = 4, H = W = 128) m = n = k = 256, and
these are exactly the official `SVDNoiseUnet` layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .config import NPNetConfig

HEADS = 8
HIDDEN = 64
SPECTRUM_HIDDEN = 1024


class Attention(nn.Module):
    """timm's multi-head self-attention as the checkpoint was trained with it: qkv without bias."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, outputs))


def heads_for(dim: int) -> int:
    """8 attention heads (the released networks), fewer when the token width is not a multiple of 8."""
    return next(h for h in (HEADS, 4, 2, 1) if dim % h == 0)


class SVDBranch(nn.Module):
    """The official `SVDNoiseUnet` (the attention version, which the released inference code runs)."""

    def __init__(self, config: NPNetConfig) -> None:
        super().__init__()
        self.rows, self.cols = config.grid
        m, n = self.rows * config.height, self.cols * config.width
        k = min(m, n)
        self.mlp1 = _mlp(m, HIDDEN, k)
        self.mlp2 = _mlp(n, HIDDEN, k)
        self.mlp3 = nn.Sequential(nn.Linear(k, k))
        self.attention = Attention(k, heads_for(k))
        # Never used in forward, but its weights and running statistics are in every checkpoint.
        self.bn = nn.BatchNorm2d(k)
        self.mlp4 = _mlp(k, SPECTRUM_HIDDEN, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] float32 -> [B, C, H, W]."""
        m = rearrange(x, "b (a c) h w -> b (a h) (c w)", a=self.rows, c=self.cols)  # B, m, n
        # The SVD always runs in float32, also under autocast: there is no half-precision kernel.
        with torch.autocast(device_type=x.device.type, enabled=False):
            u, s, vh = torch.linalg.svd(m.float(), full_matrices=False)  # [B, m, k], [B, k], [B, k, n]
        # Row i of U^T and of Vh is the i-th left / right singular vector: one token each.
        tokens = self.mlp1(u.transpose(1, 2)) + self.mlp2(vh) + self.mlp3(s).unsqueeze(1)
        s_new = self.mlp4(self.attention(tokens).mean(dim=1)).float() + s
        out = (u * s_new.unsqueeze(1)) @ vh  # U diag(S') Vh without building the diagonal matrix
        return rearrange(out, "b (a h) (c w) -> b (a c) h w", a=self.rows, c=self.cols)
