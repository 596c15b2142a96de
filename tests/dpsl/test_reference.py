"""The two signal-level baselines agree in law: the Python loop against the numpy version."""

from __future__ import annotations

import numpy as np

from dev.dpsl_reference import simulate_loop, simulate_numpy


def test_loop_returns_the_llr_at_every_checkpoint_and_agrees_with_numpy_in_law():
    # simulate_loop used to overwrite its checkpoint array with a float: it raised with checkpoints.
    checkpoints = (1, 5, 20)
    loop, loop_a, loop_x = simulate_loop(1.0, 1.0, runs=400, agents=20, seed=1, checkpoints=checkpoints)
    vec, vec_a, vec_x = simulate_numpy(1.0, 1.0, runs=4000, agents=20, seed=2, checkpoints=checkpoints)
    assert loop.shape == (400, 3) and vec.shape == (4000, 3)
    assert np.isfinite(loop).all() and (loop[:, 0] != 0).all()
    for col in range(3):
        se = np.hypot(loop[:, col].std() / np.sqrt(400), vec[:, col].std() / np.sqrt(4000))
        assert abs(loop[:, col].mean() - vec[:, col].mean()) < 4.5 * se, col
    for a, b in ((loop_a, vec_a), (loop_x, vec_x)):
        se = np.hypot(a.std() / np.sqrt(400), b.std() / np.sqrt(4000))
        assert abs(a.mean() - b.mean()) < 4.5 * se
