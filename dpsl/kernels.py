"""The per-step kernels of the simulator, one per mechanism: each turns the public LLR and one slab of
uniforms into every run's action and report, and updates the LLR (`engine` runs them over chunks)."""

from __future__ import annotations

import logging
import math

import torch

from .outputs import Outputs
from .public_belief import (
    EXP_FLOOR,
    GaussianLaw,
    _log1mexp,
    _logaddexp,
    report_law,
    smooth_log_masses,
)
from .scenario import Scenario
from .step_law import step_law
from .theory import cascade_threshold, rho

log = logging.getLogger(__name__)


def draws(scenario: Scenario) -> int:
    """Uniforms per agent step: heterogeneous smooth Gaussian budgets also draw the agent's eps_n."""
    return 2 if QuadratureKernel.draws_eps(scenario) else 1


def kernel_for(scenario: Scenario) -> type[Kernel]:
    if scenario.signal == "binary":
        return BinaryKernel
    if scenario.mechanism == "smooth" and not scenario.heterogeneous:
        return SmoothKernel
    return QuadratureKernel


class Kernel:
    """One model's agent step on a chunk's runs.

    step(u, a_wrong, x_wrong) reads the public LLR l_n, draws agent n's intended action and report from
    the uniforms u (a tuple of `draws` rows, one uniform per run each), writes whether each is wrong
    into a_wrong and x_wrong (bool, one per run: the chunk's rows for this step), and updates llr in
    place to l_{n+1}.
    flush(out, sl) writes the outputs only this model has.
    """

    # torch's intra-op threads while this kernel runs on the CPU (None: as the caller set them). Kernels
    # with large ops (the quadrature over eps nodes) gain from OpenMP inside each chunk thread.
    intra_op_threads: int | None = None

    def __init__(self, s: Scenario, dev: torch.device, llr):
        self.s, self.dev, self.llr = s, dev, llr

    def step(self, u: tuple[torch.Tensor, ...], a_wrong: torch.Tensor, x_wrong: torch.Tensor) -> None:
        raise NotImplementedError

    def flush(self, out: Outputs, sl: slice) -> None:
        pass


class SmoothKernel(Kernel):
    """Homogeneous smooth RR: the step law at l_n (`dpsl.step_law`), then one uniform's draw.

    On the CPU the law comes from its polynomial table, on a GPU from the closed form; with the same
    uniforms both draw the same actions and reports (see dpsl/step_law.py).

    Its ops take microseconds, so OpenMP teams cost more than they share: it runs with one intra-op
    thread per chunk thread (faster on two cores than two intra-op threads; `benchmarks/dpsl_throughput.py`).
    """

    intra_op_threads = 1

    def __init__(self, s, dev, llr):
        super().__init__(s, dev, llr)
        runs = llr.numel()
        self.law = step_law(runs, s.sigma, float(s.epsilon), s.amplitude, dev)
        # u < c1, u < c2, u < c3: one comparison of u against the law's (3, runs) block of bounds.
        self.below = torch.empty((3, runs), dtype=torch.bool, device=dev)
        self.below_rows = tuple(self.below)
        self.large = torch.empty(runs, dtype=torch.bool, device=dev)
        self.inc = torch.empty(runs, dtype=torch.float64, device=dev)

    def step(self, u_all, a_wrong, x_wrong):
        u, law = u_all[0], self.law
        law.bounds(self.llr)
        below_c1, x_small, below_c3 = self.below_rows
        torch.lt(u, law.bound_values, out=self.below)
        # The report is on the small side for u in [0, c2); the action for u in [0, c1) or [c2, c3),
        # and [c2, c3) is where u is below c3 but not below c2 (bools compare as 0 < 1).
        torch.bitwise_xor(x_small, law.flip, out=x_wrong)
        torch.gt(below_c3, x_small, out=self.large)
        torch.logical_or(below_c1, self.large, out=a_wrong).bitwise_xor_(law.flip)
        self.llr.add_(law.increment(x_small, self.inc))


