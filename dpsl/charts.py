"""Publication-quality charts of the DP sequential learning lab (host-free: numpy + matplotlib only).

Each `*_chart` function takes plain numbers and arrays (what was simulated, and the closed forms to
draw next to it) and returns a `Chart`: the picture as an RGB uint8 array `[H, W, 3]` and as PNG
bytes. The ComfyUI nodes turn a `dpsl` result into these inputs; nothing here knows about ComfyUI.

Rules every chart follows, so that the pictures can go into a paper or onto a slide:
- the object-oriented matplotlib API with the Agg canvas, never pyplot, so no global figure state
  leaks between ComfyUI executions running in the same process;
- the Okabe-Ito palette (safe for the common colour-vision deficiencies), with line styles or
  markers carrying a second dimension so nothing is told by colour alone;
- axes labelled with units and scale, a legend, and a title that states the parameters;
- sizes in pixels at a fixed dpi, fonts from the DejaVu family shipped with matplotlib, and PNGs
  written without time stamps or version strings: the same inputs give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from PIL import Image

from . import theory
from .model import Scenario, epsilon_label, mechanism_label, signal_label, size_label
from .results import Result, SweepResult, fit_tail_exponent, format_number, survival_curve

# Okabe & Ito (2008), "Color Universal Design": distinguishable under protanopia, deuteranopia and
# tritanopia. Black is first so that the reference (non-private) curve is the neutral colour.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
# Order for a sequence of series; yellow last: it is hard to see on white.
SERIES_COLOURS = ("blue", "vermillion", "green", "purple", "orange", "sky_blue", "yellow")
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")

DPI = 100
THEMES = ("light", "dark")
MIN_SIZE, MAX_SIZE = 320, 4096


@dataclass(frozen=True)
class ChartStyle:
    """Pixel size and colour theme of a chart."""

    width: int = 1024
    height: int = 640
    theme: str = "light"

    def __post_init__(self):
        for name in ("width", "height"):
            value = getattr(self, name)
            if not (MIN_SIZE <= value <= MAX_SIZE):
                raise ValueError(f"{name} must be between {MIN_SIZE} and {MAX_SIZE} px, got {value}")
        if self.theme not in THEMES:
            raise ValueError(f"theme must be one of {', '.join(THEMES)}, got {self.theme!r}")


@dataclass(frozen=True)
class Chart:
    rgb: np.ndarray  # H, W, 3 uint8
    png: bytes


# -- rendering -------------------------------------------------------------------------------------


def _palette(theme: str) -> dict[str, str]:
    colours = dict(OKABE_ITO)
    if theme == "dark":
        # Black disappears on a dark background; the reference colour becomes light grey.
        colours["black"] = "#E8E8E8"
    return colours


def _rc(style: ChartStyle) -> dict:
    # Font sizes grow with the picture so a 1024 px chart reads like a journal figure and a 2048 px
    # one is not tiny text in a corner.
    base = 11.0 * max(style.width, 640) / 1024
    dark = style.theme == "dark"
    fg, bg, grid = ("#E8E8E8", "#1E1E1E", "#4A4A4A") if dark else ("#222222", "#FFFFFF", "#D9D9D9")
    return {
        "font.family": "DejaVu Sans",
        "mathtext.fontset": "dejavusans",
        "font.size": base,
        "axes.titlesize": base * 1.0,
        "axes.labelsize": base,
        "figure.titlesize": base * 1.2,
        "legend.fontsize": base * 0.85,
        "xtick.labelsize": base * 0.9,
        "ytick.labelsize": base * 0.9,
        "lines.linewidth": 1.8 * base / 11,
        "figure.facecolor": bg,
        "axes.facecolor": bg,
        "savefig.facecolor": bg,
        "text.color": fg,
        "axes.labelcolor": fg,
        "axes.edgecolor": fg,
        "xtick.color": fg,
        "ytick.color": fg,
        "grid.color": grid,
        "grid.linewidth": 0.6,
        "axes.grid": True,
        "axes.axisbelow": True,
        "legend.framealpha": 0.9,
        "legend.facecolor": bg,
        "legend.edgecolor": grid,
        "path.simplify": True,
        # Hatch/marker rendering must not depend on a random salt or on the user's matplotlibrc.
        "svg.hashsalt": "dpsl",
        "axes.unicode_minus": True,
    }


def _new_figure(style: ChartStyle, ncols: int = 1) -> tuple[Figure, list]:
    with matplotlib.rc_context(_rc(style)):
        fig = Figure(figsize=(style.width / DPI, style.height / DPI), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _render(fig: Figure, style: ChartStyle) -> Chart:
    with matplotlib.rc_context(_rc(style)):
        canvas = fig.canvas
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
    rgb = np.ascontiguousarray(rgba[:, :, :3])
    buf = io.BytesIO()
    # PIL writes no text chunks unless asked: no time stamp, no "Software" key, same bytes each time.
    Image.fromarray(rgb, mode="RGB").save(buf, format="PNG", optimize=False, compress_level=6)
    return Chart(rgb=rgb, png=buf.getvalue())


def _draw(style: ChartStyle, ncols: int, draw) -> Chart:
    """Build a figure, let `draw(fig, axes, colours)` fill it, and render it under the same rc."""
    with matplotlib.rc_context(_rc(style)):
        fig, axes = _new_figure(style, ncols)
        draw(fig, axes, _palette(style.theme))
        return _render(fig, style)


# -- 1. public LLR paths ---------------------------------------------------------------------------


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
    style: ChartStyle = ChartStyle(),
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


# -- 2. binary: correct-cascade probability vs eps --------------------------------------------------


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
    curves: Sequence[CascadeCurve], *, title: str, style: ChartStyle = ChartStyle()
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


# -- 3. survival of the first-correct time ---------------------------------------------------------


@dataclass
class SurvivalSeries:
    """First-correct times of one series; a run never correct by the horizon has time > horizon."""

    label: str
    times: np.ndarray  # one first-correct time per run (1-based); values > horizon mean "not yet"
    horizon: int
    theory_exponent: float | None = None  # s = 2/(eps sigma^2) for actions, kappa for reports


def survival_chart(
    series: Sequence[SurvivalSeries], *, title: str, style: ChartStyle = ChartStyle()
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


# -- 4. first-correct time and wrong actions / reports vs eps -----------------------------------------


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
    style: ChartStyle = ChartStyle(),
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


# -- 5. belief-threshold stopping time vs eps ----------------------------------------------------


def stopping_time_chart(
    mc: EpsSeries,
    *,
    title: str,
    asymptote_eps: np.ndarray | None = None,
    asymptote: np.ndarray | None = None,
    capped_fraction: np.ndarray | None = None,
    bellman_eps: np.ndarray | None = None,
    bellman: np.ndarray | None = None,
    style: ChartStyle = ChartStyle(),
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


# -- 6. smooth randomized response illustration --------------------------------------------------


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


def smooth_rr_chart(ill: SmoothRRIllustration, *, title: str, style: ChartStyle = ChartStyle()) -> Chart:
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


# -- from simulator results to charts ---------------------------------------------------------------
#
# The functions above draw numbers; the ones below pick those numbers out of `dpsl` results and the
# closed forms of `dpsl.theory`, so that a host (the ComfyUI nodes, a script) calls one function.

MAX_SAMPLE_PATHS = 5


def threshold_schematic_chart(
    ill: SmoothRRIllustration, *, title: str, style: ChartStyle = ChartStyle()
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


# -- 7. expected pre-cascade reports, and the platform objective --------------------------------------


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
    curves: Sequence[ReportsCurve], *, title: str, style: ChartStyle = ChartStyle()
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
    curves: Sequence[ObjectiveCurve], *, cost: float, title: str, style: ChartStyle = ChartStyle()
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


# -- 8. the all-positive-reports recursion (appendix J.1) ---------------------------------------------


@dataclass
class RecursionPanel:
    n: np.ndarray
    exact: dict[str, np.ndarray]  # label -> l_n
    approximate: np.ndarray | None = None  # l_{n+1} = l_n + C e^{-eps sigma^2 l_n / 2} at eps = 1
    approximate_of: str | None = None


def llr_recursion_chart(panel: RecursionPanel, *, title: str, style: ChartStyle = ChartStyle()) -> Chart:
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


@dataclass(frozen=True)
class ChartInputs:
    """What a chart builder gets: the node's sockets and its chart-specific widgets."""

    results: list
    sweeps: Sequence
    scenario: Scenario | None
    style: ChartStyle
    threshold: float = -3.0  # t of the smooth-RR illustration
    cost: float = 0.01  # c of the platform objective


