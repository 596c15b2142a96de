"""Differentially private sequential learning (Liu & Rahimian, arXiv 2502.19525): a host-free simulator.

    from dpsl import Scenario, simulate
    result = simulate(Scenario(signal="gaussian", mechanism="smooth", epsilon=1.0, agents=1000, runs=2000))
    result.summary()["llr_mean"]

Modules: `model` (Scenario, validation), `mechanisms` (agents' flip rules), `public_belief` (the
closed-form LLR recursion in log space), `engine` (vectorised chunked simulation), `results`,
`sweep`, `theory` (closed forms), `reference` (signal-level simulators for cross-checks), `cli`.
Nothing here imports ComfyUI.
"""

from . import theory
from .engine import RNG_BLOCK_RUNS, Cancelled, MemoryBudgetError, simulate
from .model import EpsilonUniform, Scenario, ScenarioError
from .results import Result, SweepResult
from .sweep import sweep

__all__ = [
    "Cancelled",
    "EpsilonUniform",
    "MemoryBudgetError",
    "RNG_BLOCK_RUNS",
    "Result",
    "Scenario",
    "ScenarioError",
    "SweepResult",
    "simulate",
    "sweep",
    "theory",
]
