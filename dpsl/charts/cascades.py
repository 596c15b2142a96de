"""Charts of binary-signal cascades: the correct-cascade probability with its thresholds, the reports
before a cascade, and the platform objective."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.lines import Line2D

from .. import theory
from ..results import format_number
from .rendering import DEFAULT_STYLE, LINESTYLES, MARKERS, SERIES_COLOURS, Chart, ChartStyle, _draw


@dataclass
class CascadeCurve:
    """Closed-form P(correct cascade) over a fine eps grid for one signal accuracy p, plus MC points."""

    p: float
    eps: np.ndarray  # fine grid, increasing
    prob: np.ndarray  # closed form 1/(1+rho^k)
    k: np.ndarray  # cascade threshold k(eps, p) on the grid (int)
    breakpoints: dict[int, float]  # k -> eps_k (k >= 3), where k jumps as eps decreases
    non_private: float  # p^2 / (p^2 + (1-p)^2)
    mc_eps: np.ndarray | None = None
    mc_prob: np.ndarray | None = None
    mc_se: np.ndarray | None = None
    mc_k: np.ndarray | None = None


K_COLOURS = ("blue", "vermillion", "green", "purple", "orange", "sky_blue")  # k = 2, 3, ..., 7


def _k_colour(k: int, colours: dict[str, str]) -> str:
    index = int(k) - 2
    return colours[K_COLOURS[index]] if 0 <= index < len(K_COLOURS) else "#8C8C8C"


def cascade_probability_chart(
    curves: Sequence[CascadeCurve], *, title: str, style: ChartStyle = DEFAULT_STYLE
) -> Chart:
    """The binary sawtooth (docs/dpsl-model.md §6.1): colour = cascade threshold k, line style = p."""

    def draw(fig, axes, colours):
        ax = axes[0]
        ks_seen: set[int] = set()
        for i, curve in enumerate(curves):
            ls = LINESTYLES[i % len(LINESTYLES)]
            eps, prob, k = (np.asarray(a) for a in (curve.eps, curve.prob, curve.k))
            # One segment per k interval (eps_{k+1}, eps_k]: the jumps at the breakpoints stay jumps.
            starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
            ends = np.r_[starts[1:], len(k)]
            for a, b in zip(starts, ends, strict=True):
                kk = int(k[a])
                ks_seen.add(kk)
                ax.plot(eps[a:b], prob[a:b], color=_k_colour(kk, colours), linestyle=ls, linewidth=2.2)
            ax.axhline(curve.non_private, color=colours["black"], linestyle=ls, linewidth=1.0)
            ax.annotate(
                f"non-private, p={format_number(curve.p, 3)}",
                (eps[-1], curve.non_private),
                xytext=(-4, 3),
                textcoords="offset points",
                ha="right",
                va="bottom",
                fontsize="small",
            )
            for e_k in sorted(curve.breakpoints.values()):
                if eps[0] <= e_k <= eps[-1]:
                    ax.axvline(e_k, color="#8C8C8C", linestyle=ls, linewidth=0.8, alpha=0.8)
            if curve.mc_eps is not None and len(curve.mc_eps):
                mk = np.asarray(curve.mc_k) if curve.mc_k is not None else np.full(len(curve.mc_eps), -1)
                for e, pr, se, kk in zip(curve.mc_eps, curve.mc_prob, curve.mc_se, mk, strict=True):
                    ax.errorbar(
                        [e],
                        [pr],
                        yerr=[2 * se],
                        fmt=MARKERS[i % len(MARKERS)],
                        markersize=5,
                        color=_k_colour(kk, colours) if kk >= 2 else colours["black"],
                        markeredgecolor=colours["black"],
                        markeredgewidth=0.6,
                        capsize=2,
                        elinewidth=1.0,
                        zorder=5,
                    )
        k_top = 2 + len(K_COLOURS)
        k_handles = [
            Line2D([], [], color=_k_colour(kk, colours), linewidth=3, label=f"k = {kk}")
            for kk in sorted(k for k in ks_seen if k < k_top)
        ]
        if any(k >= k_top for k in ks_seen):
            k_handles.append(
                Line2D([], [], color=_k_colour(k_top, colours), linewidth=3, label=f"k ≥ {k_top}")
            )
        p_handles = [
            Line2D(
                [],
                [],
                color=colours["black"],
                linestyle=LINESTYLES[i % len(LINESTYLES)],
                marker=MARKERS[i % len(MARKERS)] if c.mc_eps is not None else None,
                label=f"p = {format_number(c.p, 3)}",
            )
            for i, c in enumerate(curves)
        ]
        extra = [
            Line2D(
                [], [], color="#8C8C8C", linestyle="--", linewidth=0.8, label=r"breakpoints $\varepsilon_k$"
            )
        ]
        if any(c.mc_eps is not None for c in curves):
            extra.append(
                Line2D(
                    [], [], color=colours["black"], marker="o", linestyle="none", label="Monte Carlo ± 2 SE"
                )
            )
        # Outside the axes: the three p curves fill the plot from 0.55 to 0.99, no corner is free.
        fig.legend(handles=k_handles + p_handles + extra, loc="outside right center")
        ax.set_xlabel(r"privacy budget $\varepsilon$ (linear scale)")
        ax.set_ylabel("P(correct cascade)")
        lo = min(min(c.p for c in curves) - 0.02, 0.5)
        ax.set_ylim(lo, 1.0)
        ax.text(
            0.01,
            0.01,
            "k = cascade threshold: net lead of one report over the other that starts a cascade",
            transform=ax.transAxes,
            fontsize="small",
            va="bottom",
        )
        ax.set_xlim(0, max(float(np.max(c.eps)) for c in curves))
        ax.set_title(title)

    return _draw(style, 1, draw)


@dataclass
class ReportsCurve:
    """Closed-form E[tau] (reports before the cascade) over a fine eps grid for one p, plus MC points."""

    p: float
    eps: np.ndarray
    reports: np.ndarray  # (k/mu)(1 - rho^k)/(1 + rho^k)
    k: np.ndarray
    non_private: float
    mc_eps: np.ndarray | None = None
    mc_reports: np.ndarray | None = None
    mc_se: np.ndarray | None = None


PARTICIPATION_KAPPA = theory.PARTICIPATION_KAPPA


def precascade_reports_chart(
    curves: Sequence[ReportsCurve], *, title: str, style: ChartStyle = DEFAULT_STYLE
) -> Chart:
    """(a) E[tau] against eps, coloured by k; (b) its calendar-time twin E[tau]/(1 - eps/5)."""

    def draw(fig, axes, colours):
        for panel, ax in enumerate(axes):
            for i, c in enumerate(curves):
                ls = LINESTYLES[i % len(LINESTYLES)]
                scale = 1 - c.eps / PARTICIPATION_KAPPA if panel else np.ones_like(c.eps)
                y = c.reports / scale
                starts = np.flatnonzero(np.r_[True, c.k[1:] != c.k[:-1]])
                ends = np.r_[starts[1:], len(c.k)]
                for a, b in zip(starts, ends, strict=True):
                    ax.plot(
                        c.eps[a:b], y[a:b], color=_k_colour(int(c.k[a]), colours), linestyle=ls, linewidth=2.0
                    )
                if panel == 0:
                    ax.axhline(c.non_private, color=colours["black"], linestyle=ls, linewidth=1.0)
                if c.mc_eps is not None and len(c.mc_eps):
                    mc_scale = 1 - c.mc_eps / PARTICIPATION_KAPPA if panel else 1.0
                    ax.errorbar(
                        c.mc_eps,
                        c.mc_reports / mc_scale,
                        yerr=2 * c.mc_se / mc_scale,
                        fmt=MARKERS[i % len(MARKERS)],
                        color=colours["black"],
                        markersize=4,
                        capsize=2,
                        linestyle="none",
                        zorder=5,
                    )
            ax.set_yscale("log")
            ax.set_xlabel(r"privacy budget $\varepsilon$ (linear scale)")
            ax.grid(True, which="both", alpha=0.3)
        axes[0].set_ylabel("E[reports before the cascade] (log scale)")
        axes[0].set_title("(a) reports")
        axes[1].set_ylabel(r"E[calendar time] = E[$\tau$] / (1 − ε/5) (log scale)")
        axes[1].set_title("(b) calendar time, participation 1 − ε/5")
        ks = sorted({int(k) for c in curves for k in c.k})
        handles = [Line2D([], [], color=_k_colour(k, colours), linewidth=3, label=f"k = {k}") for k in ks[:6]]
        handles += [
            Line2D(
                [],
                [],
                color=colours["black"],
                linestyle=LINESTYLES[i % len(LINESTYLES)],
                label=f"p = {format_number(c.p, 3)} (horizontal: non-private)",
            )
            for i, c in enumerate(curves)
        ]
        fig.legend(handles=handles, loc="outside right center")
        fig.suptitle(title)

    return _draw(style, 2, draw)


@dataclass
class ObjectiveCurve:
    p: float
    eps: np.ndarray
    objective: np.ndarray  # J(eps) = P(correct cascade) - c E[tau] / (1 - eps/5)
    best_eps: float
    best: float


def platform_objective_chart(
    curves: Sequence[ObjectiveCurve], *, cost: float, title: str, style: ChartStyle = DEFAULT_STYLE
) -> Chart:
    """J(eps) for each p with its maximiser marked."""

    def draw(fig, axes, colours):
        ax = axes[0]
        for i, c in enumerate(curves):
            colour = colours[SERIES_COLOURS[i % len(SERIES_COLOURS)]]
            ax.plot(
                c.eps,
                c.objective,
                color=colour,
                linestyle=LINESTYLES[i % len(LINESTYLES)],
                linewidth=2.0,
                label=f"p = {format_number(c.p, 3)}",
            )
            ax.plot(
                [c.best_eps],
                [c.best],
                marker=MARKERS[i % len(MARKERS)],
                color=colour,
                markersize=8,
                markeredgecolor=colours["black"],
                linestyle="none",
            )
            ax.annotate(
                rf"p = {format_number(c.p, 3)}: max at $\varepsilon$ = {c.best_eps:.2f} (J = {c.best:.3f})",
                (c.best_eps, c.best),
                xytext=(10, -16 - 14 * i),  # stacked: maximisers of different p can coincide
                textcoords="offset points",
                fontsize="small",
                arrowprops={"arrowstyle": "-", "color": colour, "linewidth": 0.6},
            )
        # The objective plunges at both ends of the grid; show the region around the maximisers.
        top = max(c.best for c in curves)
        ax.set_ylim(min(c.best for c in curves) - 0.6, top + 0.12)
        ax.set_xlabel(r"privacy budget $\varepsilon$ set by the platform (linear scale)")
        ax.set_ylabel(
            rf"J($\varepsilon$) = P(correct cascade) − {format_number(cost, 3)}·E[$\tau$]/(1 − ε/5)"
        )
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
        ax.set_title(title)

    return _draw(style, 1, draw)
