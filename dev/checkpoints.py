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


# The network shape of the learning tests' tiny SD1.5 model at 128x128 px (TAESD: 16x16 latents, a CLIP
# text model 32 wide).
TINY_SD15 = npnet.NPNetConfig(channels=4, height=16, width=16, tokens=8, embed_dim=32, family=None)


def write_tiny_checkpoint(path: Path, config: npnet.NPNetConfig = TINY_SD15) -> Path:
    """A seeded NPNet of `config` with its text and Swin branches switched on (alpha 1, beta 0.5)."""
    torch.manual_seed(0)
    network = npnet.NPNet(config)
    with torch.no_grad():
        network.alpha.fill_(1.0)
        network.beta.fill_(0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    npnet.save(network, path)
    return path


def expected_golden(
    checkpoint: Path, seed: int, shape: tuple, tokens: torch.Tensor, batch_index=None
) -> torch.Tensor:
    """What GoldenNoiseApply must produce: the core network applied to RandomNoise's noise for `seed`."""
    import comfy.sample

    noise = comfy.sample.prepare_noise(torch.zeros(shape), seed, batch_index)
    return npnet.golden_noise(npnet.load(checkpoint), noise, tokens)
