"""What a simulation returns: per-run outputs, their summaries, and JSON/CSV-ready dictionaries.

Time conventions (all 1-based agent indices):
    first_correct_action / first_correct_report: the first n with a_n = theta / x_n = theta;
        a value > agents means not within the horizon.
    cascade_time (binary): the number of reports before the cascade starts (the report that makes
        |j| reach k); agents + 1 when no cascade formed within the horizon, with cascade_side = 0.
    belief_stop_time: tau_B = the number of reports until the public LLR first reaches |l| >= B,
        starting from l = 0 (the authors' convention for Figure 6a; the index of the first agent who
        sees |l| >= B is tau_B + 1); > agents means not reached within the horizon.
    LLR at checkpoint n: the public LLR after n reports (l_{n+1} in the paper's indexing).
Censored times enter the means at their censored value, so a mean is a lower bound whenever the
matching `*_censored` fraction is positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import theory
from .scenario import Scenario


def _mean_se(x: np.ndarray) -> tuple[float | None, float | None]:
    if x.size == 0:
        return None, None
    mean = float(np.mean(x))
    se = float(np.std(x, ddof=1) / math.sqrt(x.size)) if x.size > 1 else None
    return mean, se


def _quantile_key(q: float) -> str:
    return f"{q:g}"


# The per-run arrays of a Result (one value per run; None where the scenario has no such quantity),
# named once: the engine's outputs fill them, to_dict(per_run=True) writes them.
PER_RUN = (
    "llr_final",
    "first_correct_action",
    "first_correct_report",
    "wrong_actions",
    "wrong_reports",
    "cascade_time",
    "cascade_side",
    "belief_stop_time",
)


@dataclass
class Result:
    scenario: Scenario
    checkpoints: np.ndarray  # C, int: agent counts n
    llr_checkpoints: np.ndarray  # runs, C: public LLR after n reports, per run
    action_correct_rate: np.ndarray  # C: fraction of runs with a_n = theta at n = checkpoint
    report_correct_rate: np.ndarray  # C: fraction of runs with x_n = theta
    llr_final: np.ndarray  # runs: LLR after the last report
    first_correct_action: np.ndarray  # runs, int64
    first_correct_report: np.ndarray  # runs, int64
    wrong_actions: np.ndarray  # runs, int64: number of n with a_n != theta
    wrong_reports: np.ndarray  # runs, int64: number of n with x_n != theta
    cascade_time: np.ndarray | None  # runs, int64 (binary only)
    cascade_side: np.ndarray | None  # runs, int8: +1 correct, -1 wrong, 0 none yet (binary only)
    belief_stop_time: np.ndarray | None  # runs, int64 (with a belief threshold only)
    paths: np.ndarray | None  # runs, agents + 1: l_1 = 0, then after each report (keep_paths only)
    device: str = "cpu"
    elapsed_s: float = 0.0
    _summary: dict | None = field(default=None, repr=False)

    # -- summaries ----------------------------------------------------------------------------------

    @property
    def llr_mean(self) -> np.ndarray:
        return self.llr_checkpoints.mean(axis=0)

    @property
    def llr_quantiles(self) -> dict[float, np.ndarray]:
        qs = np.quantile(self.llr_checkpoints, self.scenario.quantiles, axis=0)
        return {q: qs[i] for i, q in enumerate(self.scenario.quantiles)}

    def summary(self) -> dict:
        """Scalar and per-checkpoint summaries under the CLI's JSON keys (see dpsl/README.md)."""
        if self._summary is not None:
            return self._summary
        s = self.scenario
        runs = s.runs
        th = theory.summary(s)
        out: dict = {"checkpoints": self.checkpoints.tolist()}
        out["llr_mean"] = self.llr_mean.tolist()
        out["llr_se"] = (
            (self.llr_checkpoints.std(axis=0, ddof=1) / math.sqrt(runs)).tolist()
            if runs > 1
            else [None] * len(self.checkpoints)
        )
        out["llr_quantiles"] = {_quantile_key(q): v.tolist() for q, v in self.llr_quantiles.items()}
        out["action_correct_rate"] = self.action_correct_rate.tolist()
        out["report_correct_rate"] = self.report_correct_rate.tolist()
        for name, times in (
            ("first_correct_action", self.first_correct_action),
            ("first_correct_report", self.first_correct_report),
        ):
            out[f"{name}_mean"], out[f"{name}_se"] = _mean_se(times)
            out[f"{name}_censored"] = float(np.mean(times > s.agents))
        for name, counts in (("wrong_actions", self.wrong_actions), ("wrong_reports", self.wrong_reports)):
            out[f"{name}_mean"], out[f"{name}_se"] = _mean_se(counts)
        if self.cascade_side is not None:
            formed = self.cascade_side != 0
            correct = (self.cascade_side[formed] > 0).astype(float)
            out["p_correct_cascade"], out["p_correct_cascade_se"] = _mean_se(correct)
            out["cascade_fraction"] = float(formed.mean())
            out["cascade_threshold"] = th["cascade_threshold"]  # the k the public's updates imply
            out["reports_before_cascade_mean"], out["reports_before_cascade_se"] = _mean_se(
                self.cascade_time[formed].astype(float)
            )
        if self.belief_stop_time is not None:
            out["belief_stop_time_mean"], out["belief_stop_time_se"] = _mean_se(self.belief_stop_time)
            out["belief_stop_time_censored"] = float(np.mean(self.belief_stop_time > s.agents))
        out["theory"] = th
        out["runs"], out["agents"] = runs, s.agents
        out["device"] = self.device
        out["elapsed_s"] = self.elapsed_s
        out["agent_steps_per_s"] = runs * s.agents / self.elapsed_s if self.elapsed_s > 0 else None
        self._summary = out
        return out

    def to_dict(self, per_run: bool = False) -> dict:
        """JSON-ready: {"scenario": ..., **summary}; per_run adds the per-run arrays (O(runs))."""
        d = {"scenario": self.scenario.to_dict(), **self.summary()}
        if per_run:
            for name in PER_RUN:
                value = getattr(self, name)
                if value is not None:
                    d[name] = value.tolist()
        return json_safe(d)

    def csv_rows(self) -> list[list]:
        """One row per checkpoint: n, llr_mean, llr_se, the quantiles, correct rates."""
        summ = self.summary()
        qkeys = list(summ["llr_quantiles"])
        header = [
            "checkpoint",
            "llr_mean",
            "llr_se",
            *[f"llr_q{k}" for k in qkeys],
            "action_correct_rate",
            "report_correct_rate",
        ]
        rows = [header]
        for i, n in enumerate(summ["checkpoints"]):
            rows.append(
                [
                    n,
                    summ["llr_mean"][i],
                    summ["llr_se"][i],
                    *[summ["llr_quantiles"][k][i] for k in qkeys],
                    summ["action_correct_rate"][i],
                    summ["report_correct_rate"][i],
                ]
            )
        return rows