class ChartInputError(ValueError):
    """The chart kind needs inputs that were not given; the message says which."""


def _regime(result: Result) -> LLRRegime:
    s = result.scenario
    n = np.asarray(result.checkpoints, dtype=float)
    qs = sorted(s.quantiles)
    band = None
    if len(qs) >= 2:
        quant = result.llr_quantiles
        band = (quant[qs[0]], quant[qs[-1]])
    paths = None
    if result.paths is not None:
        # Column j of `paths` is the LLR after j reports; the checkpoints use the same count.
        paths = result.paths[:MAX_SAMPLE_PATHS, 1:][:, np.asarray(result.checkpoints) - 1]
    asym = None
    if s.signal == "gaussian" and s.mechanism == "smooth" and not s.heterogeneous:
        asym = theory.llr_asymptote(n, float(s.epsilon), s.sigma, s.amplitude)
    return LLRRegime(epsilon_label(s), n, result.llr_mean, band, paths, asym)


def _band_label(results: Sequence[Result]) -> str:
    qs = sorted(results[0].scenario.quantiles)
    return f"{qs[0]:.0%}–{qs[-1]:.0%} quantiles over runs" if len(qs) >= 2 else ""


def _require_sweeps(kind: str, sweeps, signal: str | None = None) -> None:
    if not sweeps:
        raise ChartInputError(f"chart kind '{kind}' needs a DPSLSweep over epsilon: connect one to 'sweep'")
    for sw in sweeps:
        if sw.parameter != "epsilon":
            raise ChartInputError(
                f"chart kind '{kind}' needs a sweep over epsilon, got one over {sw.parameter}"
            )
        sc = sw.results[0].scenario
        if signal and sc.signal != signal:
            raise ChartInputError(
                f"chart kind '{kind}' needs {signal} signals, the sweep has {sc.signal} signals"
            )