class QuadratureKernel(Kernel):
    """Every other Gaussian scenario, through the reference closed form (log_ndtr, quadrature)."""

    @staticmethod
    def draws_eps(s: Scenario) -> bool:
        """Heterogeneous smooth budgets draw eps_n per agent; other mechanisms only need its mean law."""
        return s.signal == "gaussian" and s.mechanism == "smooth" and s.heterogeneous

    def __init__(self, s, dev, llr):
        super().__init__(s, dev, llr)
        self.law = GaussianLaw.from_scenario(s)
        self.scale = -0.5 * s.sigma
        self.draw_eps = self.draws_eps(s)
        if self.draw_eps:
            self.eps_low, self.eps_width = s.epsilon.low, s.epsilon.high - s.epsilon.low

    def step(self, u_all, a_wrong, x_wrong):
        s, law, llr = self.s, self.law, self.llr
        u = u_all[-1]
        z = llr * self.scale - 1.0 / s.sigma
        v = z.abs()
        ls_p_pub = _logaddexp(*report_law(v, law)[::2])
        if self.draw_eps:
            eps_n = self.eps_low + self.eps_width * u_all[0]
            log_t12, log_t2, log_t3 = smooth_log_masses(v, eps_n, s.sigma, s.amplitude)
            ls_agent = _logaddexp(log_t12, log_t3)
        else:
            log_t12, log_t2, _ = report_law(v, law)
            ls_agent = ls_p_pub
        sp = torch.exp(ls_agent.clamp(min=EXP_FLOOR))
        x_small = u < sp
        flip = z > 0
        torch.bitwise_xor(x_small, flip, out=x_wrong)
        a_small = (u < torch.exp(log_t12.clamp(min=EXP_FLOOR))) | (
            ~x_small & (u < sp + torch.exp(log_t2.clamp(min=EXP_FLOOR)))
        )
        torch.bitwise_xor(a_small, flip, out=a_wrong)
        z_m = z + 2.0 / s.sigma
        ls_m = _logaddexp(*report_law(z_m.abs(), law)[::2])
        small_m = (z_m > 0) ^ x_wrong
        inc = torch.where(x_small, ls_p_pub, _log1mexp(ls_p_pub)) - torch.where(
            small_m, ls_m, _log1mexp(ls_m)
        )
        llr.add_(inc)


class BinaryKernel(Kernel):
    """Binary signals: report walk j with step +-1 before the cascade at |j| = k (docs/dpsl-model.md §3.3)."""

    def __init__(self, s, dev, llr):
        super().__init__(s, dev, llr)
        law = GaussianLaw.from_scenario(s) if s.private else None
        u_flip = 0.0 if law is None else law.mean_flip_probability
        p = s.p
        self.k = float(cascade_threshold(None, p, u_flip))
        self.w = -math.log(rho(None, p, u_flip))
        # The four (signal, report) cells under theta = +1, as cumulative bounds of one uniform.
        self.c1 = p * (1 - u_flip)  # s = +1, x = +1
        self.c2 = p  # s = +1, x = -1 up to here
        self.c3 = p + (1 - p) * u_flip  # s = -1, x = +1
        runs = llr.numel()
        self.j = torch.zeros(runs, dtype=torch.float64, device=dev)
        self.pre_cascade = torch.zeros(runs, dtype=torch.int64, device=dev)

    def step(self, u_all, a_wrong, x_wrong):
        u, j = u_all[0], self.j
        herding = j.abs() >= self.k
        free = ~herding
        self.pre_cascade.add_(free)
        wrong_herd = herding & (j < 0)
        # Before a cascade the action follows the signal (ties included); in it, the herd.
        torch.where(free, u >= self.c2, wrong_herd, out=a_wrong)
        x_pos = (u < self.c1) | ((u >= self.c2) & (u < self.c3))
        torch.where(free, ~x_pos, wrong_herd, out=x_wrong)
        j.add_(torch.where(free, torch.where(x_pos, 1.0, -1.0), 0.0))
        torch.mul(j, self.w, out=self.llr)

    def flush(self, out, sl):
        j = self.j
        side = torch.where(j.abs() >= self.k, torch.sign(j), torch.zeros_like(j))
        out.cascade_side[sl] = side.to(torch.int8).cpu().numpy()
        casc = torch.where(side != 0, self.pre_cascade, torch.full_like(self.pre_cascade, self.s.agents + 1))
        out.cascade_time[sl] = casc.cpu().numpy()
