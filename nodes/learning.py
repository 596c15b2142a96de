"""The learning-framework nodes: a reward model, noise prompt dataset collection, golden-noise evaluation.

Each node translates widgets into the host-free `npnet.collection` / `npnet.evaluation` calls and the
answers back into ComfyUI types; the host work (encode, sample, decode) is `rendering.Renderer`, the
scores are `reward_models.ClipReward.score`. Node ids are a public contract: never rename one.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path

import torch

from ..npnet import Cancelled, InputError, collection, evaluation
from ..npnet.conditioning import first_tokens
from .comfy_host import MENU, Noise_RandomNoise, folder_paths, io, progress_and_cancel, ui
from .errors import GoldenNoiseError
from .golden_noise import golden_inputs, node_id, settings
from .noise_objects import GoldenNoise, Origin
from .rendering import Renderer, sampler_inputs
from .reward_models import choices as reward_choices
from .reward_models import load_reward

CATEGORY = f"{MENU}/dataset"
REWARD = io.Custom("REWARD_MODEL")
NO_FILE = "(none)"
PROMPT_SUFFIXES = (".txt", ".jsonl")


@contextmanager
def on_node(node: str, nid: str | None):
    """npnet's InputError, raised under the node's name and the input the user can change."""
    try:
        yield
    except InputError as error:
        raise GoldenNoiseError(node, nid, error.input, str(error)) from error


def prompt_files() -> list[str]:
    root = Path(folder_paths.get_input_directory())
    found = (
        sorted(p.name for p in root.glob("*") if p.suffix.lower() in PROMPT_SUFFIXES) if root.is_dir() else []
    )
    return [NO_FILE, *found]


def read_prompts(node: str, nid: str | None, prompts: str, prompt_file: str) -> list[str]:
    """The prompt list from the text box or the input-folder file (not both: one source is unambiguous)."""
    typed = collection.read_prompts(prompts)
    if prompt_file == NO_FILE:
        if not typed:
            raise GoldenNoiseError(
                node, nid, "prompts", "no prompts: write one prompt per line, or pick a prompt_file."
            )
        return typed
    if typed:
        raise GoldenNoiseError(
            node,
            nid,
            "prompt_file",
            "both prompts and prompt_file are set; clear the prompts box or pick (none).",
        )
    with on_node(node, nid):
        read = collection.read_prompt_file(Path(folder_paths.get_input_directory()) / prompt_file)
    if not read:
        raise GoldenNoiseError(node, nid, "prompt_file", f"{prompt_file} holds no prompts.")
    return read


def prompt_inputs() -> list:
    return [
        io.String.Input(
            "prompts",
            multiline=True,
            default="",
            tooltip="One prompt per line (blank lines and lines starting with # are skipped). "
            "Leave empty to use prompt_file.",
        ),
        io.Combo.Input(
            "prompt_file",
            options=prompt_files(),
            default=NO_FILE,
            tooltip='A .txt (one prompt per line) or .jsonl ({"prompt": ...} per line) file in '
            "ComfyUI's input folder, instead of the prompts box.",
        ),
        io.String.Input(
            "negative_prompt",
            multiline=True,
            default="",
            tooltip="The negative prompt of every rendered image.",
        ),
    ]


def size_inputs() -> list:
    return [
        io.Int.Input(
            "width",
            default=1024,
            min=16,
            max=16384,
            step=8,
            tooltip="Image width in pixels: any size the model samples (a multiple of the VAE's 8).",
        ),
        io.Int.Input("height", default=1024, min=16, max=16384, step=8, tooltip="Image height in pixels."),
    ]


class RewardModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GoldenNoiseRewardLoader",
            display_name="Reward Model Loader",
            category=CATEGORY,
            description="A human-preference reward model (PickScore, HPSv2, or a CLIP folder in "
            "models/reward_models) that scores images against their prompt.",
            inputs=[
                io.Combo.Input(
                    "reward",
                    options=reward_choices(),
                    default="PickScore",
                    tooltip="PickScore or HPSv2 (downloaded once into models/reward_models), or a "
                    "transformers CLIP folder of your own there.",
                ),
            ],
            outputs=[
                REWARD.Output(
                    display_name="reward",
                    tooltip="For Collect Noise Prompt Dataset and Evaluate Golden Noise.",
                )
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, reward) -> io.NodeOutput:
        return io.NodeOutput(load_reward(reward, node_id(cls)))


class CollectNoisePromptDataset(io.ComfyNode):
    NAME = "Collect Noise Prompt Dataset"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GoldenNoiseCollectDataset",
            display_name=cls.NAME,
            category=CATEGORY,
            description="Builds a noise prompt dataset for training NPNet with your own model: for every prompt "
            "and seed, re-denoise sampling turns the noise into its golden target, both are rendered "
            "and scored, and the pair is written to output/npd/<dataset_name>/. Re-queue to resume.",
            inputs=[
                io.Model.Input(
                    "model", tooltip="The diffusion model to collect for (any model ComfyUI samples)."
                ),
                io.Clip.Input(
                    "clip", tooltip="Its text encoder; the positive prompt's token states are stored."
                ),
                io.Vae.Input("vae", tooltip="Its VAE, to decode the images the reward scores."),
                REWARD.Input("reward", tooltip="From Reward Model Loader."),
                *prompt_inputs(),
                io.Int.Input(
                    "samples_per_prompt", default=1, min=1, max=100000, tooltip="Noises (seeds) per prompt."
                ),
                io.Int.Input(
                    "seed",
                    default=0,
                    min=0,
                    max=0xFFFFFFFFFFFF,
                    tooltip="Base seed: sample g uses seed + g, so a dataset is reproducible.",
                ),
                *size_inputs(),
                *sampler_inputs(),
                io.Float.Input(
                    "cfg_denoise",
                    default=5.5,
                    min=0.0,
                    max=100.0,
                    step=0.1,
                    round=0.01,
                    tooltip="Guidance of the re-denoise step (paper: 5.5).",
                ),
                io.Float.Input(
                    "cfg_inversion",
                    default=1.0,
                    min=0.0,
                    max=100.0,
                    step=0.1,
                    round=0.01,
                    tooltip="Guidance of the inversion step (paper: 1.0, the conditional prediction).",
                ),
                io.Int.Input(
                    "tokens",
                    default=77,
                    min=1,
                    max=4096,
                    tooltip="Prompt tokens stored per sample (first ones; padded if shorter): 77 for "
                    "SD1.5/SDXL, the encoder's fixed length for T5 models.",
                ),
                io.String.Input(
                    "dataset_name",
                    default="my_npd",
                    tooltip="Folder under output/npd/. The same name and settings resume a dataset.",
                ),
                io.Int.Input(
                    "samples_per_shard",
                    default=64,
                    min=1,
                    max=100000,
                    tooltip="Samples per shard file: a shard is written every this many samples.",
                ),
                io.Int.Input(
                    "shard_index",
                    default=0,
                    min=0,
                    max=9999,
                    tooltip="This server's share: sample g is made here when g % shard_count == "
                    "shard_index. Give each ComfyUI server its own index.",
                ),
                io.Int.Input(
                    "shard_count",
                    default=1,
                    min=1,
                    max=10000,
                    tooltip="How many servers split the dataset (1: this one makes every sample).",
                ),
                io.Int.Input(
                    "preview_pairs",
                    default=4,
                    min=0,
                    max=64,
                    tooltip="Plain/golden image pairs shown in the preview output.",
                ),
            ],
            outputs=[
                io.String.Output(
                    display_name="dataset", tooltip="The dataset folder, for python -m npnet.train."
                ),
                io.Image.Output(display_name="preview", tooltip="Plain and golden images, alternating."),
                io.String.Output(
                    display_name="summary", tooltip="Pairs written, kept at gain > 0, mean gain."
                ),
            ],
            hidden=[io.Hidden.unique_id],
            is_output_node=True,
        )

    @classmethod
    def fingerprint_inputs(cls, dataset_name="", **kwargs):
        # Re-run whenever the folder changed (shards deleted or added), not only when widgets did.
        folder = Path(folder_paths.get_output_directory()) / "npd" / str(dataset_name)
        return (
            sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*.safetensors"))
            if folder.is_dir()
            else []
        )

    @classmethod
    def execute(
        cls,
        model,
        clip,
        vae,
        reward,
        prompts,
        prompt_file,
        negative_prompt,
        samples_per_prompt,
        seed,
        width,
        height,
        sampler_name,
        scheduler,
        steps,
        cfg,
        cfg_denoise,
        cfg_inversion,
        tokens,
        dataset_name,
        samples_per_shard,
        shard_index,
        shard_count,
        preview_pairs,
    ) -> io.NodeOutput:
        nid = node_id(cls)
        prompt_list = read_prompts(cls.NAME, nid, prompts, prompt_file)
        for widget, value in (("cfg_denoise", cfg_denoise), ("cfg_inversion", cfg_inversion)):
            if not math.isfinite(value):
                raise GoldenNoiseError(
                    cls.NAME, nid, widget, f"{widget} must be a finite number, got {value!r}."
                )
        with on_node(cls.NAME, nid):
            name = collection.check_dataset_name(dataset_name)
            samples = collection.plan(prompt_list, samples_per_prompt, seed, shard_index, shard_count)
        sampling = (sampler_name, scheduler, steps, cfg)
        renderer = Renderer(cls.NAME, nid, model, clip, vae, negative_prompt, width, height, *sampling)
        folder = Path(folder_paths.get_output_directory()) / "npd" / name
        dataset_settings = {
            "latent_shape": list(renderer.latent.shape[1:]),
            "width": width,
            "height": height,
            "sampler": sampler_name,
            "scheduler": scheduler,
            "steps": steps,
            "cfg": cfg,
            "cfg_denoise": cfg_denoise,
            "cfg_inversion": cfg_inversion,
            "tokens": tokens,
            "negative_prompt": negative_prompt,
            "reward": reward.name,
            "base_seed": seed,
            "samples_per_prompt": samples_per_prompt,
            "prompt_count": len(prompt_list),
            "prompts_sha256": collection.prompts_fingerprint(prompt_list),
        }
        with on_node(cls.NAME, nid):
            writer = collection.DatasetWriter(
                folder, dataset_settings, shard_index, shard_count, samples_per_shard
            )
        previews: list[torch.Tensor] = []

        def make(sample: collection.Sample) -> collection.Pair:
            positive = renderer.encode(sample.prompt)
            noise = renderer.noise(sample.seed)
            golden = renderer.golden_target(noise, positive, cfg_denoise, cfg_inversion, sample.seed)
            images = torch.cat(
                [renderer.image(noise, positive, sample.seed), renderer.image(golden, positive, sample.seed)]
            )
            plain_score, golden_score = reward.score(images, [sample.prompt] * 2).tolist()
            embeds = first_tokens(positive[0][0].float().cpu(), tokens)
            return collection.Pair(noise.float(), golden.float(), embeds, golden_score - plain_score, images)

        def keep_preview(sample, pair) -> None:
            if len(previews) < 2 * preview_pairs:
                previews.extend(pair.images)

        with progress_and_cancel(max(len(samples), 1), nid) as (progress, cancel):
            written = collection.collect(samples, make, writer, progress, cancel, keep_preview)
        text = collection.summary(folder, written)
        preview = torch.stack(previews) if previews else torch.zeros([1, 64, 64, 3])
        return io.NodeOutput(str(folder), preview, text, ui=ui.PreviewText(text))


class EvaluateGoldenNoise(io.ComfyNode):
    NAME = "Evaluate Golden Noise"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GoldenNoiseEvaluate",
            display_name=cls.NAME,
            category=CATEGORY,
            description="Renders every prompt x seed from plain and from golden noise (same seed) with your "
            "checkpoint, scores both with the reward model, and reports the paired difference: "
            "a chart, a CSV/JSON table in the output folder, and the image pairs.",
            inputs=[
                io.Model.Input("model", tooltip="The checkpoint to evaluate on."),
                io.Clip.Input("clip", tooltip="Its text encoder."),
                io.Vae.Input("vae", tooltip="Its VAE."),
                REWARD.Input("reward", tooltip="From Reward Model Loader."),
                *prompt_inputs(),
                io.Int.Input(
                    "seed",
                    default=0,
                    min=0,
                    max=0xFFFFFFFFFFFF,
                    tooltip="First seed; each prompt is rendered with seeds seed .. seed + seeds - 1.",
                ),
                io.Int.Input("seeds", default=4, min=1, max=10000, tooltip="Seeds per prompt."),
                *size_inputs(),
                *sampler_inputs(),
                *golden_inputs(),
                io.String.Input(
                    "filename_prefix",
                    default="golden_noise/evaluation",
                    tooltip="Where the CSV and JSON go, relative to ComfyUI's output folder.",
                ),
            ],
            outputs=[
                io.Image.Output(
                    display_name="chart", tooltip="Paired score differences, mean, 95% interval."
                ),
                io.String.Output(display_name="report", tooltip="The result in one paragraph."),
                io.String.Output(display_name="csv_file", tooltip="One row per prompt x seed."),
                io.String.Output(display_name="json_file", tooltip="Settings, summary and rows."),
                io.Image.Output(display_name="images", tooltip="Plain and golden images, alternating."),
            ],
            hidden=[io.Hidden.unique_id],
            is_output_node=True,
        )

    @classmethod
    def execute(
        cls,
        model,
        clip,
        vae,
        reward,
        prompts,
        prompt_file,
        negative_prompt,
        seed,
        seeds,
        width,
        height,
        sampler_name,
        scheduler,
        steps,
        cfg,
        npnet,
        token_policy,
        strength,
        resolution_mode,
        filename_prefix,
    ) -> io.NodeOutput:
        nid = node_id(cls)
        prompt_list = read_prompts(cls.NAME, nid, prompts, prompt_file)
        sampling = (sampler_name, scheduler, steps, cfg)
        renderer = Renderer(cls.NAME, nid, model, clip, vae, negative_prompt, width, height, *sampling)
        golden_settings = settings(token_policy, strength, resolution_mode)
        origin = Origin(f"{cls.NAME} ({cls.GET_SCHEMA().node_id})", nid)
        jobs = [(prompt, seed + k) for prompt in prompt_list for k in range(seeds)]
        scores, images = [], []
        with progress_and_cancel(len(jobs), nid) as (progress, cancel):
            encoded = {}
            for number, (prompt, job_seed) in enumerate(jobs):
                if cancel():
                    raise Cancelled("cancelled")
                positive = encoded.get(prompt) or encoded.setdefault(prompt, renderer.encode(prompt))
                noise = renderer.noise(job_seed)
                golden = GoldenNoise(Noise_RandomNoise(job_seed), npnet, positive, golden_settings, origin)
                golden_noise = golden.generate_noise({"samples": renderer.latent})
                pair = torch.cat(
                    [
                        renderer.image(noise, positive, job_seed),
                        renderer.image(golden_noise, positive, job_seed),
                    ]
                )
                plain_score, golden_score = reward.score(pair, [prompt] * 2).tolist()
                if not (math.isfinite(plain_score) and math.isfinite(golden_score)):
                    raise GoldenNoiseError(
                        cls.NAME,
                        nid,
                        "reward",
                        f"the reward scored prompt {prompt!r}, seed {job_seed} as NaN or Inf; the images may hold "
                        "NaN (the model diverged at these settings: check cfg and steps). Nothing was reported.",
                    )
                scores.append(evaluation.PairScore(prompt, job_seed, plain_score, golden_score))
                images.append(pair)
                progress(number + 1, len(jobs))
        out_dir = folder_paths.get_output_directory()
        folder, stem, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, out_dir)
        run_settings = {
            "npnet": getattr(npnet, "name", None),
            "reward": reward.name,
            "width": width,
            "height": height,
            "sampler": sampler_name,
            "scheduler": scheduler,
            "steps": steps,
            "cfg": cfg,
            "token_policy": token_policy,
            "strength": strength,
            "resolution_mode": resolution_mode,
            "negative_prompt": negative_prompt,
        }
        csv_path, json_path = evaluation.write_files(
            Path(folder), f"{stem}_{counter:05}_", scores, run_settings
        )
        text = evaluation.describe(evaluation.summarise(scores), reward.name)
        chart = torch.from_numpy(evaluation.chart(scores, reward.name)).float().div(255)[None]
        names = [str(Path(subfolder) / p.name) if subfolder else p.name for p in (csv_path, json_path)]
        return io.NodeOutput(
            chart, text, *names, torch.cat(images), ui=ui.PreviewText(text + "\n" + json.dumps(names))
        )


NODES: list[type] = [RewardModelLoader, CollectNoisePromptDataset, EvaluateGoldenNoise]