def _sweep_eps(sw: SweepResult) -> np.ndarray:
    return np.array([float(v) for v in sw.values])


def _series(sw: SweepResult, key: str, label: str, non_private: Result | None = None) -> EpsSeries:
    summaries = [r.summary() for r in sw.results]
    mean = np.array([np.nan if s.get(f"{key}_mean") is None else s[f"{key}_mean"] for s in summaries])
    se = np.array([np.nan if s.get(f"{key}_se") is None else s[f"{key}_se"] for s in summaries])
    np_mean = non_private.summary().get(f"{key}_mean") if non_private is not None else None
    return EpsSeries(label, _sweep_eps(sw), mean, se, np_mean)


def _sweep_title(sw: SweepResult, what: str) -> str:
    s = sw.results[0].scenario
    eps = _sweep_eps(sw)
    return (
        f"{what}: {signal_label(s)}, {mechanism_label(s)}, ε ∈ [{eps.min():g}, {eps.max():g}] "
        f"({len(eps)} values)\n{size_label(s)}"
    )


def _llr_paths_from(inputs: ChartInputs) -> Chart:
    results = inputs.results
    style = inputs.style
    if not results:
        raise ChartInputError("chart kind 'llr_paths' needs a DPSLSimulate result: connect one to 'result'")
    s = results[0].scenario
    mechs = sorted({mechanism_label(r.scenario) for r in results})
    title = (
        f"Public log-likelihood ratio: {signal_label(s)}, {', '.join(mechs)}\n"
        f"N = {s.agents} agents, R = {s.runs} runs, seed {s.seed}"
    )
    return llr_paths_chart(
        [_regime(r) for r in results], title=title, band_label=_band_label(results), style=style
    )


def _cascade_probability_from(inputs: ChartInputs) -> Chart:
    sweeps = inputs.sweeps
    style = inputs.style
    _require_sweeps("cascade_probability", sweeps, "binary")
    curves = [_cascade_curve(sw) for sw in sweeps]
    s = sweeps[0].results[0].scenario
    ps = ", ".join(f"{c.p:g}" for c in curves)
    title = (
        f"Binary signals, randomized response before the cascade: P(correct cascade) vs ε, "
        f"p ∈ {{{ps}}}\nlines: closed form $1/(1+\\rho^k)$; points: Monte Carlo, {size_label(s)}"
    )
    return cascade_probability_chart(curves, title=title, style=style)


