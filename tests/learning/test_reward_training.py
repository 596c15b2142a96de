"""npnet.learning.train_on_reward: the public contract on a small differentiable world, the run guards
(nothing deleted before everything is checked, mixed resumes refused) and an exact resume."""

from __future__ import annotations

import pytest
import torch

import npnet
from npnet.golden import Cancelled
from npnet.inputs import InputError
from npnet.learning import train_on_reward
from tests.support.reward_world import SHAPE, world


def run(tmp_path, name="run", **options):
    render, reward, conditions = world()
    options = {"steps": 30, "batch_size": 8, "lr": 3e-3, "latent_shape": SHAPE, **options}
    return train_on_reward(render, reward, conditions, tmp_path / name, **options)


def mean_reward(network, prompts=(0, 1, 2), wrong: bool = False) -> float:
    render, reward, conditions = world()
    noise = torch.randn(64, *SHAPE, generator=torch.Generator().manual_seed(99))
    total = 0.0
    for p in prompts:
        e = conditions[(p + 1) % 3 if wrong else p][1][None]
        start = noise if network is None else npnet.golden_noise(network, noise, e)
        total += float(reward(render(start, None), torch.full((64,), p)).mean())
    return total / len(prompts)


def test_the_trained_file_loads_and_raises_the_reward_for_its_prompt(tmp_path):
    path = run(tmp_path, steps=80, penalty=0.1)
    assert path == tmp_path / "run" / "npnet.safetensors"
    network = npnet.load(path)
    assert network.config.latent_shape == SHAPE and network.config.architecture == "latent"
    plain, golden = mean_reward(None), mean_reward(network)
    assert golden > plain + 0.01, (plain, golden)
    assert mean_reward(network, wrong=True) < golden  # the gain belongs to the prompt it was given
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 80 and '"noise_std"' in lines[-1]


def test_a_run_stopped_by_cancel_resumes_to_the_uninterrupted_weights(tmp_path):
    whole = npnet.load(run(tmp_path, "whole"))
    calls = {"n": 0}

    def cancel_at_step_12():
        calls["n"] += 1
        return calls["n"] == 13

    with pytest.raises(Cancelled):
        run(tmp_path, "resumed", should_cancel=cancel_at_step_12, save_every=5)
    resumed = npnet.load(run(tmp_path, "resumed", resume=True))
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    steps = [line for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 30  # no step logged twice


def test_a_resume_with_other_settings_is_refused_naming_them(tmp_path):
    run(tmp_path, steps=5)
    with pytest.raises(InputError, match="penalty"):
        run(tmp_path, steps=5, penalty=3.0, resume=True)


def test_an_existing_run_is_kept_unless_overwritten_and_a_bad_init_deletes_nothing(tmp_path):
    path = run(tmp_path, steps=5)
    before = path.read_bytes()
    with pytest.raises(InputError, match="already holds a run"):
        run(tmp_path, steps=5)
    with pytest.raises(InputError, match="init"):
        run(tmp_path, steps=5, overwrite=True, init=tmp_path / "missing.safetensors")
    assert path.read_bytes() == before  # checked before anything was deleted
    run(tmp_path, steps=5, overwrite=True, seed=1)
    assert path.read_bytes() != before


def test_an_init_file_is_fine_tuned(tmp_path):
    first = run(tmp_path, "first", steps=10)
    tuned = npnet.load(run(tmp_path, "tuned", steps=10, init=first))
    assert tuned.config.latent_shape == SHAPE


def test_anchor_init_keeps_the_network_near_its_init_where_the_noise_anchor_pulls_it_away(tmp_path):
    """With a penalty that dominates the reward, anchor 'init' holds the golden noise at the init
    network's, while the default anchor pulls it towards the plain noise."""
    first = run(tmp_path, "first", steps=30, penalty=0.0)
    _, _, conditions = world()
    noise = torch.randn(16, *SHAPE, generator=torch.Generator().manual_seed(5))
    e = conditions[0][1][None]

    def golden(path):
        return npnet.golden_noise(npnet.load(path), noise, e)

    start = golden(first)
    kept = golden(run(tmp_path, "kept", steps=20, init=first, anchor="init", penalty=1e3))
    pulled = golden(run(tmp_path, "pulled", steps=20, init=first, penalty=1e3))
    moved_kept, moved_pulled = (kept - start).norm(), (pulled - start).norm()
    assert moved_kept < 0.5 * moved_pulled, (float(moved_kept), float(moved_pulled))
    assert (pulled - noise).norm() < (start - noise).norm()  # the noise anchor pulls towards x


def test_a_resume_with_another_anchor_is_refused(tmp_path):
    first = run(tmp_path, "first", steps=5)
    run(tmp_path, steps=5, init=first)
    with pytest.raises(InputError, match="anchor"):
        run(tmp_path, steps=5, init=first, anchor="init", resume=True)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"latent_shape": (2, 4)}, "latent_shape"),
        ({"steps": 0}, "steps"),
        ({"penalty": float("nan")}, "penalty"),
        ({"seed": 2**64}, "seed"),
        ({"arch": "nope"}, "arch"),
        ({"anchor": "prior"}, "anchor"),
        ({"anchor": "init"}, "anchor"),  # nothing to keep near without an init file
    ],
)
def test_bad_options_are_named(tmp_path, options, match):
    with pytest.raises(InputError, match=match):
        run(tmp_path, **options)
    assert not (tmp_path / "run").exists()


def test_a_reward_that_gives_the_wrong_shape_is_named(tmp_path):
    render, _, conditions = world()
    with pytest.raises(InputError, match="one finite score per image"):
        train_on_reward(
            render, lambda images, idx: images.mean(), conditions, tmp_path / "r", latent_shape=SHAPE, steps=2
        )


def test_conditions_of_different_lengths_are_refused():
    render, reward, conditions = world()
    conditions[1] = ("short", torch.randn(3, 8))
    with pytest.raises(InputError, match=r"conditions\[1\]"):
        train_on_reward(render, reward, conditions, "unused", latent_shape=SHAPE)


def test_two_processes_with_torchrun_reach_the_single_process_weights(tmp_path):
    """Each process renders its half of every global batch; the gradients are averaged across
    processes, so the steps are those of one process."""
    import json
    import os
    import subprocess
    import sys

    from tests.support import REPO_ROOT

    one = npnet.load(run(tmp_path, "one", steps=12))
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "tests.support.reward_world", str(tmp_path / "two"), json.dumps({"steps": 12})],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    two = npnet.load(tmp_path / "two" / "npnet.safetensors")
    for (name, a), b in zip(one.state_dict().items(), two.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), name
