"""NPNet: the noise prompt network of "Golden Noise for Diffusion Models" (arXiv 2411.09502).

The network is built from an `NPNetConfig` (latent C x H x W, prompt T x D); each branch derives its
layer sizes from it with no special case for the released shapes:
- text modulation: a Linear T * D -> 2C (a scale and a shift per channel);
- Swin branch: a 1x1 conv C -> 3 in, Swin-T at 224x224, a 1x1 conv 7 -> C out at H x W;
- SVD branch: the channels tiled into a grid, singular-vector tokens of width min(m, n), see
  `npnet.svd_branch`.
For C = 4, H = W = 128, T = 77 these are exactly the released layers, and the official checkpoints load
strictly into them.

Networks users train may use the `latent` architecture instead (`NPNetConfig.noise_branch`,
`prompt_map`; see `npnet.latent_branches`): a conv noise branch at the latent's own size in place of the
Swin-T, and a prompt-dependent spatial term added to the text term. The file records which.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import NPNetConfig
from .latent_branches import ConvBranch, PromptMap
from .svd_branch import SVDBranch
from .swin_branch import SwinBranch
from .text_branch import TextModulation


class NPNet(nn.Module):
    """golden = SVD(x) + (2*sigmoid(alpha) - 1) * T + beta * Swin(x + T), with T = TextModulation(x, e);
    in the other architectures Conv(x + T) (or nothing) takes Swin's place, and + PromptMap(e) is added.

    Attribute names mirror the official checkpoint (including its `embeeding` typo) so weights load with a
    plain strict `load_state_dict`. Calling the module runs the bare network on float32 tensors of its
    own shape (what training differentiates); hosts call `npnet.golden_noise`, which validates first.
    """

    def __init__(self, config: NPNetConfig) -> None:
        super().__init__()
        self.config = config
        self.unet_svd = SVDBranch(config)
        if config.noise_branch == "swin":
            self.unet_embedding = SwinBranch(config)
        elif config.noise_branch == "conv":
            self.noise_conv = ConvBranch(config)
        self.embeeding = TextModulation(config)
        if config.prompt_map:
            self.prompt_map = PromptMap(config)
        # The paper starts with both gates shut (alpha = beta = 0), so a new network is SVD(x), close to x.
        # The conv branch's last layer starts at zero instead, with its gate open: the start is the same,
        # and its weights get gradients from the first step (a shut gate times a zero layer never would).
        self.alpha = nn.Parameter(torch.zeros(1))
        self.beta = nn.Parameter(torch.full((1,), 0.5 if config.noise_branch == "conv" else 0.0))

    @property
    def family(self) -> str | None:
        """ "sdxl" or "dit" for networks of a released family, None for one trained on another model."""
        return self.config.family

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def unused_parameters(self) -> tuple[str, ...]:
        """Name prefixes of parameters the forward never reads (kept for the checkpoint layout): the SVD
        branch's BatchNorm, Swin's ImageNet head, beta without a noise branch. Training freezes them, so
        no optimiser state or gradient all-reduce is spent on them."""
        unused = ["unet_svd.bn."]
        if self.config.noise_branch == "swin":
            unused.append("unet_embedding.swin.head.")
        elif self.config.noise_branch == "none":
            unused.append("beta")
        return tuple(unused)

    def init_non_persistent_buffers(self, device: torch.device) -> None:
        if self.config.noise_branch == "swin":
            self.unet_embedding.swin.init_non_persistent_buffers(device)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W], e [B, T, D], both float32 on the model's device -> [B, C, H, W]."""
        t = self.embeeding(x, e)
        gate = 2 * torch.sigmoid(self.alpha) - 1
        out = self.unet_svd(x) + gate * t
        if self.config.noise_branch == "swin":
            out = out + self.beta * self.unet_embedding(x + t)
        elif self.config.noise_branch == "conv":
            out = out + self.beta * self.noise_conv(x + t)
        if self.config.prompt_map:  # zero at the start (its last layer is), ungated
            out = out + self.prompt_map(e, x.shape[-2], x.shape[-1])
        return out
