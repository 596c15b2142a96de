"""The learning benchmark at CI size (dev/learning_benchmark.py): a network trained by the pack, with
`python -m npnet.train` defaults, must improve held-out seeds' images by a margin over its controls."""

from __future__ import annotations

import pytest

from dev import learning_benchmark

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return learning_benchmark.run(
        tmp_path_factory.mktemp("learning"), learning_benchmark.CI, log=lambda s: None
    )


def row(result, name, prompts="training"):
    return next(r for r in result["rows"] if r["name"] == name and r["prompts"] == prompts)


def test_the_collected_targets_carry_a_gain(result):
    oracle = row(result, "x'_T oracle (re-denoise target)")
    assert oracle["boot_low"] > 0 and oracle["win_rate"] > 0.6


def test_the_trained_network_beats_its_controls_on_held_out_seeds(result):
    trained = row(result, "trained network")
    shuffled = row(result, "trained on shuffled prompts")
    assert trained["boot_low"] > 0, trained
    assert trained["boot_low"] > shuffled["boot_high"], (trained, shuffled)
    assert trained["boot_low"] > row(result, "untrained network")["boot_high"]
    assert trained["boot_low"] > row(result, "plain noise at the golden norm")["boot_high"]
    assert row(result, "trained network, wrong prompt")["mean_difference"] < trained["mean_difference"]
    assert row(result, "trained network, wrong prompt")["boot_high"] < trained["boot_low"]


def test_the_defaults_trained_in_the_documented_way(result):
    run = result["trainings"]["latent"]
    assert run["val_loss"] < 0.5 * run["identity_val_loss"]  # it learned the targets, not the identity
    shuffled = result["trainings"]["shuffled"]
    assert shuffled["val_loss"] > run["val_loss"] * 3  # without the prompt the targets are not learnable
