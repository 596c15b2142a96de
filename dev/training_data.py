"""Small noise prompt datasets for the training tests, made by a fixed random "teacher" NPNet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

import npnet
from dev.comfyui_setup import REPO_ROOT
from npnet.learning.dataset import write_shard

# A small network shape: non-square latents and a short prompt keep each step cheap (Swin-T still runs
# at 224x224, whatever the latent size, and dominates the cost).
SMALL = npnet.NPNetConfig(channels=4, height=16, width=24, tokens=8, embed_dim=32, family=None)


def teacher(config: npnet.NPNetConfig = SMALL, seed: int = 0) -> npnet.NPNet:
    torch.manual_seed(seed)
    model = npnet.NPNet(config)
    with torch.no_grad():
        model.alpha.fill_(2.0)  # the text branch switched on: the target depends on the prompt
    return model.eval()


def make_dataset(folder: Path, shards: int, per_shard: int, config=SMALL, seed: int = 0, gains=True) -> Path:
    """NPD shards whose golden noise is the teacher's output for each sample's own prompt."""
    model = teacher(config, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    folder.mkdir(parents=True, exist_ok=True)
    for s in range(shards):
        noise = torch.randn(per_shard, *config.latent_shape, generator=generator)
        embeds = torch.randn(per_shard, config.tokens, config.embed_dim, generator=generator)
        with torch.no_grad():
            golden = model(noise, embeds)
        gain = torch.randn(per_shard, generator=generator) if gains else None
        write_shard(
            folder / f"shard-{s:05d}.safetensors",
            noise.half(),
            golden.half(),
            embeds.half(),
            gain,
            {"base_model": "teacher"},
        )
    return folder


def train_process(*args, torchrun: int | None = None, **popen) -> subprocess.Popen:
    """`python -m npnet.train ARGS` (or under torchrun with that many processes), one thread each, output
    captured as text."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    if torchrun:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={torchrun}",
            "-m",
            "npnet.train",
            *args,
        ]
    else:
        command = [sys.executable, "-m", "npnet.train", *args]
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )
