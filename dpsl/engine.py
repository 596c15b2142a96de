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
    (see _CPU_CHUNK_CAP); torchrun spreads them over processes too.
    progress and should_cancel are called only on the caller's thread.

Memory
    Per-run outputs and the LLR at the checkpoints are O(runs); the full LLR path (keep_paths) is
    O(runs x agents) and is checked against the memory budget before anything runs.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import numpy as np
import torch

from . import kernels
from .results import Result
from .scenario import Scenario, ScenarioError

log = logging.getLogger(__name__)

RNG_BLOCK_RUNS = 4096
DEFAULT_MEMORY_BUDGET = 2 * 2**30
# CPU chunks: whole blocks, at most this many runs, balanced over the worker threads. Wider ops spread
# the per-op Python cost and the GIL hand-over between worker threads; narrower ones stay in cache.
# Measured on two cores, R = 50000, N = 1000, tabulated smooth kernel: two threads on ~25000-run
# chunks 2.83e7 agent-steps/s, one thread 1.60e7, four threads on 16384-run chunks 1.66e7 (the GIL
# changes hands at every op). A kernel with microsecond ops also runs with one intra-op thread
# (`kernels.Kernel.intra_op_threads`).
_CPU_CHUNK_CAP = 8 * RNG_BLOCK_RUNS
_CUDA_CHUNK_RUNS = 2**21
# Agent steps whose uniforms are drawn in one call per block. Changing it changes CUDA streams
# (Philox offsets advance per call), so it is fixed per device type.
_STEPS_PER_TILE = {"cpu": 16, "cuda": 64}


def _work_bytes_per_run(dev: torch.device, draws: int) -> int:
    """Working memory per run in a chunk: ~40 state and scratch vectors plus one tile of uniforms."""
    return 8 * (40 + _STEPS_PER_TILE[dev.type] * draws)


class Cancelled(Exception):
    """The caller's should_cancel() returned True; the simulation stopped between agent steps."""


class MemoryBudgetError(ScenarioError):
    """The requested outputs do not fit the memory budget."""


ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


