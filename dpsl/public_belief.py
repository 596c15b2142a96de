"""What the public infers from a report: the exact closed-form LLR recursion (docs/dpsl-model.md §3).

Gaussian signals. Fix the true state theta and write z = (t - theta)/sigma for the distance of the
decision threshold t = -sigma^2 l / 2 from theta, v = |z|. Most signals fall on theta's side of the
threshold, so the report pointing the other way is the "small side" (x = -1 when z <= 0, x = +1 when
z > 0). Its probability S(v) splits into three masses (docs/dpsl-model.md §3.2 with d = t - theta):

    T1 = Phi(-v)                                   the agent's action lands on the small side,
    T2 = A exp( r v + r^2/2) Phi(-v - r)           ... and is flipped away from it,
    T3 = A exp(-r v + r^2/2) Phi( v - r)           the action lands on the large side and is flipped,

with r = eps * sigma, and S = T1 - T2 + T3. The large-side report has probability 1 - S, and
log P(x | l, theta) follows; the public LLR moves by log P(x | l, +1) - log P(x | l, -1).

Everything is kept in log space (log-ndtr, log1p) so that it stays finite for |l| up to 1e3 and
beyond, where the linear-space formula overflows at |l| ~ 30. Two evaluations of the same formulas:

* `report_law` - the reference: any mechanism, heterogeneous eps by Gauss-Legendre quadrature,
  built on `torch.special.log_ndtr`. Used by the engine for every scenario but one, by `theory`
  and by the tests.
* `SmoothReportKernel` - the same S for homogeneous smooth randomized response, rewritten with
  Mills ratios R(u) = Phi(-u)/phi(u) so that every term is O(1):
      S = exp(-r v + r^2/2) * [ phi(v - r) (R(v) - A R(v + r)) + A Phi(v - r) ],
  evaluated into preallocated buffers (allocation, not arithmetic, dominated a naive CPU version).
  The tests hold it to the reference to 1e-12.

Binary signals (docs/dpsl-model.md §3.3): before a cascade each report moves l by +-w = log(1/rho); the helpers
for rho and the cascade threshold live in `theory`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from .mechanisms import rr_flip_probability, smooth_amplitude

_SQRT_HALF = math.sqrt(0.5)
_SQRT_PI_2 = math.sqrt(math.pi / 2)
_INV_SQRT_2PI = 1.0 / math.sqrt(2 * math.pi)
# Below this the Mills ratio is erfc(u/sqrt2) exp(u^2/2) sqrt(pi/2) in float64 (erfc(26.2) ~ 1e-299
# is still a normal number); above it the asymptotic series to u^-12 is accurate to ~2e-15.
_MILLS_SWITCH = 37.0


def log_ndtr(x: torch.Tensor) -> torch.Tensor:
    return torch.special.log_ndtr(x)


# exp() of arguments below about -708 returns subnormal numbers, which cost ~200 ns each on common
# x86 CPUs (microcode assists) - two orders of magnitude over a normal exp. Wherever a tiny exp only
# enters as a negligible addend, its argument is clamped here first; e^-700 ~ 1e-304 is below every
# quantity it is added to by at least 280 orders of magnitude.
EXP_FLOOR = -700.0


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - e^x) for x <= 0, accurate at both ends (Maechler 2012)."""
    return torch.where(
        x > -math.log(2), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x.clamp(min=EXP_FLOOR)))
    )


