"""The learning benchmark at full size, with the architecture ablation, and training throughput by
architecture and latent size, and the gain by the number of collected pairs (300, 1000, 3000 and the
full set). `.venv/bin/python benchmarks/npnet_learning.py [--ci] [--out result.json]`.

The world and the evaluation are dev/learning_benchmark.py (the CI-size run is a slow test). The
ablation trains each architecture of npnet.config.ARCHITECTURES that runs here in minutes: `latent`
(the default: conv noise branch + prompt map), `conv`, `map` and `text-only` (the paper's network with
its Swin branch off). The paper's own (`paper`, Swin-T at 224x224) is timed, not trained: at its CPU
throughput the same training would take hours.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

import npnet  # noqa: E402
from dev import learning_benchmark  # noqa: E402


def throughput(arch: str, size: int, batch: int = 4, steps: int = 3, device: str = "cpu") -> float:
    """Training samples/s of one AdamW step on a 4 x size x size latent with 77 x 768 prompt tokens."""
    config = npnet.NPNetConfig(4, size, size, 77, 768, family=None).with_architecture(arch)
    torch.manual_seed(0)
    model = npnet.NPNet(config).to(device)
    model.init_non_persistent_buffers(torch.device(device))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x, e = torch.randn(batch, 4, size, size, device=device), torch.randn(batch, 77, 768, device=device)
    times = []
    for _ in range(steps + 1):
        started = time.perf_counter()
        loss = torch.nn.functional.mse_loss(model(x, e), x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return batch / sorted(times[1:])[len(times[1:]) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ci", action="store_true", help="the CI size instead of the full one")
    parser.add_argument("--out", default=None, help="write the result as JSON here")
    parser.add_argument("--device", default="cpu", help="where the throughput is timed (cpu, cuda)")
    parser.add_argument("--throughput-only", action="store_true", help="time training, skip the benchmark")
    args = parser.parse_args()
    torch.set_num_threads(2)
    scale = learning_benchmark.CI if args.ci else learning_benchmark.FULL
    rates = {
        f"{arch} 4x{size}x{size}": throughput(arch, size, device=args.device)
        for size in (8, 64, 128)
        for arch in ("paper", "latent")
    }
    print(
        f"training samples/s (batch 4, {args.device}):",
        json.dumps({k: round(v, 2) for k, v in rates.items()}),
    )
    if args.throughput_only:
        return 0
    with tempfile.TemporaryDirectory() as work:
        result = learning_benchmark.run(
            Path(work), scale, ("latent", "conv", "map", "text-only"), pair_counts=(300, 1000, 3000)
        )
    result["throughput"] = rates
    print(learning_benchmark.table(result))
    print("\nthe default network's gain by the number of collected pairs:")
    print(learning_benchmark.pairs_table(result))
    print(json.dumps(result["timings"]))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