def block_seed(seed: int, block: int) -> int:
    """The generator seed of run block `block`: independent streams from one user seed."""
    state = np.random.SeedSequence([seed, block]).generate_state(2, np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


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
    if dev.type not in _STEPS_PER_TILE:
        raise ScenarioError(f"device must be 'cpu' or a CUDA device, got {device!r}")
    return dev


def _spans(scenario: Scenario, dev: torch.device, chunk_runs: int | None, budget: int, parts: int):
    """The chunks [start, stop) of all runs, whole RNG blocks each; parts = processes x worker threads.

    chunk_runs given: chunks of that size, rounded up to whole blocks. Otherwise on the CPU a multiple
    of `parts` chunks of at most _CPU_CHUNK_CAP runs, balanced to a block; on CUDA chunks of
    _CUDA_CHUNK_RUNS. Both defaults are bounded by the memory budget.
    """
    runs, blocks = scenario.runs, math.ceil(scenario.runs / RNG_BLOCK_RUNS)
    if chunk_runs is not None and chunk_runs < 1:
        raise ScenarioError(f"chunk_runs must be >= 1, got {chunk_runs}")
    paths = (scenario.agents + 1) * 8 if scenario.keep_paths else 0
    per_run = _work_bytes_per_run(dev, kernels.draws(scenario)) + paths
    cap = min(_CPU_CHUNK_CAP if dev.type == "cpu" else _CUDA_CHUNK_RUNS, max(1, budget // 2 // per_run))
    cap_blocks = max(1, cap // RNG_BLOCK_RUNS)
    if chunk_runs is not None or dev.type != "cpu":
        size = (
            math.ceil(chunk_runs / RNG_BLOCK_RUNS) if chunk_runs is not None else cap_blocks
        ) * RNG_BLOCK_RUNS
        return [(start, min(start + size, runs)) for start in range(0, runs, size)]
    count = min(blocks, parts * math.ceil(blocks / (parts * cap_blocks)))
    # Chunk i takes blocks [i B / count, (i + 1) B / count): at most cap_blocks each, and the runs
    # balanced to a block (the partial last block goes to the last chunk).
    edges = [min(runs, (i * blocks // count) * RNG_BLOCK_RUNS) for i in range(count + 1)]
    return [(lo, hi) for lo, hi in itertools.pairwise(edges) if hi > lo]


def simulate(
    scenario: Scenario,
    device=None,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    chunk_runs: int | None = None,
    memory_budget: int | None = None,
    distributed: bool = False,
) -> Result:
    """Simulate `scenario.runs` independent runs of `scenario.agents` agents under theta = +1.

    device: "cpu" (default), "cuda", "cuda:N" or "auto" (CUDA when available). progress(done, total) is called with agent steps
    done so far, every few steps; should_cancel() is polled as often and raises `Cancelled` when it
    returns True. chunk_runs: runs simulated at once (rounded up to a multiple of RNG_BLOCK_RUNS;
    default by device and memory budget); it never changes the result. memory_budget: bytes the
    outputs and working memory may take (default 2 GiB); `MemoryBudgetError` if keep_paths would
    exceed it.

    distributed: inside an initialised torch.distributed group (torchrun), every rank simulates its
    share of the chunks (chunk i on rank i mod world size; chunks are whole RNG blocks) and the per-run
    outputs are summed across ranks, each run coming from exactly one rank. Every rank then holds the
    single-process result for the same seed and device type, exactly: each value is one rank's value
    plus zeros, and the summaries are computed from those identical per-run arrays.
    """
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
    spans = _spans(scenario, dev, chunk_runs, budget, world * threads)[rank::world]
    out = _Outputs(scenario, zeroed=world > 1)
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


def _run_sequential(scenario, dev, spans, out, progress, should_cancel, total) -> None:
    done = 0

    def tick(steps: int) -> None:
        nonlocal done
        done += steps
        if progress is not None:
            progress(done, total)
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"cancelled after {done} of {total} agent steps")

    for start, stop in spans:
        _Chunk(scenario, dev, start, stop).run(out, tick)


def _run_threaded(scenario, dev, spans, out, progress, should_cancel, total, workers) -> None:
    """Chunks on worker threads; progress and should_cancel are only ever called on this thread."""
    lock = threading.Lock()
    stop = threading.Event()
    done = [0]

    def tick(steps: int) -> None:
        with lock:
            done[0] += steps
        if stop.is_set():
            raise Cancelled("cancelled")

    def work(span):
        if not stop.is_set():
            with _intra_op_threads(kernels.kernel_for(scenario).intra_op_threads):
                _Chunk(scenario, dev, *span).run(out, tick)

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
                    raise Cancelled(f"cancelled after {done[0]} of {total} agent steps")
        except BaseException:
            stop.set()
            raise


class _Outputs:
    """Host-side per-run outputs, filled chunk by chunk (disjoint slices; shared sums under a lock)."""

    PER_RUN = (
        "llr_checkpoints",
        "llr_final",
        "first_correct_action",
        "first_correct_report",
        "wrong_actions",
        "wrong_reports",
        "action_correct",
        "report_correct",
        "cascade_time",
        "cascade_side",
        "belief_stop_time",
        "paths",
    )

    def __init__(self, scenario: Scenario, zeroed: bool = False):
        runs, c = scenario.runs, len(scenario.resolved_checkpoints)
        new = np.zeros if zeroed else np.empty  # zeros where another rank fills the runs
        self.scenario = scenario
        self.llr_checkpoints = new((runs, c))
        self.llr_final = new(runs)
        self.first_correct_action = new(runs, dtype=np.int64)
        self.first_correct_report = new(runs, dtype=np.int64)
        self.wrong_actions = new(runs, dtype=np.int64)
        self.wrong_reports = new(runs, dtype=np.int64)
        self.action_correct = np.zeros(c, dtype=np.int64)
        self.report_correct = np.zeros(c, dtype=np.int64)
        binary = scenario.signal == "binary"
        self.cascade_time = new(runs, dtype=np.int64) if binary else None
        self.cascade_side = new(runs, dtype=np.int8) if binary else None
        self.belief_stop_time = new(runs, dtype=np.int64) if scenario.belief_threshold is not None else None
        self.paths = new((runs, scenario.agents + 1)) if scenario.keep_paths else None
        self.lock = threading.Lock()

    def sum_across_ranks(self, dev: torch.device) -> None:
        """All-reduce every output; NCCL reduces on the rank's GPU, gloo on the CPU."""
        where = dev if torch.distributed.get_backend() == "nccl" else torch.device("cpu")
        for name in self.PER_RUN:
            array = getattr(self, name)
            if array is None:
                continue
            wide = torch.from_numpy(array.astype(np.int64) if array.dtype == np.int8 else array).to(where)
            torch.distributed.all_reduce(wide)
            setattr(self, name, wide.cpu().numpy().astype(array.dtype))

    def to_result(self, device: str, elapsed: float) -> Result:
        return Result(
            scenario=self.scenario,
            checkpoints=np.asarray(self.scenario.resolved_checkpoints, dtype=np.int64),
            llr_checkpoints=self.llr_checkpoints,
            action_correct_rate=self.action_correct / self.scenario.runs,
            report_correct_rate=self.report_correct / self.scenario.runs,
            llr_final=self.llr_final,
            first_correct_action=self.first_correct_action,
            first_correct_report=self.first_correct_report,
            wrong_actions=self.wrong_actions,
            wrong_reports=self.wrong_reports,
            cascade_time=self.cascade_time,
            cascade_side=self.cascade_side,
            belief_stop_time=self.belief_stop_time,
            paths=self.paths,
            device=device,
            elapsed_s=elapsed,
        )


class _Chunk:
    """Runs [start, start + runs) on one device: the generic driver around one model's kernel.

    The driver owns the randomness, the counters every model shares and the outputs; the kernel
    (`kernels.kernel_for`) turns the public LLR and one slab of uniforms into each run's wrong action, wrong
    report and next LLR.
    """

    def __init__(self, scenario: Scenario, dev: torch.device, start: int, stop: int):
        self.s = scenario
        self.start, self.runs = start, stop - start
        self.tile = _STEPS_PER_TILE[dev.type]
        self.blocks = []
        for b in range(start // RNG_BLOCK_RUNS, math.ceil(stop / RNG_BLOCK_RUNS)):
            lo, hi = b * RNG_BLOCK_RUNS, min((b + 1) * RNG_BLOCK_RUNS, scenario.runs)
            gen = torch.Generator(device=dev)
            gen.manual_seed(block_seed(scenario.seed, b))
            self.blocks.append((gen, lo - start, hi - start))
        runs, f64, i64 = self.runs, torch.float64, torch.int64
        draws = kernels.draws(scenario)
        self.uniforms = torch.empty((self.tile, draws, runs), dtype=f64, device=dev)
        self.slabs = (
            {
                hi - lo: torch.empty((self.tile, draws, hi - lo), dtype=f64, device=dev)
                for _, lo, hi in self.blocks
            }
            if len(self.blocks) > 1
            else {}
        )
        self.llr = torch.zeros(runs, dtype=f64, device=dev)
        self.a_wrong = torch.empty(runs, dtype=torch.bool, device=dev)
        self.x_wrong = torch.empty(runs, dtype=torch.bool, device=dev)
        self.wrong_a = torch.zeros(runs, dtype=i64, device=dev)
        self.wrong_x = torch.zeros(runs, dtype=i64, device=dev)
        # Leading-wrong counters: tau = count + 1, and count = agents means "not within the horizon".
        self.all_wrong_a = torch.ones(runs, dtype=torch.bool, device=dev)
        self.all_wrong_x = torch.ones(runs, dtype=torch.bool, device=dev)
        self.lead_a = torch.zeros(runs, dtype=i64, device=dev)
        self.lead_x = torch.zeros(runs, dtype=i64, device=dev)
        self.ckpt_index = {c: i for i, c in enumerate(scenario.resolved_checkpoints)}
        self.ckpt_l = torch.empty((len(self.ckpt_index), runs), dtype=f64, device=dev)
        self.ckpt_a = torch.zeros(len(self.ckpt_index), dtype=i64, device=dev)
        self.ckpt_x = torch.zeros(len(self.ckpt_index), dtype=i64, device=dev)
        self.paths = (
            torch.zeros((scenario.agents + 1, runs), dtype=f64, device=dev) if scenario.keep_paths else None
        )
        if scenario.belief_threshold is not None:
            self.below = torch.ones(runs, dtype=torch.bool, device=dev)
            self.lead_b = torch.zeros(runs, dtype=i64, device=dev)
            self.absl = torch.empty(runs, dtype=f64, device=dev)
            self.below_now = torch.empty(runs, dtype=torch.bool, device=dev)
        # Per-tile counts as bytes (a tile is at most 64 steps): adding a bool mask to an int64 counter
        # makes a converted temporary every step, and at 128 KiB each those temporaries are mmap'd and
        # unmapped again, which serialises the chunk threads on the process's memory map.
        counts = 5 if scenario.belief_threshold is not None else 4
        self.tile_counts = torch.zeros((counts, runs), dtype=torch.uint8, device=dev)
        self.kernel = kernels.kernel_for(scenario)(scenario, dev, self.llr, self.a_wrong, self.x_wrong)

    def _draw_tile(self) -> None:
        # Each block fills its own contiguous slab, so its stream does not depend on the chunk layout.
        if len(self.blocks) == 1:
            self.uniforms.uniform_(generator=self.blocks[0][0])
            return
        for gen, lo, hi in self.blocks:
            slab = self.slabs[hi - lo]
            slab.uniform_(generator=gen)
            self.uniforms[:, :, lo:hi].copy_(slab)

    def run(self, out: _Outputs, tick: Callable[[int], None]) -> None:
        """All agents, tile by tile; tick(steps done) after each tile may raise Cancelled."""
        agents = self.s.agents
        for tile_start in range(0, agents, self.tile):
            self._draw_tile()
            steps = min(self.tile, agents - tile_start)
            for i in range(steps):
                self.kernel.step(self.uniforms[i])
                self._record(tile_start + i + 1)
            self._fold_tile_counts()
            tick(steps * self.runs)
        self._flush(out)

    def _record(self, agent: int) -> None:
        """Per-run counters after `agent` has acted and reported (llr is now l_{agent+1})."""
        wrong_a, wrong_x, lead_a, lead_x = self.tile_counts[:4]
        wrong_a.add_(self.a_wrong.view(torch.uint8))
        wrong_x.add_(self.x_wrong.view(torch.uint8))
        lead_a.add_(self.all_wrong_a.logical_and_(self.a_wrong).view(torch.uint8))
        lead_x.add_(self.all_wrong_x.logical_and_(self.x_wrong).view(torch.uint8))
        if self.s.belief_threshold is not None:
            torch.abs(self.llr, out=self.absl)
            self.below.logical_and_(torch.lt(self.absl, self.s.belief_threshold, out=self.below_now))
            self.tile_counts[4].add_(self.below.view(torch.uint8))
        i = self.ckpt_index.get(agent)
        if i is not None:
            self.ckpt_l[i].copy_(self.llr)
            self.ckpt_a[i] += self.runs - self.a_wrong.sum()
            self.ckpt_x[i] += self.runs - self.x_wrong.sum()
        if self.paths is not None:
            self.paths[agent].copy_(self.llr)

    def _fold_tile_counts(self) -> None:
        totals = [self.wrong_a, self.wrong_x, self.lead_a, self.lead_x]
        if self.s.belief_threshold is not None:
            totals.append(self.lead_b)
        for total, tile in zip(totals, self.tile_counts, strict=True):
            total.add_(tile)
        for tile in self.tile_counts:  # row by row: each below the intra-op parallel grain
            tile.zero_()

    def _flush(self, out: _Outputs) -> None:
        sl = slice(self.start, self.start + self.runs)
        out.llr_checkpoints[sl] = self.ckpt_l.T.cpu().numpy()
        out.llr_final[sl] = self.llr.cpu().numpy()
        out.first_correct_action[sl] = (self.lead_a + 1).cpu().numpy()
        out.first_correct_report[sl] = (self.lead_x + 1).cpu().numpy()
        out.wrong_actions[sl] = self.wrong_a.cpu().numpy()
        out.wrong_reports[sl] = self.wrong_x.cpu().numpy()
        with out.lock:
            out.action_correct += self.ckpt_a.cpu().numpy()
            out.report_correct += self.ckpt_x.cpu().numpy()
        if self.s.belief_threshold is not None:
            # tau_B = the number of reports until |l| >= B, from l = 0 (the authors' Figure 6a count;
            # the index of the first agent whose prior belief reaches B is one more).
            out.belief_stop_time[sl] = (self.lead_b + 1).cpu().numpy()
        if self.paths is not None:
            out.paths[sl] = self.paths.T.cpu().numpy()
        self.kernel.flush(out, sl)


# -- one kernel per model ----------------------------------------------------------------------------
