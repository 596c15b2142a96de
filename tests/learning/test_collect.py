"""Collect Noise Prompt Dataset in an in-process ComfyUI: the NPD it writes, resume after Cancel, shard
splitting, bad input, and the whole loop (collect -> python -m npnet.train -> Golden Noise Loader ->
Golden Noise) on the tiny models."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import npnet
from dev.training_data import train_process
from npnet.learning.dataset import NoisePromptDataset
from tests.learning.conftest import ScriptedReward

PROMPTS = "a red bicycle\na lighthouse at dusk\n# a comment line\n\na bowl of ramen"


@pytest.fixture(scope="module")
def models(tiny):
    return {"model": tiny.tiny_model("sd15"), "clip": tiny.tiny_clip(), "vae": tiny.tiny_vae(4)}


def collect(learning, models, **changes):
    args = dict(
        **models,
        reward=ScriptedReward(),
        prompts=PROMPTS,
        prompt_file="(none)",
        negative_prompt="blurry",
        samples_per_prompt=2,
        seed=100,
        width=128,
        height=192,
        sampler_name="euler",
        scheduler="normal",
        steps=3,
        cfg=4.0,
        cfg_denoise=5.5,
        cfg_inversion=1.0,
        tokens=8,
        dataset_name="npd_test",
        samples_per_shard=2,
        shard_index=0,
        shard_count=1,
        preview_pairs=2,
    )
    args.update(changes)
    return learning.CollectNoisePromptDataset.execute(**args)


def rows(folder: Path) -> dict[int, dict[str, torch.Tensor]]:
    """Every sample in a dataset folder by its index (an index seen twice fails the test)."""
    out = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(path, "pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        for r, index in enumerate(tensors["index"].tolist()):
            assert index not in out, f"sample {index} written twice"
            out[index] = {k: v[r] for k, v in tensors.items()}
    return out


def fresh(comfy_inprocess, name: str) -> Path:
    folder = Path(comfy_inprocess.folder_paths.get_output_directory()) / "npd" / name
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def test_the_dataset_is_npd_with_every_sample_once_and_the_outputs_describe_it(
    comfy_inprocess, learning, models
):
    folder = fresh(comfy_inprocess, "npd_test")
    out = collect(learning, models)
    path, preview, summary = out.result
    assert Path(path) == folder
    data = rows(folder)
    assert sorted(data) == list(range(6))  # 3 prompts x 2 samples, comment and blank lines skipped
    assert len(list(folder.glob("*.safetensors"))) == 3  # a shard every 2 samples
    for index, row in data.items():
        assert row["noise"].shape == (4, 24, 16) and row["embeds"].shape == (8, 32)
        # The stored noise is the seed's own (base seed + index), as KSampler draws it.
        expected = torch.randn((1, 4, 24, 16), generator=torch.manual_seed(100 + index))[0]
        assert torch.equal(row["noise"], expected.half())
        assert not torch.equal(row["golden"], row["noise"])
    dataset = NoisePromptDataset(folder)
    assert len(dataset) == 6 and dataset.config.latent_shape == (4, 24, 16)
    gains = torch.stack([row["gain"] for row in data.values()])
    assert preview.shape == (4, 192, 128, 3)  # two pairs, plain then golden
    assert f"6 in the dataset; {int((gains > 0).sum())} kept at gain > 0" in summary


def test_cancel_then_requeue_holds_every_sample_exactly_once(comfy_inprocess, learning, models):
    import comfy.model_management as mm

    folder = fresh(comfy_inprocess, "npd_cancel")
    # The reward's third call presses Cancel (as a user would, mid-collection, during sample 3).
    with pytest.raises(mm.InterruptProcessingException):
        collect(
            learning,
            models,
            dataset_name="npd_cancel",
            reward=ScriptedReward(cancel_on_call=3),
            samples_per_shard=4,
        )
    mm.interrupt_current_processing(False)
    assert sorted(rows(folder)) == [0, 1, 2]  # the pending samples were written, not lost
    out = collect(learning, models, dataset_name="npd_cancel", samples_per_shard=4)
    assert "3 pairs written now, 6 in the dataset" in out.result[2]
    reference = fresh(comfy_inprocess, "npd_reference")
    collect(learning, models, dataset_name="npd_reference", samples_per_shard=4)
    resumed, whole = rows(folder), rows(reference)
    assert sorted(resumed) == sorted(whole) == list(range(6))
    for index in whole:
        for name in ("noise", "golden", "embeds", "gain"):
            assert torch.equal(resumed[index][name], whole[index][name]), (index, name)


def test_two_shard_indices_together_equal_one_shard_count_one_run(comfy_inprocess, learning, models):
    folder = fresh(comfy_inprocess, "npd_split")
    for index in (1, 0):
        collect(learning, models, dataset_name="npd_split", shard_index=index, shard_count=2)
    names = sorted(p.name for p in folder.glob("*.safetensors"))
    assert names[0].startswith("part-000-of-002") and names[-1].startswith("part-001-of-002")
    split = rows(folder)
    fresh(comfy_inprocess, "npd_whole")
    whole = rows(Path(collect(learning, models, dataset_name="npd_whole").result[0]))
    assert sorted(split) == sorted(whole) == list(range(6))
    for index in whole:
        assert torch.equal(split[index]["golden"], whole[index]["golden"])


def test_other_settings_in_the_same_folder_are_refused_and_nothing_is_touched(
    comfy_inprocess, learning, models
):
    folder = fresh(comfy_inprocess, "npd_guard")
    collect(learning, models, dataset_name="npd_guard")
    before = {p.name: p.read_bytes() for p in folder.glob("*.safetensors")}
    with pytest.raises(ValueError, match="dataset_name.*cfg_denoise differ"):
        collect(learning, models, dataset_name="npd_guard", cfg_denoise=7.0)
    assert {p.name: p.read_bytes() for p in folder.glob("*.safetensors")} == before


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"prompts": "  \n# only a comment"}, "'prompts': no prompts"),
        ({"dataset_name": "../escape"}, "'dataset_name'.*plain folder name"),
        ({"dataset_name": "a/b"}, "'dataset_name'.*plain folder name"),
        ({"width": 100}, "'width'.*multiple of 8"),
        ({"shard_index": 2, "shard_count": 2}, "'shard_index': shard_index must be in 0..1"),
        ({"prompt_file": "prompts.txt"}, "'prompt_file': both prompts and prompt_file"),
        ({"cfg_denoise": float("nan")}, "'cfg_denoise': cfg_denoise must be a finite number"),
        ({"cfg": float("nan")}, "'cfg': cfg must be a finite number"),
    ],
)
def test_bad_input_is_a_node_error_naming_the_input(comfy_inprocess, learning, models, changes, match):
    (Path(comfy_inprocess.folder_paths.get_input_directory()) / "prompts.txt").parent.mkdir(exist_ok=True)
    (Path(comfy_inprocess.folder_paths.get_input_directory()) / "prompts.txt").write_text("a cat\n")
    with pytest.raises(ValueError, match=f"Collect Noise Prompt Dataset.*{match}"):
        collect(learning, models, dataset_name=changes.pop("dataset_name", "npd_bad"), **changes)
    assert not (Path(comfy_inprocess.folder_paths.get_output_directory()) / "escape").exists()


def test_prompts_from_a_jsonl_file_in_the_input_folder(comfy_inprocess, learning, models):
    inputs = Path(comfy_inprocess.folder_paths.get_input_directory())
    inputs.mkdir(exist_ok=True)
    (inputs / "prompts.jsonl").write_text('{"prompt": "a cat"}\n"a dog"\n')
    folder = fresh(comfy_inprocess, "npd_jsonl")
    collect(
        learning,
        models,
        prompts="",
        prompt_file="prompts.jsonl",
        dataset_name="npd_jsonl",
        samples_per_prompt=1,
    )
    with safe_open(next(folder.glob("*.safetensors")), "pt") as f:
        assert '"prompts": ["a cat", "a dog"]' in f.metadata()["npd"]


@pytest.mark.slow
def test_the_whole_loop_collect_train_load_apply(comfy_inprocess, learning, models, tmp_path):
    folder = fresh(comfy_inprocess, "npd_loop")
    collect(learning, models, dataset_name="npd_loop")
    out = tmp_path / "run"
    process = train_process(
        "--data",
        str(folder),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--val-fraction",
        "0.34",
        "--device",
        "cpu",
    )
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    npnet_folder = Path(comfy_inprocess.folder_paths.models_dir) / "golden_noise"
    npnet_folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(out / "npnet.safetensors", npnet_folder / "my_trained.safetensors")

    nodes = importlib.import_module(comfy_inprocess.pack.__name__ + ".nodes.golden_noise")
    host = importlib.import_module(comfy_inprocess.pack.__name__ + ".nodes.comfy_host")
    weights = nodes.GoldenNoiseLoader.execute("my_trained.safetensors").result[0]
    positive = models["clip"].encode_from_tokens_scheduled(models["clip"].tokenize("a red bicycle"))
    golden = nodes.GoldenNoiseApply.execute(
        host.Noise_RandomNoise(5), positive, weights, "first_chunk", 1.0, "strict"
    ).result[0]
    latent = torch.zeros(1, 4, 24, 16)
    got = golden.generate_noise({"samples": latent})
    plain = host.Noise_RandomNoise(5).generate_noise({"samples": latent})
    expected = npnet.golden_noise(npnet.load(out / "npnet.safetensors"), plain, positive[0][0][:, :8].float())
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, plain)


class NamedHPSv21(ScriptedReward):
    """A stand-in carrying the name of the authors' reward: the preset checks the reward by its name."""

    name = "HPSv2.1"


