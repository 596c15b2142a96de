"""The scenario a simulation runs: signal model, privacy mechanism, budgets, sizes (docs/dpsl-model.md §1-§2).

A `Scenario` is a frozen, validated description. Every check names the parameter and the range it
accepts, because these messages reach people through the CLI and the ComfyUI nodes unchanged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

SIGNALS = ("gaussian", "binary")
MECHANISMS = {"gaussian": ("none", "rr", "smooth"), "binary": ("none", "rr")}
AMPLITUDES = ("half", "legacy")

# Above eps*sigma = 35 the smooth flip probability is < e^-35 beyond one signal unit from the
# threshold and the fast kernel's Mills-ratio arithmetic would underflow; the non-private mechanism
# "none" is the exact limit there.
MAX_SMOOTH_EPS_SIGMA = 35.0
MAX_QUADRATURE_NODES = 256


class ScenarioError(ValueError):
    """A parameter is outside its valid range; the message names it and the range."""


@dataclass(frozen=True)
class EpsilonUniform:
    """Heterogeneous privacy budgets: each agent draws eps_n ~ Uniform[low, high] (docs/dpsl-model.md §2.3).

    The public does not see eps_n and averages the report law over this distribution.
    """

    low: float
    high: float

    def __post_init__(self):
        if not (math.isfinite(self.low) and self.low >= 0):
            raise ScenarioError(f"epsilon low must be finite and >= 0, got {self.low}")
        if not (math.isfinite(self.high) and self.high > self.low):
            raise ScenarioError(f"epsilon high must be finite and > low ({self.low}), got {self.high}")

    def to_dict(self) -> dict:
        return {"distribution": "uniform", "low": self.low, "high": self.high}


Epsilon = float | EpsilonUniform | None


def decade_checkpoints(agents: int) -> tuple[int, ...]:
    """1, 2, 5, 10, 20, 50, ... up to and including `agents`: the default, round numbers for tables."""
    points = {agents}
    decade = 1
    while decade <= agents:
        points.update(m * decade for m in (1, 2, 5) if m * decade <= agents)
        decade *= 10
    return tuple(sorted(points))


CHART_CHECKPOINTS = 60


def chart_checkpoints(agents: int) -> tuple[int, ...]:
    """About 90 points, geometric (early growth on log axes) plus evenly spaced (linear axes): for charts."""
    geo = np.geomspace(1, agents, CHART_CHECKPOINTS)
    even = np.linspace(0, agents, CHART_CHECKPOINTS // 2 + 1)[1:]
    return tuple(sorted({int(round(n)) for n in np.r_[geo, even] if n >= 1}))


@dataclass(frozen=True)
class Scenario:
    """One model instance and its Monte Carlo size.

    signal: "gaussian" (s ~ N(theta, sigma^2)) or "binary" (P(s = theta) = p).
    mechanism: "none" (non-private), "rr" (randomized response with flip probability 1/(1+e^eps):
        before a cascade for binary signals, the constant-noise baseline for Gaussian signals) or
        "smooth" (Gaussian only: flip probability A*exp(-eps*|s - t|)).
    epsilon: a float for a homogeneous budget, `EpsilonUniform(a, b)` for heterogeneous budgets,
        None with mechanism "none".
    amplitude: A of the smooth mechanism, "half" (A = 1/2, the metric-DP optimum, default) or
        "legacy" (A = 1/(1+e^eps), only to reproduce the old appendix figure).
    belief_threshold: B of the stopping time inf{n : |l_n| >= B}; None to skip it.
    checkpoints: agent counts n at which LLR summaries are taken (LLR after n reports); default
        1-2-5 per decade up to `agents`.
    quantiles: the quantiles of the LLR over runs reported at each checkpoint.
    quadrature_nodes: Gauss-Legendre nodes the public uses to average over heterogeneous eps.
    """

    signal: str = "gaussian"
    sigma: float = 1.0
    p: float = 0.7
    mechanism: str = "smooth"
    epsilon: Epsilon = 1.0
    amplitude: str = "half"
    agents: int = 1000
    runs: int = 1000
    seed: int = 0
    belief_threshold: float | None = None
    checkpoints: tuple[int, ...] | None = None
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    quadrature_nodes: int = 64
    keep_paths: bool = False
    _resolved: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self):
        self._validate()
        points = decade_checkpoints(self.agents) if self.checkpoints is None else tuple(self.checkpoints)
        object.__setattr__(self, "_resolved", tuple(sorted(set(int(n) for n in points))))

    # -- validation ---------------------------------------------------------------------------------

    def _validate(self) -> None:
        if self.signal not in SIGNALS:
            raise ScenarioError(f"signal must be one of {', '.join(SIGNALS)}, got {self.signal!r}")
        allowed = MECHANISMS[self.signal]
        if self.mechanism not in allowed:
            raise ScenarioError(
                f"mechanism must be one of {', '.join(allowed)} for {self.signal} signals, got {self.mechanism!r}"
            )
        if self.signal == "gaussian" and not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ScenarioError(f"sigma must be finite and > 0, got {self.sigma}")
        if self.signal == "binary" and not (0.5 < self.p < 1):
            raise ScenarioError(f"p must be in the open interval (0.5, 1), got {self.p}")
        self._validate_epsilon()
        if self.amplitude not in AMPLITUDES:
            raise ScenarioError(f"amplitude must be one of {', '.join(AMPLITUDES)}, got {self.amplitude!r}")
        for name in ("agents", "runs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ScenarioError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not (0 <= self.seed < 2**63):
            raise ScenarioError(f"seed must be an integer in [0, 2^63), got {self.seed!r}")
        if self.belief_threshold is not None and not (
            math.isfinite(self.belief_threshold) and self.belief_threshold > 0
        ):
            raise ScenarioError(
                f"belief_threshold must be finite and > 0 (or None), got {self.belief_threshold}"
            )
        if self.checkpoints is not None:
            if len(self.checkpoints) == 0:
                raise ScenarioError(
                    "checkpoints must name at least one agent count (or be None for the default)"
                )
            for n in self.checkpoints:
                if isinstance(n, bool) or int(n) != n or not (1 <= n <= self.agents):
                    raise ScenarioError(
                        f"checkpoints must be integers in [1, agents={self.agents}], got {n!r}"
                    )
        for q in self.quantiles:
            if not (0 <= q <= 1):
                raise ScenarioError(f"quantiles must lie in [0, 1], got {q}")
        if not (1 <= self.quadrature_nodes <= MAX_QUADRATURE_NODES):
            raise ScenarioError(
                f"quadrature_nodes must be in [1, {MAX_QUADRATURE_NODES}], got {self.quadrature_nodes}"
            )

    def _validate_epsilon(self) -> None:
        eps = self.epsilon
        if self.mechanism == "none":
            if eps is not None and not isinstance(eps, EpsilonUniform) and not (eps > 0):
                raise ScenarioError(
                    f"epsilon must be > 0 or None (it is ignored by mechanism 'none'), got {eps}"
                )
            return
        if eps is None:
            raise ScenarioError(f"epsilon must be given (> 0) for mechanism {self.mechanism!r}")
        if isinstance(eps, EpsilonUniform):
            if self.mechanism == "smooth" and eps.high * self.sigma > MAX_SMOOTH_EPS_SIGMA:
                raise ScenarioError(
                    f"epsilon high * sigma must be <= {MAX_SMOOTH_EPS_SIGMA:g} for mechanism 'smooth', got "
                    f"{eps.high * self.sigma:g}; use mechanism 'none' for the non-private limit"
                )
            return
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (math.isfinite(eps) and eps > 0):
            raise ScenarioError(
                f"epsilon must be finite and > 0 for mechanism {self.mechanism!r}, got {eps!r}"
            )
        if self.mechanism == "smooth" and eps * self.sigma > MAX_SMOOTH_EPS_SIGMA:
            raise ScenarioError(
                f"epsilon * sigma must be in (0, {MAX_SMOOTH_EPS_SIGMA:g}] for mechanism 'smooth', got "
                f"{eps * self.sigma:g}; use mechanism 'none' for the non-private limit"
            )

    # -- derived ------------------------------------------------------------------------------------

    @property
    def resolved_checkpoints(self) -> tuple[int, ...]:
        return self._resolved

    @property
    def private(self) -> bool:
        return self.mechanism != "none"

    @property
    def heterogeneous(self) -> bool:
        return self.private and isinstance(self.epsilon, EpsilonUniform)

    def with_(self, **changes) -> Scenario:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("_resolved")
        d["epsilon"] = self.epsilon.to_dict() if isinstance(self.epsilon, EpsilonUniform) else self.epsilon
        d["checkpoints"] = list(self.resolved_checkpoints)
        d["quantiles"] = list(self.quantiles)
        return d


# -- describing scenarios to readers (titles, legends, report rows) ------------------------------------------------------------------------


def epsilon_label(s: Scenario) -> str:
    if not s.private:
        return "non-private"
    if isinstance(s.epsilon, EpsilonUniform):
        return f"ε ~ U[{s.epsilon.low:g}, {s.epsilon.high:g}]"
    prefix = "constant RR, " if (s.signal == "gaussian" and s.mechanism == "rr") else ""
    return f"{prefix}ε = {s.epsilon:g}"


def signal_label(s: Scenario) -> str:
    return f"Gaussian signals σ = {s.sigma:g}" if s.signal == "gaussian" else f"binary signals p = {s.p:g}"


def mechanism_label(s: Scenario) -> str:
    if s.mechanism == "none":
        return "non-private"
    if s.mechanism == "rr":
        return "randomized response" + (" before the cascade" if s.signal == "binary" else " (constant)")
    return "smooth RR, A = " + ("1/2" if s.amplitude == "half" else "1/(1+e^ε)")


def size_label(s: Scenario) -> str:
    return f"N = {s.agents} agents, R = {s.runs} runs, seed {s.seed}"


def scenario_from(
    *,
    epsilon: float | None = None,
    epsilon_uniform: tuple[float, float] | None = None,
    names: tuple[str, str] = ("epsilon", "epsilon_uniform"),
    **fields,
) -> Scenario:
    """The Scenario a host's settings describe (the CLI's flags, the node's widgets): a privacy budget
    given as one epsilon or as a uniform range (low, high), never both (the error says so with the host's
    `names` for the two); the other fields as Scenario's."""
    if epsilon is not None and epsilon_uniform is not None:
        raise ScenarioError(f"give either {names[0]} or {names[1]}, not both")
    return Scenario(
        epsilon=EpsilonUniform(*epsilon_uniform) if epsilon_uniform is not None else epsilon, **fields
    )
