"""DP sequential learning lab nodes: scenario -> simulate / sweep -> chart / report.

Each node turns widget values into a `dpsl` call and the answer back into ComfyUI types; the model
is `dpsl` (host-free), the pictures `dpsl.charts`, the tables `dpsl.report`. Node ids are a public
contract (saved workflows refer to them): never rename one. Parameter names are the `dpsl.Scenario`
field names, so the core's error messages ("epsilon must be > 0 ...") name the widget the user sees.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ..dpsl import (
    AMPLITUDES,
    MAX_QUADRATURE_NODES,
    MECHANISMS,
    SIGNALS,
    RunOptions,
    ScenarioError,
    budget_from_gib,
    chart_checkpoints,
    charts,
    check_sweep,
    parse_values,
    report,
    scenario_from,
    simulate,
    sweep_series,
)
from . import host_files
from .comfy_host import MENU, io, model_management, progress_and_cancel, ui

log = logging.getLogger(__name__)

CATEGORY = f"{MENU}/dp_sequential_learning"
SCENARIO = io.Custom("DPSL_SCENARIO")
RESULT = io.Custom("DPSL_RESULT")
SWEEPS = io.Custom("DPSL_SWEEPS")  # a list of dpsl.SweepResult, one per series value

# The mechanism combo: the Gaussian signal takes every mechanism; the paper's smooth one first (Scenario
# refuses a pair the binary signal does not take).
MECHANISM_CHOICES = MECHANISMS["gaussian"][::-1]
SERIES = ("none", "p", "sigma")


class DPSLError(ValueError):
    """A node input is missing or out of range; ComfyUI shows the message on the node."""


def host_device() -> torch.device:
    """ComfyUI's compute device if the simulator supports it (cpu, cuda), else the CPU."""
    device = model_management.get_torch_device()
    if device.type in ("cpu", "cuda"):
        return device
    log.info("DPSL simulations run on the CPU: the simulator has no %s kernels", device.type)
    return torch.device("cpu")


def run_with_host_controls(work):
    """Run `work(progress, should_cancel)` under ComfyUI's progress bar and Cancel button."""
    with progress_and_cancel(1000) as (progress, cancel):
        return work(progress, cancel)


# -- 1. scenario ----------------------------------------------------------------------------------


