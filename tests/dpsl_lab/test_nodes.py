"""DPSL nodes in the real server: user-facing errors, Cancel, and the in-process adapters."""

from __future__ import annotations

import pytest

from dev.comfy_harness import ExecutionFailed, wait_for_message
from tests.support.dpsl_graphs import report_prompt, simulate_prompt, sweep_prompt, sweep_prompt_none


@pytest.mark.server
@pytest.mark.parametrize(
    "prompt, node_type, words",
    [
        (simulate_prompt(epsilon=0.0), "DPSLScenario", ["epsilon", "> 0"]),
        (simulate_prompt(signal="binary", mechanism="rr", p=0.5), "DPSLScenario", ["p", "(0.5, 1)"]),
        (
            simulate_prompt(keep_paths=True, agents=200_000, runs=20_000),
            "DPSLSimulate",
            ["keep_paths", "memory budget", "runs x agents"],
        ),
        (sweep_prompt(""), "DPSLSweep", ["epsilon_grid", "empty"]),
        (sweep_prompt("0.5, -1"), "DPSLSweep", ["epsilon_grid", "> 0"]),
        (sweep_prompt_none(), "DPSLSweep", ["mechanism is 'none' (non-private): an epsilon sweep needs"]),
        (report_prompt("../../outside/report"), "DPSLReport", ["filename_prefix", "output folder"]),
        (report_prompt("/tmp/report"), "DPSLReport", ["filename_prefix", "output folder"]),
    ],
    ids=[
        "eps_zero",
        "p_half",
        "memory_budget",
        "empty_grid",
        "negative_grid_value",
        "none_mechanism_sweep",
        "prefix_up",
        "prefix_abs",
    ],
)
def test_bad_parameters_reach_the_user_naming_the_parameter(comfy_server, prompt, node_type, words):
    error = comfy_server.run_expecting_error(prompt)
    assert error["node_type"] == node_type
    for word in words:
        assert word in error["exception_message"], error["exception_message"]
    assert "Traceback" not in error["exception_message"]


@pytest.mark.server
def test_out_of_range_widget_is_rejected_before_running(comfy_server):
    with pytest.raises(ExecutionFailed) as err:
        comfy_server.queue(simulate_prompt(epsilon=-1.0))
    assert "epsilon" in str(err.value)


@pytest.mark.server
def test_cancel_stops_a_long_simulation_and_the_server_stays_healthy(comfy_server):
    # ~10^8 agent steps: minutes on 2 cores if Cancel were ignored.
    prompt = simulate_prompt(agents=100_000, runs=1000, seed=12345)
    ws = comfy_server.messages()
    try:
        prompt_id = comfy_server.queue(prompt)
        # The simulation itself is running once its node reports progress.
        wait_for_message(ws, "progress", node="3", prompt_id=prompt_id)
    finally:
        ws.close()
    comfy_server.interrupt()
    entry = comfy_server.wait(prompt_id, timeout=60)
    kinds = [kind for kind, _ in entry["status"]["messages"]]
    assert "execution_interrupted" in kinds, kinds
    assert "execution_error" not in kinds
    # The next prompt runs normally.
    comfy_server.run(simulate_prompt(agents=100, runs=50, seed=1))


# -- in-process: the adapters themselves ----------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(comfy_inprocess):
    import importlib

    return importlib.import_module(comfy_inprocess.pack.__name__ + ".nodes.dpsl_lab")


def test_simulate_runs_on_the_host_device_and_reports_progress(lab, monkeypatch):
    import comfy.utils

    calls = []
    monkeypatch.setattr(
        comfy.utils,
        "PROGRESS_BAR_HOOK",
        lambda value, total, preview, node_id=None: calls.append((value, total)),
    )
    scenario = lab.DPSLScenario.execute(
        "gaussian", 1.0, 0.7, "smooth", "fixed", 1.0, 0.0, 1.0, "half", 200, 20, 0, 0.0, 16
    ).result[0]
    result = lab.DPSLSimulate.execute(scenario, False, 2.0).result[0]
    assert result.device == "cpu"
    assert calls and calls[-1] == (200 * 20, 200 * 20)


def test_cancel_flag_becomes_comfyui_interrupt(lab, monkeypatch):
    import comfy.model_management as mm

    scenario = lab.DPSLScenario.execute(
        "gaussian", 1.0, 0.7, "smooth", "fixed", 1.0, 0.0, 1.0, "half", 5000, 50, 0, 0.0, 16
    ).result[0]
    mm.interrupt_current_processing(True)
    try:
        with pytest.raises(mm.InterruptProcessingException):
            lab.DPSLSimulate.execute(scenario, False, 2.0)
    finally:
        mm.interrupt_current_processing(False)
    assert not mm.processing_interrupted()


def test_the_chart_kind_tooltip_names_every_chart_kind(lab):
    from dpsl import charts

    kind = next(i for i in lab.DPSLChart.GET_SCHEMA().inputs if i.id == "kind")
    missing = [k for k in charts.CHART_KINDS if k not in kind.tooltip]
    assert not missing, missing
