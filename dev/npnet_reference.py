"""Reference NPNet for tests and benchmarks, written independently of `npnet/`.

Swin-T and the SVD branch's attention come from timm (test-only dependency, pretrained=False); the rest
is a direct transcription of the paper's formulas (arXiv 2411.09502, section 3) as the authors' released
model code computes them. Imported by the tests
(tests/npnet) and by benchmarks/npnet_forward.py, so the reference exists once.
"""

from __future__ import annotations

import timm
import torch
import torch.nn.functional as F
from timm.layers import Attention
from torch import nn


class ReferenceAdaGroupNorm(nn.Module):
    """diffusers AdaGroupNorm(embedding_dim, out_dim=4, num_groups=1, act_fn=None, eps=1e-6)."""

    def __init__(self, embedding_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(embedding_dim, 8)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        emb = self.linear(emb)[:, :, None, None]
        scale, shift = emb[:, :4], emb[:, 4:]
        return F.group_norm(x, 1, eps=1e-6) * (1 + scale) + shift


class ReferenceSVD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mlp1 = nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 256))
        self.mlp2 = nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 256))
        self.mlp3 = nn.Sequential(nn.Linear(256, 256))
        self.attention = Attention(256, num_heads=8, qkv_bias=False)
        self.bn = nn.BatchNorm2d(256)
        self.mlp4 = nn.Sequential(nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 256))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # 2x2 tiling: ch0 top-left, ch1 top-right, ch2 bottom-left, ch3 bottom-right.
        m = torch.cat([torch.cat([x[:, 0], x[:, 1]], dim=2), torch.cat([x[:, 2], x[:, 3]], dim=2)], dim=1)
        u, s, vh = torch.linalg.svd(m)
        out = self.mlp1(u.permute(0, 2, 1)) + self.mlp2(vh) + self.mlp3(s).unsqueeze(1)
        out = self.attention(out).mean(dim=1)
        s_new = self.mlp4(out) + s
        pred = u @ torch.diag_embed(s_new) @ vh
        return torch.stack(
            [pred[:, :128, :128], pred[:, :128, 128:], pred[:, 128:, :128], pred[:, 128:, 128:]], 1
        )


class ReferenceNoiseTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.upconv = nn.Conv2d(7, 4, (1, 1), (1, 1), (0, 0))
        self.downconv = nn.Conv2d(4, 3, (1, 1), (1, 1), (0, 0))
        self.swin = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downconv(F.interpolate(x, [224, 224]))
        x = self.swin.forward_features(x)
        return self.upconv(F.interpolate(x, [128, 128]))


class ReferenceNPNet(nn.Module):
    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.unet_svd = ReferenceSVD()
        self.unet_embedding = ReferenceNoiseTransformer()
        self.embeeding = ReferenceAdaGroupNorm(77 * embed_dim)
        self.alpha = nn.Parameter(torch.zeros(1))
        self.beta = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        e = e.float().reshape(e.shape[0], -1)
        t = self.embeeding(x.float(), e)
        return (
            self.unet_svd(x.float())
            + (2 * torch.sigmoid(self.alpha) - 1) * t
            + self.beta * self.unet_embedding((x + t).float())
        )


def build_reference(state_dict: dict[str, torch.Tensor]) -> ReferenceNPNet:
    """A reference NPNet holding `state_dict` (flat keys), in eval mode without gradients."""
    embed_dim = state_dict["embeeding.linear.weight"].shape[1] // 77
    model = ReferenceNPNet(embed_dim)
    model.load_state_dict(state_dict, strict=True)
    return model.requires_grad_(False).eval()


def random_state_dict(embed_dim: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random NPNet weights: default init perturbed so every bias and table is non-zero, alpha/beta set.

    The text Linear (fan-in 77 * D) keeps its default init: a fixed-size perturbation there would blow
    the text branch far beyond the unit scale of real golden noise.
    """
    torch.manual_seed(seed)
    model = ReferenceNPNet(embed_dim)
    generator = torch.Generator().manual_seed(seed)
    state_dict = {}
    for key, value in model.state_dict().items():
        if value.is_floating_point() and key != "embeeding.linear.weight":
            value = value + 0.02 * torch.randn(value.shape, generator=generator)
        state_dict[key] = value.clone()
    state_dict["alpha"] = torch.tensor([0.8])
    state_dict["beta"] = torch.tensor([0.6])
    return state_dict


def official_checkpoint(state_dict: dict[str, torch.Tensor]) -> dict[str, object]:
    """The authors' 5-key layout: one state dict per branch, plus alpha and beta."""
    nested: dict[str, object] = {"unet_svd": {}, "unet_embedding": {}, "embeeding": {}}
    for key, value in state_dict.items():
        prefix, _, rest = key.partition(".")
        if rest:
            nested[prefix][rest] = value
        else:
            nested[prefix] = value
    return nested


def make_inputs(batch: int, *, seed: int = 0, embed_dim: int = 2048, size=(128, 128)):
    """Seeded Gaussian noise [batch, 4, H, W] and prompt embeddings [batch, 77, embed_dim]."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch, 4, *size, generator=generator)
    embeds = torch.randn(batch, 77, embed_dim, generator=generator)
    return noise, embeds


def text_embedding_flavour(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """asagi4's flat layout: `text_embedding.*` instead of the official `embeeding.*`."""
    return {key.replace("embeeding.", "text_embedding.", 1): value for key, value in state_dict.items()}