class DPSLScenario(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DPSLScenario",
            display_name="DPSL Scenario",
            category=CATEGORY,
            description="The sequential learning model of Liu & Rahimian (arXiv 2502.19525): agents act in turn "
            "on a private signal and the publicly reported actions of those before them; reports go "
            "through a differential-privacy mechanism. Feeds DPSL Simulate and DPSL Sweep.",
            inputs=[
                io.Combo.Input(
                    "signal",
                    options=list(SIGNALS),
                    default="gaussian",
                    tooltip="gaussian: s ~ N(theta, sigma^2); binary: s = theta with probability p.",
                ),
                io.Float.Input(
                    "sigma",
                    default=1.0,
                    min=0.01,
                    max=100.0,
                    step=0.01,
                    tooltip="Gaussian signal noise sigma (ignored for binary signals).",
                ),
                io.Float.Input(
                    "p",
                    default=0.7,
                    min=0.5,
                    max=1.0,
                    step=0.01,
                    tooltip="Binary signal accuracy P(s = theta), in the open interval (0.5, 1) "
                    "(ignored for Gaussian signals).",
                ),
                io.Combo.Input(
                    "mechanism",
                    options=list(MECHANISM_CHOICES),
                    default="smooth",
                    tooltip="smooth: flip with A*exp(-eps*|s - t|) (Gaussian, metric DP); rr: randomized "
                    "response 1/(1+e^eps) (binary: before the cascade; Gaussian: constant "
                    "baseline); none: non-private.",
                ),
                io.Combo.Input(
                    "epsilon_mode",
                    options=["fixed", "uniform"],
                    default="fixed",
                    tooltip="fixed: every agent has budget epsilon; uniform: each agent draws its own "
                    "eps_n ~ U[epsilon_low, epsilon_high], which the public does not see.",
                ),
                io.Float.Input(
                    "epsilon",
                    default=1.0,
                    min=0.0,
                    max=100.0,
                    step=0.01,
                    tooltip="Privacy budget eps > 0 (smaller = more private). Used when epsilon_mode "
                    "is fixed; ignored by mechanism none.",
                ),
                io.Float.Input(
                    "epsilon_low",
                    default=0.0,
                    min=0.0,
                    max=100.0,
                    step=0.01,
                    tooltip="Lower end of the uniform budget distribution (epsilon_mode uniform).",
                ),
                io.Float.Input(
                    "epsilon_high",
                    default=1.0,
                    min=0.0,
                    max=100.0,
                    step=0.01,
                    tooltip="Upper end of the uniform budget distribution (epsilon_mode uniform).",
                ),
                io.Combo.Input(
                    "amplitude",
                    options=list(AMPLITUDES),
                    default="half",
                    tooltip="A of the smooth mechanism: half = 1/2 (the metric-DP optimum, the "
                    "paper's choice); legacy = 1/(1+e^eps), only to reproduce an old figure.",
                ),
                io.Int.Input(
                    "agents",
                    default=1000,
                    min=1,
                    max=100_000_000,
                    step=100,
                    tooltip="N: agents per run (the horizon).",
                ),
                io.Int.Input(
                    "runs",
                    default=500,
                    min=1,
                    max=100_000_000,
                    step=100,
                    tooltip="R: independent Monte Carlo runs; standard errors shrink like 1/sqrt(R).",
                ),
                io.Int.Input(
                    "seed",
                    default=0,
                    min=0,
                    max=2**63 - 1,
                    control_after_generate=True,
                    tooltip="Random seed; the same seed on the same device gives the same result.",
                ),
                io.Float.Input(
                    "belief_threshold",
                    default=0.0,
                    min=0.0,
                    max=1000.0,
                    step=0.5,
                    tooltip="B of the stopping time inf{n : |l_n| >= B}; 0 = not measured.",
                ),
                io.Int.Input(
                    "quadrature_nodes",
                    default=16,
                    min=1,
                    max=MAX_QUADRATURE_NODES,
                    step=1,
                    tooltip="Gauss-Legendre nodes the public uses to average over eps_n (epsilon_mode "
                    "uniform only); 16 already agrees with 64 to ~1e-12 on U[0, 1].",
                ),
            ],
            outputs=[SCENARIO.Output(display_name="scenario")],
        )

    @classmethod
    def execute(
        cls,
        signal,
        sigma,
        p,
        mechanism,
        epsilon_mode,
        epsilon,
        epsilon_low,
        epsilon_high,
        amplitude,
        agents,
        runs,
        seed,
        belief_threshold,
        quadrature_nodes,
    ) -> io.NodeOutput:
        uniform = mechanism != "none" and epsilon_mode == "uniform"
        scenario = scenario_from(
            signal=signal,
            sigma=sigma,
            p=p,
            mechanism=mechanism,
            epsilon=None if mechanism == "none" or uniform else epsilon,
            epsilon_uniform=(epsilon_low, epsilon_high) if uniform else None,
            amplitude=amplitude,
            agents=agents,
            runs=runs,
            seed=seed,
            belief_threshold=belief_threshold or None,
            checkpoints=chart_checkpoints(agents),
            quadrature_nodes=quadrature_nodes,
        )
        return io.NodeOutput(scenario)


# -- 2. simulate ------------------------------------------------------------------------------------

MEMORY_INPUTS = [
    io.Boolean.Input(
        "keep_paths",
        default=False,
        tooltip="On: keep every run's whole LLR path (runs x agents x 8 bytes; the chart draws "
        "five). Off: stream summaries at checkpoints in O(runs) memory.",
    ),
    io.Float.Input(
        "memory_budget_gb",
        default=2.0,
        min=0.01,
        max=1024.0,
        step=0.25,
        tooltip="Most memory (GiB) the outputs may take; a run that needs more stops with an "
        "error before it starts.",
    ),
]


