"""NPNet training throughput: our training step against the authors' (timm's Swin-T); 1 vs 2 processes.

1. One AdamW step (forward, MSE to the target, backward, update) at the official shape (4x128x128
   latents, 77x2048 prompt) for `npnet.NPNet` and for the reference network of dev/npnet_reference.py
   (timm's Swin-T and attention, the authors' formulas), alternated step by step in one process,
   samples/s of each and the ratio ours / reference.
2. `python -m npnet.train` on a small generated dataset, one process vs `torchrun --nproc-per-node 2`
   (gloo on CPU, NCCL on CUDA), samples/s from metrics.jsonl.

    .venv/bin/python benchmarks/npnet_train.py [--device cuda] [--steps 4] [--batch 2] [--skip-ddp]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import npnet  # noqa: E402
from dev.npnet_reference import build_reference, random_state_dict  # noqa: E402
from dev.training_data import make_dataset  # noqa: E402


def step_timer(model, batch: int, device: torch.device):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 4, 128, 128, generator=generator).to(device)
    e = torch.randn(batch, 77, 2048, generator=generator).to(device)
    target = torch.randn(batch, 4, 128, 128, generator=generator).to(device)

    def step() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = F.mse_loss(model(x, e).float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return step


def single_step_comparison(device: torch.device, steps: int, batch: int) -> dict:
    state = random_state_dict(2048, seed=0)
    ours = npnet.NPNet(npnet.OFFICIAL["sdxl"])
    ours.load_state_dict(state)
    ours.to(device).train()
    reference = build_reference(state).requires_grad_(True).to(device).train()
    timers = {"ours": step_timer(ours, batch, device), "reference": step_timer(reference, batch, device)}
    for timer in timers.values():  # warm-up
        timer()
    times = {name: [] for name in timers}
    for _ in range(steps):
        for name, timer in timers.items():
            times[name].append(timer())
    rate = {name: batch / statistics.median(t) for name, t in times.items()}
    return {"batch": batch, "steps": steps, "samples_per_s": rate, "ratio": rate["ours"] / rate["reference"]}


def ddp_comparison(device: str, epochs: int) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "npd", shards=2, per_shard=16, gains=False)
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1" if device == "cpu" else "4"}
        for procs in (1, 2):
            target = Path(tmp) / f"out{procs}"
            args = [
                "-m",
                "npnet.train",
                "--data",
                str(data),
                "--out",
                str(target),
                "--epochs",
                str(epochs),
                "--batch-size",
                "4",
                "--device",
                device,
                "--log-every",
                "1000",
                "--arch",
                "paper",  # the DDP figures of docs/performance.md are the paper network's; the latent one: npnet_learning.py
                "--overwrite",
            ]
            launcher = (
                [sys.executable]
                if procs == 1
                else [
                    sys.executable,
                    "-m",
                    "torch.distributed.run",
                    "--standalone",
                    f"--nproc-per-node={procs}",
                ]
            )
            start = time.perf_counter()
            subprocess.run([*launcher, *args], cwd=REPO_ROOT, env=env, check=True, capture_output=True)
            wall = time.perf_counter() - start
            lines = [json.loads(line) for line in (target / "metrics.jsonl").read_text().splitlines()]
            out[f"{procs}_process"] = {
                "samples_per_s": statistics.median(line["samples_per_s"] for line in lines),
                "wall_s": wall,
            }
    out["ratio_2_over_1"] = out["2_process"]["samples_per_s"] / out["1_process"]["samples_per_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the DDP comparison")
    parser.add_argument("--skip-ddp", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    report = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads()}
    report["official_shape_step"] = single_step_comparison(device, args.steps, args.batch)
    if not args.skip_ddp:
        report["ddp_small_shape"] = ddp_comparison(args.device, args.epochs)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