SCALAR_KEYS = (
    "first_correct_action_mean",
    "first_correct_report_mean",
    "wrong_actions_mean",
    "wrong_reports_mean",
    "p_correct_cascade",
    "cascade_threshold",
    "reports_before_cascade_mean",
    "belief_stop_time_mean",
)


@dataclass
class SweepResult:
    parameter: str
    values: list
    results: list[Result]

    def to_dict(self, per_run: bool = False) -> dict:
        """{"parameter", "values", one list per scalar key across values, "theory": [...], "results": [...]}."""
        summaries = [r.summary() for r in self.results]
        d: dict = {"parameter": self.parameter, "values": [_value_json(v) for v in self.values]}
        for key in SCALAR_KEYS:
            if any(key in s for s in summaries):
                d[key] = [s.get(key) for s in summaries]
        d["theory"] = [s["theory"] for s in summaries]
        d["results"] = [r.to_dict(per_run) for r in self.results]
        return json_safe(d)

    def csv_rows(self) -> list[list]:
        """One row per swept value with the scalar summaries and their theory counterparts."""
        summaries = [r.summary() for r in self.results]
        keys = [k for k in SCALAR_KEYS if any(k in s for s in summaries)]
        theory_keys = [k for k in keys if any(k in s["theory"] for s in summaries)]
        rows = [[self.parameter, *keys, *[f"theory_{k}" for k in theory_keys]]]
        for v, s in zip(self.values, summaries, strict=True):
            rows.append(
                [_value_json(v), *[s.get(k) for k in keys], *[s["theory"].get(k) for k in theory_keys]]
            )
        return rows


def _value_json(v):
    return v.to_dict() if hasattr(v, "to_dict") else v


def json_safe(obj):
    """inf/nan -> None so that the output is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    return obj


def format_number(x, digits: int = 4) -> str:
    """The one way numbers are written for people (reports, tables, chart titles and legends).

    Significant digits without trailing zeros; integers as they are; "∞" for an unbounded value
    (the non-private eps) and "—" for a missing or undefined one (None, NaN).
    """
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{float(x):.{digits}g}"


# -- survival and tails (drawn by charts, tabulated by the report) -------------------------------------------------------


def survival_curve(times: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """n = 1..horizon and the empirical P(tau > n); runs past the horizon count as survivors."""
    times = np.asarray(times, dtype=np.int64)
    n = np.arange(1, horizon + 1)
    counts = np.bincount(np.clip(times, 1, horizon + 1), minlength=horizon + 2)
    survivors = len(times) - np.cumsum(counts[1 : horizon + 1])
    return n, survivors / max(len(times), 1)


def fit_tail_exponent(
    n: np.ndarray, survival: np.ndarray, runs: int, min_survivors: int = 10
) -> tuple[float, float, float] | None:
    """Least-squares slope of log P(tau > n) against log n over the tail.

    The tail starts at n = 2 (n = 1 is the one-signal step, not the tail) and ends where fewer than
    `min_survivors` runs remain, past which the curve is Monte Carlo noise. Returns (exponent,
    intercept, n_max) with P ~ exp(intercept) n^-exponent, or None when the tail has under three points.
    """
    keep = (n >= 2) & (survival * runs >= min_survivors)
    if keep.sum() < 3:
        return None
    x, y = np.log(n[keep]), np.log(survival[keep])
    slope, intercept = np.polyfit(x, y, 1)
    return float(-slope), float(intercept), float(n[keep][-1])
