"""How a simulation's runs are cut into chunks, and the driver that runs one chunk.

Runs are grouped in RNG blocks of `RNG_BLOCK_RUNS` (each block its own generator, seeded by `block_seed`),
so results do not depend on how runs are split over threads, ranks or memory; `spans` chooses the
chunks (whole blocks each), and `Chunk` runs one of them on a device with a model's kernel
(`kernels.kernel_for`), flushing into the shared `outputs.Outputs`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import torch

from . import kernels
from .outputs import Outputs
from .scenario import Scenario, ScenarioError

RNG_BLOCK_RUNS = 4096
# CPU chunks: whole blocks, at most this many runs, balanced over the worker threads. Wider ops spread
# the per-op Python cost and the GIL hand-over between worker threads; narrower ones stay in cache.
# On two cores two threads on chunks of this size were the fastest layout (more threads lose to the GIL
# changing hands at every op; figures: benchmarks/dpsl_throughput.py and docs/performance.md). A kernel with microsecond ops also runs with one intra-op thread
# (`kernels.Kernel.intra_op_threads`).
CPU_CHUNK_CAP = 8 * RNG_BLOCK_RUNS
CUDA_CHUNK_RUNS = 2**21
# Agent steps whose uniforms are drawn in one call per block. Changing it changes CUDA streams
# (Philox offsets advance per call), so it is fixed per device type.
STEPS_PER_TILE = {"cpu": 16, "cuda": 64}


def work_bytes_per_run(dev: torch.device, draws: int) -> int:
    """Working memory per run in a chunk: ~40 state and scratch vectors, one tile of uniforms and the
    tile's four flags per step (bytes)."""
    tile = STEPS_PER_TILE[dev.type]
    return 8 * (40 + tile * draws) + 4 * tile


