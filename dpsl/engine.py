"""The Monte Carlo engine: runs vectorised on a torch device, agents stepped in order, chunked over runs.

Randomness and reproducibility
    Runs are grouped in fixed blocks of `RNG_BLOCK_RUNS`. Block b draws from its own generator,
    seeded from (seed, b) through numpy's SeedSequence, and consumes exactly one slab of uniforms per
    agent step. A run's randomness therefore depends only on (seed, its block, the number of runs in
    its block), never on how blocks are grouped into chunks: chunked and unchunked simulations give
    identical results for the same seed, on the same device. The block size is a constant and never
    follows the memory budget. CPU and CUDA generators differ, so results are reproducible per seed
    *and device*; the laws agree (a GPU test checks this statistically).

One uniform per agent step
    Given the public LLR l_n, the pair (intended action a_n, report x_n) has four possible values,
    with probabilities the closed form of `public_belief` already computes (T1 - T2, T2, T3, rest).
    The engine draws the pair from that exact joint law with one uniform instead of drawing the
    signal s_n and then the flip: same process, no normal variates. Heterogeneous budgets draw eps_n
    explicitly (a second uniform) and use the agent's own masses at eps_n; the public uses the
    quadrature average. The signal-level simulation (draw s_n, flip with A e^{-eps|s-t|}) lives in
    `reference.py`, and the tests check the two agree in law.

The step law of homogeneous smooth RR
    For the paper's case (Gaussian signals, one smooth-RR budget for all) the masses and increments
    are functions of l_n alone. On the CPU they come from a table of cubics (`step_law`), within
    1e-13 of the closed form, so the same uniforms give the same actions and reports either way.

Threads
    On the CPU, chunks of whole blocks run concurrently on torch.get_num_threads() Python threads
    (see CPU_CHUNK_CAP); torchrun spreads them over processes too.
    progress and should_cancel are called only on the caller's thread.

Memory
    Per-run outputs and the LLR at the checkpoints are O(runs); the full LLR path (keep_paths) is
    O(runs x agents) and is checked against the memory budget before anything runs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

import torch

from . import kernels
from .chunks import STEPS_PER_TILE, Chunk
from .chunks import spans as chunk_spans
from .outputs import Outputs
from .results import Result
from .scenario import Scenario, ScenarioError

log = logging.getLogger(__name__)

DEFAULT_MEMORY_BUDGET = 2 * 2**30


class SimulationCancelled(Exception):
    """The caller's should_cancel() returned True; the simulation stopped between agent steps."""


class MemoryBudgetError(ScenarioError):
    """The requested outputs do not fit the memory budget."""


ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


@dataclass(frozen=True)
class RunOptions:
    """How a simulation runs, never what it computes (the same seed gives the same numbers whatever these
    are): the device ("cpu", "cuda", "cuda:N" or "auto"), progress(done, total) in agent steps,
    should_cancel() polled between steps, chunk_runs (runs simulated at once; default by device and
    memory budget), memory_budget in bytes (default 2 GiB), distributed (inside an initialised
    torch.distributed group). One object for `simulate`, `sweep`, the CLI and the node."""

    device: str | torch.device | None = None
    progress: ProgressFn | None = None
    should_cancel: CancelFn | None = None
    chunk_runs: int | None = None
    memory_budget: int | None = None
    distributed: bool = False

    def with_(self, **changes) -> RunOptions:
        return replace(self, **changes)


def result_bytes(scenario: Scenario) -> int:
    """Host memory the outputs take: per-run scalars, the checkpoint LLRs and, if kept, the paths."""
    runs, agents = scenario.runs, scenario.agents
    total = runs * 8 * (10 + len(scenario.resolved_checkpoints))
    if scenario.keep_paths:
        total += runs * (agents + 1) * 8
    return total


def budget_from_gib(gib: float) -> int:
    """A memory budget given in GiB (a widget, a flag) as bytes; ScenarioError unless finite and > 0."""
    if isinstance(gib, bool) or not isinstance(gib, (int, float)) or not math.isfinite(gib) or gib <= 0:
        raise ScenarioError(f"memory_budget_gb must be a positive number of GiB, got {gib!r}")
    return int(gib * 2**30)


def device_memory(dev: torch.device) -> int:
    """Bytes of memory the device has: the GPU's, or the machine's physical memory for the CPU."""
    if dev.type == "cuda":
        return torch.cuda.get_device_properties(dev).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(scenario: Scenario, budget: int, limited_by_device: bool = False) -> None:
    need = result_bytes(scenario)
    if need <= budget:
        return
    gib = 2**30
    if limited_by_device:
        raise MemoryBudgetError(
            f"the outputs need {need / gib:.2f} GiB, more than this device has ({budget / gib:.2f} GiB), whatever "
            "the memory budget says; lower runs, agents or the number of checkpoints"
            + (", or turn keep_paths off" if scenario.keep_paths else "")
        )
    if scenario.keep_paths:
        raise MemoryBudgetError(
            f"keep_paths stores runs x agents = {scenario.runs} x {scenario.agents + 1} LLR values "
            f"({need / gib:.2f} GiB with the other outputs), over the memory budget of {budget / gib:.2f} GiB; "
            "turn keep_paths off (the summaries at checkpoints stream in O(runs) memory), or lower runs or agents"
        )
    raise MemoryBudgetError(
        f"runs = {scenario.runs} with {len(scenario.resolved_checkpoints)} checkpoints needs "
        f"{need / gib:.2f} GiB of outputs, over the memory budget of {budget / gib:.2f} GiB; lower runs or "
        "the number of checkpoints"
    )


