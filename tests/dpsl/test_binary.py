"""Binary signals: agent-level Monte Carlo against the closed forms of docs/dpsl-model.md §5."""

from __future__ import annotations

import math

import pytest

from dpsl import EpsilonUniform, Scenario, simulate, theory

RUNS, AGENTS = 10_000, 400


def _simulate(p, eps, mechanism="rr", runs=RUNS):
    return simulate(
        Scenario(
            signal="binary",
            p=p,
            mechanism=mechanism,
            epsilon=eps,
            agents=AGENTS,
            runs=runs,
            checkpoints=(AGENTS,),
        )
    ).summary()


def _cases():
    # eps 3% on either side of eps_3 and eps_4 for each p: the threshold k differs across each pair.
    for p in (0.55, 0.7, 0.9):
        for k in (3, 4):
            for side in (0.97, 1.03):
                yield p, round(theory.eps_breakpoint(k, p) * side, 6)


@pytest.mark.parametrize("p, eps", list(_cases()))
def test_p_correct_cascade_matches_the_closed_form(p, eps):
    s = _simulate(p, eps)
    assert s["cascade_fraction"] == 1.0
    assert s["cascade_threshold"] == theory.cascade_threshold(eps, p)
    exact = theory.p_correct_cascade(eps, p)
    assert abs(s["p_correct_cascade"] - exact) <= 4 * math.sqrt(exact * (1 - exact) / RUNS)
    assert (
        abs(s["reports_before_cascade_mean"] - theory.expected_reports_before_cascade(eps, p))
        <= 4 * s["reports_before_cascade_se"]
    )


@pytest.mark.parametrize("p", [0.55, 0.7, 0.9])
def test_simulated_p_correct_cascade_jumps_up_when_eps_drops_below_eps_3(p):
    # Non-monotone in eps (docs/dpsl-model.md §5): just below eps_3, k = 3 and P is near its top; just above, k = 2
    # and P is near p.
    e3 = theory.eps_breakpoint(3, p)
    below, above = _simulate(p, e3 * 0.99, runs=40_000), _simulate(p, e3 * 1.01, runs=40_000)
    se = math.hypot(below["p_correct_cascade_se"], above["p_correct_cascade_se"])
    assert below["p_correct_cascade"] - above["p_correct_cascade"] > 4 * se


@pytest.mark.parametrize("p", [0.55, 0.7, 0.9])
def test_non_private_baseline(p):
    s = _simulate(p, None, mechanism="none")
    exact = p**2 / (p**2 + (1 - p) ** 2)
    assert s["cascade_threshold"] == 2
    assert abs(s["p_correct_cascade"] - exact) <= 4 * math.sqrt(exact * (1 - exact) / RUNS)
    assert (
        abs(s["reports_before_cascade_mean"] - theory.expected_reports_before_cascade(None, p))
        <= 4 * s["reports_before_cascade_se"]
    )


def test_heterogeneous_budgets_use_the_mean_flip_probability():
    s = simulate(
        Scenario(
            signal="binary",
            p=0.7,
            mechanism="rr",
            epsilon=EpsilonUniform(0.5, 2.0),
            agents=AGENTS,
            runs=RUNS,
            checkpoints=(AGENTS,),
        )
    ).summary()
    th = s["theory"]
    exact = th["p_correct_cascade"]
    assert abs(s["p_correct_cascade"] - exact) <= 4 * math.sqrt(exact * (1 - exact) / RUNS)
    assert (
        abs(s["reports_before_cascade_mean"] - th["reports_before_cascade_mean"])
        <= 4 * s["reports_before_cascade_se"]
    )


def test_public_llr_freezes_at_the_cascade():
    r = simulate(
        Scenario(signal="binary", p=0.7, mechanism="rr", epsilon=1.0, agents=200, runs=2000, keep_paths=True)
    )
    k = theory.cascade_threshold(1.0, 0.7)
    w = -math.log(theory.rho(1.0, 0.7))
    assert (abs(abs(r.llr_final) - k * w) < 1e-9).all()
    for run in range(50):
        t = r.cascade_time[run]
        assert (r.paths[run, t:] == r.paths[run, t]).all()
        assert abs(r.paths[run, t]) == pytest.approx(k * w)
        assert (abs(r.paths[run, :t]) < k * w - 1e-9).all()