class DPSLSimulate(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DPSLSimulate",
            display_name="DPSL Simulate",
            category=CATEGORY,
            description="Monte Carlo simulation of the scenario on ComfyUI's device (GPU when it has one), with "
            "the progress bar and Cancel honoured between agent steps.",
            inputs=[SCENARIO.Input("scenario", tooltip="From DPSL Scenario."), *MEMORY_INPUTS],
            outputs=[RESULT.Output(display_name="result")],
        )

    @classmethod
    def execute(cls, scenario, keep_paths, memory_budget_gb) -> io.NodeOutput:
        scenario = scenario.with_(keep_paths=keep_paths)
        device = host_device()
        result = run_with_host_controls(
            lambda progress, cancel: simulate(
                scenario,
                RunOptions(device, progress, cancel, memory_budget=budget_from_gib(memory_budget_gb)),
            )
        )
        log.info(
            "DPSL: %d x %d agent steps in %.2f s on %s",
            scenario.runs,
            scenario.agents,
            result.elapsed_s,
            result.device,
        )
        return io.NodeOutput(result)


# -- 3. sweep ---------------------------------------------------------------------------------------


class DPSLSweep(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DPSLSweep",
            display_name="DPSL Sweep",
            category=CATEGORY,
            description="The scenario simulated at every eps of a grid (same seed at every point, so neighbouring "
            "points share random numbers), optionally once per value of p or sigma.",
            inputs=[
                SCENARIO.Input(
                    "scenario", tooltip="From DPSL Scenario; its epsilon is replaced by each grid value."
                ),
                io.String.Input(
                    "epsilon_grid",
                    default="0.25, 0.5, 0.75, 1, 1.5, 2",
                    tooltip="Privacy budgets to simulate: '0.25, 0.5, 1' or 'linspace(0.1, 2, 20)'; "
                    "every value > 0.",
                ),
                io.Combo.Input(
                    "series",
                    options=list(SERIES),
                    default="none",
                    tooltip="Repeat the sweep for each value of this scenario parameter (one curve "
                    "each on the chart).",
                ),
                io.String.Input(
                    "series_values",
                    default="0.55, 0.7, 0.9",
                    tooltip="Values of the series parameter, e.g. p = '0.55, 0.7, 0.9'.",
                ),
                *MEMORY_INPUTS,
            ],
            outputs=[SWEEPS.Output(display_name="sweep")],
        )

    @classmethod
    def execute(
        cls, scenario, epsilon_grid, series, series_values, keep_paths, memory_budget_gb
    ) -> io.NodeOutput:
        grid = parse_values(epsilon_grid, "epsilon_grid")
        try:
            check_sweep([scenario], "epsilon", grid)
        except ScenarioError as error:
            raise ScenarioError(f"epsilon_grid: {error}") from None
        bases = [scenario.with_(keep_paths=keep_paths, epsilon=grid[0])]
        if series != "none":
            bases = [bases[0].with_(**{series: v}) for v in parse_values(series_values, "series_values")]
        device = host_device()

        def work(progress, cancel):
            return sweep_series(
                bases,
                "epsilon",
                grid,
                RunOptions(device, progress, cancel, memory_budget=budget_from_gib(memory_budget_gb)),
            )

        return io.NodeOutput(run_with_host_controls(work))


# -- 4. chart ---------------------------------------------------------------------------------------

EXTRA_RESULTS = ("result_2", "result_3", "result_4", "result_5")


