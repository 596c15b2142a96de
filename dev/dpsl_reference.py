"""Signal-level simulators of the Gaussian smooth-RR model, written the obvious way.

They draw each signal s_n ~ N(1, sigma^2), take the Bayes action, flip it with probability
A exp(-eps |s_n - t_n|) and update the public LLR with docs/dpsl-model.md §3.2 term by term. They share no
code with the engine, so the tests use them to check the engine in law, and the benchmark times
them as baselines:

* `simulate_loop` - one run, one agent at a time, in plain Python (`math` only);
* `simulate_numpy` - runs as the vector axis, one numpy/scipy array operation per formula term.

Both return the LLR after each checkpoint n (LLR after n reports) and the wrong-action and
wrong-report counts per run.
"""

from __future__ import annotations

import math
import random

import numpy as np

from dpsl.mechanisms import smooth_amplitude


def _log_ndtr(x: float) -> float:
    if x > -20:
        return math.log(0.5 * math.erfc(-x / math.sqrt(2)))
    w = 1 / (x * x)
    return -0.5 * x * x - math.log(-x) - 0.5 * math.log(2 * math.pi) + math.log1p(-w + 3 * w * w - 15 * w**3)


def _log_p_minus(llr: float, theta: float, sigma: float, eps: float, a: float) -> float:
    t = -sigma * sigma * llr / 2
    lt1 = _log_ndtr((t - theta) / sigma)
    lt2 = (
        math.log(a)
        + eps * (theta - t)
        + eps * eps * sigma * sigma / 2
        + _log_ndtr((t - theta - eps * sigma**2) / sigma)
    )
    lt3 = (
        math.log(a)
        + eps * (t - theta)
        + eps * eps * sigma * sigma / 2
        + _log_ndtr((theta - t - eps * sigma**2) / sigma)
    )
    first = lt1 + math.log1p(-math.exp(lt2 - lt1))
    hi, lo = max(first, lt3), min(first, lt3)
    return hi + math.log1p(math.exp(lo - hi))


def simulate_loop(
    sigma: float, eps: float, runs: int, agents: int, seed: int = 0, amplitude: str = "half", checkpoints=()
):
    """Per-agent Python loop. Returns (llr at checkpoints [runs, C], wrong actions, wrong reports)."""
    rng = random.Random(seed)
    a_amp = smooth_amplitude(eps, amplitude)
    index = {n: i for i, n in enumerate(checkpoints)}
    llr_at = np.zeros((runs, len(index)))
    wrong_a = np.zeros(runs, dtype=np.int64)
    wrong_x = np.zeros(runs, dtype=np.int64)
    for run in range(runs):
        llr = 0.0  # this run's public LLR (the array of all runs is llr_at)
        for n in range(1, agents + 1):
            t = -sigma * sigma * llr / 2
            s = rng.gauss(1.0, sigma)
            a = 1 if s > t else -1
            x = -a if rng.random() < a_amp * math.exp(-eps * abs(s - t)) else a
            lp = _log_p_minus(llr, 1.0, sigma, eps, a_amp)
            lm = _log_p_minus(llr, -1.0, sigma, eps, a_amp)
            if x < 0:
                llr += lp - lm
            else:
                llr += math.log1p(-math.exp(lp)) - math.log1p(-math.exp(lm))
            wrong_a[run] += a < 0
            wrong_x[run] += x < 0
            if n in index:
                llr_at[run, index[n]] = llr
    return llr_at, wrong_a, wrong_x


def simulate_numpy(
    sigma: float, eps: float, runs: int, agents: int, seed: int = 0, amplitude: str = "half", checkpoints=()
):
    """Runs as the vector axis, numpy + scipy.special.log_ndtr. Same returns as `simulate_loop`."""
    from scipy.special import log_ndtr

    rng = np.random.default_rng(seed)
    a_amp = smooth_amplitude(eps, amplitude)
    log_a = math.log(a_amp)
    c = eps * eps * sigma * sigma / 2
    index = {n: i for i, n in enumerate(checkpoints)}
    llr_at = np.zeros((runs, len(index)))
    wrong_a = np.zeros(runs, dtype=np.int64)
    wrong_x = np.zeros(runs, dtype=np.int64)
    llr = np.zeros(runs)

    def log_p_minus(t, theta):
        lt1 = log_ndtr((t - theta) / sigma)
        lt2 = log_a + eps * (theta - t) + c + log_ndtr((t - theta - eps * sigma**2) / sigma)
        lt3 = log_a + eps * (t - theta) + c + log_ndtr((theta - t - eps * sigma**2) / sigma)
        return np.logaddexp(lt1 + np.log1p(-np.exp(lt2 - lt1)), lt3)

    for n in range(1, agents + 1):
        t = -sigma * sigma * llr / 2
        s = 1.0 + sigma * rng.standard_normal(runs)
        a = np.where(s > t, 1.0, -1.0)
        u = a_amp * np.exp(-eps * np.abs(s - t))
        x = np.where(rng.random(runs) < u, -a, a)
        lp = log_p_minus(t, 1.0)
        lm = log_p_minus(t, -1.0)
        inc_minus = lp - lm
        inc_plus = np.log1p(-np.exp(lp)) - np.log1p(-np.exp(lm))
        llr = llr + np.where(x < 0, inc_minus, inc_plus)
        wrong_a += a < 0
        wrong_x += x < 0
        if n in index:
            llr_at[:, index[n]] = llr
    return llr_at, wrong_a, wrong_x
