"""Swin branch (the official `NoiseTransformer`): Swin-T features of the noise, resized back to a latent.

For any `NPNetConfig`: a 1x1 conv maps the C latent channels to Swin's 3 input channels, and the 7
"channels" of the read-back (see `forward`) are mapped to C at the latent's H x W.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import NPNetConfig
from .swin import IMG_SIZE, SwinTransformer


class SwinBranch(nn.Module):
    def __init__(self, config: NPNetConfig) -> None:
        super().__init__()
        self.size = (config.height, config.width)
        self.downconv = nn.Conv2d(config.channels, 3, kernel_size=1)
        # 7 input channels: the width axis of Swin's 7x7 feature grid, see `forward`.
        self.upconv = nn.Conv2d(7, config.channels, kernel_size=1)
        self.swin = SwinTransformer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] float32 -> [B, C, H, W]."""
        # Legacy "nearest" (source index floor(i * in / out)), not "nearest-exact": the weights were
        # trained on exactly these pixels.
        a = self.downconv(F.interpolate(x, size=(IMG_SIZE, IMG_SIZE), mode="nearest"))
        features = self.swin.forward_features(a)  # B, 7, 7, 768 (NHWC)
        # The official code hands this NHWC tensor to interpolate, which reads it as NCHW: 7 "channels"
        # (the grid's width axis) over a 7 x 768 "image" (rows x features). The trained upconv expects
        # exactly that, so it is reproduced on purpose.
        g = F.interpolate(features, size=self.size, mode="nearest")  # B, 7, H, W
        return self.upconv(g)
