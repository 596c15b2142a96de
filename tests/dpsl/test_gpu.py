"""CUDA: the same engine on the GPU agrees in law with the CPU, and chunking is invisible there too."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dpsl import RNG_BLOCK_RUNS, Scenario, simulate

pytestmark = pytest.mark.gpu


def test_cuda_matches_cpu_statistically(cuda_device):
    s = Scenario(epsilon=1.0, agents=300, runs=50_000, checkpoints=(10, 100, 300), belief_threshold=6.0)
    gpu, cpu = simulate(s, device=cuda_device), simulate(s, device="cpu")
    for name in (
        "llr_checkpoints",
        "wrong_actions",
        "wrong_reports",
        "first_correct_report",
        "belief_stop_time",
    ):
        a, b = getattr(gpu, name).astype(float), getattr(cpu, name).astype(float)
        a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
        se = np.sqrt(a.var(axis=0, ddof=1) / a.shape[0] + b.var(axis=0, ddof=1) / b.shape[0])
        assert np.all(np.abs(a.mean(axis=0) - b.mean(axis=0)) <= 4 * se + 1e-12), name


def test_cuda_chunking_and_seed_reproducibility(cuda_device):
    s = Scenario(epsilon=0.5, agents=64, runs=3 * RNG_BLOCK_RUNS + 11)
    whole = simulate(s, device=cuda_device)
    chunked = simulate(s, device=cuda_device, chunk_runs=RNG_BLOCK_RUNS)
    assert np.array_equal(whole.llr_checkpoints, chunked.llr_checkpoints)
    assert np.array_equal(whole.first_correct_action, chunked.first_correct_action)


def test_cuda_binary_matches_closed_form(cuda_device):
    from dpsl import theory

    runs = 200_000
    r = simulate(
        Scenario(signal="binary", p=0.7, mechanism="rr", epsilon=1.0, agents=300, runs=runs),
        device=cuda_device,
    ).summary()
    exact = theory.p_correct_cascade(1.0, 0.7)
    assert abs(r["p_correct_cascade"] - exact) <= 4 * math.sqrt(exact * (1 - exact) / runs)
