"""The lab's report: key simulated metrics next to their closed forms, as a text table, CSV and JSON.

Host-free. `report_rows` turns a `Result` or a list of `SweepResult` into `MetricRow`s; the writers
format them. Each row says how the closed form relates to the simulation, because only some closed
forms are the quantity being estimated:
    "="  the exact value (binary cascade probability, expected pre-cascade reports): the simulation
         must agree within Monte Carlo error, and the row carries z = (sim - closed) / SE;
    "~"  an asymptote (the LLR growth, the stopping time for large B, tail exponents).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .results import Result, SweepResult, fit_tail_exponent, format_number, json_safe, survival_curve
from .scenario import Scenario, epsilon_label, mechanism_label, signal_label, size_label

# |z| above this is flagged in the table; 4 SE is what the simulator's own tests allow.
Z_FLAG = 4.0


@dataclass(frozen=True)
class MetricRow:
    setting: str  # which simulation, e.g. "p=0.7, eps=0.5"
    metric: str  # key as in Result.summary(), e.g. "p_correct_cascade"
    label: str  # what a reader sees
    simulated: float | None
    se: float | None
    closed_form: float | None
    relation: str  # "=", "~" or "" (no closed form)

    @property
    def z(self) -> float | None:
        if self.relation != "=" or None in (self.simulated, self.se, self.closed_form) or not self.se:
            return None
        return (self.simulated - self.closed_form) / self.se


def _setting(s: Scenario) -> str:
    parts = [f"p={s.p:g}" if s.signal == "binary" else f"σ={s.sigma:g}"]
    parts.append(epsilon_label(s).replace(" ", "").replace("constantRR,", "RR "))
    return ", ".join(parts)


# -- rows ----------------------------------------------------------------------------------------


def result_rows(result: Result) -> list[MetricRow]:
    s = result.scenario
    summ, th = result.summary(), result.summary()["theory"]
    setting = _setting(s)
    rows: list[MetricRow] = []

    def add(metric, label, closed_key=None, relation="=", simulated=None, se=None, closed=None):
        sim = summ.get(metric) if simulated is None else simulated
        err = (
            summ.get(metric.replace("_mean", "_se") if metric.endswith("_mean") else metric + "_se")
            if se is None
            else se
        )
        cf = th.get(closed_key) if closed is None and closed_key else closed
        rows.append(MetricRow(setting, metric, label, sim, err, cf, relation if cf is not None else ""))

    if s.signal == "binary":
        add("p_correct_cascade", "P(correct cascade)", "p_correct_cascade")
        add("reports_before_cascade_mean", "E[reports before cascade]", "reports_before_cascade_mean")
        rows.append(
            MetricRow(
                setting,
                "cascade_threshold",
                "cascade threshold k",
                None,
                None,
                float(th["cascade_threshold"]),
                "=",
            )
        )
        add("cascade_fraction", "runs whose cascade formed", relation="", se=0.0)
    else:
        n_last = int(result.checkpoints[-1])
        closed_llr = th.get("llr_mean", [None])[-1] if th.get("llr_mean") else None
        add(
            "llr_mean",
            f"mean LLR after n = {n_last} reports",
            relation="~",
            simulated=float(result.llr_mean[-1]),
            se=summ["llr_se"][-1],
            closed=closed_llr,
        )
        # The zeta-function "bound" of T3 holds up to an unknown constant C1, so it is not tabulated.
        add("first_correct_action_mean", "E[first correct action τ_a]", relation="")
        add("first_correct_report_mean", "E[first correct report τ_x]", relation="")
        for name, times, key in (
            ("action", result.first_correct_action, "tail_exponent_action"),
            ("report", result.first_correct_report, "tail_exponent_report"),
        ):
            n, surv = survival_curve(times, s.agents)
            fit = fit_tail_exponent(n, surv, s.runs)
            rows.append(
                MetricRow(
                    setting,
                    f"tail_exponent_{name}",
                    f"tail exponent of τ_{name[0] if name == 'action' else 'x'} (fitted)",
                    fit[0] if fit else None,
                    None,
                    th.get(key),
                    "~" if key in th else "",
                )
            )
    add("wrong_actions_mean", "E[wrong actions W_a]", relation="")
    add("wrong_reports_mean", "E[wrong reports W_x]", relation="")
    if s.belief_threshold is not None:
        add(
            "belief_stop_time_mean",
            f"E[stopping time τ_B], B = {s.belief_threshold:g}",
            "belief_stop_time_asymptote",
            "~",
        )
    return rows


def report_rows(result: Result | None = None, sweeps: Sequence[SweepResult] = ()) -> list[MetricRow]:
    rows = result_rows(result) if result is not None else []
    for sw in sweeps:
        for r in sw.results:
            rows.extend(result_rows(r))
    return rows


def report_title(result: Result | None = None, sweeps: Sequence[SweepResult] = ()) -> str:
    if result is not None:
        s = result.scenario
        return f"DP sequential learning: {signal_label(s)}, {mechanism_label(s)}, {epsilon_label(s)}; {size_label(s)}"
    s = sweeps[0].results[0].scenario
    what = f"sweep over {sweeps[0].parameter}"
    if len(sweeps) > 1:
        what += f" ({len(sweeps)} series)"
    return f"DP sequential learning: {what}; {mechanism_label(s)}; {size_label(s)}"


# -- writers -------------------------------------------------------------------------------------


def format_table(rows: Sequence[MetricRow], title: str) -> str:
    """A monospace table, one line per simulated setting, one column group per metric.

    Each metric cell reads "simulated ± SE"; metrics with a closed form get a second column
    ("= 0.7277" exact, "~ 13.3" asymptote) and exact ones a z column.
    """
    settings = list(dict.fromkeys(r.setting for r in rows))
    metrics = list(dict.fromkeys(r.label for r in rows if r.metric != "cascade_fraction"))
    cell = {(r.setting, r.label): r for r in rows}
    columns: list[tuple[str, str, object]] = []  # header, metric label, cell formatter
    for label in metrics:
        group = [r for r in rows if r.label == label]
        if any(r.simulated is not None for r in group):
            columns.append(
                (
                    label,
                    label,
                    lambda r: (
                        ""
                        if r is None or r.simulated is None
                        else format_number(r.simulated) + (f" ± {format_number(r.se, 2)}" if r.se else "")
                    ),
                )
            )
        if any(r.relation for r in group):
            head = "closed form" if any(r.simulated is not None for r in group) else label
            columns.append(
                (
                    head,
                    label,
                    lambda r: f"{r.relation} {format_number(r.closed_form)}" if r and r.relation else "",
                )
            )
        if any(r.relation == "=" and r.simulated is not None for r in group):
            columns.append(
                (
                    "z",
                    label,
                    lambda r: (
                        "" if r is None or r.z is None else f"{r.z:+.2f}" + ("!" if abs(r.z) > Z_FLAG else "")
                    ),
                )
            )
    table = [["setting", *(head for head, _, _ in columns)]]
    for st in settings:
        table.append([st, *(fn(cell.get((st, label))) for _, label, fn in columns)])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    out = [title, "", fmt.format(*table[0]).rstrip(), "  ".join("-" * w for w in widths)]
    out += [fmt.format(*row).rstrip() for row in table[1:]]
    notes = [
        "closed form: '=' exact (z = (simulated - closed form) / SE), '~' asymptote; ± is one standard error."
    ]
    short = [
        r for r in rows if r.metric == "cascade_fraction" and r.simulated is not None and r.simulated < 1
    ]
    for r in short:
        notes.append(
            f"{r.setting}: only {r.simulated:.1%} of runs formed a cascade within the horizon; raise agents."
        )
    if any(r.z is not None and abs(r.z) > Z_FLAG for r in rows):
        notes.append(f"'!' marks |z| > {Z_FLAG:g}: more than Monte Carlo error.")
    return "\n".join(out + [""] + notes)


def to_csv(rows: Sequence[MetricRow]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["setting", "metric", "label", "simulated", "se", "closed_form", "relation", "z"])
    for r in rows:
        writer.writerow([r.setting, r.metric, r.label, r.simulated, r.se, r.closed_form, r.relation, r.z])
    return buf.getvalue()


def to_json(
    rows: Sequence[MetricRow], title: str, result: Result | None = None, sweeps: Sequence[SweepResult] = ()
) -> str:
    """The rows plus the simulator's own JSON (summaries and theory) of everything reported."""
    doc = {
        "title": title,
        "rows": [{**asdict(r), "z": r.z} for r in rows],
        "result": result.to_dict() if result is not None else None,
        "sweeps": [sw.to_dict() for sw in sweeps],
    }
    return json.dumps(json_safe(doc), indent=1, allow_nan=False)


def write_report(
    directory: Path,
    stem: str,
    rows: Sequence[MetricRow],
    title: str,
    result: Result | None = None,
    sweeps: Sequence[SweepResult] = (),
) -> tuple[Path, Path]:
    """Write `<stem>.csv` and `<stem>.json` into `directory`; return both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = directory / f"{stem}.csv", directory / f"{stem}.json"
    csv_path.write_text(to_csv(rows), encoding="utf-8")
    json_path.write_text(to_json(rows, title, result, sweeps), encoding="utf-8")
    return csv_path, json_path
