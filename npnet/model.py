"""NPNet: the noise prompt network of "Golden Noise for Diffusion Models" (arXiv 2411.09502).

The network is built from an `NPNetConfig` (latent C x H x W, prompt T x D); each branch derives its
layer sizes from it with no special case for the released shapes:
- text modulation: a Linear T * D -> 2C (a scale and a shift per channel);
- Swin branch: a 1x1 conv C -> 3 in, Swin-T at 224x224, a 1x1 conv 7 -> C out at H x W;
- SVD branch: the channels tiled into a grid, singular-vector tokens of width min(m, n), see
  `npnet.svd_branch`.
For C = 4, H = W = 128, T = 77 these are exactly the released layers, and the official checkpoints load
strictly into them.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import NPNetConfig
from .svd_branch import SVDBranch
from .swin_branch import SwinBranch
from .text_branch import TextModulation


class NPNet(nn.Module):
    """golden = SVD(x) + (2*sigmoid(alpha) - 1) * T + beta * Swin(x + T), with T = TextModulation(x, e).

    Attribute names mirror the official checkpoint (including its `embeeding` typo) so weights load with a
    plain strict `load_state_dict`. Calling the module runs the bare network on float32 tensors of its
    own shape (what training differentiates); hosts call `npnet.golden_noise`, which validates first.
    """

    def __init__(self, config: NPNetConfig) -> None:
        super().__init__()
        self.config = config
        self.unet_svd = SVDBranch(config)
        self.unet_embedding = SwinBranch(config)
        self.embeeding = TextModulation(config)
        self.alpha = nn.Parameter(torch.zeros(1))
        self.beta = nn.Parameter(torch.zeros(1))

    @property
    def family(self) -> str | None:
        """ "sdxl" or "dit" for networks of a released family, None for one trained on another model."""
        return self.config.family

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def init_non_persistent_buffers(self, device: torch.device) -> None:
        self.unet_embedding.swin.init_non_persistent_buffers(device)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W], e [B, T, D], both float32 on the model's device -> [B, C, H, W]."""
        t = self.embeeding(x, e)
        gate = 2 * torch.sigmoid(self.alpha) - 1
        return self.unet_svd(x) + gate * t + self.beta * self.unet_embedding(x + t)
