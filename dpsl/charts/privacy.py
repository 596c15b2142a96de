"""Charts of what privacy costs: wrong actions and stopping times against epsilon, and the smooth
randomized response itself."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..results import format_number
from .rendering import DEFAULT_STYLE, LINESTYLES, MARKERS, SERIES_COLOURS, Chart, ChartStyle, _draw


@dataclass
class EpsSeries:
    """A Monte Carlo mean over an eps grid, with its standard error."""

    label: str
    eps: np.ndarray
    mean: np.ndarray
    se: np.ndarray | None = None
    non_private: float | None = None  # mean of the non-private run, drawn as a horizontal line


def _eps_series(ax, series: Sequence[EpsSeries], colours, offset: int = 0) -> None:
    for i, s in enumerate(series):
        colour = colours[SERIES_COLOURS[(i + offset) % len(SERIES_COLOURS)]]
        ls, mk = LINESTYLES[(i + offset) % len(LINESTYLES)], MARKERS[(i + offset) % len(MARKERS)]
        se = None if s.se is None else 2 * np.asarray(s.se)
        ax.errorbar(
            s.eps,
            s.mean,
            yerr=se,
            color=colour,
            linestyle=ls,
            marker=mk,
            markersize=5,
            capsize=2,
            label=s.label + (" (± 2 SE)" if se is not None else ""),
        )
        if s.non_private is not None and math.isfinite(s.non_private):
            ax.axhline(
                s.non_private,
                color=colour,
                linestyle=":",
                linewidth=1.0,
                label=f"{s.label}, non-private: {format_number(s.non_private, 3)}",
            )


def mistakes_chart(
    first_correct: Sequence[EpsSeries],
    wrong: Sequence[EpsSeries],
    *,
    title: str,
    finiteness_eps: float | None = None,
    style: ChartStyle = DEFAULT_STYLE,
) -> Chart:
    """(a) mean first-correct time, (b) mean wrong actions and wrong reports, both against eps.

    Actions (a_n) and reports (x_n) are drawn apart: only the actions have finite means for
    eps < 2/sigma^2 (docs/dpsl-model.md §4 item 3, §7 item 2); the wrong reports grow like log N at every eps.
    """

    def draw(fig, axes, colours):
        ax_t, ax_w = axes
        _eps_series(ax_t, first_correct, colours)
        _eps_series(ax_w, wrong, colours)
        for ax in axes:
            if finiteness_eps is not None:
                ax.axvline(
                    finiteness_eps,
                    color="#8C8C8C",
                    linestyle="--",
                    linewidth=1.0,
                    label=rf"$\varepsilon = 2/\sigma^2$ = {format_number(finiteness_eps, 3)}",
                )
            ax.set_xlabel(r"privacy budget $\varepsilon$ (linear scale)")
            ax.legend(loc="upper center")
        ax_t.set_ylabel(r"mean first-correct time E[$\tau$] (agents)")
        ax_w.set_ylabel("mean number of wrong actions / reports (log scale)")
        ax_w.set_yscale("log")
        ax_t.set_title("(a) time to the first correct action / report")
        ax_w.set_title("(b) wrong actions and wrong reports")
        fig.suptitle(title)

    return _draw(style, 2, draw)


def stopping_time_chart(
    mc: EpsSeries,
    *,
    title: str,
    asymptote_eps: np.ndarray | None = None,
    asymptote: np.ndarray | None = None,
    capped_fraction: np.ndarray | None = None,
    bellman_eps: np.ndarray | None = None,
    bellman: np.ndarray | None = None,
    style: ChartStyle = DEFAULT_STYLE,
) -> Chart:
    """E[tau_B] against eps: Monte Carlo, the value-iteration curve on an l-grid, and the asymptote
    exp(eps sigma^2 B / 2) / K (docs/dpsl-model.md §6.4)."""

    def draw(fig, axes, colours):
        ax = axes[0]
        _eps_series(ax, [mc], colours)
        if asymptote is not None:
            ax.plot(
                asymptote_eps,
                asymptote,
                color=colours["black"],
                linestyle=(0, (6, 3)),
                linewidth=1.5,
                label=r"asymptote $e^{\varepsilon\sigma^2 B/2}/K(\varepsilon,\sigma)$",
            )
        if bellman is not None:
            ax.plot(
                bellman_eps,
                bellman,
                color=colours["vermillion"],
                linewidth=1.8,
                label="value iteration on a 401-point l-grid (the authors' Bellman curve)",
            )
        if capped_fraction is not None and np.any(np.asarray(capped_fraction) > 0):
            worst = float(np.max(capped_fraction))
            ax.plot(
                [],
                [],
                " ",
                label=f"runs not stopped by the horizon count as the horizon (up to {worst:.1%} of runs)",
            )
        i_min = int(np.nanargmin(mc.mean))
        ax.annotate(
            rf"minimum near $\varepsilon$ = {format_number(float(mc.eps[i_min]), 2)}",
            (mc.eps[i_min], mc.mean[i_min]),
            xytext=(0, -28),
            textcoords="offset points",
            ha="center",
            arrowprops={"arrowstyle": "->", "color": colours["black"]},
        )
        ax.set_yscale("log")
        ax.set_xlabel(r"privacy budget $\varepsilon$ (linear scale)")
        ax.set_ylabel(r"expected stopping time E[$\tau_B$] (reports, log scale)")
        ax.legend(loc="upper center")
        ax.set_title(title)

    return _draw(style, 1, draw)


def _normal_pdf(s: np.ndarray, mean: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((s - mean) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


@dataclass
class SmoothRRIllustration:
    sigma: float = 1.0
    eps: float = 1.0
    amplitude: float = 0.5  # A: flip probability at the threshold
    threshold: float = -3.0  # t = -sigma^2 l / 2
    s: np.ndarray = field(default_factory=lambda: np.linspace(-7.0, 5.0, 1201))

    def flip_probability(self) -> np.ndarray:
        # u(s) = A exp(-eps |s - t|) (docs/dpsl-model.md §2.2)
        return self.amplitude * np.exp(-self.eps * np.abs(self.s - self.threshold))


def smooth_rr_chart(ill: SmoothRRIllustration, *, title: str, style: ChartStyle = DEFAULT_STYLE) -> Chart:
    """Three panels of docs/dpsl-model.md §6.4: signal densities and threshold; flip curve; density x flip."""

    def draw(fig, axes, colours):
        s, t = ill.s, ill.threshold
        f_plus, f_minus = _normal_pdf(s, 1.0, ill.sigma), _normal_pdf(s, -1.0, ill.sigma)
        u = ill.flip_probability()
        plus, minus = colours["blue"], colours["vermillion"]
        right = s >= t
        a, b, c = axes
        for ax in (a, b):
            ax.plot(s, f_plus, color=plus, label=r"$f_+$: N(+1, $\sigma^2$), state $\theta=+1$")
            ax.plot(
                s, f_minus, color=minus, linestyle="--", label=r"$f_-$: N(−1, $\sigma^2$), state $\theta=-1$"
            )
        for ax in axes:
            ax.axvline(
                t,
                color=colours["black"],
                linestyle=(0, (5, 3)),
                linewidth=1.2,
                label=f"threshold t = {format_number(t, 3)}",
            )
            ax.set_xlabel("private signal s")
        a.fill_between(
            s[right],
            0,
            np.maximum(f_plus, f_minus)[right],
            color=colours["sky_blue"],
            alpha=0.25,
            label=r"$s \geq t$: intended action $a=+1$",
        )
        a.set_ylabel("density")
        a.set_title("(a) signal densities and threshold")
        b.plot(
            s,
            u,
            color=colours["green"],
            linewidth=2.4,
            label=rf"flip prob. $u(s) = {format_number(ill.amplitude, 3)}\,e^{{-{format_number(ill.eps, 3)}|s-t|}}$",
        )
        b.set_ylabel("density / probability")
        b.set_title("(b) smooth randomized response")
        c.plot(s[right], (f_plus * u)[right], color=plus, linewidth=2.4, label=r"$f_+(s)\,u(s)$, $s \geq t$")
        c.plot(
            s[right],
            (f_minus * u)[right],
            color=minus,
            linewidth=2.4,
            linestyle="--",
            label=r"$f_-(s)\,u(s)$, $s \geq t$",
        )
        c.set_ylim(0, max(0.1, float(np.max((f_minus * u)[right])) * 1.15))
        c.set_ylabel("density × flip probability")
        c.set_title("(c) mass of $a=+1$ reported as $-1$")
        for ax in axes:
            ax.legend(loc="upper right", fontsize="x-small")
        fig.suptitle(title)

    return _draw(style, 3, draw)
