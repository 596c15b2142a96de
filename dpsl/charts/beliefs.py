"""Charts of what the public believes: LLR paths and their regimes, the first-correct survival, the
threshold schematic and the appendix recursion."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..results import fit_tail_exponent, format_number, survival_curve
from .privacy import SmoothRRIllustration, _normal_pdf
from .rendering import DEFAULT_STYLE, LINESTYLES, SERIES_COLOURS, Chart, ChartStyle, _draw


@dataclass
class LLRRegime:
    """One privacy regime of the LLR chart: its paths, summary band and (optional) asymptote."""

    label: str
    n: np.ndarray  # checkpoints (agent index), shape [T]
    mean: np.ndarray  # mean public LLR over runs at each checkpoint, [T]
    band: tuple[np.ndarray, np.ndarray] | None = None  # lower/upper quantile at each checkpoint
    paths: np.ndarray | None = None  # a few sample paths, [k, T]
    asymptote: np.ndarray | None = None  # (2/(eps sigma^2)) log(K n) at the checkpoints, [T]


def llr_paths_chart(
    regimes: Sequence[LLRRegime],
    *,
    title: str,
    band_label: str = "10–90% of runs",
    style: ChartStyle = DEFAULT_STYLE,
) -> Chart:
    """Public log-likelihood ratio l_n against n, one colour per regime (docs/dpsl-model.md §6.4, §6.6)."""

    def draw(fig, axes, colours):
        ax = axes[0]
        handles = []
        for i, regime in enumerate(regimes):
            colour = (
                colours["black"]
                if regime.label.lower().startswith("non-private")
                else colours[SERIES_COLOURS[i % len(SERIES_COLOURS)]]
            )
            n = np.asarray(regime.n, dtype=float)
            if regime.band is not None:
                ax.fill_between(n, regime.band[0], regime.band[1], color=colour, alpha=0.16, linewidth=0)
            if regime.paths is not None:
                for path in np.atleast_2d(regime.paths):
                    ax.plot(n, path, color=colour, linewidth=0.7, alpha=0.55)
            ax.plot(n, regime.mean, color=colour, linewidth=2.4, linestyle=LINESTYLES[i % len(LINESTYLES)])
            handles.append(
                Line2D(
                    [],
                    [],
                    color=colour,
                    linewidth=2.4,
                    linestyle=LINESTYLES[i % len(LINESTYLES)],
                    label=f"{regime.label} (mean)",
                )
            )
            if regime.asymptote is not None:
                asym = np.asarray(regime.asymptote, dtype=float)
                # log(K n) < 0 at small n: the asymptote says nothing there, so it is not drawn.
                shown = np.where(asym > 0, asym, np.nan)
                ax.plot(n, shown, color=colour, linewidth=1.4, linestyle=(0, (6, 3)), alpha=0.95)
        extra = [Patch(facecolor=colours["black"], alpha=0.16, label=f"band: {band_label}")]
        if any(r.paths is not None for r in regimes):
            extra.append(
                Line2D([], [], color=colours["black"], linewidth=0.7, alpha=0.6, label="sample paths")
            )
        if any(r.asymptote is not None for r in regimes):
            extra.append(
                Line2D(
                    [],
                    [],
                    color=colours["black"],
                    linewidth=1.4,
                    linestyle=(0, (6, 3)),
                    label=r"asymptote $\frac{2}{\varepsilon\sigma^2}\log(Kn)$",
                )
            )
        ax.legend(handles=handles + extra, loc="upper left", ncols=2 if len(handles) + len(extra) > 6 else 1)
        ax.set_xlabel("agent n (number of reports so far)")
        ax.set_ylabel(r"public log-likelihood ratio $\ell_n$ (nats, linear scale)")
        ax.axhline(0.0, color=colours["black"], linewidth=0.6, alpha=0.5)
        ax.set_xlim(left=0)
        ax.set_title(title)

    return _draw(style, 1, draw)


@dataclass
class SurvivalSeries:
    """First-correct times of one series; a run never correct by the horizon has time > horizon."""

    label: str
    times: np.ndarray  # one first-correct time per run (1-based); values > horizon mean "not yet"
    horizon: int
    theory_exponent: float | None = None  # s = 2/(eps sigma^2) for actions, kappa for reports


def survival_chart(
    series: Sequence[SurvivalSeries], *, title: str, style: ChartStyle = DEFAULT_STYLE
) -> Chart:
    """P(tau > n) on log-log axes with the fitted tail exponent of each series (docs/dpsl-model.md §5 T3, §6.6)."""

    def draw(fig, axes, colours):
        ax = axes[0]
        for i, s in enumerate(series):
            colour = colours[SERIES_COLOURS[i % len(SERIES_COLOURS)]]
            n, surv = survival_curve(s.times, s.horizon)
            shown = surv > 0
            label = s.label
            fit = fit_tail_exponent(n, surv, len(s.times))
            if fit is not None:
                exponent, intercept, n_max = fit
                label += f": fitted tail exponent {exponent:.2f}"
                xs = np.geomspace(2, n_max, 50)
                ax.plot(
                    xs,
                    np.exp(intercept) * xs ** (-exponent),
                    color=colour,
                    linestyle=(0, (6, 3)),
                    linewidth=1.3,
                )
            if s.theory_exponent is not None and math.isfinite(s.theory_exponent):
                label += f" (theory {s.theory_exponent:.2f})"
            ax.step(
                n[shown],
                surv[shown],
                where="post",
                color=colour,
                linestyle=LINESTYLES[i % len(LINESTYLES)],
                label=label,
            )
        ax.plot(
            [],
            [],
            color=colours["black"],
            linestyle=(0, (6, 3)),
            linewidth=1.3,
            label=r"least-squares fit of $\log P$ vs $\log n$ (tail, $\geq$10 runs left)",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("n (agents, log scale)")
        ax.set_ylabel(r"P(first correct time $\tau$ > n) (log scale)")
        ax.legend(loc="lower left")
        ax.set_title(title)

    return _draw(style, 1, draw)


MAX_SAMPLE_PATHS = 5


def threshold_schematic_chart(
    ill: SmoothRRIllustration, *, title: str, style: ChartStyle = DEFAULT_STYLE
) -> Chart:
    """The decision step P(a = +1 | s) = 1{s > t} over the signal densities, two close signals on either
    side of t, and the smooth RR report probability that replaces the step (MOR Figure 4)."""

    def draw(fig, axes, colours):
        ax = axes[0]
        s, t = ill.s, ill.threshold
        ax.plot(
            s,
            _normal_pdf(s, 1.0, ill.sigma),
            color=colours["blue"],
            linewidth=1.6,
            label=r"density of $s$, $\theta = +1$",
        )
        ax.plot(
            s,
            _normal_pdf(s, -1.0, ill.sigma),
            color=colours["vermillion"],
            linewidth=1.6,
            linestyle="--",
            label=r"density of $s$, $\theta = -1$",
        )
        ax.set_xlabel("private signal s")
        ax.set_ylabel("signal density")
        right = ax.twinx()
        right.step(
            s,
            (s > t).astype(float),
            where="post",
            color=colours["black"],
            linewidth=2.2,
            label=r"intended action: P($a = +1$ | s) = 1{s > t}",
        )
        u = ill.flip_probability()
        report_plus = np.where(s > t, 1 - u, u)
        right.plot(
            s,
            report_plus,
            color=colours["green"],
            linewidth=2.0,
            linestyle=":",
            label=rf"smooth RR report: P($x = +1$ | s), $\varepsilon$ = {format_number(ill.eps, 3)}",
        )
        delta = 0.15
        for x, label in ((t - delta, r"$s_n$: $a = -1$"), (t + delta, r"$s_n'$: $a = +1$")):
            right.plot(
                [x],
                [1.0 if x > t else 0.0],
                marker="o",
                color=colours["purple"],
                markersize=7,
                linestyle="none",
            )
            right.annotate(
                label,
                (x, 1.0 if x > t else 0.0),
                xytext=(-60 if x < t else 12, 18 if x < t else -28),
                textcoords="offset points",
                fontsize="small",
                arrowprops={"arrowstyle": "-", "color": colours["purple"], "linewidth": 0.6},
            )
        ax.axvline(t, color="#8C8C8C", linestyle=(0, (5, 3)), linewidth=1.2)
        right.set_ylim(-0.05, 1.15)
        right.set_ylabel("probability of +1")
        handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="upper left", fontsize="small")
        ax.text(
            0.99,
            0.97,
            "two signals 0.3 apart get opposite actions:\nthe step is not metric DP; smooth RR is",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize="small",
        )
        ax.set_title(title)

    return _draw(style, 1, draw)


@dataclass
class RecursionPanel:
    n: np.ndarray
    exact: dict[str, np.ndarray]  # label -> l_n
    approximate: np.ndarray | None = None  # l_{n+1} = l_n + C e^{-eps sigma^2 l_n / 2} at eps = 1
    approximate_of: str | None = None


def llr_recursion_chart(panel: RecursionPanel, *, title: str, style: ChartStyle = DEFAULT_STYLE) -> Chart:
    """(a) l_n under all-positive reports for several eps; (b) eps = 1 exact against the approximation."""

    def draw(fig, axes, colours):
        a, b = axes
        for i, (label, values) in enumerate(panel.exact.items()):
            a.plot(
                panel.n,
                values,
                color=colours[SERIES_COLOURS[i % len(SERIES_COLOURS)]],
                linestyle=LINESTYLES[i % len(LINESTYLES)],
                linewidth=2.0,
                label=label,
            )
        a.set_title("(a) every report +1")
        if panel.approximate is not None:
            b.plot(
                panel.n,
                panel.exact[panel.approximate_of],
                color=colours["blue"],
                linewidth=2.0,
                label=f"exact, {panel.approximate_of}",
            )
            b.plot(
                panel.n,
                panel.approximate,
                color=colours["vermillion"],
                linestyle="--",
                linewidth=2.0,
                label=r"approximation $l_{n+1} = l_n + C e^{-\varepsilon\sigma^2 l_n/2}$",
            )
        b.set_title("(b) exact against the approximation")
        for ax in axes:
            ax.set_xlabel("n (agents)")
            ax.set_ylabel(r"public LLR $l_n$")
            ax.grid(True, alpha=0.3)
            ax.legend(loc="lower right")
        fig.suptitle(title)

    return _draw(style, 2, draw)
