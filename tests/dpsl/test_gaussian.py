"""Gaussian signals against the reference Monte Carlo numbers of docs/dpsl-model.md §6.4 and §6.6 (sigma = 1, A = 1/2).

The reference numbers are themselves Monte Carlo means over `ref_paths` paths; the tolerance is four
combined standard errors (ours and theirs, theirs estimated from our spread) plus the rounding of the
printed value.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dpsl import EpsilonUniform, Scenario, simulate


def _close(samples: np.ndarray, reference: float, ref_paths: int, rounding: float) -> tuple[bool, str]:
    sd = samples.std(ddof=1)
    se = math.sqrt(sd**2 / samples.size + sd**2 / ref_paths)
    ok = abs(samples.mean() - reference) <= 4 * se + rounding
    return ok, f"mean {samples.mean():.4f} vs {reference} (4 se = {4 * se:.4f})"


# (epsilon or None, {n: (reference mean, rounding)}): docs/dpsl-model.md §6.6, 100-200 paths.
LLR_TABLE = [
    (0.5, {100: (8.56, 0.005), 1000: (17.2, 0.1)}),
    (1.0, {100: (8.6, 0.05), 1000: (13.2, 0.05)}),
    (None, {100: (6.79, 0.005), 1000: (8.45, 0.005)}),
]


@pytest.mark.parametrize("eps, table", LLR_TABLE, ids=["eps0.5", "eps1", "non-private"])
def test_mean_public_llr_at_100_and_1000(eps, table):
    mechanism = "none" if eps is None else "smooth"
    r = simulate(
        Scenario(
            mechanism=mechanism,
            epsilon=eps,
            agents=1000,
            runs=400 if eps else 100,
            seed=11,
            checkpoints=(100, 1000),
        )
    )
    for i, n in enumerate((100, 1000)):
        ok, msg = _close(r.llr_checkpoints[:, i], *table[n][:1], ref_paths=100, rounding=table[n][1])
        assert ok, f"n={n}: {msg}"


def test_heterogeneous_uniform_budgets_mean_llr():
    # docs/dpsl-model.md §6.6, eps_n ~ U[0, 1]: 14.3 at n = 1000 (10-90%: 12.2, 16.4).
    r = simulate(
        Scenario(
            epsilon=EpsilonUniform(0.0, 1.0),
            agents=1000,
            runs=100,
            seed=5,
            checkpoints=(1000,),
            quadrature_nodes=32,
        )
    )
    ok, msg = _close(r.llr_checkpoints[:, 0], 14.3, ref_paths=100, rounding=0.05)
    assert ok, msg


@pytest.mark.parametrize("eps", [0.5, 1.0, 2.0])
def test_private_llr_grows_like_two_over_eps_sigma2_log_n(eps):
    n = (1000, 2000, 5000, 10_000)
    r = simulate(Scenario(epsilon=eps, agents=10_000, runs=100, seed=2, checkpoints=n))
    slope = np.polyfit(np.log(n), r.llr_mean, 1)[0]
    assert slope == pytest.approx(2 / eps, rel=0.10)


def test_non_private_llr_grows_like_sqrt_log_n():
    n = np.array([10, 100, 1000, 10_000])
    r = simulate(
        Scenario(mechanism="none", epsilon=None, agents=10_000, runs=30, seed=2, checkpoints=tuple(n))
    )
    m = r.llr_mean
    # Equal steps in log n give shrinking increments: the ratio of successive decade increments is
    # (sqrt(log 1e4) - sqrt(log 1e3)) / (sqrt(log 1e3) - sqrt(log 1e2)) = 0.84 for sqrt(log n), 1 for log n.
    ratio = (m[3] - m[2]) / (m[2] - m[1])
    assert 0.6 < ratio < 0.92
    # ... and a straight line in sqrt(log n) fits far better than one in log n.
    resid_sqrt = np.polyfit(np.sqrt(np.log(n)), m, 1, full=True)[1][0]
    resid_log = np.polyfit(np.log(n), m, 1, full=True)[1][0]
    assert resid_sqrt < resid_log / 5


def test_private_llr_grows_like_log_n_not_sqrt_log_n():
    n = np.array([100, 1000, 10_000])
    r = simulate(Scenario(epsilon=1.0, agents=10_000, runs=50, seed=4, checkpoints=tuple(n)))
    m = r.llr_mean
    assert 0.9 < (m[2] - m[1]) / (m[1] - m[0]) < 1.1


@pytest.mark.parametrize("eps, exact", [(0.5, 1.586), (1.0, 1.504)])
def test_expected_first_correct_report_time(eps, exact):
    # docs/dpsl-model.md §6.6: exact E[tau_x] from the deterministic all-wrong-report path.
    r = simulate(Scenario(epsilon=eps, agents=300, runs=20_000, seed=9, checkpoints=(300,)))
    s = r.summary()
    # + rounding of the printed value + the mass P(tau_x > n) summed beyond the 300-agent horizon (~n^-1.3).
    assert abs(s["first_correct_report_mean"] - exact) <= 4 * s["first_correct_report_se"] + 0.0005 + 0.002


@pytest.mark.parametrize("eps, ref", [(0.5, 1.20), (1.0, 1.23), (2.0, 1.30)])
def test_expected_first_correct_action_time(eps, ref):
    # docs/dpsl-model.md §6.6, 20,000 runs, horizon 3000.
    r = simulate(Scenario(epsilon=eps, agents=300, runs=20_000, seed=9, checkpoints=(300,)))
    ok, msg = _close(r.first_correct_action.astype(float), ref, ref_paths=20_000, rounding=0.005)
    assert ok, msg


@pytest.mark.parametrize("eps, ref, ref_se", [(0.5, 138.1, 1.1), (1.0, 187.6, 1.0)])
def test_belief_threshold_stopping_time(eps, ref, ref_se):
    # docs/dpsl-model.md §6.4: the authors' Monte Carlo, B = 10, sigma = 1, reports counted from l = 0.
    r = simulate(
        Scenario(epsilon=eps, agents=3000, runs=1000, seed=3, belief_threshold=10.0, checkpoints=(3000,))
    )
    s = r.summary()
    assert s["belief_stop_time_censored"] == 0.0
    assert abs(s["belief_stop_time_mean"] - ref) <= 4 * (s["belief_stop_time_se"] ** 2 + ref_se**2) ** 0.5


@pytest.mark.parametrize("eps, ref, ref_se", [(0.5, 8.35, 0.09), (1.0, 4.37, 0.03)])
def test_stopping_time_follows_the_authors_convention_at_b_2(eps, ref, ref_se):
    """At B = 2 the report count and the agent index differ by ~25 standard errors: ours is the former."""
    r = simulate(
        Scenario(epsilon=eps, agents=400, runs=20_000, seed=4, belief_threshold=2.0, checkpoints=(400,))
    )
    s = r.summary()
    assert s["belief_stop_time_censored"] == 0.0
    z = (s["belief_stop_time_mean"] - ref) / (s["belief_stop_time_se"] ** 2 + ref_se**2) ** 0.5
    assert abs(z) < 4, z
