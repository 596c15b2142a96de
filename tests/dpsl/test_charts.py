"""Charts and the report without ComfyUI: determinism, sizes, legibility (render time: benchmarks/dpsl_throughput.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dpsl import EpsilonUniform, Scenario, charts, report, results, simulate, sweep


@pytest.fixture(scope="module")
def small():
    gauss = simulate(Scenario(agents=300, runs=100, keep_paths=True, checkpoints=tuple(range(1, 301, 10))))
    nonpriv = simulate(Scenario(mechanism="none", epsilon=None, agents=300, runs=100))
    hetero = simulate(Scenario(epsilon=EpsilonUniform(0, 1), quadrature_nodes=8, agents=200, runs=50))
    binary = [
        sweep(
            Scenario(signal="binary", mechanism="rr", p=p, agents=300, runs=400), "epsilon", [0.5, 1.0, 2.0]
        )
        for p in (0.55, 0.9)
    ]
    gsweep = sweep(Scenario(agents=500, runs=100, belief_threshold=4.0), "epsilon", [0.5, 1.0, 2.0])
    return {
        "llr_paths": dict(results=[gauss, hetero, nonpriv]),
        "cascade_probability": dict(sweeps=binary),
        "first_correct_survival": dict(results=[gauss]),
        "mistakes_vs_eps": dict(results=[nonpriv], sweeps=[gsweep]),
        "stopping_time_vs_eps": dict(sweeps=[gsweep]),
        "smooth_rr_illustration": dict(scenario=gauss.scenario),
        "precascade_reports": dict(sweeps=binary),
        "platform_objective": dict(sweeps=binary),
        "llr_recursion": dict(scenario=gauss.scenario),
        "threshold_schematic": dict(scenario=gauss.scenario),
    }


@pytest.mark.parametrize("kind", charts.CHART_KINDS)
def test_same_inputs_give_the_same_bytes_and_a_readable_picture(kind, small):
    first = charts.chart_from(kind, **small[kind])
    second = charts.chart_from(kind, **small[kind])
    assert first.png == second.png
    img = Image.open(io.BytesIO(first.png))
    assert img.size == (1024, 640) and img.mode == "RGB"
    assert first.rgb.shape == (640, 1024, 3) and first.rgb.dtype == np.uint8
    assert np.array_equal(np.asarray(img), first.rgb)
    assert not any(key for key in img.info if key not in ("dpi",)), img.info  # no time stamps, no versions
    ink = 1 - np.all(first.rgb > 245, axis=-1).mean()
    assert 0.02 < ink < 0.6


@pytest.mark.parametrize("kind", charts.CHART_KINDS)
def test_width_height_and_theme_are_honoured(kind, small):
    chart = charts.chart_from(
        kind, style=charts.ChartStyle(width=1600, height=900, theme="dark"), **small[kind]
    )
    assert chart.rgb.shape == (900, 1600, 3)
    assert np.median(chart.rgb) < 80  # dark background


def test_missing_inputs_say_what_to_connect():
    with pytest.raises(charts.ChartInputError, match="sweep"):
        charts.chart_from("cascade_probability")
    with pytest.raises(charts.ChartInputError, match="result"):
        charts.chart_from("llr_paths")
    with pytest.raises(ValueError, match="width"):
        charts.ChartStyle(width=10)


def test_report_rows_carry_z_scores_for_exact_closed_forms(small):
    rows = report.report_rows(sweeps=small["cascade_probability"]["sweeps"])
    exact = [r for r in rows if r.relation == "="]
    assert exact and all(r.z is not None or r.simulated is None for r in exact)
    text = report.format_table(rows, "title")
    assert "P(correct cascade)" in text and "p=0.55, ε=0.5" in text
    assert report.to_csv(rows).count("\n") == len(rows) + 1


def test_tail_exponent_fit_recovers_a_power_law():
    rng = np.random.default_rng(0)
    times = np.ceil(rng.pareto(1.5, 200_000) + 1).astype(np.int64)
    n, surv = results.survival_curve(times, 10_000)
    exponent, _, _ = results.fit_tail_exponent(n, surv, len(times))
    assert exponent == pytest.approx(1.5, abs=0.1)
