"""A small differentiable world for `npnet.learning.train_on_reward`: a fixed map of the noise as the
renderer and, as the reward, the closeness of the image to the prompt's own target pattern (so the best
noise depends on the prompt). Run as a script (`python -m tests.support.reward_world OUT [options as
JSON]`) it trains into OUT, which is how the torchrun test starts its processes."""

from __future__ import annotations

import json
import sys

import torch

SHAPE = (2, 4, 6)  # a non-square latent


def world(prompts: int = 3):
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(SHAPE[0], SHAPE[0], generator=g)
    targets = torch.randn(prompts, *SHAPE, generator=g)
    conditions = [(f"prompt {i}", torch.randn(5, 8, generator=g)) for i in range(prompts)]

    def render(noise, embeds):
        return torch.tanh(torch.einsum("oc,bchw->bohw", mix.to(noise.device), noise))

    def reward(images, indexes):
        return -(images - torch.tanh(targets.to(images.device)[indexes])).pow(2).flatten(1).mean(1)

    return render, reward, conditions


def main(argv: list[str]) -> int:
    from npnet.learning import train_on_reward

    render, reward, conditions = world()
    options = {"steps": 30, "batch_size": 8, "lr": 3e-3, "latent_shape": SHAPE, **json.loads(argv[1])}
    options["latent_shape"] = tuple(options["latent_shape"])
    train_on_reward(render, reward, conditions, argv[0], **options)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
