"""Time the Golden Noise node adds to a queue run, cold (first load) and warm (cached network).

What is timed is the code ComfyUI's executor runs for the node in a SamplerCustomAdvanced graph:
GoldenNoiseLoader.execute, GoldenNoiseApply.execute, and the sampler's `noise.generate_noise(latent)`
(model management, NPNet on the device, the copy back to the CPU), minus what the plain RandomNoise
costs in the same place. ComfyUI runs in-process, as in a server, on `--device` (cpu or cuda); the
graph's other work (HTTP, the sampler itself) is the same with or without the node and is left out.

The NPNet checkpoint is written once to a temporary models/npnet with the released architecture and
random weights (same sizes and compute as the real ones: ~122 MB fp32). The network is loaded once per
process; "warm" repeats the whole node path with the loader answering from its cache.

    .venv/bin/python benchmarks/golden_noise_overhead.py [--device cuda] [--batch 1] [--repeats 10]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from dev.checkpoints import write_checkpoint  # noqa: E402  (the tests' own checkpoint writer)
from dev.comfy_harness import import_inprocess  # noqa: E402  (the tests' in-process set-up)

PACK = "golden_noise_bench"


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument(
        "--repeats", type=int, default=None, help="warm repeats (default 5 on CPU, 30 on CUDA)"
    )
    opts = parser.parse_args()
    if opts.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device")
    repeats = opts.repeats or (30 if opts.device == "cuda" else 5)

    base = Path(tempfile.mkdtemp(prefix="golden_noise_bench_"))
    pack = import_inprocess(base, PACK, device=opts.device).pack
    nodes = importlib.import_module(f"{pack.__name__}.nodes.golden_noise")
    import comfy.model_management as mm
    from comfy_extras.nodes_custom_sampler import Noise_RandomNoise

    write_checkpoint(base / "models" / "npnet" / "bench-sdxl.safetensors", 2048)
    g = torch.Generator().manual_seed(0)
    cond = [[torch.randn(1, 77, 2048, generator=g), {"pooled_output": torch.randn(1, 1280, generator=g)}]]
    latent = {"samples": torch.zeros(opts.batch, 4, 128, 128)}
    widgets = dict(token_policy="first_chunk", strength=1.0, resolution_mode="strict")

    def plain(seed: int):
        return Noise_RandomNoise(seed).generate_noise(latent)

    held = []  # what ComfyUI's output cache does for the loader's NPNET between queue runs

    def golden(seed: int):
        if not held:
            held.append(nodes.GoldenNoiseLoader.execute("bench-sdxl.safetensors").args[0])
        weights = held[0]
        noise = nodes.GoldenNoiseApply.execute(
            noise=Noise_RandomNoise(seed), positive=cond, npnet=weights, **widgets
        ).args[0]
        return noise.generate_noise(latent)

    plain(0)  # torch's CPU RNG warm-up, so the baseline is not charged to either side
    cold, _ = timed(lambda: golden(0))
    load, _ = timed(lambda: nodes.GoldenNoiseLoader.execute("bench-sdxl.safetensors"))  # cache hit
    warm, base_times = [], []
    for i in range(repeats):
        warm.append(timed(lambda i=i: golden(i + 1))[0])
        base_times.append(timed(lambda i=i: plain(i + 1))[0])
    baseline = statistics.median(base_times)

    device = mm.get_torch_device()
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    ms = {
        "cold": cold - baseline,
        "warm": statistics.median(warm) - baseline,
        "min": min(warm) - baseline,
        "max": max(warm) - baseline,
    }
    ms = {k: 1000 * v for k, v in ms.items()}
    print(
        f"Golden Noise node overhead per queue run: batch {opts.batch} x 1024x1024 latent, SDXL NPNet, "
        f"{name}, torch {torch.__version__}"
    )
    print(f"  cold (first run in the process: load + NPNet): {ms['cold']:8.1f} ms")
    print(
        f"  warm (network cached), median of {repeats:<3}:     {ms['warm']:8.1f} ms"
        f"   (min {ms['min']:.1f}, max {ms['max']:.1f})"
    )
    print(f"  loader answering from its cache:               {1000 * load:8.3f} ms")
    print(f"  plain RandomNoise, for reference:              {1000 * baseline:8.1f} ms")


if __name__ == "__main__":
    main()
