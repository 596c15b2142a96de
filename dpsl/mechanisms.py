"""The agents' privacy mechanisms: how an intended action a_n becomes the reported action x_n (docs/dpsl-model.md §2).

These are the agent-side rules. What the public infers from a report is in `public_belief`.
Functions accept Python floats or torch tensors (elementwise).
"""

from __future__ import annotations

import math

import torch


def rr_flip_probability(eps):
    """Randomized response: flip with u = 1/(1+e^eps), so that (1-u)/u = e^eps (pure eps-DP)."""
    if isinstance(eps, torch.Tensor):
        return torch.sigmoid(-eps)
    return 1.0 / (1.0 + math.exp(eps)) if eps < 700 else 0.0


def smooth_amplitude(eps, amplitude: str = "half"):
    """A of the smooth mechanism: 1/2 (metric-DP optimal, default) or the legacy 1/(1+e^eps)."""
    if amplitude == "half":
        return torch.full_like(eps, 0.5) if isinstance(eps, torch.Tensor) else 0.5
    if amplitude == "legacy":
        return rr_flip_probability(eps)
    raise ValueError(f"amplitude must be 'half' or 'legacy', got {amplitude!r}")


def smooth_flip_probability(s, t, eps, amplitude: str = "half"):
    """Smooth randomized response: u = A * exp(-eps * |s - t|), largest at the decision threshold t."""
    return smooth_amplitude(eps, amplitude) * torch.exp(-eps * (s - t).abs())


def gaussian_flip_probability(mechanism: str, s, t, eps, amplitude: str = "half"):
    """Flip probability of an agent with Gaussian signal s facing threshold t = -sigma^2 l / 2."""
    if mechanism == "none":
        return torch.zeros_like(s)
    if mechanism == "rr":
        return torch.full_like(s, 1.0) * rr_flip_probability(eps)
    if mechanism == "smooth":
        return smooth_flip_probability(s, t, eps, amplitude)
    raise ValueError(f"mechanism must be one of none, rr, smooth, got {mechanism!r}")