def _first_correct_survival_from(inputs: ChartInputs) -> Chart:
    results = inputs.results
    sweeps = inputs.sweeps
    style = inputs.style
    series: list[SurvivalSeries] = []
    for r in results:
        s = r.scenario
        theory_a = theory_x = None
        if s.signal == "gaussian" and s.mechanism == "smooth" and not s.heterogeneous:
            theory_a = theory.tail_exponent_action(float(s.epsilon), s.sigma)
            theory_x = theory.tail_exponent_report(float(s.epsilon), s.sigma)
        series.append(
            SurvivalSeries(f"{epsilon_label(s)}, actions τ_a", r.first_correct_action, s.agents, theory_a)
        )
        if len(results) == 1:
            series.append(
                SurvivalSeries(f"{epsilon_label(s)}, reports τ_x", r.first_correct_report, s.agents, theory_x)
            )
    for sw in sweeps:
        for r in sw.results:
            s = r.scenario
            th = theory.tail_exponent_action(float(s.epsilon), s.sigma) if s.mechanism == "smooth" else None
            series.append(
                SurvivalSeries(f"{epsilon_label(s)}, actions τ_a", r.first_correct_action, s.agents, th)
            )
    if not series:
        raise ChartInputError("chart kind 'first_correct_survival' needs a result or a sweep")
    s = (results[0] if results else sweeps[0].results[0]).scenario
    title = (
        f"Survival of the first-correct time: {signal_label(s)}, {mechanism_label(s)}\n"
        f"{size_label(s)} (horizon N)"
    )
    return survival_chart(series, title=title, style=style)


def _mistakes_vs_eps_from(inputs: ChartInputs) -> Chart:
    results = inputs.results
    sweeps = inputs.sweeps
    style = inputs.style
    _require_sweeps("mistakes_vs_eps", sweeps, "gaussian")
    sw = sweeps[0]
    reference = next((r for r in results if not r.scenario.private), None)
    first = [
        _series(sw, "first_correct_action", "actions τ_a", reference),
        _series(sw, "first_correct_report", "reports τ_x", reference),
    ]
    wrong = [
        _series(sw, "wrong_actions", "wrong actions W_a", reference),
        _series(sw, "wrong_reports", "wrong reports W_x", reference),
    ]
    s = sw.results[0].scenario
    return mistakes_chart(
        first,
        wrong,
        title=_sweep_title(sw, "First correct time and mistakes"),
        finiteness_eps=2 / s.sigma**2 if s.signal == "gaussian" else None,
        style=style,
    )


def _stopping_time_vs_eps_from(inputs: ChartInputs) -> Chart:
    sweeps = inputs.sweeps
    style = inputs.style
    _require_sweeps("stopping_time_vs_eps", sweeps, "gaussian")
    sw = sweeps[0]
    s = sw.results[0].scenario
    if s.belief_threshold is None:
        raise ChartInputError(
            "chart kind 'stopping_time_vs_eps' needs a belief_threshold B > 0 on the scenario"
        )
    mc = _series(sw, "belief_stop_time", "Monte Carlo mean")
    grid = np.linspace(float(mc.eps.min()), float(mc.eps.max()), 200)
    asym = (
        np.array(
            [theory.belief_stop_time_asymptote(s.belief_threshold, e, s.sigma, s.amplitude) for e in grid]
        )
        if s.mechanism == "smooth"
        else None
    )
    capped = np.array([r.summary().get("belief_stop_time_censored", 0.0) for r in sw.results])
    bellman_eps = np.linspace(float(mc.eps.min()), float(mc.eps.max()), 25)
    bellman = (
        np.array(
            [
                theory.belief_stop_time_bellman(s.belief_threshold, e, s.sigma, s.amplitude)
                for e in bellman_eps
            ]
        )
        if s.mechanism == "smooth"
        else None
    )
    title = _sweep_title(
        sw, f"Belief-threshold stopping time τ_B (reports until |l| ≥ B), B = {s.belief_threshold:g}"
    )
    return stopping_time_chart(
        mc,
        title=title,
        asymptote_eps=grid if asym is not None else None,
        asymptote=asym,
        capped_fraction=capped,
        bellman_eps=bellman_eps,
        bellman=bellman,
        style=style,
    )


