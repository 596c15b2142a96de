"""One scenario field varied over a list of values, every value simulated with the same seed.

The shared seed gives common random numbers across values, so differences between neighbouring
values are not swamped by Monte Carlo noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .engine import RunOptions, SimulationCancelled, simulate
from .results import SweepResult
from .scenario import Scenario, ScenarioError

SWEEPABLE = ("epsilon", "sigma", "p", "agents", "runs", "belief_threshold", "amplitude", "mechanism")


MAX_VALUES = 1000  # a sweep's grid: each value is a whole simulation


def parse_values(text: str, name: str, convert=float) -> list:
    """'0.1, 0.5, 1' (commas or semicolons) or, for numbers, 'linspace(0.1, 2, 20)' -> a list.

    The one parser of value lists for the CLI and the nodes; errors name `name`, the flag or widget.
    """
    text = text.strip()
    kind = "numbers" if convert is float else ("integers" if convert is int else "values")
    try:
        if convert is float and text.startswith("linspace(") and text.endswith(")"):
            start, stop, count = (part.strip() for part in text[len("linspace(") : -1].split(","))
            if int(count) < 1:
                raise ValueError
            if int(count) > MAX_VALUES:
                raise ScenarioError(
                    f"{name} asks for {int(count)} values; at most {MAX_VALUES} (each is a whole simulation)"
                )
            values = np.linspace(float(start), float(stop), int(count)).round(10).tolist()
        else:
            values = [convert(v.strip()) for v in text.replace(";", ",").split(",") if v.strip()]
    except ScenarioError:
        raise
    except ValueError:
        example = "'0.25, 0.5, 1' or 'linspace(start, stop, count)'" if convert is float else "'1, 2, 5'"
        raise ScenarioError(
            f"{name} must be {kind} separated by commas (e.g. {example}), got {text!r}"
        ) from None
    if len(values) > MAX_VALUES:
        raise ScenarioError(
            f"{name} has {len(values)} values; at most {MAX_VALUES} (each is a whole simulation)"
        )
    if not values:
        raise ScenarioError(
            f"{name} is empty: give at least one value, e.g. "
            + ("'0.25, 0.5, 1' or 'linspace(0.1, 2, 10)'" if convert is float else "'1, 2, 5'")
        )
    return values


def sweep(
    base: Scenario, parameter: str, values: Sequence, options: RunOptions | None = None, **changes
) -> SweepResult:
    """simulate(base with parameter = v) for each v; progress counts agent steps over the whole sweep.
    `options` and `changes` as for `simulate`."""
    return sweep_series([base], parameter, values, options, **changes)[0]


def check_sweep(bases: Sequence[Scenario], parameter: str, values: Sequence) -> None:
    """The rules for a sweep, in one place for the Python API, the CLI and the ComfyUI node."""
    if parameter not in SWEEPABLE:
        raise ScenarioError(f"parameter must be one of {', '.join(SWEEPABLE)}, got {parameter!r}")
    if len(values) == 0:
        raise ScenarioError("values must hold at least one value to sweep over")
    if parameter == "epsilon":
        bad = [v for v in values if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0)]
        if bad:
            raise ScenarioError(f"epsilon values must be finite and > 0, got {bad[0]:g}")
        if any(base.mechanism == "none" for base in bases):
            raise ScenarioError(
                "mechanism is 'none' (non-private): an epsilon sweep needs mechanism smooth or rr "
                "(every value would give the same result)"
            )


def sweep_series(
    bases: Sequence[Scenario],
    parameter: str,
    values: Sequence,
    options: RunOptions | None = None,
    **changes,
) -> list[SweepResult]:
    """One sweep per base scenario (a series of curves, e.g. one per p); progress counts agent steps
    over all of them, so one progress bar covers the whole series."""
    options = (options or RunOptions()).with_(**changes)
    progress, should_cancel = options.progress, options.should_cancel
    check_sweep(bases, parameter, values)
    grid = [[base.with_(**{parameter: v}) for v in values] for base in bases]
    total = sum(s.runs * s.agents for row in grid for s in row)
    offset = 0
    out = []
    for row in grid:
        results = []
        for s in row:
            if should_cancel is not None and should_cancel():  # also between values: a grid of tiny runs
                raise SimulationCancelled(f"cancelled after {offset} of {total} agent steps")

            def forward(done, _total, offset=offset):
                progress(offset + done, total)

            results.append(simulate(s, options, progress=forward if progress else None))
            offset += s.runs * s.agents
        out.append(SweepResult(parameter, list(values), results))
    return out
