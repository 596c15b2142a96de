"""NPNet load time: our .safetensors vs the official .pth layout, same weights, same run.

    python benchmarks/npnet_load.py [--device cpu|cuda] [--repeats 9]

Both files hold the same random real-size weights (122 MB fp32) and are read by `npnet.load`, timed
alternately; files are in the page cache for both. "load" is the time until the model is returned;
safetensors are memory-mapped, so their pages are read on first use: "load+touch" adds a pass over
every weight, the fair figure for "weights resident". Ratios are .pth time / .safetensors time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import npnet  # noqa: E402
from dev.npnet_reference import official_checkpoint, random_state_dict  # noqa: E402
from npnet.checkpoint import save_safetensors  # noqa: E402


def _timed(path: Path, device: torch.device, touch: bool) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    model = npnet.load(path, device=device)
    if touch:
        total = sum(t.sum() for t in model.state_dict().values() if t.is_floating_point())
        float(total)  # forces the reduction (and a device sync)
    elif device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    device = torch.device(args.device)

    state_dict = random_state_dict(2048)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        files = {
            "safetensors": save_safetensors(state_dict, Path(folder) / "npnet-sdxl.safetensors"),
            "pth": Path(folder) / "sdxl.pth",
        }
        torch.save(official_checkpoint(state_dict), files["pth"])
        for touch in (False, True):
            times = {name: [] for name in files}
            for path in files.values():
                _timed(path, device, touch)  # warm-up: page cache, allocator, CUDA context
            for _ in range(args.repeats):
                for name, path in files.items():
                    times[name].append(_timed(path, device, touch))
            st_ms = statistics.median(times["safetensors"]) * 1e3
            pth_ms = statistics.median(times["pth"]) * 1e3
            rows.append(
                {
                    "measure": "load+touch" if touch else "load",
                    "safetensors_ms": round(st_ms, 1),
                    "pth_ms": round(pth_ms, 1),
                    "speedup": round(pth_ms / st_ms, 2),
                }
            )

    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)"
    )
    print(
        f"NPNet load, SDXL-size weights (122 MB), {name}, torch {torch.__version__}, median of {args.repeats}"
    )
    print(f"{'measure':>11} {'safetensors ms':>15} {'.pth ms':>9} {'speedup':>8}")
    for row in rows:
        print(
            f"{row['measure']:>11} {row['safetensors_ms']:>15.1f} {row['pth_ms']:>9.1f} {row['speedup']:>7.2f}x"
        )
    print(json.dumps({"benchmark": "npnet_load", "device": name, "torch": torch.__version__, "rows": rows}))


if __name__ == "__main__":
    main()