AUTHORS = dict(
    sampler_name="ddim",
    scheduler="ddim_uniform",
    steps=50,
    cfg=5.5,
    cfg_denoise=5.5,
    cfg_inversion=1.0,
    inversion="released",
    negative_prompt="",
    width=1024,
    height=1024,
    last_step="authors",
    prompt_tokens="77",
    preset="authors",
)


ONE_PROMPT = {"prompts": "a red bicycle", "samples_per_prompt": 1, "reward": NamedHPSv21()}


def test_the_authors_preset_collects_with_their_settings_and_records_them(comfy_inprocess, learning, models):
    folder = fresh(comfy_inprocess, "npd_authors")
    collect(learning, models, dataset_name="npd_authors", **ONE_PROMPT, **AUTHORS)
    with safe_open(next(folder.glob("*.safetensors")), "pt") as f:
        meta = json.loads(f.metadata()["npd"])
    assert (meta["inversion"], meta["negative_conditioning"], meta["scheduler"]) == (
        "released",
        "zero",
        "ddim_uniform",
    )
    assert (meta["width"], meta["height"], meta["last_step"], meta["prompt_tokens"]) == (
        1024,
        1024,
        "authors",
        "77",
    )
    assert meta["reward"] == "HPSv2.1"


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"steps": 20}, "'steps': preset 'authors' collects with sampler_name ddim.*steps 20"),
        ({"inversion": "paper"}, "'inversion': preset 'authors'"),
        ({"negative_prompt": "blurry"}, "'negative_prompt': preset 'authors'.*a negative is given"),
        ({"width": 512, "height": 768}, "'width': preset 'authors'.*width 1024, height 1024"),
        ({"last_step": "zero"}, "'last_step': preset 'authors'"),
        ({"prompt_tokens": "all"}, "'prompt_tokens': preset 'authors'"),
        ({"reward": ScriptedReward()}, "'reward': preset 'authors' scores with HPSv2.1.*mean-brightness"),
    ],
)
def test_a_widget_that_disagrees_with_the_preset_is_named(comfy_inprocess, learning, models, changes, match):
    with pytest.raises(ValueError, match=match):
        collect(
            learning, models, dataset_name="npd_preset_bad", **{**AUTHORS, "reward": NamedHPSv21(), **changes}
        )
    assert not (Path(comfy_inprocess.folder_paths.get_output_directory()) / "npd" / "npd_preset_bad").exists()


def test_the_authors_preset_takes_a_zeroed_negative_and_refuses_another(comfy_inprocess, learning, models):
    empty = models["clip"].encode_from_tokens_scheduled(models["clip"].tokenize(""))
    zeroed = [[torch.zeros_like(c), dict(extra)] for c, extra in empty]
    fresh(comfy_inprocess, "npd_authors_zero")
    collect(learning, models, dataset_name="npd_authors_zero", negative=zeroed, **ONE_PROMPT, **AUTHORS)
    with pytest.raises(ValueError, match="'negative_prompt': preset 'authors'.*a negative is given"):
        collect(learning, models, dataset_name="npd_authors_other", negative=empty, **ONE_PROMPT, **AUTHORS)


def test_the_authors_last_step_ends_at_alphas_cumprod_0_and_leaves_that_noise(
    comfy_inprocess, learning, models, rendering
):
    """diffusers' DDIM with set_alpha_to_one=False ends at alphas_cumprod[0]: for SD's schedule
    (beta_start 0.00085) sigma = sqrt(0.00085 / 0.99915) = 0.02917, where ComfyUI ends at 0."""
    sampling = dict(sampler_name="ddim", scheduler="ddim_uniform", steps=50, cfg=5.5)
    ours = rendering.Renderer(
        "t",
        None,
        models["model"],
        models["clip"],
        models["vae"],
        rendering.Sampling("", 64, 64, **sampling, last_step="authors"),
    )
    comfy = rendering.Renderer(
        "t", None, models["model"], models["clip"], models["vae"], rendering.Sampling("", 64, 64, **sampling)
    )
    assert float(comfy.sigmas[-1]) == 0.0
    assert abs(float(ours.authors_sigmas[-1]) - (0.00085 / 0.99915) ** 0.5) < 1e-4
    assert torch.equal(ours.authors_sigmas[:-1], comfy.sigmas[:-1])
    noise = ours.noise([7])
    positive = ours.encode(["a red bicycle"])[0]
    a, b = ours.image(noise, positive, 7), comfy.image(noise, positive, 7)
    assert not torch.allclose(a, b)  # the images differ by the leftover noise
    with pytest.raises(ValueError, match="'last_step'.*karras is not"):
        rendering.Renderer(
            "t",
            None,
            models["model"],
            models["clip"],
            models["vae"],
            rendering.Sampling("", 64, 64, "euler", "karras", 10, 5.5, last_step="authors"),
        )


