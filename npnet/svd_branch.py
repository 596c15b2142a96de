"""SVD branch: re-weights the singular spectrum of the 2x2-tiled noise, keeping its singular vectors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .variants import LATENT_CHANNELS, LATENT_SIZE

# The four 128x128 channels tiled 2x2 give one 256x256 matrix per sample.
MATRIX_SIZE = LATENT_SIZE * LATENT_CHANNELS // 2
HEADS = 8


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


def _mlp(hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(MATRIX_SIZE, hidden), nn.ReLU(), nn.Linear(hidden, MATRIX_SIZE))


class SVDBranch(nn.Module):
    """The official `SVDNoiseUnet` (the attention version, which the released inference code runs)."""

    def __init__(self) -> None:
        super().__init__()
        d = MATRIX_SIZE
        self.mlp1 = _mlp(64)
        self.mlp2 = _mlp(64)
        self.mlp3 = nn.Sequential(nn.Linear(d, d))
        self.attention = Attention(d, HEADS)
        # Never used in forward, but its weights and running statistics are in every checkpoint.
        self.bn = nn.BatchNorm2d(d)
        self.mlp4 = _mlp(1024)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 4, 128, 128] float32 -> [B, 4, 128, 128]."""
        m = rearrange(x, "b (a c) h w -> b (a h) (c w)", a=2, c=2)  # B, 256, 256
        u, s, vh = torch.linalg.svd(m)
        # Row i of U^T and of Vh is the i-th left / right singular vector: one token each.
        tokens = self.mlp1(u.transpose(1, 2)) + self.mlp2(vh) + self.mlp3(s).unsqueeze(1)
        s_new = self.mlp4(self.attention(tokens).mean(dim=1)) + s
        out = (u * s_new.unsqueeze(1)) @ vh  # U diag(S') Vh without building the diagonal matrix
        return rearrange(out, "b (a h) (c w) -> b (a c) h w", a=2, c=2)
