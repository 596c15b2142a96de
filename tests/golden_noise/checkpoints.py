"""NPNet checkpoints the tests write, and the golden noise they expect (computed with the core directly)."""

from __future__ import annotations

from pathlib import Path

import torch

import npnet


def write_checkpoint(path: Path, embed_dim: int, seed: int = 0) -> Path:
    """A random NPNet with the released architecture (sizes are fixed by it: ~120 MB), every branch live."""
    torch.manual_seed(seed)
    family = next(name for name, config in npnet.OFFICIAL.items() if config.embed_dim == embed_dim)
    model = npnet.NPNet(npnet.OFFICIAL[family])
    with torch.no_grad():
        model.alpha.fill_(0.7)  # the released init (0, 0) would switch the text and Swin branches off
        model.beta.fill_(0.4)
    path.parent.mkdir(parents=True, exist_ok=True)
    npnet.save(model, path)
    return path


def expected_golden(
    checkpoint: Path, seed: int, shape: tuple, tokens: torch.Tensor, batch_index=None
) -> torch.Tensor:
    """What GoldenNoiseApply must produce: the core network applied to RandomNoise's noise for `seed`."""
    import comfy.sample

    noise = comfy.sample.prepare_noise(torch.zeros(shape), seed, batch_index)
    return npnet.golden_noise(npnet.load(checkpoint), noise, tokens)
