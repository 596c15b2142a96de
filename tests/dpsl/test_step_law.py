"""The smooth-RR step law as five functions of l: its table against the log_ndtr reference, the table's
page bits, and a whole simulation drawn from the table against one drawn from the closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpsl import Scenario, kernels, simulate
from dpsl.public_belief import GaussianLaw, llr_increment, report_law, threshold_offset
from dpsl.step_law import PAGE_INTERVALS, SmoothStepLaw, StepLawTable, page_coefficients, step_law

# (sigma, eps, amplitude): the paper's case, wide and narrow signals, the largest budget the scenario
# allows (eps sigma = 35), tiny budgets and the legacy amplitude.
CASES = [
    (1.0, 1.0, "half"),
    (3.0, 1.0, "half"),
    (0.5, 5.0, "half"),
    (1.0, 35.0, "half"),
    (2.0, 0.1, "legacy"),
    (0.2, 3.0, "half"),
    (5.0, 0.5, "legacy"),
]


def _reference(llr: torch.Tensor, sigma: float, eps: float, amplitude: str):
    """The five functions and flip from public_belief's log_ndtr reference (not the Mills-ratio kernel
    the table is built from)."""
    law = GaussianLaw(sigma, "smooth", (eps,), (1.0,), amplitude)
    z = threshold_offset(llr, 1.0, sigma)
    log_t12, log_t2, log_t3 = report_law(z.abs(), law)
    small = torch.exp(torch.logaddexp(log_t12, log_t3))
    flip = z > 0
    small_report = torch.where(flip, 1.0, -1.0)  # the small side is x = -1 unless z > 0
    return {
        "c1": torch.exp(log_t12),
        "c2": small,
        "c3": small + torch.exp(log_t2),
        "inc_small": llr_increment(llr, small_report, law),
        "inc_large": llr_increment(llr, -small_report, law),
        "flip": flip,
    }


def _evaluate(law, llr: torch.Tensor):
    n = llr.numel()
    law.bounds(llr)
    small, large = torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    return {
        "c1": law.c1.clone(),
        "c2": law.c2.clone(),
        "c3": law.c3.clone(),
        "inc_small": law.increment(small, torch.empty(n, dtype=torch.float64)).clone(),
        "inc_large": law.increment(large, torch.empty(n, dtype=torch.float64)).clone(),
        "flip": law.flip.clone(),
    }


@pytest.mark.parametrize(("sigma", "eps", "amplitude"), CASES)
def test_table_matches_the_reference_closed_form(sigma, eps, amplitude):
    gen = torch.Generator().manual_seed(3)
    # |l| up to 60 covers where runs go at paper horizons; plus the kink itself and its neighbours.
    llr = torch.cat(
        [
            (torch.rand(20000, generator=gen, dtype=torch.float64) * 2 - 1) * 60,
            torch.tensor(
                [-2.0 / sigma**2, -2.0 / sigma**2 + 1e-9, -2.0 / sigma**2 - 1e-9], dtype=torch.float64
            ),
        ]
    )
    expected = _reference(llr, sigma, eps, amplitude)
    got = _evaluate(StepLawTable(llr.numel(), sigma, eps, amplitude, "cpu"), llr)
    assert torch.equal(got["flip"], expected["flip"])
    for name in ("c1", "c2", "c3", "inc_small", "inc_large"):
        err = ((got[name] - expected[name]).abs() / (1 + expected[name].abs())).max().item()
        assert err < 1e-12, (name, err)


def test_the_closed_form_evaluator_matches_the_reference():
    llr = torch.linspace(-80, 80, 4001, dtype=torch.float64)
    expected = _reference(llr, 1.0, 1.0, "half")
    got = _evaluate(SmoothStepLaw(llr.numel(), 1.0, 1.0, "half", "cpu"), llr)
    assert torch.equal(got["flip"], expected["flip"])
    for name in ("c1", "c2", "c3", "inc_small", "inc_large"):
        assert torch.allclose(got[name], expected[name], rtol=1e-12, atol=1e-13), name


def test_an_interval_has_the_same_bits_whichever_way_the_table_grew():
    sigma, eps = 1.0, 1.0
    page_coefficients.cache_clear()  # each table computes its own pages, not the other's
    grown = StepLawTable(4, sigma, eps, "half", "cpu")
    for llr in ([0.0, 5.0, 1.0, 2.0], [-30.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 40.0]):
        grown.bounds(torch.tensor(llr, dtype=torch.float64))
    page_coefficients.cache_clear()
    direct = StepLawTable(4, sigma, eps, "half", "cpu")
    direct.bounds(torch.tensor([-30.0, 40.0, 0.0, 0.0], dtype=torch.float64))
    assert grown.first_page == direct.first_page and grown.end_page == direct.end_page
    assert (direct.end_page - direct.first_page) * PAGE_INTERVALS == direct.inc_rows[0].numel() // 2
    for a, b in zip(grown.inc_rows, direct.inc_rows, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(grown.bound_rows, direct.bound_rows, strict=True):
        assert torch.equal(a, b)


def test_engine_uses_the_table_on_the_cpu():
    assert isinstance(step_law(8, 1.0, 1.0, "half", "cpu"), StepLawTable)


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario(mechanism="smooth", epsilon=1.0, agents=600, runs=3000, seed=11, belief_threshold=2.0),
        Scenario(
            mechanism="smooth", epsilon=0.5, sigma=2.0, amplitude="legacy", agents=300, runs=3000, seed=5
        ),
    ],
    ids=["paper-case", "sigma2-legacy"],
)
def test_a_simulation_from_the_table_is_the_closed_form_simulation(scenario, monkeypatch):
    """Same seed, same uniforms: the table's bounds and increments are within 1e-13 of the closed form, so
    every action and report is the same and the LLRs agree to rounding accumulated over the horizon."""
    tabulated = simulate(scenario)
    monkeypatch.setattr(kernels, "step_law", SmoothStepLaw)
    exact = simulate(scenario)
    for name in (
        "first_correct_action",
        "first_correct_report",
        "wrong_actions",
        "wrong_reports",
        "belief_stop_time",
    ):
        a, b = getattr(tabulated, name), getattr(exact, name)
        assert (a is None and b is None) or np.array_equal(a, b), name
    np.testing.assert_allclose(tabulated.llr_final, exact.llr_final, rtol=0, atol=1e-9)
    np.testing.assert_allclose(tabulated.llr_checkpoints, exact.llr_checkpoints, rtol=0, atol=1e-9)
    assert np.abs(tabulated.llr_final).max() > 5  # the runs went well past the first pages