def block_seed(seed: int, block: int) -> int:
    """The generator seed of run block `block`: independent streams from one user seed."""
    state = np.random.SeedSequence([seed, block]).generate_state(2, np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def spans(scenario: Scenario, dev: torch.device, chunk_runs: int | None, budget: int, parts: int):
    """The chunks [start, stop) of all runs, whole RNG blocks each; parts = processes x worker threads.

    chunk_runs given: chunks of that size, rounded up to whole blocks. Otherwise on the CPU a multiple
    of `parts` chunks of at most CPU_CHUNK_CAP runs, balanced to a block; on CUDA chunks of
    CUDA_CHUNK_RUNS. Both defaults are bounded by the memory budget.
    """
    runs, blocks = scenario.runs, math.ceil(scenario.runs / RNG_BLOCK_RUNS)
    if chunk_runs is not None and chunk_runs < 1:
        raise ScenarioError(f"chunk_runs must be >= 1, got {chunk_runs}")
    paths = (scenario.agents + 1) * 8 if scenario.keep_paths else 0
    per_run = work_bytes_per_run(dev, kernels.draws(scenario)) + paths
    cap = min(CPU_CHUNK_CAP if dev.type == "cpu" else CUDA_CHUNK_RUNS, max(1, budget // 2 // per_run))
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


class Chunk:
    """Runs [start, start + runs) on one device: the generic driver around one model's kernel.

    The driver owns the randomness, the counters every model shares and the outputs; the kernel
    (`kernels.kernel_for`) turns the public LLR and one slab of uniforms into each run's wrong action, wrong
    report and next LLR.
    """

    def __init__(self, scenario: Scenario, dev: torch.device, start: int, stop: int):
        self.s = scenario
        self.start, self.runs = start, stop - start
        self.tile = STEPS_PER_TILE[dev.type]
        self.blocks = []
        for b in range(start // RNG_BLOCK_RUNS, math.ceil(stop / RNG_BLOCK_RUNS)):
            lo, hi = b * RNG_BLOCK_RUNS, min((b + 1) * RNG_BLOCK_RUNS, scenario.runs)
            gen = torch.Generator(device=dev)
            gen.manual_seed(block_seed(scenario.seed, b))
            self.blocks.append((gen, lo - start, hi - start))
        runs, f64, i64 = self.runs, torch.float64, torch.int64
        draws = kernels.draws(scenario)
        self.uniforms = torch.empty((self.tile, draws, runs), dtype=f64, device=dev)
        # On the CPU each block draws straight into its columns of the tile (torch fills a strided view in
        # the same order as a contiguous slab: same values, checked by the tests' pinned outputs). On CUDA
        # each block still draws into a slab that is copied in, as before: the view's Philox layout is
        # unverified there (no GPU run since), and the copy is cheap on a GPU.
        self.slabs = (
            {
                hi - lo: torch.empty((self.tile, draws, hi - lo), dtype=f64, device=dev)
                for _, lo, hi in self.blocks
            }
            if len(self.blocks) > 1 and dev.type == "cuda"
            else {}
        )
        self.llr = torch.zeros(runs, dtype=f64, device=dev)
        # Each step's flags, kept for the tile: (wrong action, wrong report, all actions wrong so far, all
        # reports wrong so far) x step x run. The counters add them up once a tile (one sum), not every
        # step: fewer, wider ops, which the chunk threads contend less for.
        self.flags = torch.empty((4, self.tile, runs), dtype=torch.bool, device=dev)
        self.flags[2:, -1] = True  # the leading-wrong chain before the first step
        self.flag_bytes = self.flags.view(torch.uint8)
        self.step_wrong = [(self.flags[0, i], self.flags[1, i]) for i in range(self.tile)]
        self.step_pairs = [self.flags[0:2, i] for i in range(self.tile)]
        self.step_chains = [self.flags[2:4, i] for i in range(self.tile)]
        self.wrong_a = torch.zeros(runs, dtype=i64, device=dev)
        self.wrong_x = torch.zeros(runs, dtype=i64, device=dev)
        # Leading-wrong counters: tau = count + 1, and count = agents means "not within the horizon".
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
        self.flag_counts = self.tile_counts[:4]
        # Each step's uniforms as a tuple of per-draw rows, views made once (a kernel indexes a tuple, not
        # a tensor, so a step makes no views).
        self.step_uniforms = [tuple(self.uniforms[i]) for i in range(self.tile)]
        self.kernel = kernels.kernel_for(scenario)(scenario, dev, self.llr)

    def _draw_tile(self) -> None:
        # Each block fills its own columns of the tile, in the same order whatever the chunk (on CUDA
        # through a slab of its own), so its stream does not depend on the chunk layout.
        if len(self.blocks) == 1:
            self.uniforms.uniform_(generator=self.blocks[0][0])
            return
        for gen, lo, hi in self.blocks:
            columns = self.uniforms[:, :, lo:hi]
            if not self.slabs:
                columns.uniform_(generator=gen)
                continue
            slab = self.slabs[hi - lo]
            slab.uniform_(generator=gen)
            columns.copy_(slab)

    def run(self, out: Outputs, tick: Callable[[int], None]) -> None:
        """All agents, tile by tile; tick(steps done) after each tile may raise SimulationCancelled."""
        agents = self.s.agents
        for tile_start in range(0, agents, self.tile):
            self._draw_tile()
            steps = min(self.tile, agents - tile_start)
            for i in range(steps):
                self.kernel.step(self.step_uniforms[i], *self.step_wrong[i])
                self._record(i, tile_start + i + 1)
            self._fold_tile_counts(steps)
            tick(steps * self.runs)
        self._flush(out)

    def _record(self, i: int, agent: int) -> None:
        """Per-run state after `agent`, step i of the tile, has acted and reported (llr is now l_{agent+1})."""
        # All wrong so far = all wrong before (the previous step's chain; the last row's before the tile's
        # first step) and wrong now, actions and reports in one op.
        torch.logical_and(self.step_chains[i - 1], self.step_pairs[i], out=self.step_chains[i])
        if self.s.belief_threshold is not None:
            torch.abs(self.llr, out=self.absl)
            self.below.logical_and_(torch.lt(self.absl, self.s.belief_threshold, out=self.below_now))
            self.tile_counts[4].add_(self.below.view(torch.uint8))
        c = self.ckpt_index.get(agent)
        if c is not None:
            a_wrong, x_wrong = self.step_wrong[i]
            self.ckpt_l[c].copy_(self.llr)
            self.ckpt_a[c] += self.runs - a_wrong.sum()
            self.ckpt_x[c] += self.runs - x_wrong.sum()
        if self.paths is not None:
            self.paths[agent].copy_(self.llr)

    def _fold_tile_counts(self, steps: int) -> None:
        # Wrong actions, wrong reports and the two leading-wrong counts of the tile's steps, per run (a
        # tile has at most 64 steps, so bytes hold them).
        torch.sum(self.flag_bytes[:, :steps], dim=1, dtype=torch.uint8, out=self.flag_counts)
        totals = [self.wrong_a, self.wrong_x, self.lead_a, self.lead_x]
        if self.s.belief_threshold is not None:
            totals.append(self.lead_b)
        for total, tile in zip(totals, self.tile_counts, strict=True):
            total.add_(tile)
        for tile in self.tile_counts:  # row by row: each below the intra-op parallel grain
            tile.zero_()

    def _flush(self, out: Outputs) -> None:
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
