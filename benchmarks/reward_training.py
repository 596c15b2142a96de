"""Golden noise trained on the reward against imitation on the digits world, with its controls and a
penalty-weight sweep (dev/reward_benchmark.py), and the cost of a training step.

    .venv/bin/python benchmarks/reward_training.py [--out result.json] [--penalties 0 0.1 1 10]
        [--guidance 1.0]  (the world's rendering guidance; 0.5 leaves the noise more of the prompt to carry)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from dev import reward_benchmark  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="write the result as JSON here")
    parser.add_argument("--penalties", type=float, nargs="*", default=[0.0, 0.1, 1.0, 10.0])
    parser.add_argument("--guidance", type=float, default=reward_benchmark.CI.guidance)
    args = parser.parse_args()
    if not math.isfinite(args.guidance) or args.guidance < 0:
        parser.error(f"--guidance must be a finite number >= 0 (1.0: the world's own), got {args.guidance}")
    scale = dataclasses.replace(reward_benchmark.CI, guidance=args.guidance)
    torch.set_num_threads(2)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        result = reward_benchmark.run(Path(work), scale)
        print(reward_benchmark.table(result["rows"]), flush=True)
        if args.penalties:
            result["sweep"] = reward_benchmark.penalty_sweep(Path(work), args.penalties, scale)
            print("\npenalty sweep:\n" + reward_benchmark.sweep_table(result["sweep"]))
    result["timings"]["total"] = time.perf_counter() - started
    print(json.dumps(result["timings"]))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