def test_prompt_tokens_77_encodes_only_the_first_chunk_of_a_long_prompt(models, rendering):
    long = " ".join(["a red bicycle leaning on a wall"] * 20)  # 140 words: two 77-token chunks
    every = rendering.Renderer(
        "t",
        None,
        models["model"],
        models["clip"],
        models["vae"],
        rendering.Sampling("", 64, 64, "euler", "normal", 3, 5.5),
    )
    first = rendering.Renderer(
        "t",
        None,
        models["model"],
        models["clip"],
        models["vae"],
        rendering.Sampling("", 64, 64, "euler", "normal", 3, 5.5, prompt_tokens="77"),
    )
    all_chunks, truncated = every.encode_one(long)[0][0], first.encode_one(long)[0][0]
    assert all_chunks.shape[1] == 154 and truncated.shape[1] == 77
    assert torch.allclose(truncated, all_chunks[:, :77], atol=1e-6)  # the first chunk, encoded the same


def test_a_negative_conditioning_is_used_and_recorded_and_cannot_be_given_twice(
    comfy_inprocess, learning, models
):
    negative = models["clip"].encode_from_tokens_scheduled(models["clip"].tokenize("washed out"))
    with pytest.raises(ValueError, match="'negative_prompt': both negative_prompt and a negative"):
        collect(learning, models, dataset_name="npd_neg", negative=negative)
    folder = fresh(comfy_inprocess, "npd_neg")
    collect(
        learning, models, dataset_name="npd_neg", negative=negative, negative_prompt="", samples_per_prompt=1
    )
    by_text = fresh(comfy_inprocess, "npd_neg_text")
    collect(learning, models, dataset_name="npd_neg_text", negative_prompt="washed out", samples_per_prompt=1)
    connected, typed = rows(folder), rows(by_text)
    assert all(torch.equal(connected[i]["golden"], typed[i]["golden"]) for i in connected)
    with safe_open(next(folder.glob("*.safetensors")), "pt") as f:
        assert '"negative_conditioning_sha256": "' in f.metadata()["npd"]


