"""Value lists and series sweeps: the parser the CLI and the nodes share, progress over a whole series."""

from __future__ import annotations

import pytest

from dpsl import Scenario, sweep
from dpsl.sweep import parse_values, sweep_series


def test_grid_parsing():
    assert parse_values("0.1, 0.5,1", "g") == [0.1, 0.5, 1.0]
    assert parse_values("linspace(0.5, 1, 3)", "g") == [0.5, 0.75, 1.0]
    assert parse_values("1; 2", "checkpoints", int) == [1, 2]
    for bad in ("", " , ", "a, b", "linspace(1, 2)"):
        with pytest.raises(ValueError, match="g"):
            parse_values(bad, "g")
    with pytest.raises(ValueError, match="--checkpoints must be integers"):
        parse_values("1.5", "--checkpoints", int)


def test_a_series_reports_progress_over_all_its_sweeps_and_matches_single_sweeps():
    bases = [Scenario(signal="binary", mechanism="rr", p=p, agents=50, runs=40) for p in (0.6, 0.8)]
    seen = []
    series = sweep_series(
        bases, "epsilon", [0.5, 1.0], progress=lambda done, total: seen.append((done, total))
    )
    total = 2 * 2 * 50 * 40
    assert seen[-1] == (total, total)
    assert all(t == total for _, t in seen) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    for base, got in zip(bases, series, strict=True):
        alone = sweep(base, "epsilon", [0.5, 1.0])
        for a, b in zip(alone.results, got.results, strict=True):
            assert (a.llr_final == b.llr_final).all()


@pytest.mark.parametrize("text", ["linspace(0.1, 1, 2000000)", ",".join(["1"] * 1001)])
def test_a_grid_is_capped_before_any_memory_is_taken(text):
    with pytest.raises(ValueError, match="at most 1000"):
        parse_values(text, "epsilon_grid")


def test_cancel_is_honoured_between_the_values_of_a_grid():
    from dpsl import SimulationCancelled

    polls = []

    def cancel():
        polls.append(1)
        return len(polls) > 3

    with pytest.raises(SimulationCancelled):
        sweep(Scenario(epsilon=1.0, agents=2, runs=2), "epsilon", [0.5] * 200, should_cancel=cancel)
    assert len(polls) <= 5
