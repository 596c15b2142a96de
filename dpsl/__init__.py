"""Differentially private sequential learning (Liu & Rahimian, arXiv 2502.19525): a host-free simulator.

    from dpsl import Scenario, simulate
    result = simulate(Scenario(signal="gaussian", mechanism="smooth", epsilon=1.0, agents=1000, runs=2000))
    result.summary()["llr_mean"]

Modules: `scenario` (Scenario, its validation and labels), `mechanisms` (agents' flip rules),
`step_law` (the smooth mechanism's step law, closed form and tabulated), `public_belief` (the closed-form
LLR recursion in log space), `engine` (vectorised chunked simulation) with `chunks` (how runs are split
over threads, ranks and memory, and the driver of one chunk) and `outputs` (the per-run arrays), `results`, `sweep` (grids and their rules), `theory` (closed forms),
`published` (the paper's reference values),
`charts` (a package: rendering, the figure painters, and charts from results), `report` (metric tables),
`reproduce` (the paper-size report), `files` (atomic output), `cli`. Nothing here imports ComfyUI.
"""

from . import theory
from .chunks import RNG_BLOCK_RUNS
from .engine import MemoryBudgetError, RunOptions, SimulationCancelled, budget_from_gib, simulate
from .results import Result, SweepResult
from .scenario import (
    AMPLITUDES,
    MAX_QUADRATURE_NODES,
    MECHANISMS,
    SIGNALS,
    EpsilonUniform,
    Scenario,
    ScenarioError,
    chart_checkpoints,
    scenario_from,
)
from .sweep import check_sweep, parse_values, sweep, sweep_series

__all__ = [
    "AMPLITUDES",
    "SimulationCancelled",
    "EpsilonUniform",
    "MAX_QUADRATURE_NODES",
    "MECHANISMS",
    "MemoryBudgetError",
    "RNG_BLOCK_RUNS",
    "Result",
    "RunOptions",
    "SIGNALS",
    "Scenario",
    "ScenarioError",
    "SweepResult",
    "budget_from_gib",
    "chart_checkpoints",
    "charts",
    "check_sweep",
    "parse_values",
    "report",
    "scenario_from",
    "simulate",
    "sweep",
    "sweep_series",
    "theory",
]


def __getattr__(name: str):
    # `charts` (matplotlib) and `report` are imported on first use: `python -m dpsl simulate` and the
    # engine start without paying for matplotlib.
    if name in ("charts", "report"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