@pytest.mark.parametrize(
    "batch_size, changes",
    [
        (4, {}),  # 6 samples: a full batch, then a partial one straddling the 2-sample shard boundary
        (3, {"sampler_name": "euler_ancestral"}),  # a sampler that draws its own noise: rendered alone
        # the authors' sampling (its last step and truncation) at a small size, without the preset's 1024
        (8, {**{k: v for k, v in AUTHORS.items() if k not in ("preset", "width", "height")}}),
    ],
)
def test_a_batch_writes_the_samples_of_batch_1(comfy_inprocess, learning, models, batch_size, changes):
    """Batch B against batch 1 sample by sample: the same indexes, noise, token states, golden targets
    and gains (batched arithmetic within float tolerance)."""
    size = {"width": 64, "height": 64} if changes.get("last_step") else {}
    reference = fresh(comfy_inprocess, "npd_batch_ref")
    collect(learning, models, dataset_name="npd_batch_ref", **size, **changes)
    batched = fresh(comfy_inprocess, "npd_batch")
    out = collect(learning, models, dataset_name="npd_batch", batch_size=batch_size, **size, **changes)
    one, many = rows(reference), rows(batched)
    assert sorted(one) == sorted(many) == list(range(6))
    for index in one:
        assert torch.equal(one[index]["noise"], many[index]["noise"]), index
        assert torch.equal(one[index]["embeds"], many[index]["embeds"]), index
        assert (one[index]["golden"].float() - many[index]["golden"].float()).abs().max() <= 1e-3
        assert abs(float(one[index]["gain"]) - float(many[index]["gain"])) <= 1e-3
    assert out.result[1].shape == (4, *out.result[1].shape[1:])  # the preview keeps its two pairs


def test_a_resume_in_the_middle_of_a_batch_makes_only_what_is_missing(comfy_inprocess, learning, models):
    import comfy.model_management as mm

    folder = fresh(comfy_inprocess, "npd_batch_resume")
    with pytest.raises(mm.InterruptProcessingException):
        collect(
            learning,
            models,
            dataset_name="npd_batch_resume",
            reward=ScriptedReward(cancel_on_call=1),  # Cancel pressed while the first batch is scored
            batch_size=3,
            samples_per_shard=64,
        )
    mm.interrupt_current_processing(False)
    assert sorted(rows(folder)) == [0, 1, 2]  # the batch in hand was written
    out = collect(learning, models, dataset_name="npd_batch_resume", batch_size=4)
    assert "3 pairs written now, 6 in the dataset" in out.result[2]
    reference = fresh(comfy_inprocess, "npd_batch_resume_ref")
    collect(learning, models, dataset_name="npd_batch_resume_ref")
    resumed, whole = rows(folder), rows(reference)
    assert sorted(resumed) == list(range(6))
    for index in whole:
        assert abs(float(resumed[index]["gain"]) - float(whole[index]["gain"])) <= 1e-3


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_a_bad_batch_size_is_a_node_error(comfy_inprocess, learning, models, batch_size):
    with pytest.raises(ValueError, match="Collect Noise Prompt Dataset.*'batch_size'"):
        collect(learning, models, dataset_name="npd_bad_batch", batch_size=batch_size)
