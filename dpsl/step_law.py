"""One agent step of homogeneous smooth RR as five functions of the public LLR: exact, and tabulated.

Under theta = +1 with one budget eps for every agent, all that agent n's step needs is a function of
the public LLR l = l_n alone (docs/dpsl-model.md §3.2; small/large side as in `public_belief`):

    c1(l) = T1 - T2,  c2(l) = S,  c3(l) = S + T2    bounds that split one uniform into (action, report):
                                                    [0, c1) action and report on the small side,
                                                    [c1, c2) report small, action large (T3),
                                                    [c2, c3) action small, report large (T2);
    inc_small(l), inc_large(l)                      the public LLR's move after a small-side /
                                                    large-side report, log P(x|l,+1) - log P(x|l,-1);
    flip(l) = (z > 0) = (l < L_STAR)                the small side is the correct report.

`SmoothStepLaw` evaluates them from the closed form (`SmoothReportKernel`): six erfc, nine exp and
four log per run and step. `StepLawTable` evaluates them from a table of cubics, which is what makes
the CPU engine fast: on one core and one 16384-run chunk the closed form ran at 7.4e6 run-steps/s
(~135 ns each), the table at 2.5e7 (~40 ns), at N = 4000.

The table
    The five functions are analytic in l except at L_STAR = -2/sigma^2, where the small side changes
    from the wrong to the correct report (the bounds and increments are labelled by side there). The
    grid is anchored at L_STAR, so no interval straddles it, and each interval [L_STAR + k h,
    L_STAR + (k+1) h) holds the cubic in the fraction f in [0, 1) through the exact values at four
    Chebyshev nodes. The step h scales with how fast the law varies in l (d/dl = sigma^2/2 d/dt, and
    the law's t-scale is sigma, shortened by the flip's e^{-eps |s - t|} when eps sigma < 1):
    h = 1 / (96 max(1, sigma/2 (1 + min(eps sigma, 1)))). That holds every function within ~5e-13
    of the closed form, relative to 1 + |f|, over sigma in [0.2, 5] and eps sigma up to 35 (the tests
    check 1e-12 at random l against the log_ndtr reference). With the same uniforms, a step drawn from
    the table and one drawn from the closed form differ only when the uniform falls within that
    distance of a bound: the two engines give the same actions and reports, and LLRs that agree to
    rounding (a test checks this on whole simulations).

    A step gathers each degree's coefficients of the three bounds with one index_select (the three
    tables laid end to end, the three indices offset by one table's length) and evaluates them by
    Horner on a (3, runs) block; of the two increments it gathers only the one of the side reported.
    Fewer, wider ops than one gather per coefficient: the same arithmetic per element, less dispatch
    (which the chunk threads contend for).

    The table grows as the runs' LLRs spread: intervals come in pages of PAGE_INTERVALS, each page
    always evaluated on its own, in the same order, so an interval's coefficients are the same bits
    whichever chunk built it and whatever else it built before (chunked and unchunked simulations
    stay identical).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .public_belief import EXP_FLOOR, SmoothReportKernel

DEGREE = 3
PAGE_INTERVALS = 64
# Chebyshev nodes of the first kind on [0, 1], and the matrix that turns the values there into
# monomial coefficients in f (well conditioned at this degree: the values round-trip to 1e-15).
_NODES = 0.5 - 0.5 * np.cos((2 * np.arange(DEGREE + 1) + 1) * np.pi / (2 * (DEGREE + 1)))
_TO_COEFFS = np.linalg.inv(np.vander(_NODES, DEGREE + 1, increasing=True))
FUNCTIONS = ("c1", "c2", "c3", "inc_small", "inc_large")


def kink(sigma: float) -> float:
    """L_STAR = -2/sigma^2: the LLR at which the threshold t = -sigma^2 l / 2 meets theta = +1."""
    return -2.0 / (sigma * sigma)


def grid_step(sigma: float, eps: float) -> float:
    """The table's interval length in l (see module doc)."""
    return 1.0 / (96.0 * max(1.0, 0.5 * sigma * (1.0 + min(eps * sigma, 1.0))))