def _resolve_device(device) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError, ValueError):
        raise ScenarioError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ScenarioError(f"device {device!r} was requested but CUDA is not available; use 'cpu'")
    if dev.type not in STEPS_PER_TILE:
        raise ScenarioError(f"device must be 'cpu' or a CUDA device, got {device!r}")
    return dev


def simulate(scenario: Scenario, options: RunOptions | None = None, **changes) -> Result:
    """Simulate `scenario.runs` independent runs of `scenario.agents` agents under theta = +1.

    `options` (`RunOptions`, with `changes` applied: `simulate(s, device="cuda")` reads as it says).
    device: "cpu" (default), "cuda", "cuda:N" or "auto" (CUDA when available). progress(done, total) is
    called with agent steps done so far, every few steps; should_cancel() is polled as often and raises
    `SimulationCancelled` when it returns True. chunk_runs: runs simulated at once (rounded up to a multiple of
    RNG_BLOCK_RUNS; default by device and memory budget); it never changes the result. memory_budget:
    bytes the outputs and working memory may take (default 2 GiB); `MemoryBudgetError` if keep_paths
    would exceed it.

    distributed: inside an initialised torch.distributed group (torchrun), every rank simulates its
    share of the chunks (chunk i on rank i mod world size; chunks are whole RNG blocks) and the per-run
    outputs are summed across ranks, each run coming from exactly one rank. Every rank then holds the
    single-process result for the same seed and device type, exactly: each value is one rank's value
    plus zeros, and the summaries are computed from those identical per-run arrays.
    """
    options = (options or RunOptions()).with_(**changes)
    device, progress, should_cancel = options.device, options.progress, options.should_cancel
    chunk_runs, memory_budget, distributed = options.chunk_runs, options.memory_budget, options.distributed
    dev = _resolve_device(device)
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget
    if (
        isinstance(budget, bool)
        or not isinstance(budget, (int, float))
        or not math.isfinite(budget)
        or budget <= 0
    ):
        raise ScenarioError(f"memory_budget must be a positive number of bytes, got {memory_budget!r}")
    # A budget above what the device has is no budget: bound it, so an oversized request fails here with
    # a message instead of in the allocator (or the kernel's overcommit).
    available = device_memory(dev)
    check_memory(scenario, int(min(budget, available)), limited_by_device=available < budget)
    budget = int(min(budget, available))
    rank, world = (
        (torch.distributed.get_rank(), torch.distributed.get_world_size()) if distributed else (0, 1)
    )
    threads = torch.get_num_threads() if dev.type == "cpu" else 1
    spans = chunk_spans(scenario, dev, chunk_runs, budget, world * threads)[rank::world]
    out = Outputs(scenario, zeroed=world > 1)
    total = sum(stop - start for start, stop in spans) * scenario.agents
    workers = min(len(spans), threads)
    started = time.perf_counter()
    if dev.type != "cpu":
        _run_sequential(scenario, dev, spans, out, progress, should_cancel, total)
    elif workers == 1:
        with _intra_op_threads(kernels.kernel_for(scenario).intra_op_threads):
            _run_sequential(scenario, dev, spans, out, progress, should_cancel, total)
    else:
        _run_threaded(scenario, dev, spans, out, progress, should_cancel, total, workers)
    if world > 1:
        out.sum_across_ranks(dev)
    elapsed = time.perf_counter() - started
    log.debug("simulated %d agent steps in %.3f s on %s (%d chunks)", total, elapsed, dev, len(spans))
    return out.to_result(str(dev), elapsed)


@contextlib.contextmanager
def _intra_op_threads(count: int | None):
    """torch's intra-op thread count on this thread for the duration (None: unchanged), restored after
    (OpenMP keeps the count per calling thread, so other threads' ops keep theirs)."""
    if count is None:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _run_chunk(scenario, dev, span, out, tick) -> None:
    """One chunk, built and run under inference mode (per thread): nothing here needs autograd, and
    without its bookkeeping each of a step's torch calls dispatches faster (figures in
    docs/performance.md); the same kernels, so the same numbers."""
    with torch.inference_mode():
        Chunk(scenario, dev, *span).run(out, tick)


def _run_sequential(scenario, dev, spans, out, progress, should_cancel, total) -> None:
    done = 0

    def tick(steps: int) -> None:
        nonlocal done
        done += steps
        if progress is not None:
            progress(done, total)
        if should_cancel is not None and should_cancel():
            raise SimulationCancelled(f"cancelled after {done} of {total} agent steps")

    for span in spans:
        _run_chunk(scenario, dev, span, out, tick)


def _run_threaded(scenario, dev, spans, out, progress, should_cancel, total, workers) -> None:
    """Chunks on worker threads; progress and should_cancel are only ever called on this thread."""
    lock = threading.Lock()
    stop = threading.Event()
    done = [0]

    def tick(steps: int) -> None:
        with lock:
            done[0] += steps
        if stop.is_set():
            raise SimulationCancelled("cancelled")

    def work(span):
        if not stop.is_set():
            with _intra_op_threads(kernels.kernel_for(scenario).intra_op_threads):
                _run_chunk(scenario, dev, span, out, tick)

    reported = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dpsl") as pool:
        pending = {pool.submit(work, span) for span in spans}
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.05, return_when=FIRST_EXCEPTION)
                for f in finished:
                    f.result()  # re-raise a worker's error here
                if progress is not None and done[0] != reported:
                    reported = done[0]
                    progress(reported, total)
                if should_cancel is not None and should_cancel():
                    raise SimulationCancelled(f"cancelled after {done[0]} of {total} agent steps")
        except BaseException:
            stop.set()
            raise


# -- one kernel per model ----------------------------------------------------------------------------