def _smooth_rr_illustration_from(inputs: ChartInputs) -> Chart:
    results = inputs.results
    sweeps = inputs.sweeps
    scenario = inputs.scenario
    style = inputs.style
    threshold = inputs.threshold
    s = scenario or (results[0].scenario if results else (sweeps[0].results[0].scenario if sweeps else None))
    if s is None:
        raise ChartInputError("chart kind 'smooth_rr_illustration' needs a scenario, result or sweep")
    eps = float(s.epsilon) if isinstance(s.epsilon, (int, float)) else 1.0
    amplitude = 0.5 if s.amplitude == "half" else 1 / (1 + math.exp(eps))
    ill = SmoothRRIllustration(sigma=s.sigma, eps=eps, amplitude=amplitude, threshold=threshold)
    title = (
        f"Smooth randomized response: flip probability A·exp(−ε|s − t|), σ = {s.sigma:g}, "
        f"ε = {eps:g}, A = {amplitude:.3g}, t = {threshold:g}"
    )
    return smooth_rr_chart(ill, title=title, style=style)


def _threshold_schematic_from(inputs: ChartInputs) -> Chart:
    s = inputs.scenario or (inputs.results[0].scenario if inputs.results else None)
    sigma = s.sigma if s is not None and s.signal == "gaussian" else 1.0
    eps = float(s.epsilon) if s is not None and isinstance(s.epsilon, (int, float)) else 1.0
    ill = SmoothRRIllustration(sigma=sigma, eps=eps, amplitude=0.5, threshold=inputs.threshold)
    title = f"Why the Bayes action is not private: the step at t = {inputs.threshold:g} (σ = {sigma:g})"
    return threshold_schematic_chart(ill, title=title, style=inputs.style)


def _binary_ps(kind: str, inputs: ChartInputs) -> list[tuple[float, SweepResult | None]]:
    """(p, its sweep or None) for the binary closed-form charts: one per sweep series, or the scenario's p."""
    if inputs.sweeps:
        _require_sweeps(kind, inputs.sweeps, "binary")
        return [(sw.results[0].scenario.p, sw) for sw in inputs.sweeps]
    s = inputs.scenario or (inputs.results[0].scenario if inputs.results else None)
    if s is None or s.signal != "binary":
        raise ChartInputError(
            f"chart kind '{kind}' needs binary signals: connect a DPSLSweep over epsilon (series over p) to "
            "'sweep', or a binary DPSLScenario to 'scenario'"
        )
    return [(s.p, None)]


def _precascade_reports_from(inputs: ChartInputs) -> Chart:
    curves = []
    for p, sw in _binary_ps("precascade_reports", inputs):
        eps = np.linspace(0.05, 4.5, 1500)
        curve = ReportsCurve(
            p=p,
            eps=eps,
            reports=np.array([theory.expected_reports_before_cascade(e, p) for e in eps]),
            k=np.array([theory.cascade_threshold(e, p) for e in eps]),
            non_private=theory.expected_reports_before_cascade(None, p),
        )
        if sw is not None:
            summaries = [r.summary() for r in sw.results]
            curve.mc_eps = _sweep_eps(sw)
            curve.mc_reports = np.array([sm.get("reports_before_cascade_mean") or np.nan for sm in summaries])
            curve.mc_se = np.array([sm.get("reports_before_cascade_se") or 0.0 for sm in summaries])
        curves.append(curve)
    ps = ", ".join(f"{c.p:g}" for c in curves)
    title = (
        f"Binary signals: expected reports before the cascade vs ε, p ∈ {{{ps}}}\nlines: closed form "
        r"$(k/\mu)(1-\rho^k)/(1+\rho^k)$" + ("; points: Monte Carlo ± 2 SE" if inputs.sweeps else "")
    )
    return precascade_reports_chart(curves, title=title, style=inputs.style)


