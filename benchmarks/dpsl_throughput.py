"""Agent-steps per second of the Gaussian smooth-RR simulation: ours vs two baselines, same run.

    python benchmarks/dpsl_throughput.py [--device cpu|cuda] [--runs R] [--agents N] [--repeats K]
    python benchmarks/dpsl_throughput.py --profile   (where a CPU step's time goes, op by op)
    python benchmarks/dpsl_throughput.py --paper-size --before TREE   (and an older checkout, same run)

Baselines (dev/dpsl_reference.py; same model, drawn at the signal level):
  loop  - one run and one agent at a time in plain Python;
  numpy - runs as the vector axis, one numpy/scipy array operation per formula term.
The baselines always run on the CPU at reduced sizes (the loop at a few runs, numpy at min(R, 65536)
runs, both for at most N agents); throughput is per agent step, so sizes only matter through cache
and vector length. Each timing is the best of --repeats, interleaved so that load from other
processes hits all three alike. Ratios are ours / baseline. Peak memory: CUDA max allocated, or the
process's peak resident set during our run on the CPU (VmHWM, reset before the run; it includes the
interpreter and torch, about 300-400 MiB). The streaming summaries keep ours O(R): the last line
measures the peak at two horizons N and 4N to show it does not grow with N.

--before TREE (with --paper-size) times a checkout of an earlier commit (`git worktree add TREE REV`)
in the same rounds, in-process and as a whole process, so that a speed change is measured before and
after in one run, under the same load.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from dev.dpsl_reference import simulate_loop, simulate_numpy  # noqa: E402
from dpsl import Scenario, simulate  # noqa: E402

SIGMA, EPS = 1.0, 1.0


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, so the next reading is this phase's peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_ours(runs: int, agents: int, device: str) -> tuple[float, float]:
    scenario = Scenario(
        signal="gaussian",
        sigma=SIGMA,
        mechanism="smooth",
        epsilon=EPS,
        agents=agents,
        runs=runs,
        seed=1,
        checkpoints=(agents,),
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        _reset_peak_rss()
    start = time.perf_counter()
    simulate(scenario, device=device)  # the result is copied to the host, which synchronises
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else _peak_rss_mib()
    return runs * agents / elapsed, peak


def time_numpy(runs: int, agents: int) -> float:
    start = time.perf_counter()
    simulate_numpy(SIGMA, EPS, runs, agents, seed=1)
    return runs * agents / (time.perf_counter() - start)


def time_loop(runs: int, agents: int) -> float:
    start = time.perf_counter()
    simulate_loop(SIGMA, EPS, runs, agents, seed=1)
    return runs * agents / (time.perf_counter() - start)


PAPER = (50_000, 4_000)  # the paper-size run: R x N of a user's `python -m dpsl simulate`


def whole_process(runs: int, agents: int, device: str, repeats: int, before: Path | None = None) -> dict:
    """Ours in-process and as a whole `python -m dpsl simulate` process, and numpy, at R x N: the best
    of `repeats` rounds, each round timing the three one after another, so that load from other
    processes hits all three alike (and the checkout `before` the same two ways, when given)."""
    best = {"ours": 0.0, "cli": 0.0, "numpy": 0.0}
    if before is not None:
        best.update(before_ours=0.0, before_cli=0.0)
    imports = []
    for _ in range(repeats):
        rates, import_s = _whole_round(runs, agents, device, before)
        imports.append(import_s)
        for name, rate in rates.items():
            best[name] = max(best[name], rate)
    return {
        "runs": runs,
        "agents": agents,
        "repeats": repeats,
        **best,
        "ratio": best["ours"] / best["numpy"],
        "cli_ratio": best["cli"] / best["numpy"],
        "torch_import_s": imports,
        **(
            {
                "before_ratio": best["before_ours"] / best["numpy"],
                "before_cli_ratio": best["before_cli"] / best["numpy"],
            }
            if before is not None
            else {}
        ),
    }


# In-process timing of a checkout's own engine (--before): run with that checkout as the working directory.
_IN_PROCESS = """
import sys, time
sys.path.insert(0, ".")
from dpsl import Scenario, simulate
s = Scenario(signal="gaussian", sigma={sigma}, mechanism="smooth", epsilon={eps}, agents={agents}, runs={runs},
             seed=1, checkpoints=({agents},))