class DPSLChart(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DPSLChart",
            display_name="DPSL Chart",
            category=CATEGORY,
            description="A publication-quality chart of results or sweeps next to the paper's closed forms "
            "(colour-blind-safe, labelled axes, parameters in the title). IMAGE output, previewed "
            "on the node; the same inputs give the same pixels.",
            inputs=[
                io.Combo.Input(
                    "kind",
                    options=list(charts.CHART_KINDS),
                    default="llr_paths",
                    tooltip="llr_paths: public LLR vs n (result, up to 5 regimes); cascade_probability: "
                    "binary P(correct cascade) vs eps (sweep); first_correct_survival: P(tau > n) "
                    "log-log (result); mistakes_vs_eps and stopping_time_vs_eps (sweep); "
                    "smooth_rr_illustration and threshold_schematic (scenario only); precascade_reports "
                    "and platform_objective: reports before a cascade and J(eps) (binary sweep, or p "
                    "values); llr_recursion: the appendix recursion (scenario or none).",
                ),
                io.Int.Input(
                    "width",
                    default=1024,
                    min=charts.MIN_SIZE,
                    max=charts.MAX_SIZE,
                    step=16,
                    tooltip="Image width in pixels.",
                ),
                io.Int.Input(
                    "height",
                    default=640,
                    min=charts.MIN_SIZE,
                    max=charts.MAX_SIZE,
                    step=16,
                    tooltip="Image height in pixels.",
                ),
                io.Combo.Input(
                    "theme",
                    options=list(charts.THEMES),
                    default="light",
                    tooltip="light for papers and slides, dark to match the ComfyUI canvas.",
                ),
                io.Float.Input(
                    "threshold",
                    default=-3.0,
                    min=-20.0,
                    max=20.0,
                    step=0.1,
                    tooltip="Decision threshold t of the smooth_rr_illustration (the paper uses -3).",
                ),
                io.Float.Input(
                    "cost",
                    default=0.01,
                    min=0.0,
                    max=1.0,
                    step=0.001,
                    tooltip="Cost c per unit of expected calendar time in the platform_objective (the paper: 0.01).",
                ),
                RESULT.Input("result", optional=True, tooltip="From DPSL Simulate."),
                SWEEPS.Input("sweep", optional=True, tooltip="From DPSL Sweep."),
                SCENARIO.Input("scenario", optional=True, tooltip="For smooth_rr_illustration."),
                *[
                    RESULT.Input(
                        name,
                        optional=True,
                        tooltip="Another regime to overlay (llr_paths, "
                        "first_correct_survival) or the non-private reference (mistakes_vs_eps).",
                    )
                    for name in EXTRA_RESULTS
                ],
            ],
            outputs=[io.Image.Output(display_name="image")],
            is_output_node=True,
        )

    @classmethod
    def execute(
        cls, kind, width, height, theme, threshold, cost=0.01, result=None, sweep=None, scenario=None, **extra
    ) -> io.NodeOutput:
        style = charts.ChartStyle(width=width, height=height, theme=theme)
        results = [result, *(extra.get(name) for name in EXTRA_RESULTS)]
        chart = charts.chart_from(
            kind,
            results=results,
            sweeps=sweep or (),
            scenario=scenario,
            style=style,
            threshold=threshold,
            cost=cost,
        )
        image = torch.from_numpy(chart.rgb.astype(np.float32) / 255.0)[None]  # 1, H, W, 3
        return io.NodeOutput(image, ui=ui.PreviewImage(image, cls=cls))


# -- 5. report --------------------------------------------------------------------------------------


class DPSLReport(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DPSLReport",
            display_name="DPSL Report",
            category=CATEGORY,
            description="A table of the key simulated metrics next to their closed forms (z-scores for exact "
            "ones), shown on the node; also written as CSV and JSON into ComfyUI's output folder.",
            inputs=[
                io.String.Input(
                    "filename_prefix",
                    default="dpsl/report",
                    tooltip="Where the CSV and JSON go, relative to ComfyUI's output folder.",
                ),
                RESULT.Input("result", optional=True, tooltip="From DPSL Simulate."),
                SWEEPS.Input("sweep", optional=True, tooltip="From DPSL Sweep."),
            ],
            outputs=[
                io.String.Output(display_name="report"),
                io.String.Output(display_name="csv_file"),
                io.String.Output(display_name="json_file"),
            ],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, filename_prefix, result=None, sweep=None) -> io.NodeOutput:
        sweeps = sweep or []
        if result is None and not sweeps:
            raise DPSLError("connect a DPSL Simulate result or a DPSL Sweep to 'result' or 'sweep'")
        folder, name, counter, subfolder = host_files.output_path(
            filename_prefix, "filename_prefix", lambda input_name, cause: DPSLError(f"{input_name}: {cause}")
        )
        rows = report.report_rows(result, sweeps)
        title = report.report_title(result, sweeps)
        text = report.format_table(rows, title)
        csv_path, json_path = report.write_report(
            folder, f"{name}_{counter:05}_", rows, title, result, sweeps
        )
        names = [str(Path(subfolder) / p.name) if subfolder else p.name for p in (csv_path, json_path)]
        return io.NodeOutput(text, *names, ui=ui.PreviewText(text))


NODES: list[type] = [DPSLScenario, DPSLSimulate, DPSLSweep, DPSLChart, DPSLReport]
