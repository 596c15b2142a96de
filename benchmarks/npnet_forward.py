"""NPNet forward latency and peak memory: ours vs a timm-built reference with the same weights.

    python benchmarks/npnet_forward.py [--device cpu|cuda] [--repeats 7]

Both networks hold the same random weights (real-size, fp32). For each batch size the two are timed
alternately (ours, reference, ours, ...) so machine-load drifts hit both alike; the table gives medians
and the ratio ours / reference (< 1: ours faster). Outputs are compared (max abs difference). Peak
memory is the extra memory one forward needs: CUDA max_memory_allocated, or on CPU the peak RSS
(VmHWM, reset through /proc/self/clear_refs) above the RSS before the first forward, measured in a
fresh child process per network with glibc's mmap threshold pinned so freed blocks go back to the OS.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import npnet  # noqa: E402
from dev.npnet_reference import build_reference, make_inputs, random_state_dict  # noqa: E402
from npnet.checkpoint import save_safetensors  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _proc_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cuda_peak_mib(run, noise: torch.Tensor, embeds: torch.Tensor) -> float:
    """Extra CUDA memory (MiB) at the peak of run(noise, embeds), above what was allocated before it."""
    device = noise.device
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    run(noise, embeds)
    _sync(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def cpu_peak_mib(path: Path, network: str, batch: int) -> float | None:
    """Extra RSS (MiB) of one first forward, measured in a fresh child process (see the module doc)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    command = [
        sys.executable,
        __file__,
        "--memory-probe",
        network,
        "--batch",
        str(batch),
        "--weights",
        str(path),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])["peak_mib"]
    except (IndexError, ValueError, KeyError):
        return None


def memory_probe(network: str, batch: int, path: Path) -> None:
    """Child process: build one network, reset the RSS high-water mark, run one forward, report."""
    from safetensors.torch import load_file

    if network == "ours":
        model = npnet.load(path)
        # npnet.load maps the weights lazily; page them in so only the forward's own memory is measured.
        sum(float(t.double().sum()) for t in model.state_dict().values())
    else:
        reference = build_reference(load_file(path))

        def model(noise, embeds):
            with torch.no_grad():
                return reference(noise, embeds)

    noise, embeds = make_inputs(batch, seed=batch)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
    except OSError:
        print(json.dumps({"peak_mib": None}))
        return
    before = _proc_kib("VmRSS")
    model(noise, embeds)
    peak = _proc_kib("VmHWM")
    print(
        json.dumps({"peak_mib": None if before is None or peak is None else round((peak - before) / 1024, 1)})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--memory-probe", choices=("ours", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--weights", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        return memory_probe(args.memory_probe, args.batch, args.weights)
    device = torch.device(args.device)
    torch.manual_seed(0)

    state_dict = random_state_dict(2048)
    with tempfile.TemporaryDirectory() as folder:
        path = save_safetensors(state_dict, Path(folder) / "npnet-sdxl.safetensors")
        ours = npnet.load(path, device=device)
        reference = build_reference(state_dict).to(device)

        def run_ours(noise, embeds):
            return ours(noise, embeds)

        def run_reference(noise, embeds):
            with torch.no_grad():
                return reference(noise, embeds)

        rows = []
        for batch in (1, 4):
            noise, embeds = (t.to(device) for t in make_inputs(batch, seed=batch))
            diff = (run_ours(noise, embeds) - run_reference(noise, embeds)).abs().max().item()  # also warm-up
            times = {"ours": [], "reference": []}
            for _ in range(args.repeats):
                for name, run in (("ours", run_ours), ("reference", run_reference)):
                    _sync(device)
                    start = time.perf_counter()
                    run(noise, embeds)
                    _sync(device)
                    times[name].append(time.perf_counter() - start)
            if device.type == "cuda":
                memory = {
                    name: cuda_peak_mib(run, noise, embeds)
                    for name, run in (("ours", run_ours), ("reference", run_reference))
                }
            else:
                memory = {name: cpu_peak_mib(path, name, batch) for name in ("ours", "reference")}
            ours_ms = statistics.median(times["ours"]) * 1e3
            ref_ms = statistics.median(times["reference"]) * 1e3
            rows.append(
                {
                    "batch": batch,
                    "ours_ms": round(ours_ms, 2),
                    "reference_ms": round(ref_ms, 2),
                    "ratio": round(ours_ms / ref_ms, 3),
                    "max_abs_diff": diff,
                    "ours_peak_mib": None if memory["ours"] is None else round(memory["ours"], 1),
                    "reference_peak_mib": None
                    if memory["reference"] is None
                    else round(memory["reference"], 1),
                }
            )

    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)"
    )
    print(f"NPNet forward, fp32, {name}, torch {torch.__version__}, median of {args.repeats} alternated runs")
    print(
        f"{'batch':>5} {'ours ms':>9} {'ref ms':>9} {'ratio':>6} {'max|diff|':>10} {'ours MiB':>9} {'ref MiB':>8}"
    )
    for row in rows:
        print(
            f"{row['batch']:>5} {row['ours_ms']:>9.1f} {row['reference_ms']:>9.1f} {row['ratio']:>6.3f} "
            f"{row['max_abs_diff']:>10.2e} {row['ours_peak_mib']!s:>9} {row['reference_peak_mib']!s:>8}"
        )
    print(
        json.dumps({"benchmark": "npnet_forward", "device": name, "torch": torch.__version__, "rows": rows})
    )
    if any(row["max_abs_diff"] > 1e-5 for row in rows):
        sys.exit("outputs differ from the reference by more than 1e-5")


if __name__ == "__main__":
    main()