simulate(s.with_(agents=16, runs=8192, checkpoints=(16,)), device="{device}")  # warm-up, as time_ours's
start = time.perf_counter()
simulate(s, device="{device}")
print(time.perf_counter() - start)
"""


def _whole_round(runs: int, agents: int, device: str, before: Path | None = None) -> tuple[dict, float]:
    """One round: ours, a bare `import torch` process (what any torch CLI pays first: 2-11 s here,
    depending on whether the CUDA libraries torch loads are still in the page cache), the CLI right
    after it, numpy; then, with `before`, that checkout in-process and as a CLI."""
    import subprocess

    ours, _ = time_ours(runs, agents, device)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    import_s = time.perf_counter() - start
    command = [
        sys.executable,
        "-m",
        "dpsl",
        "simulate",
        "--signal",
        "gaussian",
        "--sigma",
        str(SIGMA),
        "--mechanism",
        "smooth",
        "--epsilon",
        str(EPS),
        "--agents",
        str(agents),
        "--runs",
        str(runs),
        "--device",
        device,
        "--json",
        "--out",
        "/dev/null",
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=Path(__file__).resolve().parents[1])
    cli = runs * agents / (time.perf_counter() - start)
    rates = {"ours": ours, "cli": cli, "numpy": time_numpy(runs, agents)}
    if before is not None:
        code = _IN_PROCESS.format(sigma=SIGMA, eps=EPS, agents=agents, runs=runs, device=device)
        done = subprocess.run(
            [sys.executable, "-c", code], check=True, cwd=before, capture_output=True, text=True
        )
        rates["before_ours"] = runs * agents / float(done.stdout.split()[-1])
        start = time.perf_counter()
        subprocess.run(command, check=True, cwd=before)
        rates["before_cli"] = runs * agents / (time.perf_counter() - start)
    return rates, import_s


def profile_kernel(runs: int = 24_576, agents: int = 400) -> str:
    """torch.profiler's op table for one chunk on one thread: a paper-size chunk (50000 runs are two
    chunks of about this size on two cores), after a warm-up pass over the same runs."""
    from torch.profiler import ProfilerActivity, profile

    from dpsl.chunks import Chunk
    from dpsl.outputs import Outputs

    torch.set_num_threads(1)
    scenario = Scenario(
        signal="gaussian", sigma=SIGMA, mechanism="smooth", epsilon=EPS, agents=agents, runs=runs, seed=1
    )
    dev = torch.device("cpu")
    seconds = []
    # Under inference mode, as the engine runs its chunks (dpsl/engine.py, _run_chunk).
    with torch.inference_mode():
        for _ in range(2):  # the first pass warms the allocator; the second is the timing
            chunk = Chunk(scenario, dev, 0, runs)
            start = time.perf_counter()
            chunk.run(Outputs(scenario), lambda steps: None)
            seconds.append(time.perf_counter() - start)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            Chunk(scenario, dev, 0, runs).run(Outputs(scenario), lambda steps: None)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    return f"one chunk of {runs} runs, one thread: {seconds[-1] / agents * 1e6:.0f} us a step (unprofiled)\n{table}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=None, help="R (default 131072 CPU, 4194304 CUDA)")
    parser.add_argument("--agents", type=int, default=None, help="N (default 200 CPU, 500 CUDA)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    parser.add_argument(
        "--paper-size",
        action="store_true",
        help="also in-process, whole CLI process and numpy side by side (best of --repeats rounds) at "
        "R=50000 x N=4000 and at the benchmark size",
    )
    parser.add_argument(
        "--profile", action="store_true", help="print the op profile of one CPU chunk and stop"
    )
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        metavar="TREE",
        help="with --paper-size: also time this checkout of an earlier commit in the same rounds",
    )
    args = parser.parse_args(argv)
    if args.before is not None and not (args.paper_size and (args.before / "dpsl" / "__main__.py").is_file()):
        parser.error(
            "--before needs --paper-size and a checkout of this repository (one with dpsl/__main__.py)"
        )
    if args.profile:
        print(profile_kernel())
        return 0
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("no CUDA device available", file=sys.stderr)
        return 1
    runs = args.runs or (4_194_304 if cuda else 131_072)
    agents = args.agents or (500 if cuda else 200)
    np_runs, np_agents = min(runs, 65_536), min(agents, 200)
    loop_runs, loop_agents = 4, min(agents, 500)

    time_ours(min(runs, 8192), 16, args.device)  # warm-up: first-touch allocations, CUDA context
    best = {"ours": 0.0, "numpy": 0.0, "loop": 0.0}
    peak = 0.0
    for _ in range(args.repeats):
        rate, peak = time_ours(runs, agents, args.device)
        best["ours"] = max(best["ours"], rate)
        best["numpy"] = max(best["numpy"], time_numpy(np_runs, np_agents))
        best["loop"] = max(best["loop"], time_loop(loop_runs, loop_agents))
    _, peak_n = time_ours(runs, agents, args.device)
    _, peak_4n = time_ours(runs, 4 * agents, args.device)
    report = {
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu x{torch.get_num_threads()} threads",
        "runs": runs,
        "agents": agents,
        "ours_agent_steps_per_s": best["ours"],
        "numpy_agent_steps_per_s": best["numpy"],
        "numpy_size": [np_runs, np_agents],
        "loop_agent_steps_per_s": best["loop"],
        "loop_size": [loop_runs, loop_agents],
        "ratio_vs_numpy": best["ours"] / best["numpy"],
        "ratio_vs_loop": best["ours"] / best["loop"],
        "peak_mib": peak,
        "peak_mib_at_N": peak_n,
        "peak_mib_at_4N": peak_4n,
        "peak_kind": "cuda max allocated" if cuda else "process peak RSS",
    }
    if args.paper_size:
        report["paper_size"] = whole_process(*PAPER, args.device, args.repeats, args.before)
        report["benchmark_size_whole"] = whole_process(runs, agents, args.device, args.repeats, args.before)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"dpsl throughput, Gaussian smooth RR (sigma={SIGMA}, eps={EPS}) on {report['device']}")
    print(f"  ours   R={runs} N={agents}: {best['ours']:.3e} agent-steps/s")
    print(
        f"  numpy  R={np_runs} N={np_agents}: {best['numpy']:.3e} agent-steps/s  -> ours x{report['ratio_vs_numpy']:.2f}"
    )
    print(
        f"  loop   R={loop_runs} N={loop_agents}: {best['loop']:.3e} agent-steps/s  -> ours x{report['ratio_vs_loop']:.0f}"
    )
    print(
        f"  peak memory ({report['peak_kind']}): {peak:.0f} MiB; at N={agents}: {peak_n:.0f} MiB, "
        f"at N={4 * agents}: {peak_4n:.0f} MiB"
    )
    if args.paper_size:
        for label, key in (("paper size", "paper_size"), ("benchmark size", "benchmark_size_whole")):
            ps = report[key]
            print(
                f"  {label} R={ps['runs']} N={ps['agents']}: ours {ps['ours']:.3e}, whole CLI process "
                f"{ps['cli']:.3e}, numpy {ps['numpy']:.3e} agent-steps/s -> ours x{ps['ratio']:.2f}, CLI "
                f"x{ps['cli_ratio']:.2f} (best of {ps['repeats']}; a bare `import torch` process before each "
                "CLI run took " + ", ".join(f"{t:.1f}" for t in ps["torch_import_s"]) + " s)"
            )
            if args.before is not None:
                print(
                    f"    before ({args.before}): ours {ps['before_ours']:.3e}, whole CLI process "
                    f"{ps['before_cli']:.3e} -> x{ps['before_ratio']:.2f}, CLI x{ps['before_cli_ratio']:.2f}; "
                    f"after / before: in-process {ps['ours'] / ps['before_ours']:.2f}, CLI {ps['cli'] / ps['before_cli']:.2f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