def _platform_objective_from(inputs: ChartInputs) -> Chart:
    cost = inputs.cost
    if not (math.isfinite(cost) and cost >= 0):
        raise ChartInputError(f"cost must be a finite number >= 0, got {cost!r}")
    curves = []
    for p, _ in _binary_ps("platform_objective", inputs):
        eps = np.linspace(0.1, 4.95, 2000)
        j = np.array(
            [
                theory.p_correct_cascade(e, p)
                - cost * theory.expected_reports_before_cascade(e, p) / (1 - e / 5)
                for e in eps
            ]
        )
        best = int(np.argmax(j))
        curves.append(ObjectiveCurve(p, eps, j, float(eps[best]), float(j[best])))
    title = (
        f"Platform objective J(ε) = P(correct cascade) − c·E[τ]/(1 − ε/5), c = {format_number(cost, 3)}, "
        "agents' tolerances ε_i ~ U[0, 5]"
    )
    return platform_objective_chart(curves, cost=cost, title=title, style=inputs.style)


def _llr_recursion_from(inputs: ChartInputs) -> Chart:
    s = inputs.scenario or (inputs.results[0].scenario if inputs.results else None)
    sigma = s.sigma if s is not None and s.signal == "gaussian" else 1.0
    l1, steps = 6.0, 200
    n = np.arange(1, steps + 2)
    exact = {
        f"ε = {e:g}": np.asarray(theory.positive_report_recursion(l1, steps, e, sigma, "legacy"))
        for e in (0.1, 0.5, 1.0)
    }
    exact["non-private"] = np.asarray(theory.positive_report_recursion(l1, steps, None, sigma, "legacy"))
    panel = RecursionPanel(
        n=n,
        exact=exact,
        approximate=np.asarray(
            theory.positive_report_recursion(l1, steps, 1.0, sigma, "legacy", approximate=True)
        ),
        approximate_of="ε = 1",
    )
    title = f"Appendix recursion: every report +1 from l_1 = 6, σ = {sigma:g}, A = 1/(1+e^ε)"
    return llr_recursion_chart(panel, title=title, style=inputs.style)


# One builder per chart kind: the kind names the figure, the builder checks its inputs and titles it.
_BUILDERS = {
    "llr_paths": _llr_paths_from,
    "cascade_probability": _cascade_probability_from,
    "first_correct_survival": _first_correct_survival_from,
    "mistakes_vs_eps": _mistakes_vs_eps_from,
    "stopping_time_vs_eps": _stopping_time_vs_eps_from,
    "smooth_rr_illustration": _smooth_rr_illustration_from,
    "precascade_reports": _precascade_reports_from,
    "platform_objective": _platform_objective_from,
    "llr_recursion": _llr_recursion_from,
    "threshold_schematic": _threshold_schematic_from,
}
CHART_KINDS = tuple(_BUILDERS)


def chart_from(
    kind: str,
    results: Sequence[Result] = (),
    sweeps: Sequence[SweepResult] = (),
    scenario: Scenario | None = None,
    style: ChartStyle = ChartStyle(),
    threshold: float = -3.0,
    cost: float = 0.01,
) -> Chart:
    """Render chart `kind` from simulation results (one per regime) and/or sweeps (one per series)."""
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise ChartInputError(f"kind must be one of {', '.join(CHART_KINDS)}, got {kind!r}")
    return builder(
        ChartInputs([r for r in results if r is not None], sweeps, scenario, style, threshold, cost)
    )


def _cascade_curve(sw: SweepResult) -> CascadeCurve:
    s = sw.results[0].scenario
    p = s.p
    mc_eps = _sweep_eps(sw)
    hi = max(5.0, float(mc_eps.max()) * 1.05)
    # Below eps_8 the sawtooth teeth get narrower than a pixel; the paper leaves eps < eps_6 blank.
    lo = max(0.02, theory.eps_breakpoint(9, p))
    eps = np.linspace(lo, hi, 1200)
    k = np.array([theory.cascade_threshold(e, p) for e in eps])
    prob = np.array([theory.p_correct_cascade(e, p) for e in eps])
    breakpoints = {kk: theory.eps_breakpoint(kk, p) for kk in range(3, 9)}
    summaries = [r.summary() for r in sw.results]
    return CascadeCurve(
        p=p,
        eps=eps,
        prob=prob,
        k=k,
        breakpoints=breakpoints,
        non_private=theory.p_correct_cascade(None, p),
        mc_eps=mc_eps,
        mc_prob=np.array([sm.get("p_correct_cascade") or np.nan for sm in summaries]),
        mc_se=np.array([sm.get("p_correct_cascade_se") or 0.0 for sm in summaries]),
        mc_k=np.array([sm.get("cascade_threshold") or -1 for sm in summaries]),
    )
