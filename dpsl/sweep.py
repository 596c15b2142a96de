"""One scenario field varied over a list of values, every value simulated with the same seed.

The shared seed gives common random numbers across values, so differences between neighbouring
values are not swamped by Monte Carlo noise.
"""

from __future__ import annotations

from collections.abc import Sequence

from .engine import CancelFn, ProgressFn, simulate
from .model import Scenario, ScenarioError
from .results import SweepResult

SWEEPABLE = ("epsilon", "sigma", "p", "agents", "runs", "belief_threshold", "amplitude", "mechanism")


def sweep(base: Scenario, parameter: str, values: Sequence, device=None, progress: ProgressFn | None = None,
          should_cancel: CancelFn | None = None, chunk_runs: int | None = None,
          memory_budget: int | None = None) -> SweepResult:
    """simulate(base with parameter = v) for each v; progress counts agent steps over the whole sweep."""
    if parameter not in SWEEPABLE:
        raise ScenarioError(f"parameter must be one of {', '.join(SWEEPABLE)}, got {parameter!r}")
    if len(values) == 0:
        raise ScenarioError("values must hold at least one value to sweep over")
    scenarios = [base.with_(**{parameter: v}) for v in values]
    total = sum(s.runs * s.agents for s in scenarios)
    offset = 0
    results = []
    for s in scenarios:
        def forward(done, _total, offset=offset):
            progress(offset + done, total)

        results.append(simulate(s, device=device, progress=forward if progress else None,
                                should_cancel=should_cancel, chunk_runs=chunk_runs, memory_budget=memory_budget))
        offset += s.runs * s.agents
    return SweepResult(parameter, list(values), results)
