"""Swin branch (the official `NoiseTransformer`): Swin-T features of the noise, resized back to a latent."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .swin import IMG_SIZE, SwinTransformer
from .variants import LATENT_CHANNELS, LATENT_SIZE


class SwinBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.downconv = nn.Conv2d(LATENT_CHANNELS, 3, kernel_size=1)
        # 7 input channels: the width axis of Swin's 7x7 feature grid, see `forward`.
        self.upconv = nn.Conv2d(7, LATENT_CHANNELS, kernel_size=1)
        self.swin = SwinTransformer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 4, 128, 128] float32 -> [B, 4, 128, 128]."""
        # Legacy "nearest" (source index floor(i * in / out)), not "nearest-exact": the weights were
        # trained on exactly these pixels.
        a = self.downconv(F.interpolate(x, size=(IMG_SIZE, IMG_SIZE), mode="nearest"))
        features = self.swin.forward_features(a)  # B, 7, 7, 768 (NHWC)
        # The official code hands this NHWC tensor to interpolate, which reads it as NCHW: 7 "channels"
        # (the grid's width axis) over a 7 x 768 "image" (rows x features). The trained upconv expects
        # exactly that, so it is reproduced on purpose.
        g = F.interpolate(features, size=(LATENT_SIZE, LATENT_SIZE), mode="nearest")  # B, 7, 128, 128
        return self.upconv(g)
