"""Training throughput on a dataset of many small shards (what a long multi-server collection leaves).

Writes `--shards` one-sample NPD shards (the case docs/performance.md reports: 20,000, a 4x16x24 latent and 8x32 prompt
tokens), then runs `python -m npnet.train` on them for one epoch (latent network, batch 64) and reports
the set-up time (start to the first logged step), the samples/s of the epoch after it and the wall
time. `--compare REV` trains with that revision's code too, on the same shards, in the same run:

    .venv/bin/python benchmarks/shard_reading.py [--shards 20000] [--batch 64] [--compare REV]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from npnet.learning.dataset import write_shard  # noqa: E402

LATENT, TOKENS = (4, 16, 24), (8, 32)


def write_shards(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for i in range(count):
        noise = torch.randn(1, *LATENT, generator=generator)
        write_shard(
            folder / f"shard-{i:06d}.safetensors",
            noise.half(),
            (0.9 * noise).half(),
            torch.randn(1, *TOKENS, generator=generator).half(),
            metadata={"base_model": "benchmark"},
        )


def train_once(repo: Path, data: Path, out: Path, batch: int) -> dict:
    """`python -m npnet.train` from the checkout `repo` for one epoch; its set-up time and speed."""
    command = [sys.executable, "-m", "npnet.train", "--data", str(data), "--out", str(out), "--epochs", "1"]
    command += ["--batch-size", str(batch), "--arch", "latent", "--val-fraction", "0.02", "--log-every", "1"]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=repo, env=env, stdout=log, stderr=log, text=True)
        metrics, first = out / "metrics.jsonl", None
        while process.poll() is None:
            if first is None and metrics.exists() and metrics.stat().st_size:
                first = time.perf_counter() - start
            time.sleep(0.01)
        wall = time.perf_counter() - start
        if process.returncode:
            log.seek(0)
            raise SystemExit(log.read()[-3000:])
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    return {
        "setup_s": round(first, 2) if first is not None else None,
        "wall_s": round(wall, 2),
        "steps": len(rows),
        "epoch_samples_per_s": round(len(rows) * batch / (wall - (first or 0)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--compare", metavar="REV", help="also train with the code of this git revision")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "npd"
        written = time.perf_counter()
        write_shards(data, args.shards)
        report = {
            "shards": args.shards,
            "batch": args.batch,
            "write_s": round(time.perf_counter() - written, 1),
        }
        checkouts = {"this tree": REPO_ROOT}
        if args.compare:
            checkouts[args.compare] = Path(tmp) / "compare"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(checkouts[args.compare]), args.compare],
                cwd=REPO_ROOT,
                check=True,
                capture_output=True,
            )
        try:
            for name, repo in checkouts.items():
                report[name] = train_once(repo, data, Path(tmp) / f"run-{len(report)}", args.batch)
        finally:
            if args.compare:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(checkouts[args.compare])],
                    cwd=REPO_ROOT,
                    capture_output=True,
                )
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