class SmoothStepLaw:
    """The five functions and flip at n LLRs from the closed form, into preallocated buffers."""

    def __init__(self, n: int, sigma: float, eps: float, amplitude: str, device):
        self.sigma = sigma
        self.report = SmoothReportKernel(n, sigma, eps, amplitude, device)

        def buf(dtype=torch.float64):
            return torch.empty(n, dtype=dtype, device=device)

        # The bounds as the rows of one (3, n) block, as the table gives them (one comparison a step).
        self.bound_values = torch.empty((3, n), dtype=torch.float64, device=device)
        self.c1, self.c2, self.c3 = self.bound_values
        self.inc_small, self.inc_large = buf(), buf()
        self.z, self.v, self.ls_p, self.ls_m, self.diff, self.t2, self.lm1 = (buf() for _ in range(7))
        self.flip, self.m_small = buf(torch.bool), buf(torch.bool)

    def bounds(self, llr: torch.Tensor) -> None:
        """All five functions and flip at llr (the bounds, and both increments for `increment`)."""
        sigma, report = self.sigma, self.report
        z, v, ls_p, ls_m, diff, t2, lm1 = self.z, self.v, self.ls_p, self.ls_m, self.diff, self.t2, self.lm1
        c1, c2, c3, inc_small, inc_large = self.c1, self.c2, self.c3, self.inc_small, self.inc_large
        # theta = +1: z = (t - 1)/sigma; the small side is the wrong report iff z <= 0.
        torch.mul(llr, -0.5 * sigma, out=z).sub_(1.0 / sigma)
        torch.abs(z, out=v)
        report.log_small_side(v, ls_p, diff)
        report.sampling_masses(v, diff, c1, t2)
        torch.clamp(ls_p, min=EXP_FLOOR, out=c2).exp_()
        torch.add(c2, t2, out=c3)
        torch.gt(z, 0.0, out=self.flip)
        # theta = -1: z moves by 2/sigma. A small-side report (the wrong one iff not flip) is on
        # theta = -1's small side iff (z_m > 0) xor (the report is the wrong one).
        z.add_(2.0 / sigma)
        torch.abs(z, out=v)
        report.log_small_side(v, ls_m, diff)
        torch.gt(z, 0.0, out=self.m_small).bitwise_xor_(self.flip).logical_not_()
        torch.clamp(ls_m, min=EXP_FLOOR, out=lm1).exp_().neg_().log1p_()  # log(1 - S_-)
        torch.where(self.m_small, ls_m, lm1, out=inc_small)
        torch.sub(ls_p, inc_small, out=inc_small)
        torch.where(self.m_small, lm1, ls_m, out=inc_large)
        torch.neg(c2, out=t2).log1p_()  # log(1 - S_+)
        torch.sub(t2, inc_large, out=inc_large)

    def increment(self, x_small: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The LLR move at the llr of the last `bounds`, for a small-side report where x_small."""
        return torch.where(x_small, self.inc_small, self.inc_large, out=out)


class StepLawTable:
    """The five functions and flip at n LLRs from per-interval cubics (see module doc).

    Built for one chunk of n runs on the CPU; pages are added whenever an LLR leaves the covered
    range, which needs the range on the host every step (free on the CPU, a sync on a GPU). Every op
    of the evaluation runs on contiguous memory; only the increment of the side actually reported is
    gathered.
    """

    def __init__(self, n: int, sigma: float, eps: float, amplitude: str, device):
        self.law_args = (sigma, eps, amplitude, torch.device(device))
        self.anchor, self.step = kink(sigma), grid_step(sigma, eps)
        self.inv_step = 1.0 / self.step
        self.first_page, self.end_page = 0, 0
        self.bound_rows = self.inc_rows = None

        def buf(dtype=torch.float64):
            return torch.empty(n, dtype=dtype, device=device)

        # c1, c2, c3 are the rows of one (3, n) block, evaluated together; flat views for the gathers.
        self.bound_values = torch.empty((3, n), dtype=torch.float64, device=device)
        self.c1, self.c2, self.c3 = self.bound_values
        self.bound_coeff = torch.empty((3, n), dtype=torch.float64, device=device)
        self.bound_index = torch.empty((3, n), dtype=torch.int32, device=device)
        self.bound_flat = tuple(t.view(-1) for t in (self.bound_index, self.bound_values, self.bound_coeff))
        self.inc_coeff = self.bound_coeff[0]  # the increment's scratch row, a view made once
        self.bound_offsets = None  # (3, 1): where each bound's table starts in the concatenated rows
        self.frac, self.floor = buf(), buf()
        # int32 interval indices: the cast from the floor is vectorised (int64's is not), and index_select
        # takes either.
        self.index, self.side_index = buf(torch.int32), buf(torch.int32)
        self.flip = buf(torch.bool)

    def bounds(self, llr: torch.Tensor) -> None:
        """c1, c2, c3 and flip at llr; remembers where llr lies for `increment`."""
        frac, floor, index = self.frac, self.floor, self.index
        # (l - anchor)/h = interval + fraction in [0, 1); intervals below 0 are where z > 0.
        torch.sub(llr, self.anchor, out=frac).mul_(self.inv_step)
        torch.floor(frac, out=floor)
        frac.sub_(floor)
        torch.lt(floor, 0.0, out=self.flip)
        lo, hi = (int(b) for b in torch.aminmax(floor))
        self._cover(lo // PAGE_INTERVALS, hi // PAGE_INTERVALS)
        index.copy_(floor.sub_(self.first_page * PAGE_INTERVALS))
        torch.add(index, self.bound_offsets, out=self.bound_index)
        self._cubic(self.bound_rows, *self.bound_flat, self.bound_values, self.bound_coeff)

    def increment(self, x_small: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The LLR move at the llr of the last `bounds`, for a small-side report where x_small."""
        # Increment rows interleave the sides: 2 * interval for a large-side report, + 1 for small. One
        # add (the mask's int32 copy is a 4-byte-per-run temporary, under the allocator's mmap threshold),
        # where a multiply, an add and a where took longer.
        torch.add(x_small, self.index, alpha=2, out=self.side_index)
        coeff = self.inc_coeff
        return self._cubic(self.inc_rows, self.side_index, out, coeff, out, coeff)

    def _cubic(self, rows, index, flat_out, flat_coeff, out, coeff) -> torch.Tensor:
        """sum_d rows[d][index] frac^d by Horner, one gather and one multiply-add per degree: index,
        flat_out and flat_coeff are 1-D (runs, or k x runs for k tables laid end to end in rows[d]), and
        out, coeff the same memory as (k, runs) or (runs,) blocks, against which frac broadcasts.

        (Gathering all coefficients as one (n, degree + 1) block and reading it column by column is
        slower: the strided reads cost more than the separate gathers save.)
        """
        torch.index_select(rows[DEGREE], 0, index, out=flat_out)
        for d in range(DEGREE - 1, -1, -1):
            torch.index_select(rows[d], 0, index, out=flat_coeff)
            torch.addcmul(coeff, out, self.frac, out=out)
        return out

    def _cover(self, lo: int, hi: int) -> None:
        """Make sure pages lo..hi are in the table, with one spare page on each side."""
        if self.bound_rows is not None and self.first_page <= lo and hi < self.end_page:
            return
        first = lo - 1 if self.bound_rows is None else min(self.first_page, lo - 1)
        end = hi + 2 if self.bound_rows is None else max(self.end_page, hi + 2)
        sigma, eps, amplitude, device = self.law_args
        pages = [page_coefficients(sigma, eps, amplitude, device, page) for page in range(first, end)]
        # Lists of contiguous per-coefficient rows, so that a step indexes no tensor to find them.
        bounds = torch.cat([b for b, _ in pages], dim=-1)  # 3 bounds, degree + 1, intervals
        intervals = bounds.shape[-1]
        # Per degree, the three bounds' coefficients end to end: (3 intervals,).
        self.bound_rows = [bounds[:, d, :].reshape(-1) for d in range(DEGREE + 1)]
        self.bound_offsets = torch.arange(3, dtype=torch.int32, device=bounds.device).mul_(intervals)[:, None]
        self.inc_rows = list(torch.cat([i for _, i in pages], dim=-1))  # degree + 1 of (2 intervals,)
        self.first_page, self.end_page = first, end


@functools.lru_cache(maxsize=1024)
def page_coefficients(
    sigma: float, eps: float, amplitude: str, device: torch.device, page: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficients of intervals page*P .. page*P + P - 1: bounds (3, degree + 1, P) and the
    side-interleaved increments (degree + 1, 2P).

    Cached, and shared by the chunks of a simulation (each would otherwise build the same pages): a
    page's coefficients are a function of its arguments alone, the same bits whichever chunk asks.
    The cache is bounded (a page is 10 KiB); read-only, as the tables copy what they take.
    """
    k = torch.arange(PAGE_INTERVALS, dtype=torch.float64, device=device) + page * PAGE_INTERVALS
    nodes = torch.tensor(_NODES, dtype=torch.float64, device=device)
    llr = (k[:, None] + nodes[None, :]).mul_(grid_step(sigma, eps)).add_(kink(sigma)).reshape(-1)
    law = SmoothStepLaw(llr.numel(), sigma, eps, amplitude, device)
    law.bounds(llr)
    values = torch.stack([getattr(law, name) for name in FUNCTIONS]).reshape(
        len(FUNCTIONS), PAGE_INTERVALS, DEGREE + 1
    )
    # coefficient d = sum_j M[d, j] value_j, summed in a fixed order (elementwise, so the same
    # bits for an interval whatever page layout produced it).
    coeffs = []
    for d in range(DEGREE + 1):
        acc = values[..., 0] * float(_TO_COEFFS[d, 0])
        for j in range(1, DEGREE + 1):
            acc = acc + values[..., j] * float(_TO_COEFFS[d, j])
        coeffs.append(acc)
    coeffs = torch.stack(coeffs, dim=1)  # functions, degree + 1, P
    bounds = coeffs[:3].contiguous()
    increments = torch.stack([coeffs[4], coeffs[3]], dim=-1).reshape(DEGREE + 1, 2 * PAGE_INTERVALS)
    return bounds, increments


def step_law(n: int, sigma: float, eps: float, amplitude: str, device) -> SmoothStepLaw | StepLawTable:
    """The engine's evaluator: the table on the CPU, the closed form on a GPU (its transcendentals are
    cheap there, and the table's per-step range check would cost a host sync)."""
    cls = StepLawTable if torch.device(device).type == "cpu" else SmoothStepLaw
    return cls(n, sigma, eps, amplitude, device)
