"""Test-only nodes that give the learning nodes what a user's graph gives them, without any download:
a tiny checkpoint (MODEL, CLIP, VAE in CheckpointLoaderSimple's order, so an example workflow runs by
swapping one node) and a scripted reward model (REWARD_MODEL) whose score is the image's brightness."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch
from comfy_api.latest import io


def _load_tiny_models():
    """dev/tiny_models.py (the benchmarks build the same models), loaded by path: this pack is linked into
    ComfyUI's custom_nodes from the repository, whose root is not on sys.path inside ComfyUI."""
    name = "golden_noise_testing_tiny_models"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "dev" / "tiny_models.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


tiny_models = _load_tiny_models()

CATEGORY = "golden_noise_testing"


class GoldenNoiseTinyCheckpoint(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GoldenNoiseTinyCheckpoint",
            category=CATEGORY,
            inputs=[
                io.Combo.Input("family", options=list(tiny_models.FAMILIES)),
                io.Int.Input("seed", default=0, min=0, max=2**31),
            ],
            outputs=[io.Model.Output(), io.Clip.Output(), io.Vae.Output()],
        )

    @classmethod
    def execute(cls, family, seed) -> io.NodeOutput:
        channels = tiny_models.FAMILIES[family][2]
        return io.NodeOutput(
            tiny_models.tiny_model(family, seed),
            tiny_models.tiny_clip(seed + 1),
            tiny_models.tiny_vae(channels),
        )


class BrightnessReward:
    """The reward contract (`name`, `score(images, prompts)` -> one float per image); NaN from the
    `nan_from`-th call on when it is set (one call per pair)."""

    def __init__(self, nan_from: int = 0, name: str = "brightness"):
        # `name`: a stand-in may carry another reward's name (the authors' preset checks it by name).
        self.calls, self.nan_from, self.name = 0, nan_from, name

    def value(self, images, prompts):
        """The score with gradients to the images (Train Golden Noise (reward))."""
        return images.float().mean(dim=(1, 2, 3))

    def score(self, images, prompts):
        self.calls += 1
        scores = self.value(images, prompts).detach()
        if self.nan_from and self.calls >= self.nan_from:
            scores = torch.full_like(scores, float("nan"))
        return scores


class GoldenNoiseTinyReward(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GoldenNoiseTinyReward",
            category=CATEGORY,
            inputs=[
                io.Int.Input("nan_from", default=0, min=0, max=10**6),
                io.String.Input("name", default="brightness", optional=True),
            ],
            outputs=[io.Custom("REWARD_MODEL").Output()],
        )

    @classmethod
    def execute(cls, nan_from, name="brightness") -> io.NodeOutput:
        return io.NodeOutput(BrightnessReward(nan_from, name))


NODES: list[type] = [GoldenNoiseTinyCheckpoint, GoldenNoiseTinyReward]
