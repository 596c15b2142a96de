"""The closed-form public belief update (docs/dpsl-model.md §3.2) against the model's definition and in the tails."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from dpsl.mechanisms import gaussian_flip_probability
from dpsl.public_belief import (
    GaussianLaw,
    SmoothReportKernel,
    gauss_legendre,
    llr_increment,
    log_report_prob,
    log_small_side,
    report_law,
)


def _law(mechanism, eps=None, sigma=1.0, amplitude="half"):
    if mechanism == "none":
        return GaussianLaw(sigma, "none")
    return GaussianLaw(sigma, mechanism, (eps,), (1.0,), amplitude)


def _p_minus_by_integration(llr, theta, sigma, mechanism, eps, amplitude):
    """P(x = -1 | l, theta) straight from the model: integrate over the signal s."""
    t = -(sigma**2) * llr / 2

    def flip(s):
        return float(gaussian_flip_probability(mechanism, torch.tensor(s), torch.tensor(t), eps, amplitude))

    def density(s):
        return stats.norm.pdf(s, theta, sigma)

    below, _ = integrate.quad(lambda s: density(s) * (1 - flip(s)), -np.inf, t, epsabs=1e-13, epsrel=1e-10)
    above, _ = integrate.quad(lambda s: density(s) * flip(s), t, np.inf, epsabs=1e-13, epsrel=1e-10)
    return below + above


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize(
    "mechanism, eps, amplitude",
    [
        ("smooth", 0.5, "half"),
        ("smooth", 1.0, "half"),
        ("smooth", 2.0, "legacy"),
        ("rr", 1.0, "half"),
        ("none", None, "half"),
    ],
)
@pytest.mark.parametrize("llr", [-3.0, 0.0, 1.5, 6.0])
@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_closed_form_matches_integration_over_the_signal(mechanism, eps, amplitude, llr, sigma):
    law = _law(mechanism, eps, sigma, amplitude)
    for theta in (1.0, -1.0):
        exact = _p_minus_by_integration(llr, theta, sigma, mechanism, eps, amplitude)
        lp = log_report_prob(torch.tensor([llr], dtype=torch.float64), torch.tensor([-1.0]), theta, law)
        assert math.exp(float(lp)) == pytest.approx(exact, rel=1e-7, abs=1e-12)
        lp_plus = log_report_prob(torch.tensor([llr], dtype=torch.float64), torch.tensor([1.0]), theta, law)
        assert math.exp(float(lp)) + math.exp(float(lp_plus)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("eps, ref", [(0.1, 0.546), (0.5, 0.666), (1.0, 0.741), (2.0, 0.799), (None, 0.841)])
def test_first_report_probability(eps, ref):
    # docs/dpsl-model.md §6.6: P(x_1 = +1 | theta = +1) at l_1 = 0.
    law = _law("none" if eps is None else "smooth", eps)
    p = math.exp(float(log_report_prob(torch.zeros(1, dtype=torch.float64), torch.ones(1), 1.0, law)))
    assert p == pytest.approx(ref, abs=6e-4)


@pytest.mark.parametrize("r", [0.05, 0.5, 1.0, 3.0, 10.0])
@pytest.mark.parametrize("amplitude", ["half", "legacy"])
def test_fast_kernel_equals_reference(r, amplitude):
    v = torch.cat(
        [
            torch.linspace(0, 60, 6001, dtype=torch.float64),
            torch.linspace(60, 1500, 2000, dtype=torch.float64),
        ]
    )
    kernel = SmoothReportKernel(v.numel(), 1.0, r, amplitude, "cpu")
    out, diff = torch.empty_like(v), torch.empty_like(v)
    kernel.log_small_side(v, out, diff)
    ref = log_small_side(v, _law("smooth", r, 1.0, amplitude))
    assert torch.isfinite(out).all()
    assert torch.allclose(out, ref, rtol=1e-12, atol=1e-12)
    # The sampling masses are the linear T1 - T2 and T2 of the same law.
    t12, t2 = torch.empty_like(v), torch.empty_like(v)
    kernel.sampling_masses(v, diff, t12, t2)
    log_t12, log_t2, _ = report_law(v[:3000], _law("smooth", r, 1.0, amplitude))
    assert torch.allclose(t12[:3000], log_t12.exp(), rtol=1e-11, atol=1e-300)
    assert torch.allclose(t2[:3000], log_t2.exp(), rtol=1e-11, atol=1e-300)


def test_fast_kernel_up_to_the_largest_allowed_eps_sigma():
    v = torch.linspace(0, 1500, 20001, dtype=torch.float64)
    kernel = SmoothReportKernel(v.numel(), 1.0, 35.0, "half", "cpu")
    out, diff = torch.empty_like(v), torch.empty_like(v)
    kernel.log_small_side(v, out, diff)
    ref = log_small_side(v, _law("smooth", 35.0))
    assert torch.allclose(out, ref, rtol=1e-11, atol=1e-11)


LAWS = [
    _law("smooth", 0.1),
    _law("smooth", 1.0),
    _law("smooth", 2.0, sigma=3.0),
    _law("smooth", 1.0, amplitude="legacy"),
    _law("rr", 1.0),
    _law("none"),
    GaussianLaw(1.0, "smooth", *map(tuple, gauss_legendre(0.0, 1.0, 64))),
]


@pytest.mark.parametrize("law", LAWS, ids=lambda law: f"{law.mechanism}-{len(law.eps_nodes)}-{law.sigma}")
def test_recursion_is_finite_for_llr_up_to_1e3(law):
    llr = torch.linspace(-1000, 1000, 4001, dtype=torch.float64)
    for x in (-1.0, 1.0):
        xs = torch.full_like(llr, x)
        for theta in (1.0, -1.0):
            lp = log_report_prob(llr, xs, theta, law)
            assert torch.isfinite(lp).all() and (lp <= 0).all()
        assert torch.isfinite(llr_increment(llr, xs, law)).all()
    # The two report probabilities sum to one everywhere.
    total = torch.logaddexp(
        log_report_prob(llr, -torch.ones_like(llr), 1.0, law),
        log_report_prob(llr, torch.ones_like(llr), 1.0, law),
    )
    assert torch.allclose(total, torch.zeros_like(total), atol=1e-12)


@pytest.mark.parametrize("eps", [0.5, 1.0, 2.0])
def test_minority_report_moves_llr_by_minus_two_eps_far_out(eps):
    # docs/dpsl-model.md §3.2: as l -> +inf the x = -1 increment tends to -2 eps; the majority one is positive and tiny.
    law = _law("smooth", eps)
    llr = torch.tensor([200.0, 500.0, 1000.0], dtype=torch.float64)
    minority = llr_increment(llr, -torch.ones_like(llr), law)
    assert torch.allclose(minority, torch.full_like(llr, -2 * eps), atol=1e-6)
    majority = llr_increment(llr, torch.ones_like(llr), law)
    assert (majority >= 0).all() and (majority < 1e-20).all()
    # Mirror image at l -> -inf.
    assert torch.allclose(
        llr_increment(-llr, torch.ones_like(llr), law), torch.full_like(llr, 2 * eps), atol=1e-6
    )


def test_majority_increment_matches_its_asymptote():
    # l -> inf, majority report: A e^{eps^2 sigma^2/2} (e^eps - e^-eps) e^{-eps sigma^2 l/2}.
    eps, sigma = 1.0, 1.0
    llr = torch.tensor([40.0, 80.0], dtype=torch.float64)
    inc = llr_increment(llr, torch.ones_like(llr), _law("smooth", eps, sigma))
    asym = (
        0.5
        * math.exp(eps**2 * sigma**2 / 2)
        * (math.exp(eps) - math.exp(-eps))
        * torch.exp(-eps * sigma**2 * llr / 2)
    )
    assert torch.allclose(inc, asym, rtol=0.1)
