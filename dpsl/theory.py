"""Closed forms of the paper's results (docs/dpsl-model.md §5), for overlaying on simulations.

eps = None (or math.inf) means non-private throughout. Scalars in, scalars out; the charts call
these on grids.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .mechanisms import rr_flip_probability, smooth_amplitude
from .public_belief import GaussianLaw, llr_increment

# -- Gaussian signals, smooth randomized response (T2, T3, T6) ---------------------------------------


def _nonprivate(eps) -> bool:
    return eps is None or math.isinf(eps)


def smooth_rr_K(eps: float, sigma: float, amplitude: str = "half") -> float:
    """K(eps, sigma) of l_n ~ (2/(eps sigma^2)) log(K n); proportional to A (value for A = 1/2 times 2A)."""
    e2 = eps * eps * sigma * sigma
    base = math.exp(-eps + e2 / 2)
    k_half = (eps * sigma**2 / 4) * base * math.expm1(2 * eps) - 0.5 * base * (-math.expm1(-e2))
    return 2 * smooth_amplitude(eps, amplitude) * k_half


def llr_asymptote(n, eps: float, sigma: float, amplitude: str = "half"):
    """(2/(eps sigma^2)) log(K n): the smooth-RR public LLR growth (T2)."""
    k = smooth_rr_K(eps, sigma, amplitude)
    return 2 / (eps * sigma**2) * np.log(k * np.asarray(n, dtype=float))


def nonprivate_llr_leading(n, sigma: float):
    """(2 sqrt 2 / sigma) sqrt(log n): leading term only; lower-order terms are large (docs/dpsl-model.md §5)."""
    return 2 * math.sqrt(2) / sigma * np.sqrt(np.log(np.asarray(n, dtype=float)))


def constant_rr_llr_leading(n, sigma: float):
    """2 sqrt(log n) / sigma: leading term of constant randomized response on Gaussian signals (§2.2)."""
    return 2 / sigma * np.sqrt(np.log(np.asarray(n, dtype=float)))


def tail_exponent_action(eps: float, sigma: float) -> float:
    """s = 2/(eps sigma^2): P(tau_a > n) ~ n^-s for the first correct actual action (T3)."""
    return 2 / (eps * sigma**2)


def tail_exponent_report(eps: float, sigma: float) -> float:
    """kappa = 2/(eps sigma^2 (1 - e^{-2 eps})): P(tau_x > n) ~ n^-kappa for reported actions (T3)."""
    return 2 / (eps * sigma**2 * -math.expm1(-2 * eps))


def first_correct_time_bound(
    eps: float, sigma: float, c1: float = 1.0, zeta_terms: int | None = None
) -> float:
    """C1 * C(eps)^-s * zeta(s) bound on E[tau_a] (T3), s = 2/(eps sigma^2).

    C(eps) = (eps sigma^2/2)(e^{eps + eps^2 sigma^2/2} - e^{-eps + eps^2 sigma^2/2}). With `zeta_terms`
    the zeta series is truncated there, as the legacy script does (10^4 terms), and the truncated value
    is returned for every s; without it the exact zeta is used, infinite when s <= 1. Computed in log
    space: where the bound exceeds the float range (small eps) it is inf, never an overflow error.
    """
    s = tail_exponent_action(eps, sigma)
    if zeta_terms is None:
        if s <= 1:
            return math.inf
        zeta = float(
            torch.special.zeta(torch.tensor(s, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
        )
    else:
        zeta = float(np.sum(np.power(np.arange(1, zeta_terms + 1, dtype=float), -s)))
    # log C = log(eps sigma^2 / 2) + eps^2 sigma^2 / 2 + log(2 sinh eps)
    log_c = math.log(eps * sigma**2 / 2) + eps * eps * sigma * sigma / 2 + math.log(2 * math.sinh(eps))
    log_bound = math.log(c1) - s * log_c + math.log(zeta)
    return math.exp(log_bound) if log_bound < 709.0 else math.inf


def belief_stop_time_asymptote(threshold: float, eps: float, sigma: float, amplitude: str = "half") -> float:
    """E[tau_B] ~ exp(eps sigma^2 B / 2) / K(eps, sigma) as B grows (T6)."""
    return math.exp(eps * sigma**2 * threshold / 2) / smooth_rr_K(eps, sigma, amplitude)


def belief_stop_time_bellman(
    threshold: float, eps: float | None, sigma: float, amplitude: str = "half", grid_points: int = 401
) -> float:
    """E[tau_B] from l = 0 by dynamic programming on an l-grid (the authors' Figure 6a curve).

    V(l) = 1 + P(x=+1 | l, +1) V(l + d_+(l)) + P(x=-1 | l, +1) V(l + d_-(l)) on (-B, B), V = 0 once
    |l| >= B, with d_x the exact LLR increments of §3.2 and V linear between the `grid_points` nodes.
    The fixed point is the solution of one linear system (what value iteration converges to). The grid
    biases the value low by a few per cent at 401 points (the authors' choice); finer grids converge to
    the Monte Carlo mean.
    """
    import torch

    from .public_belief import GaussianLaw, llr_increment, log_report_prob

    if grid_points < 3:
        raise ValueError(f"grid_points must be >= 3, got {grid_points}")
    law = (
        GaussianLaw(sigma, "none")
        if _nonprivate(eps)
        else GaussianLaw(sigma, "smooth", (float(eps),), (1.0,), amplitude)
    )
    grid = np.linspace(-threshold, threshold, grid_points)
    llr = torch.tensor(grid, dtype=torch.float64)
    plus = torch.ones_like(llr)
    p_plus = log_report_prob(llr, plus, 1.0, law).exp().numpy()
    moves = [
        (p_plus, (llr + llr_increment(llr, plus, law)).numpy()),
        (1 - p_plus, (llr + llr_increment(llr, -plus, law)).numpy()),
    ]
    interior = np.abs(grid) < threshold
    m = np.zeros((grid_points, grid_points))
    step = grid[1] - grid[0]
    for prob, target in moves:
        inside = np.abs(target) < threshold
        pos = (target - grid[0]) / step
        lo = np.clip(np.floor(pos).astype(int), 0, grid_points - 2)
        frac = pos - lo
        rows = np.flatnonzero(inside & interior)
        np.add.at(m, (rows, lo[rows]), prob[rows] * (1 - frac[rows]))
        np.add.at(m, (rows, lo[rows] + 1), prob[rows] * frac[rows])
    a = np.eye(grid_points) - m
    b = interior.astype(float)
    value = np.linalg.solve(a, b)
    return float(np.interp(0.0, grid, value))


def positive_report_recursion(
    l1: float,
    steps: int,
    eps: float | None,
    sigma: float,
    amplitude: str = "legacy",
    approximate: bool = False,
) -> np.ndarray:
    """The appendix recursion (docs/dpsl-model.md §6.5): every report is +1, l_1 = l1; returns l_1 .. l_{steps+1}.

    Exact: l_{n+1} = l_n + log P(x=+1 | l_n, +1) / P(x=+1 | l_n, -1) (closed form of §3.2).
    Approximate: l_{n+1} = l_n + C exp(-eps sigma^2 l_n / 2), C = A(e^{eps+eps^2 sigma^2/2} - e^{-eps+...}).
    """
    path = np.empty(steps + 1)
    path[0] = l1
    if approximate:
        a = smooth_amplitude(eps, amplitude)
        e2 = eps * eps * sigma * sigma / 2
        c = a * (math.exp(eps + e2) - math.exp(-eps + e2))
        for n in range(steps):
            path[n + 1] = path[n] + c * math.exp(-eps * sigma**2 * path[n] / 2)
        return path
    law = (
        GaussianLaw(sigma, "none")
        if _nonprivate(eps)
        else GaussianLaw(sigma, "smooth", (eps,), (1.0,), amplitude)
    )
    llr = torch.tensor([l1], dtype=torch.float64)
    plus = torch.ones(1, dtype=torch.float64)
    for n in range(steps):
        llr = llr + llr_increment(llr, plus, law)
        path[n + 1] = float(llr)
    return path


# -- binary signals, randomized response before a cascade (T4) --------------------------------------


def report_accuracy(eps: float | None, p: float, flip: float | None = None) -> float:
    """q = P(x_n = theta) before a cascade = p(1-u) + (1-p)u."""
    u = (0.0 if _nonprivate(eps) else rr_flip_probability(eps)) if flip is None else flip
    return p * (1 - u) + (1 - p) * u


def rho(eps: float | None, p: float, flip: float | None = None) -> float:
    """rho = (1-q)/q = (1 + alpha e^eps)/(e^eps + alpha); alpha at eps = inf, -> 1 as eps -> 0."""
    q = report_accuracy(eps, p, flip)
    return (1 - q) / q


def cascade_threshold(eps: float | None, p: float, flip: float | None = None) -> int:
    """k(eps, p) = floor(log alpha / log rho) + 1: the smallest j with rho^j < alpha (2 non-private)."""
    alpha = (1 - p) / p
    ratio = math.log(alpha) / math.log(rho(eps, p, flip))
    return int(math.floor(ratio + 1e-12)) + 1


def eps_breakpoint(k: int, p: float) -> float:
    """eps_k, where k(eps, p) steps from k-1 to k as eps decreases; eps_2 = inf."""
    if k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k}")
    if k == 2:
        return math.inf
    alpha = (1 - p) / p
    return math.log((1 - alpha ** (k / (k - 1))) / (alpha ** (1 / (k - 1)) - alpha))


def p_correct_cascade(eps: float | None, p: float, flip: float | None = None) -> float:
    """P(the cascade is on theta) = 1/(1 + rho^k) (gambler's ruin with barriers +-k)."""
    k = cascade_threshold(eps, p, flip)
    return 1 / (1 + rho(eps, p, flip) ** k)


def expected_reports_before_cascade(eps: float | None, p: float, flip: float | None = None) -> float:
    """E[tau] = (k/mu)(1 - rho^k)/(1 + rho^k) with mu = 2q - 1."""
    k = cascade_threshold(eps, p, flip)
    r = rho(eps, p, flip)
    mu = 2 * report_accuracy(eps, p, flip) - 1
    return k / mu * (1 - r**k) / (1 + r**k)


# -- the summary attached to results (same key names as the simulation summaries) ------------------


PARTICIPATION_KAPPA = 5.0
"""The authors' participation model: agents' privacy tolerances eps_i ~ U[0, 5]; a platform that sets
eps keeps the share eta(eps) = 1 - eps/5 of them, so calendar time is reports / eta."""


def platform_objective(eps: float, p: float, cost: float = 0.01) -> float:
    """J(eps) = P(correct cascade) - cost * E[reports before the cascade] / (1 - eps/5) (MOR Figure 3)."""
    return p_correct_cascade(eps, p) - cost * expected_reports_before_cascade(eps, p) / (
        1 - eps / PARTICIPATION_KAPPA
    )


def _finite(compute):
    """compute() when it gives a finite number (or a list of them), else None."""
    try:
        with np.errstate(all="ignore"):
            value = compute()
    except (ArithmeticError, ValueError):
        return None
    values = value if isinstance(value, list) else [value]
    return value if all(isinstance(v, (int, float)) and math.isfinite(v) for v in values) else None


def summary(scenario) -> dict:
    """Closed-form values for a scenario, under the keys the simulation summaries use.

    Binary: p_correct_cascade, cascade_threshold, reports_before_cascade_mean, eps_breakpoints.
    Gaussian smooth, homogeneous: llr_mean (the asymptote at the checkpoints), K,
    first_correct_action_bound, tail_exponent_action, tail_exponent_report and, with a belief
    threshold, belief_stop_time_asymptote. Gaussian none / rr: llr_mean is the leading term only.
    Keys without a closed form for the scenario are absent.
    """
    n = np.asarray(scenario.resolved_checkpoints, dtype=float)
    out: dict = {}
    if scenario.signal == "binary":
        eps, flip = None, None
        if scenario.heterogeneous:
            flip = GaussianLaw.from_scenario(scenario).mean_flip_probability
        elif scenario.private:
            eps = float(scenario.epsilon)
        out["p_correct_cascade"] = p_correct_cascade(eps, scenario.p, flip)
        out["cascade_threshold"] = cascade_threshold(eps, scenario.p, flip)
        out["reports_before_cascade_mean"] = expected_reports_before_cascade(eps, scenario.p, flip)
        out["eps_breakpoints"] = {str(k): eps_breakpoint(k, scenario.p) for k in range(3, 8)}
        return out
    sigma = scenario.sigma
    if scenario.mechanism == "none":
        out["llr_mean"] = nonprivate_llr_leading(n, sigma).tolist()
        out["llr_mean_note"] = "leading term (2 sqrt2/sigma) sqrt(log n); lower-order terms are large"
        return out
    if scenario.heterogeneous:
        return out
    eps = float(scenario.epsilon)
    if scenario.mechanism == "rr":
        out["llr_mean"] = constant_rr_llr_leading(n, sigma).tolist()
        out["llr_mean_note"] = "leading term 2 sqrt(log n)/sigma"
        return out
    # At extreme budgets (eps -> 0) the closed forms leave the float range; such a value is reported
    # as not finite (None), never as a failure of the whole summary.
    out["llr_mean"] = _finite(lambda: llr_asymptote(n, eps, sigma, scenario.amplitude).tolist())
    out["llr_mean_note"] = "asymptote (2/(eps sigma^2)) log(K n)"
    out["K"] = _finite(lambda: smooth_rr_K(eps, sigma, scenario.amplitude))
    out["first_correct_action_bound"] = _finite(lambda: first_correct_time_bound(eps, sigma))
    out["tail_exponent_action"] = _finite(lambda: tail_exponent_action(eps, sigma))
    out["tail_exponent_report"] = _finite(lambda: tail_exponent_report(eps, sigma))
    if scenario.belief_threshold is not None:
        out["belief_stop_time_asymptote"] = _finite(
            lambda: belief_stop_time_asymptote(scenario.belief_threshold, eps, sigma, scenario.amplitude)
        )
    return out