def _logaddexp(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """torch.logaddexp without subnormal intermediates; b may be -inf (a mechanism without flips)."""
    top = torch.maximum(a, b)
    return top + torch.log1p(torch.exp((torch.minimum(a, b) - top).clamp_(min=EXP_FLOOR)))


def _logsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """torch.logsumexp without subnormal intermediates (terms e^-700 below the largest are dropped)."""
    top = x.amax(dim=dim, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    return torch.log(torch.exp((x - top).clamp_(min=EXP_FLOOR)).sum(dim=dim)) + top.squeeze(dim)


@dataclass(frozen=True)
class GaussianLaw:
    """The public's model of one Gaussian report: mechanism, eps (float or quadrature nodes), A."""

    sigma: float
    mechanism: str  # "none" | "rr" | "smooth"
    eps_nodes: tuple[float, ...] = ()  # one node for a homogeneous budget
    eps_weights: tuple[float, ...] = ()  # quadrature weights, summing to 1
    amplitude: str = "half"

    @classmethod
    def from_scenario(cls, scenario) -> GaussianLaw:
        from .scenario import EpsilonUniform

        if scenario.mechanism == "none":
            return cls(scenario.sigma, "none")
        eps = scenario.epsilon
        if isinstance(eps, EpsilonUniform):
            nodes, weights = gauss_legendre(eps.low, eps.high, scenario.quadrature_nodes)
            return cls(scenario.sigma, scenario.mechanism, tuple(nodes), tuple(weights), scenario.amplitude)
        return cls(scenario.sigma, scenario.mechanism, (float(eps),), (1.0,), scenario.amplitude)

    @property
    def mean_flip_probability(self) -> float:
        """u-bar = E[1/(1+e^eps)] of constant randomized response (what the public uses)."""
        return float(
            sum(w * rr_flip_probability(e) for e, w in zip(self.eps_nodes, self.eps_weights, strict=True))
        )


def gauss_legendre(low: float, high: float, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes on [low, high] and weights normalised to sum to 1 (an expectation under U[low, high])."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    return 0.5 * (high - low) * x + 0.5 * (high + low), 0.5 * w


def report_law(v: torch.Tensor, law: GaussianLaw) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reference log masses (log(T1 - T2), log T2, log T3) at distances v >= 0 (see module doc).

    Heterogeneous budgets average T2 and T3 over the eps nodes (T1 does not depend on eps).
    """
    log_t1 = log_ndtr(-v)
    if law.mechanism == "none":
        minus_inf = torch.full_like(v, -math.inf)
        return log_t1, minus_inf, minus_inf
    if law.mechanism == "rr":
        u = law.mean_flip_probability
        return log_t1 + math.log1p(-u), log_t1 + math.log(u), log_ndtr(v) + math.log(u)
    if law.mechanism != "smooth":
        raise ValueError(f"mechanism must be one of none, rr, smooth, got {law.mechanism!r}")
    eps, log_w = _node_tensors(law, v.device, v.dtype)
    _, log_t2, log_t3 = smooth_log_masses(v.unsqueeze(-1), eps, law.sigma, law.amplitude)  # ..., nodes
    log_t2 = _logsumexp(log_t2 + log_w, dim=-1)
    log_t3 = _logsumexp(log_t3 + log_w, dim=-1)
    # T2 < A T1 <= T1 / 2, so the difference never cancels.
    return log_t1 + _log1mexp(log_t2 - log_t1), log_t2, log_t3


@functools.lru_cache(maxsize=32)
def _node_tensors(law: GaussianLaw, device: torch.device, dtype: torch.dtype):
    """Quadrature nodes and log weights on the device, made once (a host copy per step would sync a GPU)."""
    eps = torch.tensor(law.eps_nodes, dtype=dtype, device=device)
    return eps, torch.log(torch.tensor(law.eps_weights, dtype=dtype, device=device))


def smooth_log_masses(v: torch.Tensor, eps: torch.Tensor, sigma: float, amplitude: str = "half"):
    """Elementwise (log(T1 - T2), log T2, log T3) of smooth RR at budget eps (broadcast with v >= 0)."""
    log_a = torch.log(smooth_amplitude(eps, amplitude))
    r = eps * sigma
    log_t1 = log_ndtr(-v)
    log_t2 = log_a + r * v + 0.5 * r * r + log_ndtr(-v - r)
    log_t3 = log_a - r * v + 0.5 * r * r + log_ndtr(v - r)
    return log_t1 + _log1mexp(log_t2 - log_t1), log_t2, log_t3


def log_small_side(v: torch.Tensor, law: GaussianLaw) -> torch.Tensor:
    """log S(v): log-probability of the small-side report."""
    log_t12, _, log_t3 = report_law(v, law)
    return _logaddexp(log_t12, log_t3)


def threshold_offset(llr: torch.Tensor, theta: float, sigma: float) -> torch.Tensor:
    """z = (t - theta)/sigma with t = -sigma^2 l / 2."""
    return (-0.5 * sigma * sigma) / sigma * llr - theta / sigma


def log_report_prob(llr: torch.Tensor, x: torch.Tensor, theta: float, law: GaussianLaw) -> torch.Tensor:
    """log P(x | l, theta) for reports x in {-1, +1} (reference closed form, log space)."""
    z = threshold_offset(llr, theta, law.sigma)
    log_s = log_small_side(z.abs(), law)
    small = (x < 0) ^ (z > 0)
    return torch.where(small, log_s, _log1mexp(log_s))


def llr_increment(llr: torch.Tensor, x: torch.Tensor, law: GaussianLaw) -> torch.Tensor:
    """l_{n+1} - l_n after report x: log P(x | l, +1) - log P(x | l, -1)."""
    return log_report_prob(llr, x, 1.0, law) - log_report_prob(llr, x, -1.0, law)


class SmoothReportKernel:
    """S(v) for homogeneous smooth randomized response, allocation-free (see module doc).

    Valid for r = eps * sigma <= 35 (the scenario enforces it): there Phi(v - r) and phi(v - r)
    never both underflow, so S > 0 and log S is finite for any v.
    """

    def __init__(self, n: int, sigma: float, eps: float, amplitude: str, device, dtype=torch.float64):
        # On the CPU a host-side check is free, so the asymptotic branch runs only when some u is in
        # it (the result is the same either way); on a GPU it would cost a sync per step.
        self.check_tail = torch.device(device).type == "cpu"
        self.r = eps * sigma
        self.a = smooth_amplitude(eps, amplitude)
        self.log_c = 0.5 * self.r * self.r
        shape = (n,)

        def buf():
            return torch.empty(shape, dtype=dtype, device=device)

        self.d, self.rvr, self._c, self._e, self._w = buf(), buf(), buf(), buf(), buf()
        self.mask = torch.empty(shape, dtype=torch.bool, device=device)

    def _mills(self, u: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """R(u) = Phi(-u)/phi(u) for u >= 0, into `out`."""
        c, e, w = self._c, self._e, self._w
        torch.clamp(u, max=_MILLS_SWITCH, out=c)
        torch.mul(c, _SQRT_HALF, out=e)
        torch.erfc(e, out=e)
        c.mul_(c).mul_(0.5).exp_()
        torch.mul(e, c, out=out).mul_(_SQRT_PI_2)
        if self.check_tail and not bool(torch.ge(u, _MILLS_SWITCH, out=self.mask).any()):
            return out
        # Asymptotic branch: 1/u (1 - w + 3w^2 - 15w^3 + 105w^4 - 945w^5 + 10395w^6), w = 1/u^2.
        torch.clamp(u, min=_MILLS_SWITCH, out=c)
        torch.reciprocal(c, out=c)
        torch.mul(c, c, out=w)
        torch.mul(w, 10395.0, out=e)
        for coef in (-945.0, 105.0, -15.0, 3.0, -1.0):
            e.add_(coef).mul_(w)
        e.add_(1.0).mul_(c)
        torch.lt(u, _MILLS_SWITCH, out=self.mask)
        return torch.where(self.mask, out, e, out=out)

    def log_small_side(self, v: torch.Tensor, out: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
        """log S(v) into `out`; leaves D = R(v) - A R(v + r) in `diff` and R(v + r) in `self.rvr`."""
        self._mills(v, diff)
        torch.add(v, self.r, out=self.d)
        self._mills(self.d, self.rvr)
        diff.sub_(self.rvr, alpha=self.a)
        d = self.d
        torch.sub(v, self.r, out=d)
        torch.mul(d, d, out=out).mul_(-0.5).clamp_(min=EXP_FLOOR).exp_()  # phi(d) sqrt(2 pi)
        out.mul_(diff).mul_(_INV_SQRT_2PI)
        d.mul_(-_SQRT_HALF)
        torch.erfc(d, out=d)  # 2 Phi(v - r)
        out.add_(d, alpha=0.5 * self.a).log_()
        return out.add_(v, alpha=-self.r).add_(self.log_c)

    def sampling_masses(self, v: torch.Tensor, diff: torch.Tensor, t12: torch.Tensor, t2: torch.Tensor):
        """Linear T1 - T2 = phi(v) D and T2 = A phi(v) R(v + r), after `log_small_side(v, ...)`."""
        torch.mul(v, v, out=t2).mul_(-0.5).clamp_(min=EXP_FLOOR).exp_().mul_(_INV_SQRT_2PI)  # phi(v)
        torch.mul(t2, diff, out=t12)
        t2.mul_(self.rvr).mul_(self.a)
        return t12, t2
