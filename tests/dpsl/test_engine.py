"""Engine mechanics: seeds, chunking, progress/cancel, memory budget, outputs, and the law of (a_n, x_n)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from dev.dpsl_reference import simulate_numpy
from dpsl import (
    RNG_BLOCK_RUNS,
    EpsilonUniform,
    MemoryBudgetError,
    Scenario,
    ScenarioError,
    SimulationCancelled,
    chunks,
    simulate,
)
from dpsl.results import PER_RUN

# Every per-run array of a Result, and the checkpoints' LLRs.
FIELDS = ("llr_checkpoints", *PER_RUN)


def _assert_same(r1, r2):
    for name in FIELDS:
        a, b = getattr(r1, name), getattr(r2, name)
        if a is None:
            assert b is None
        else:
            assert np.array_equal(a, b), name


SCENARIOS = {
    "smooth": Scenario(
        mechanism="smooth", epsilon=1.0, agents=40, runs=2 * RNG_BLOCK_RUNS + 777, belief_threshold=3.0
    ),
    "smooth-legacy-sigma2": Scenario(
        mechanism="smooth", epsilon=0.5, sigma=2.0, amplitude="legacy", agents=40, runs=RNG_BLOCK_RUNS + 5
    ),
    "none": Scenario(mechanism="none", epsilon=None, agents=30, runs=RNG_BLOCK_RUNS + 300),
    "rr-gaussian": Scenario(mechanism="rr", epsilon=1.0, agents=30, runs=RNG_BLOCK_RUNS + 300),
    "heterogeneous": Scenario(
        mechanism="smooth",
        epsilon=EpsilonUniform(0.0, 1.0),
        agents=8,
        runs=RNG_BLOCK_RUNS + 40,
        quadrature_nodes=16,
    ),
    "binary": Scenario(
        signal="binary", p=0.7, mechanism="rr", epsilon=1.0, agents=60, runs=2 * RNG_BLOCK_RUNS + 9
    ),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_chunked_and_unchunked_runs_are_identical(name):
    scenario = SCENARIOS[name]
    whole = simulate(scenario, chunk_runs=scenario.runs)
    chunked = simulate(scenario, chunk_runs=1)  # rounded up to one RNG block per chunk
    _assert_same(whole, chunked)


# What each scenario's seed gives, recorded from the engine at commit 0d9155a, before the CPU speed work
# of issue 31: a faster engine must give the same numbers. The discrete outputs (first-correct times,
# wrong counts, stopping and cascade times) are compared exactly, through their sha256; the LLRs through
# their sums, to rounding, so that a CPU whose vector maths rounds a last bit differently still passes.
PINNED_DISCRETE = (
    "first_correct_action",
    "first_correct_report",
    "wrong_actions",
    "wrong_reports",
    "belief_stop_time",
    "cascade_time",
    "cascade_side",
)
PINNED = {  # name: (sha256 of the discrete outputs, first 16 hex digits; sum of llr_final; of llr_checkpoints)
    "binary": ("7113f0831dd73232", 4634.893039749493, 21639.598658351126),
    "heterogeneous": ("895cb190505021ed", 5724.467062513551, 11790.059740210816),
    "none": ("230939d668f4fa7d", 24711.558710839694, 93380.46159752781),
    "rr-gaussian": ("6f99a9a78757ab98", 13138.677656758415, 37027.12002284275),
    "smooth": ("b49afe392b3a8a9a", 59778.22009684847, 167874.4167473872),
    "smooth-legacy-sigma2": ("13a5185397363b9c", 10122.848280324768, 26711.37552376344),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_seed_gives_the_numbers_it_gave_before(name):
    result = simulate(SCENARIOS[name])
    digest = hashlib.sha256()
    for field in PINNED_DISCRETE:
        values = getattr(result, field)
        if values is not None:
            digest.update(field.encode())
            digest.update(np.ascontiguousarray(values, dtype=np.int64).tobytes())
    pinned_digest, llr_final_sum, llr_checkpoints_sum = PINNED[name]
    assert digest.hexdigest()[:16] == pinned_digest
    assert float(np.sum(result.llr_final)) == pytest.approx(llr_final_sum, rel=1e-12)
    assert float(np.sum(result.llr_checkpoints)) == pytest.approx(llr_checkpoints_sum, rel=1e-12)


def test_reproducible_per_seed_and_different_across_seeds():
    s = Scenario(mechanism="smooth", epsilon=0.5, agents=50, runs=500, seed=7)
    _assert_same(simulate(s), simulate(s))
    other = simulate(s.with_(seed=8))
    assert not np.array_equal(simulate(s).llr_final, other.llr_final)


def test_a_longer_horizon_extends_the_same_paths():
    # Each agent step consumes its own slab of each block's stream, so runs are prefixes of longer runs.
    short = simulate(Scenario(epsilon=1.0, agents=20, runs=300, checkpoints=(10, 20)))
    long = simulate(Scenario(epsilon=1.0, agents=70, runs=300, checkpoints=(10, 20, 70)))
    assert np.array_equal(short.llr_checkpoints, long.llr_checkpoints[:, :2])


def test_progress_reports_every_agent_step_once():
    calls = []
    s = Scenario(epsilon=1.0, agents=50, runs=RNG_BLOCK_RUNS + 10)
    simulate(s, progress=lambda done, total: calls.append((done, total)), chunk_runs=1)
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(set(done)) == len(done)
    assert calls[-1] == (s.runs * s.agents, s.runs * s.agents)


def test_cancel_stops_the_simulation():
    polls = []

    def should_cancel():
        polls.append(1)
        return len(polls) > 2

    with pytest.raises(SimulationCancelled):
        simulate(Scenario(epsilon=1.0, agents=1000, runs=100), should_cancel=should_cancel)
    assert len(polls) == 3


def test_memory_budget_names_runs_x_agents():
    s = Scenario(epsilon=1.0, agents=100_000, runs=100_000, keep_paths=True)
    with pytest.raises(MemoryBudgetError, match=r"runs x agents = 100000 x 100001") as info:
        simulate(s)
    assert "keep_paths" in str(info.value) and isinstance(info.value, ScenarioError)
    # Without the paths the same size fits: the summaries stream.
    from dpsl.engine import check_memory

    check_memory(s.with_(keep_paths=False), 2**31)


def test_paths_agree_with_checkpoints_and_counters():
    s = Scenario(
        epsilon=1.0, agents=60, runs=200, keep_paths=True, belief_threshold=4.0, checkpoints=(1, 7, 60)
    )
    r = simulate(s)
    assert r.paths.shape == (200, 61)
    assert np.all(r.paths[:, 0] == 0)
    assert np.array_equal(r.paths[:, [1, 7, 60]], r.llr_checkpoints)
    assert np.array_equal(r.paths[:, -1], r.llr_final)
    # tau_B = the first report count r with |l after r reports| >= B; l after r reports = paths[:, r].
    crossed = np.abs(r.paths[:, 1:]) >= 4.0
    expected = np.where(crossed.any(axis=1), crossed.argmax(axis=1) + 1, s.agents + 1)
    assert np.array_equal(r.belief_stop_time, expected)
    assert np.all((r.first_correct_action >= 1) & (r.first_correct_action <= s.agents + 1))
    assert np.all(r.wrong_actions <= s.agents) and np.all(r.wrong_reports <= s.agents)
    # A run whose first correct action is at n made n - 1 wrong actions before it.
    assert np.all(r.wrong_actions >= r.first_correct_action - 1)


def test_first_action_is_wrong_with_probability_phi_minus_one_over_sigma():
    # docs/dpsl-model.md §6.6: P(a_1 wrong) = Phi(-1/sigma) = 0.1587 at sigma = 1.
    r = simulate(Scenario(epsilon=1.0, agents=1, runs=40_000, checkpoints=(1,)))
    p = np.mean(r.wrong_actions)
    assert abs(p - 0.158655) <= 4 * math.sqrt(0.1587 * 0.8413 / 40_000)


@pytest.mark.parametrize("eps, sigma, amplitude", [(1.0, 1.0, "half"), (0.5, 2.0, "legacy")])
def test_engine_agrees_in_law_with_the_signal_level_simulation(eps, sigma, amplitude):
    # The engine samples (a_n, x_n) from their joint law given l_n; the reference draws s_n and flips.
    runs, agents, checkpoints = 20_000, 40, (5, 40)
    ours = simulate(
        Scenario(
            epsilon=eps, sigma=sigma, amplitude=amplitude, agents=agents, runs=runs, checkpoints=checkpoints
        )
    )
    llr, wrong_a, wrong_x = simulate_numpy(
        sigma, eps, runs, agents, seed=3, amplitude=amplitude, checkpoints=checkpoints
    )
    pairs = [(ours.llr_checkpoints[:, i], llr[:, i]) for i in range(len(checkpoints))]
    pairs += [(ours.wrong_actions, wrong_a), (ours.wrong_reports, wrong_x)]
    for x, y in pairs:
        se = math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size)
        assert abs(x.mean() - y.mean()) <= 4 * se


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epsilon": 0.0}, "epsilon must be finite and > 0"),
        ({"epsilon": -1.0, "mechanism": "rr"}, "epsilon must be finite and > 0"),
        ({"epsilon": None}, "epsilon must be given"),
        ({"signal": "binary", "p": 0.5, "mechanism": "none"}, "p must be in the open interval (0.5, 1)"),
        ({"signal": "binary", "p": 1.0, "mechanism": "rr"}, "p must be in the open interval (0.5, 1)"),
        ({"sigma": 0.0}, "sigma must be finite and > 0"),
        ({"agents": 0}, "agents must be an integer >= 1"),
        ({"runs": 0}, "runs must be an integer >= 1"),
        ({"signal": "binary", "mechanism": "smooth"}, "mechanism must be one of none, rr for binary signals"),
        ({"mechanism": "laplace"}, "mechanism must be one of none, rr, smooth for gaussian signals"),
        ({"epsilon": 40.0}, "epsilon * sigma must be in (0, 35]"),
        ({"checkpoints": (0, 5)}, "checkpoints must be integers in [1, agents=1000]"),
        ({"amplitude": "full"}, "amplitude must be one of half, legacy"),
    ],
)
def test_invalid_parameters_name_the_parameter_and_its_range(kwargs, message):
    with pytest.raises(ScenarioError) as info:
        Scenario(**kwargs)
    assert message in str(info.value)


def test_epsilon_uniform_validates_its_bounds():
    with pytest.raises(ScenarioError, match="epsilon high must be finite and > low"):
        EpsilonUniform(1.0, 0.5)


def test_a_budget_beyond_the_machine_is_bounded_by_the_machine():
    from dpsl.engine import MemoryBudgetError, budget_from_gib, device_memory

    machine = device_memory(torch.device("cpu"))
    runs = int(machine / 8 / 12) + 1  # per-run outputs alone exceed the machine's memory
    with pytest.raises(MemoryBudgetError, match="more than this device has"):
        simulate(Scenario(epsilon=1.0, agents=2, runs=runs, checkpoints=(1, 2)), memory_budget=1024 * 2**40)
    for bad in (float("nan"), -1.0, 0.0, float("inf")):
        with pytest.raises(ValueError, match="memory_budget_gb must be a positive number"):
            budget_from_gib(bad)
    with pytest.raises(ValueError, match="memory_budget must be a positive number"):
        simulate(Scenario(epsilon=1.0, agents=2, runs=2), memory_budget=float("nan"))


@pytest.mark.parametrize("runs", [5, RNG_BLOCK_RUNS + 1, 50_000, 1_000_000])
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_cpu_chunks_are_whole_blocks_balanced_over_the_workers(runs, parts):
    spans = chunks.spans(Scenario(runs=runs, agents=10), torch.device("cpu"), None, 2**31, parts)
    assert spans[0][0] == 0 and spans[-1][1] == runs
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert all(lo % RNG_BLOCK_RUNS == 0 for lo, _ in spans)
    sizes = [hi - lo for lo, hi in spans]
    assert max(sizes) <= chunks.CPU_CHUNK_CAP
    if runs >= parts * RNG_BLOCK_RUNS:
        assert len(spans) % parts == 0  # every worker gets as many chunks
        assert max(sizes) - min(sizes) <= RNG_BLOCK_RUNS  # and as many runs, to a block
    if runs == 50_000 and parts == 2:
        assert sizes == [24576, 25424]


def test_simulate_leaves_torch_intra_op_threads_as_they_were():
    before = torch.get_num_threads()
    simulate(Scenario(mechanism="smooth", epsilon=1.0, agents=20, runs=3 * RNG_BLOCK_RUNS))
    simulate(Scenario(mechanism="smooth", epsilon=1.0, agents=20, runs=100))  # one chunk, this thread
    assert torch.get_num_threads() == before
