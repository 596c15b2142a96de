"""Closed forms against the reference numbers of docs/dpsl-model.md §5-§6 (all numbers below, and those in
dpsl.published, come from the spec)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dpsl import published, theory


@pytest.mark.parametrize("p", sorted(published.BREAKPOINTS))
def test_breakpoints_match_the_table_to_3_decimals(p):
    eps_k, top, non_private = published.BREAKPOINTS[p]
    for k, ref in zip(range(3, 8), eps_k, strict=True):
        assert theory.eps_breakpoint(k, p) == pytest.approx(ref, abs=6e-4)
    for k, ref in zip(range(3, 7), top, strict=True):
        eps = theory.eps_breakpoint(k, p)
        assert theory.cascade_threshold(eps, p) == k
        assert theory.p_correct_cascade(eps, p) == pytest.approx(ref, abs=6e-4)
        # Just above eps_k the threshold is k - 1 and the probability has dropped back to p.
        assert theory.cascade_threshold(eps + 1e-9, p) == k - 1
        assert theory.p_correct_cascade(eps + 1e-9, p) == pytest.approx(p, abs=1e-6)
    assert theory.p_correct_cascade(None, p) == pytest.approx(non_private, abs=6e-5)
    assert theory.cascade_threshold(None, p) == 2


@pytest.mark.parametrize("p, eps, k, prob", published.CASCADE_SPOTS)
def test_spot_values(p, eps, k, prob):
    assert theory.cascade_threshold(eps, p) == k
    assert theory.p_correct_cascade(eps, p) == pytest.approx(prob, abs=6e-5)


@pytest.mark.parametrize("p", [0.55, 0.7, 0.9])
def test_p_correct_cascade_is_non_monotone_in_eps_and_bounded(p):
    grid = np.linspace(0.3, 5, 2000)
    probs = np.array([theory.p_correct_cascade(e, p) for e in grid])
    assert np.any(np.diff(probs) < -1e-3), "lowering eps across a breakpoint must raise P"
    assert np.any(np.diff(probs) > 0)
    non_private = p**2 / (p**2 + (1 - p) ** 2)
    assert np.all(probs > p - 1e-12) and np.all(probs < non_private)


@pytest.mark.parametrize("p", sorted(published.EXPECTED_REPORTS))
def test_expected_reports_before_cascade(p):
    values, non_private = published.EXPECTED_REPORTS[p]
    for eps, ref in zip(published.EXPECTED_REPORTS_EPS, values, strict=True):
        assert theory.expected_reports_before_cascade(eps, p) == pytest.approx(ref, rel=2e-3, abs=6e-3)
    assert theory.expected_reports_before_cascade(None, p) == pytest.approx(non_private, abs=6e-4)


def test_K_values_and_asymptote():
    for eps, ref in [(0.1, 5.09e-4), (0.25, 8.24e-3), (0.5, 0.0716), (1, 0.777), (1.5, 4.61), (2, 26.3)]:
        assert theory.smooth_rr_K(eps, 1.0) == pytest.approx(ref, rel=2e-3)
    # "at eps = 1, sigma = 1 this predicts l_{10^5} ~ 22.5"
    assert theory.llr_asymptote(1e5, 1.0, 1.0) == pytest.approx(22.5, abs=0.05)
    # K is proportional to A: the legacy amplitude scales it by 2/(1+e^eps).
    assert theory.smooth_rr_K(1.0, 1.0, "legacy") == pytest.approx(
        theory.smooth_rr_K(1.0, 1.0) * 2 / (1 + math.e)
    )


def test_first_correct_time_bound():
    # The legacy script (zeta truncated at 10^4 terms) is minimised near eps = 0.80 at 1.215 for sigma = sqrt 2.
    grid = np.linspace(0.5, 1.0, 501)
    bound = np.array([theory.first_correct_time_bound(e, math.sqrt(2), zeta_terms=10_000) for e in grid])
    assert grid[np.argmin(bound)] == pytest.approx(0.80, abs=0.01)
    assert bound.min() == pytest.approx(1.215, abs=1e-3)
    # sigma = 1: decreasing on [0.5, 1]; finite iff eps < 2/sigma^2.
    b1 = [theory.first_correct_time_bound(e, 1.0) for e in grid]
    assert np.all(np.diff(b1) < 0)
    assert math.isinf(theory.first_correct_time_bound(2.0, 1.0))
    assert math.isfinite(theory.first_correct_time_bound(1.99, 1.0))


def test_tail_exponents():
    # docs/dpsl-model.md §6.6: kappa = 6.33, 2.31, 1.40, 1.019, 0.668 for eps = 0.5, 1, 1.5, 2, 3 (sigma = 1).
    for eps, kappa in [(0.5, 6.33), (1, 2.31), (1.5, 1.40), (2, 1.019), (3, 0.668)]:
        assert theory.tail_exponent_report(eps, 1.0) == pytest.approx(kappa, abs=6e-3)
    assert theory.tail_exponent_action(0.5, 1.0) == pytest.approx(4.0)


def test_belief_stop_time_asymptote():
    # docs/dpsl-model.md §6.4 table, asymptotic column (B = 10, sigma = 1).
    for eps, ref in [(0.1, 3238), (0.25, 424), (0.5, 170), (1.0, 191), (1.5, 392), (2.0, 837)]:
        assert theory.belief_stop_time_asymptote(10, eps, 1.0) == pytest.approx(ref, rel=3e-3)


@pytest.mark.parametrize("sigma", sorted(published.APPENDIX_RECURSION))
def test_appendix_recursion_reproduces_the_table(sigma):
    for eps, values in published.APPENDIX_RECURSION[sigma].items():
        path = theory.positive_report_recursion(6.0, 199, eps, sigma, amplitude="legacy")
        assert path[0] == 6.0
        got = [path[n - 1] for n in (50, 100, 200)]  # path[n - 1] is l_n
        assert got == pytest.approx(values, abs=6e-3), (sigma, eps)
    approx = theory.positive_report_recursion(6.0, 199, 1.0, sigma, amplitude="legacy", approximate=True)
    assert approx[199] == pytest.approx(published.APPENDIX_APPROXIMATION[sigma], abs=6e-4)


def test_appendix_recursion_with_half_amplitude():
    for eps, ref in [(0.1, 19.91), (0.5, 14.26), (1.0, 10.76)]:
        assert theory.positive_report_recursion(6.0, 199, eps, 1.0, amplitude="half")[199] == pytest.approx(
            ref, abs=6e-3
        )


def test_the_truncated_bound_is_finite_where_the_series_is_not():
    # sigma = sqrt 2, eps = 1: s = 1, so the exact series diverges; the authors' 10^4-term sum is 1.5319.
    assert theory.first_correct_time_bound(1.0, math.sqrt(2), zeta_terms=10_000) == pytest.approx(
        1.5319, abs=1e-4
    )
    assert math.isinf(theory.first_correct_time_bound(1.0, math.sqrt(2)))


@pytest.mark.parametrize("eps", [0.01, 1e-300])
def test_tiny_eps_gives_an_infinite_bound_not_an_error(eps):
    assert math.isinf(theory.first_correct_time_bound(eps, 1.0))
    assert math.isinf(theory.first_correct_time_bound(eps, 1.0, zeta_terms=100))


@pytest.mark.parametrize("eps", [0.01, 1e-300])
def test_closed_forms_at_extreme_budgets_are_not_finite_not_an_error(eps):
    from dpsl import Scenario, report, simulate

    s = Scenario(epsilon=eps, agents=5, runs=10, belief_threshold=2.0)
    th = theory.summary(s)
    assert th["first_correct_action_bound"] is None
    rows = report.report_rows(simulate(s))  # the report after a simulation never fails on a closed form
    assert rows and all(r.closed_form is None or math.isfinite(r.closed_form) for r in rows)


@pytest.mark.parametrize(
    "p, best_eps, best_j", [(0.55, 1.96, 0.5095), (0.7, 2.73, 0.734), (0.9, 2.73, 0.911)]
)
def test_platform_objective_maximiser(p, best_eps, best_j):
    # docs/dpsl-model.md §6.3: argmax of J(eps) = P - 0.01 E[tau]/(1 - eps/5) over eps in [0.1, 4.95].
    grid = np.linspace(0.1, 4.95, 20_000)
    j = np.array([theory.platform_objective(e, p) for e in grid])
    assert grid[j.argmax()] == pytest.approx(best_eps, abs=0.01)
    assert j.max() == pytest.approx(best_j, abs=5e-4)


@pytest.mark.parametrize("eps, authors", [(0.5, 136.1), (1.0, 186.7), (1.5, 394.7), (2.0, 855.2)])
def test_bellman_curve_on_the_authors_grid_reproduces_their_values(eps, authors):
    # docs/dpsl-model.md §6.4: their value iteration on a 401-point l-grid, B = 10, sigma = 1.
    assert theory.belief_stop_time_bellman(10.0, eps, 1.0) == pytest.approx(authors, abs=0.1)


@pytest.mark.parametrize("eps, mc, mc_se", [(0.5, 138.1, 1.1), (1.0, 187.6, 1.0), (1.5, 398.3, 1.3)])
def test_bellman_on_a_fine_grid_converges_to_the_monte_carlo_mean(eps, mc, mc_se):
    assert abs(theory.belief_stop_time_bellman(10.0, eps, 1.0, grid_points=2001) - mc) < 3 * mc_se
