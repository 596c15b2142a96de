"""Evaluate Golden Noise in an in-process ComfyUI: numbers that equal the CSV it writes, determinism, the
golden noise identical to Golden Noise's, and the t interval against SciPy's quantiles."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dev.checkpoints import write_tiny_checkpoint
from npnet.learning import evaluation
from tests.learning.conftest import ScriptedReward


@pytest.fixture(scope="module")
def setup(comfy_inprocess, tiny, tmp_path_factory):
    model, clip, vae = tiny.tiny_model("sd15"), tiny.tiny_clip(), tiny.tiny_vae(4)
    write_tiny_checkpoint(
        Path(comfy_inprocess.folder_paths.models_dir) / "golden_noise" / "eval_net.safetensors"
    )
    nodes = importlib.import_module(comfy_inprocess.pack.__name__ + ".nodes.golden_noise")
    weights = nodes.GoldenNoiseLoader.execute("eval_net.safetensors").result[0]
    return {"model": model, "clip": clip, "vae": vae, "npnet": weights}


def evaluate(learning, setup, **changes):
    args = dict(
        **setup,
        reward=ScriptedReward(),
        prompts="a red bicycle\na bowl of ramen",
        prompt_file="(none)",
        negative_prompt="",
        seed=40,
        seeds=3,
        width=128,
        height=128,
        sampler_name="euler",
        scheduler="normal",
        steps=3,
        cfg=4.0,
        token_policy="first_chunk",
        strength=1.0,
        resolution_mode="strict",
        filename_prefix="eval/test",
    )
    args.update(changes)
    return learning.EvaluateGoldenNoise.execute(**args)


def test_reported_numbers_equal_the_written_csv_and_repeat_exactly(comfy_inprocess, learning, setup):
    first = evaluate(learning, setup)
    chart, report, csv_name, json_name, images = first.result
    out = Path(comfy_inprocess.folder_paths.get_output_directory())
    pairs = evaluation.read_csv((out / csv_name).read_text())
    assert [(p.prompt, p.seed) for p in pairs] == [
        (p, s) for p in ("a red bicycle", "a bowl of ramen") for s in (40, 41, 42)
    ]
    d = np.array([p.golden - p.plain for p in pairs])
    assert f"mean difference {d.mean():+.4g}" in report
    wins = ((d > 0).sum() + 0.5 * (d == 0).sum()) / len(d)
    assert f"golden wins {wins:.1%}" in report
    summary = json.loads((out / json_name).read_text())["summary"]
    assert summary["mean_difference"] == pytest.approx(d.mean(), rel=1e-12)
    assert summary["win_rate"] == pytest.approx(wins)
    assert images.shape == (12, 128, 128, 3) and chart.shape[-1] == 3
    # Scores are those of the images returned: plain first, golden second, for every pair.
    brightness = images.float().mean(dim=(1, 2, 3))
    assert np.allclose(d, (brightness[1::2] - brightness[0::2]).numpy(), atol=1e-6)

    second = evaluate(learning, setup)
    assert second.result[1] == report
    assert torch.equal(second.result[0], chart) and torch.equal(second.result[4], images)
    assert second.result[2] != csv_name  # a new file, the first one kept
    assert (out / csv_name).read_text() == (out / second.result[2]).read_text()


def test_the_golden_images_start_from_the_golden_noise_nodes_noise(comfy_inprocess, learning, setup):
    """strength 0 means plain noise: both images of every pair are then the same."""
    images = evaluate(learning, setup, strength=0.0, seeds=1).result[4]
    assert torch.equal(images[0::2], images[1::2])


def test_a_latent_the_network_was_not_trained_for_is_an_error_on_the_node(comfy_inprocess, learning, setup):
    with pytest.raises(
        ValueError, match="Evaluate Golden Noise.*input .resolution_mode.*only accept 16x16 latents"
    ):
        evaluate(learning, setup, width=192)


@pytest.mark.parametrize("dof", [1, 2, 5, 29, 200])
def test_student_t_quantile_against_scipy(dof):
    from scipy import stats

    assert evaluation.student_t_quantile(0.975, dof) == pytest.approx(stats.t.ppf(0.975, dof), rel=1e-6)


def test_summary_of_a_single_pair_has_no_interval():
    s = evaluation.summarise([evaluation.PairScore("p", 1, 0.2, 0.5)])
    assert s.ci95_low is None and s.win_rate == 1.0 and math.isclose(s.mean_difference, 0.3)


class NaNOnCall:
    """A reward that scores NaN from its n-th call on (one call per pair)."""

    name = "broken"

    def __init__(self, bad_call: int):
        self.calls, self.bad_call = 0, bad_call

    def score(self, images, prompts):
        self.calls += 1
        value = float("nan") if self.calls >= self.bad_call else float(self.calls)
        return torch.tensor([0.0, value])


def written(out: Path, name: str) -> tuple[list, dict]:
    return evaluation.read_csv((out / name).read_text()), json.loads(
        (out / name.replace(".csv", ".json")).read_text()
    )


def test_a_nan_score_stops_the_run_and_keeps_the_pairs_scored_before_it(comfy_inprocess, learning, setup):
    out = Path(comfy_inprocess.folder_paths.get_output_directory())
    before = set(out.rglob("*.csv"))
    with pytest.raises(
        ValueError, match="Evaluate Golden Noise.*'reward'.*NaN or Inf.*2 pairs scored before"
    ):
        evaluate(learning, setup, reward=NaNOnCall(bad_call=3), seeds=2, filename_prefix="eval/nan")
    (csv_file,) = set(out.rglob("*.csv")) - before
    rows, document = written(out, str(csv_file.relative_to(out)))
    assert [(r.prompt, r.seed, r.golden) for r in rows] == [
        ("a red bicycle", 40, 1.0),
        ("a red bicycle", 41, 2.0),
    ]
    assert document["complete"] is False and "NaN" in document["stopped"]
    assert document["summary"]["pairs"] == 2  # the summary of what was scored, marked incomplete


def test_cancel_keeps_the_scored_rows(comfy_inprocess, learning, setup):
    import comfy.model_management

    out = Path(comfy_inprocess.folder_paths.get_output_directory())
    before = set(out.rglob("*.csv"))
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            evaluate(learning, setup, reward=ScriptedReward(cancel_on_call=2), filename_prefix="eval/cancel")
    finally:
        comfy.model_management.interrupt_current_processing(False)
    (csv_file,) = set(out.rglob("*.csv")) - before
    rows, document = written(out, str(csv_file.relative_to(out)))
    assert len(rows) == 2 and document["complete"] is False and "cancelled" in document["stopped"]


@pytest.mark.parametrize("prefix", ["../outside", "/etc/evaluation", "a/../../b", "", "dir/"])
def test_a_bad_filename_prefix_is_refused_before_anything_is_rendered(
    comfy_inprocess, learning, setup, prefix
):
    reward = ScriptedReward()
    with pytest.raises(ValueError, match="Evaluate Golden Noise.*'filename_prefix'") as error:
        evaluate(learning, setup, reward=reward, filename_prefix=prefix)
    assert reward.calls == 0 and "Traceback" not in str(error.value)


def test_the_image_output_keeps_only_the_preview_pairs(comfy_inprocess, learning, setup):
    result = evaluate(learning, setup, preview_pairs=2, filename_prefix="eval/preview").result
    out = Path(comfy_inprocess.folder_paths.get_output_directory())
    assert result[4].shape[0] == 4  # 2 pairs of the 6 scored
    assert len(evaluation.read_csv((out / result[2]).read_text())) == 6


def test_the_bootstrap_interval_widens_when_a_prompt_decides_the_score():
    """Pairs of one prompt share its effect: resampling single pairs would understate the uncertainty. With
    a large per-prompt effect the prompt-cluster bootstrap must be wider than the pair-wise t interval;
    with one pair per prompt it resamples pairs and agrees with the t interval."""
    rng = np.random.default_rng(3)
    effects = rng.normal(0.0, 1.0, size=8)  # 8 prompts, 25 seeds each
    clustered = [
        evaluation.PairScore(f"p{k}", seed, 0.0, float(effects[k] + rng.normal(0, 0.1)))
        for k in range(8)
        for seed in range(25)
    ]
    s = evaluation.summarise(clustered)
    assert s.bootstrap_unit == "prompt"
    assert (s.boot95_high - s.boot95_low) > 3 * (s.ci95_high - s.ci95_low)
    assert s.boot95_low < s.mean_difference < s.boot95_high
    independent = [evaluation.PairScore(f"p{k}", 0, 0.0, float(rng.normal(0.2, 1.0))) for k in range(400)]
    t = evaluation.summarise(independent)
    assert t.bootstrap_unit == "pair"
    assert abs((t.boot95_high - t.boot95_low) / (t.ci95_high - t.ci95_low) - 1) < 0.1
    assert evaluation.summarise(independent) == t  # seeded


def test_the_json_holds_a_per_prompt_table(tmp_path):
    files = evaluation.ResultFiles(tmp_path, "run", {})
    for prompt, plain, golden in [("a", 0.1, 0.3), ("a", 0.2, 0.1), ("b", 0.5, 0.9)]:
        files.add(evaluation.PairScore(prompt, 1, plain, golden))
    files.close()
    table = json.loads((tmp_path / "run.json").read_text())["prompts"]
    assert [(r["prompt"], r["pairs"], r["win_rate"]) for r in table] == [("a", 2, 0.5), ("b", 1, 1.0)]
    assert table[0]["mean_difference"] == pytest.approx(0.05)


class DarknessReward:
    """A second reward with another rule (the darker, the better), counting its calls."""

    name = "darkness/v1"

    def __init__(self):
        self.calls = 0

    def score(self, images, prompts):
        self.calls += 1
        return 1 - images.float().mean(dim=(1, 2, 3))


def test_several_rewards_score_the_same_images_once_rendered(comfy_inprocess, learning, setup):
    first, second = ScriptedReward(), DarknessReward()
    result = evaluate(learning, setup, reward=first, reward_2=second, filename_prefix="eval/two").result
    out = Path(comfy_inprocess.folder_paths.get_output_directory())
    rows = evaluation.read_csv((out / result[2]).read_text())
    (second_csv,) = (out / "eval").glob("two_*_darkness_v1_.csv")
    second_rows = evaluation.read_csv(second_csv.read_text())
    assert first.calls == second.calls == len(rows) == len(second_rows) == 6  # one scoring per pair each
    # the same images: brightness b gives darkness 1 - b, so the differences are opposite
    assert np.allclose([r.difference for r in rows], [-r.difference for r in second_rows], atol=1e-6)
    assert "scored by mean-brightness" in result[1] and "scored by darkness/v1" in result[1]


@pytest.mark.parametrize("batch_size", [4, 8])
def test_a_batch_scores_what_batch_1_scores(comfy_inprocess, learning, setup, batch_size):
    out = Path(comfy_inprocess.folder_paths.get_output_directory())
    one = evaluation.read_csv(
        (out / evaluate(learning, setup, filename_prefix="eval/b1").result[2]).read_text()
    )
    result = evaluate(learning, setup, filename_prefix=f"eval/b{batch_size}", batch_size=batch_size).result
    many = evaluation.read_csv((out / result[2]).read_text())
    assert [(r.prompt, r.seed) for r in many] == [(r.prompt, r.seed) for r in one]  # the same rows, in order
    assert np.allclose([r.plain for r in many], [r.plain for r in one], atol=1e-4)
    assert np.allclose([r.golden for r in many], [r.golden for r in one], atol=1e-4)
    assert result[4].shape[0] == 12  # preview_pairs 8 of 6 pairs scored: every pair, plain and golden


def test_a_nan_in_the_middle_of_a_batch_keeps_the_rows_before_it(comfy_inprocess, learning, setup):
    class NaNAtImage:
        name = "broken"

        def score(self, images, prompts):
            scores = images.float().mean(dim=(1, 2, 3))
            scores[2] = float("nan")  # the third job's plain image, in a batch of 4
            return scores

    out = Path(comfy_inprocess.folder_paths.get_output_directory())
    before = set(out.rglob("*.csv"))
    with pytest.raises(ValueError, match="'reward'.*seed 42.*2 pairs scored before"):
        evaluate(learning, setup, reward=NaNAtImage(), batch_size=4, filename_prefix="eval/nan_batch")
    (csv_file,) = set(out.rglob("*.csv")) - before
    assert [r.seed for r in evaluation.read_csv(csv_file.read_text())] == [40, 41]


@pytest.mark.parametrize(
    "returned, shape",
    [
        (lambda n: torch.zeros(n - 1), f"\\({11}\\,?\\)"),  # one value short
        (lambda n: torch.zeros(n, 1), "\\(12, 1\\)"),
        (lambda n: "high", "str"),
    ],
)
def test_a_reward_that_returns_the_wrong_shape_is_named(comfy_inprocess, learning, setup, returned, shape):
    class Odd:
        name = "odd"

        def score(self, images, prompts):
            return returned(len(images))

    with pytest.raises(ValueError, match=f"'reward'.*one number per image.*got {shape}"):
        evaluate(learning, setup, reward=Odd(), batch_size=6, filename_prefix="eval/odd")


def test_the_same_reward_model_twice_writes_files_of_its_own(comfy_inprocess, learning, setup):
    """reward_2 and reward_3 from one loader (one name): two files each, no name clash, no orphan."""
    out = Path(comfy_inprocess.folder_paths.get_output_directory())
    before = set(out.rglob("*.csv"))
    result = evaluate(
        learning, setup, reward_2=DarknessReward(), reward_3=DarknessReward(), filename_prefix="eval/dup"
    ).result
    written = sorted(p.name for p in set(out.rglob("*.csv")) - before)
    assert len(written) == 3 and any(n.endswith("_darkness_v1_reward_3_.csv") for n in written), written
    for name in written:
        rows, document = written_files(out / "eval", name)
        assert len(rows) == 6 and document["complete"] is True
    assert result[1].count("scored by darkness/v1") == 2


def written_files(folder: Path, name: str):
    return evaluation.read_csv((folder / name).read_text()), json.loads(
        (folder / name.replace(".csv", ".json")).read_text()
    )


class CancellingClip:
    """The tiny CLIP, with Cancel pressed while it encodes (ComfyUI raises its interrupt from inside)."""

    def __init__(self, clip):
        self.clip = clip

    def tokenize(self, text):
        return self.clip.tokenize(text)

    def encode_from_tokens_scheduled(self, tokens):
        import comfy.model_management as mm

        mm.interrupt_current_processing(True)
        mm.throw_exception_if_processing_interrupted()


def test_a_cancel_inside_the_text_encoder_is_recorded_as_a_cancel(comfy_inprocess, learning, setup):
    import comfy.model_management as mm

    out = Path(comfy_inprocess.folder_paths.get_output_directory())
    before = set(out.rglob("*.json"))
    try:
        with pytest.raises(mm.InterruptProcessingException):
            evaluate(
                learning, {**setup, "clip": CancellingClip(setup["clip"])}, filename_prefix="eval/encoder"
            )
    finally:
        mm.interrupt_current_processing(False)
    (json_file,) = set(out.rglob("*.json")) - before
    document = json.loads(json_file.read_text())
    assert document["complete"] is False and document["stopped"].startswith("cancelled"), document["stopped"]
