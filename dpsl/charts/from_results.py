"""Charts from simulation results: each chart kind checks its inputs, computes its closed forms and
titles the figure, then calls the painter of its family (`chart_from`, `CHART_KINDS`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import theory
from ..results import Result, SweepResult, format_number
from ..scenario import Scenario, epsilon_label, mechanism_label, signal_label, size_label
from .beliefs import (
    MAX_SAMPLE_PATHS,
    LLRRegime,
    RecursionPanel,
    SurvivalSeries,
    llr_paths_chart,
    llr_recursion_chart,
    survival_chart,
    threshold_schematic_chart,
)
from .cascades import (
    CascadeCurve,
    ObjectiveCurve,
    ReportsCurve,
    cascade_probability_chart,
    platform_objective_chart,
    precascade_reports_chart,
)
from .privacy import EpsSeries, SmoothRRIllustration, mistakes_chart, smooth_rr_chart, stopping_time_chart
from .rendering import DEFAULT_STYLE, Chart, ChartStyle


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
        j = np.array([theory.platform_objective(e, p, cost) for e in eps])
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
    style: ChartStyle = DEFAULT_STYLE,
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
