"""Swin-T (`swin_tiny_patch4_window7_224`) feature extractor with timm >= 0.9.6 module names.

NPNet's Swin branch was trained on timm's Swin-T. Its checkpoint holds the 173 `swin.*` tensors under
timm's names, so every attribute here mirrors them and loading stays a plain strict `load_state_dict`.
Only `forward_features` at 224x224 is needed, which fixes the stage resolutions (56, 28, 14, 7) and lets
the shifted-window masks be built once. The relative-position index and the masks are non-persistent
buffers, exactly as in timm >= 0.9.6, so they are not expected in (nor written to) a checkpoint.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

IMG_SIZE = 224
PATCH_SIZE = 4
EMBED_DIM = 96
DEPTHS = (2, 2, 6, 2)
NUM_HEADS = (3, 6, 12, 24)
WINDOW = 7
NUM_CLASSES = 1000
# timm fills masked window pairs with -100 rather than -inf; after softmax both give exactly 0 in fp32.
_MASK_VALUE = -100.0


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """[B, H, W, C] -> [B * num_windows, window * window, C], windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `window_partition`: [B * num_windows, window * window, C] -> [B, H, W, C]."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


@lru_cache(maxsize=None)
def relative_position_index(window: int) -> torch.Tensor:
    """[window^2, window^2] index into the (2*window-1)^2 relative-position bias table."""
    grid = torch.arange(window, device="cpu")
    coords = torch.stack(torch.meshgrid(grid, grid, indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]


@lru_cache(maxsize=None)
def shifted_window_mask(resolution: int, window: int, shift: int) -> torch.Tensor:
    """[num_windows, window^2, window^2] additive mask keeping attention inside the pre-roll regions."""
    region = torch.zeros(1, resolution, resolution, 1, device="cpu")
    bounds = ((0, -window), (-window, -shift), (-shift, None))
    label = 0
    for h0, h1 in bounds:
        for w0, w1 in bounds:
            region[:, h0:h1, w0:w1, :] = label
            label += 1
    labels = window_partition(region, window).squeeze(-1)  # num_windows, window^2
    different = labels[:, None, :] != labels[:, :, None]
    return torch.zeros(different.shape, device="cpu").masked_fill_(different, _MASK_VALUE)


class PatchEmbed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, EMBED_DIM, kernel_size=PATCH_SIZE, stride=PATCH_SIZE)
        self.norm = nn.LayerNorm(EMBED_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))  # B, 56, 56, 96


class WindowAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * WINDOW - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", torch.empty(0, dtype=torch.long), persistent=False)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def init_non_persistent_buffers(self, device: torch.device) -> None:
        self.relative_position_index = relative_position_index(WINDOW).to(device, copy=True)

    def position_bias(self) -> torch.Tensor:
        """[num_heads, window^2, window^2] learned bias, gathered from the table."""
        area = WINDOW * WINDOW
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(area, area, self.num_heads).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x: [B * num_windows, N, C]; bias: [num_windows or 1, heads, N, N] (position bias + shift mask)."""
        bw, n, c = x.shape
        q, k, v = self.qkv(x).view(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        if bias.shape[0] > 1:
            # The per-window shift mask repeats for every image; CPU SDPA is fastest with a plain 4-D mask.
            bias = bias.repeat(bw // bias.shape[0], 1, 1, 1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinTransformerBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, resolution: int, shift: int) -> None:
        super().__init__()
        self.resolution = resolution
        # A window as large as the feature map cannot shift (timm turns the shift off there, stage 4).
        self.shift = shift if resolution > WINDOW else 0
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim)
        self.register_buffer("attn_mask", None, persistent=False)
        self.drop_path = 0.0  # stochastic depth while training (SwinTransformer.set_drop_path); no weights
        self.draws: torch.Tensor | None = None  # [B, 2] uniform draws (SwinTransformer.set_drop_path_draws)

    def _drop(self, y: torch.Tensor, which: int) -> torch.Tensor:
        """timm's DropPath: in training, each sample's residual branch is dropped with probability
        `drop_path` and the kept ones scaled by 1 / (1 - drop_path); identity in eval mode. The mask comes
        from `draws` when given (column `which`: 0 attention, 1 MLP), else from torch's RNG as timm's."""
        if not self.training or self.drop_path == 0.0:
            return y
        keep = 1.0 - self.drop_path
        shape = (y.shape[0],) + (1,) * (y.ndim - 1)
        if self.draws is not None:
            mask = (self.draws[:, which] >= self.drop_path).to(y.dtype).reshape(shape)
        else:
            mask = torch.empty(shape, device=y.device, dtype=y.dtype).bernoulli_(keep)
        return y * mask / keep

    def init_non_persistent_buffers(self, device: torch.device) -> None:
        if self.shift:
            self.attn_mask = shifted_window_mask(self.resolution, WINDOW, self.shift).to(device, copy=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape  # NHWC
        y = self.norm1(x)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        bias = self.attn.position_bias().unsqueeze(0)
        if self.attn_mask is not None:
            bias = bias + self.attn_mask.unsqueeze(1)
        y = window_reverse(self.attn(window_partition(y, WINDOW), bias), WINDOW, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self._drop(y, 0)
        return x + self._drop(self.mlp(self.norm2(x)), 1)


class PatchMerging(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        # timm's concat order: the 2x2 neighbours enter as (0,0), (1,0), (0,1), (1,1).
        x = x.reshape(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.reduction(self.norm(x))  # B, H/2, W/2, 2C


class SwinTransformerStage(nn.Module):
    def __init__(self, dim: int, depth: int, num_heads: int, resolution: int, downsample: bool) -> None:
        super().__init__()
        # timm >= 0.9 downsamples at the start of stages 2-4 (older timm did it at the end of 1-3).
        self.downsample = PatchMerging(dim // 2) if downsample else nn.Identity()
        self.blocks = nn.Sequential(
            *[
                SwinTransformerBlock(dim, num_heads, resolution, 0 if i % 2 == 0 else WINDOW // 2)
                for i in range(depth)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class ClassifierHead(nn.Module):
    """ImageNet head: never run (NPNet reads the features), kept so the checkpoint's `head.fc` loads."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, NUM_CLASSES)


class SwinTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed()
        resolution = IMG_SIZE // PATCH_SIZE
        stages = []
        for i, (depth, heads) in enumerate(zip(DEPTHS, NUM_HEADS, strict=True)):
            stages.append(
                SwinTransformerStage(EMBED_DIM * 2**i, depth, heads, resolution >> i, downsample=i > 0)
            )
        self.layers = nn.Sequential(*stages)
        self.num_features = EMBED_DIM * 2 ** (len(DEPTHS) - 1)
        self.norm = nn.LayerNorm(self.num_features)
        self.head = ClassifierHead(self.num_features)
        if self.norm.weight.device.type != "meta":  # on meta, `npnet.load` fills them after loading
            self.init_non_persistent_buffers(self.norm.weight.device)

    def set_drop_path(self, rate: float) -> None:
        """Stochastic depth as timm's swin_tiny applies `drop_path_rate` (0.1 there, by default): the rate
        rises linearly from 0 at the first block to `rate` at the last. Acts in train mode only."""
        blocks = [block for stage in self.layers for block in stage.blocks]
        for block, value in zip(blocks, torch.linspace(0, rate, len(blocks)).tolist(), strict=True):
            block.drop_path = value

    @property
    def drop_path_columns(self) -> int:
        """How many uniform draws per sample `set_drop_path_draws` takes: two per block."""
        return 2 * sum(len(stage.blocks) for stage in self.layers)

    def set_drop_path_draws(self, draws: torch.Tensor | None) -> None:
        """Decide the stochastic-depth masks of the next forward pass from `draws` [B, drop_path_columns]
        (uniform in [0, 1), one row per sample of the batch), or from torch's RNG again (None). A trainer
        draws the rows per sample of the global batch, so one process and several drop the same branches
        of the same samples."""
        blocks = [block for stage in self.layers for block in stage.blocks]
        for i, block in enumerate(blocks):
            block.draws = None if draws is None else draws[:, 2 * i : 2 * i + 2]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, 224, 224] -> [B, 7, 7, 768] (NHWC, final LayerNorm applied), as timm returns it."""
        return self.norm(self.layers(self.patch_embed(x)))

    def init_non_persistent_buffers(self, device: torch.device) -> None:
        """Rebuild the index and mask buffers on `device` (needed after construction on the meta device)."""
        for module in self.modules():
            if module is not self and hasattr(module, "init_non_persistent_buffers"):
                module.init_non_persistent_buffers(device)

    def load_imagenet(self, weights: dict[str, torch.Tensor], source: str) -> None:
        """timm's ImageNet Swin-T weights (`--init imagenet`). timm < 0.9.6 exports also carried the index
        and mask buffers; ours rebuilds them, so they are dropped. Anything else that differs is an error
        naming `source` (ValueError)."""
        weights = {
            k: v for k, v in weights.items() if not k.endswith(("relative_position_index", "attn_mask"))
        }
        expected = set(self.state_dict())
        missing, unexpected = expected - set(weights), set(weights) - expected
        if missing or unexpected:
            raise ValueError(
                f"{source} is not timm's Swin-T: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}."
            )
        self.load_state_dict(weights, strict=True)
