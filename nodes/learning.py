"""The learning-framework nodes: a reward model, noise prompt dataset collection, golden-noise evaluation.

Each node translates widgets into the host-free `npnet.learning` loops (collection, evaluation) and the
answers back into ComfyUI types; the host work (encode, sample, decode) is `rendering.Renderer`, the
scores are `reward_models.ClipReward.score`, file names are checked by `host_files`. Node ids are a
public contract: never rename one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ..npnet import InputError, learning
from . import host_files
from .comfy_host import MENU, interrupt_as_cancel, io, progress_and_cancel, ui
from .errors import GoldenNoiseError
from .golden_noise import golden_inputs, node_id
from .learning_inputs import (
    DATASETS,
    REWARD,
    _errors,
    batch_input,
    is_zero,
    on_node,
    preview_input,
    render_setup,
    shared_inputs,
    size_inputs,
)
from .noise_objects import GivenNoise, Origin, golden_maker
from .rendering import Previews, Redenoise, sampler_inputs
from .reward_models import choices as reward_choices
from .reward_models import default_choice as default_reward
from .reward_models import load_reward

CATEGORY = f"{MENU}/learning"


PRESETS_ROUTE = "/golden_noise/collect_presets"
preset_widgets = learning.preset_widgets  # served at PRESETS_ROUTE for web/js/collect_presets.js


class RewardModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GoldenNoiseRewardLoader",
            display_name="Reward Model Loader",
            category=CATEGORY,
            description="A human-preference reward model (PickScore, HPSv2, HPSv2.1, or a CLIP folder in "
            "models/reward_models) that scores images against their prompt.",
            inputs=[
                io.Combo.Input(
                    "reward",
                    options=reward_choices(),
                    default=default_reward(),
                    tooltip="PickScore, HPSv2 or HPSv2.1 (the paper's filter; open_clip weights converted "
                    "once), downloaded once into models/reward_models, or a transformers CLIP folder of "
                    "your own there. Defaults to HPSv2.1 once it is there.",
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
                *shared_inputs(),
                io.Int.Input(
                    "samples_per_prompt", default=1, min=1, max=100000, tooltip="Noises (seeds) per prompt."
                ),
                io.Int.Input(
                    "seed",
                    default=0,
                    min=0,
                    max=0xFFFFFFFFFFFF,
                    # Fixed: the front end would otherwise randomise a "seed" after each queue, and a
                    # re-queue with another base seed is another dataset, not a resume.
                    control_after_generate=False,
                    tooltip="Base seed: sample g uses seed + g, so a dataset is reproducible. A .jsonl "
                    'prompt_file whose lines carry "seed" uses those instead (replaying a (prompt, seed) list).',
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
                    tooltip="Folder under output/npd/: letters, digits, '-', '_' and '.'. The same name "
                    "and settings resume a dataset; several servers may write one folder at once.",
                ),
                io.Int.Input(
                    "samples_per_shard",
                    default=64,
                    min=1,
                    max=100000,
                    tooltip="Samples per shard file: a shard is written every this many samples (or every "
                    "2 minutes of work, so a crash loses little).",
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
                preview_input(4),
                io.Combo.Input(
                    "inversion",
                    options=list(learning.INVERSIONS),
                    default="paper",
                    optional=True,
                    tooltip="paper: the inversion of the paper's equations (t1 back to t0, the denoiser "
                    "at t1). released: the authors' released code (the UNet at t0 and diffusers' "
                    "inverse step from t1 - 1000/steps to t1: a slightly larger move), for epsilon models.",
                ),
                io.Combo.Input(
                    "last_step",
                    options=list(learning.LAST_STEPS),
                    default="zero",
                    optional=True,
                    tooltip="Where each image's sampling ends. zero: at sigma 0, as KSampler. authors: at "
                    "the model's alphas_cumprod[0] (sigma 0.029 for SD's schedule), as the authors' "
                    "diffusers DDIM (set_alpha_to_one=False), a little noise left in the image.",
                ),
                io.Combo.Input(
                    "prompt_tokens",
                    options=list(learning.PROMPT_TOKENS),
                    default="all",
                    optional=True,
                    tooltip="all: every 77-token chunk of a long prompt is encoded, as CLIP Text Encode "
                    "does. 77: only the first 77 tokens, as the authors' pipeline truncates.",
                ),
                io.Combo.Input(
                    "preset",
                    options=list(learning.PRESETS),
                    default="custom",
                    optional=True,
                    tooltip="authors: collect as the authors' script does (sampler ddim, scheduler "
                    "ddim_uniform, 50 steps, cfg 5.5, cfg_denoise 5.5, cfg_inversion 1.0, inversion "
                    "released, 1024x1024, last_step authors, prompt_tokens 77, zero negative, reward "
                    "HPSv2.1); choosing it sets those widgets. When queued, the widgets must still hold "
                    "these values and the reward must be HPSv2.1 (the node names any that differ). "
                    "custom: the widgets as set.",
                ),
                batch_input(1),
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
        try:
            name = learning.check_dataset_name(str(dataset_name))
            folder = host_files.output_folder(name, DATASETS, "dataset_name", _errors(cls.NAME, None))
        except (InputError, GoldenNoiseError):
            return None  # execute reports the bad name
        return (
            sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*.safetensors"))
            if folder.is_dir()
            else []
        )

    @classmethod
    def execute(
        cls,
        samples_per_prompt,
        seed,
        cfg_denoise,
        cfg_inversion,
        tokens,
        dataset_name,
        samples_per_shard,
        shard_index,
        shard_count,
        preview_pairs=4,
        inversion="paper",
        last_step="zero",
        prompt_tokens="all",
        preset="custom",
        batch_size=1,
        **shared,
    ) -> io.NodeOutput:
        nid = node_id(cls)
        for widget, value, options in (
            ("last_step", last_step, learning.LAST_STEPS),
            ("prompt_tokens", prompt_tokens, learning.PROMPT_TOKENS),
        ):
            if value not in options:
                raise GoldenNoiseError(
                    cls.NAME, nid, widget, f"{widget} must be one of {list(options)}, got {value!r}."
                )
        for widget, value in (("cfg_denoise", cfg_denoise), ("cfg_inversion", cfg_inversion)):
            if not math.isfinite(value):
                raise GoldenNoiseError(
                    cls.NAME, nid, widget, f"{widget} must be a finite number, got {value!r}."
                )
        widgets = {
            **shared,
            "cfg_denoise": cfg_denoise,
            "cfg_inversion": cfg_inversion,
            "inversion": inversion,
            "last_step": last_step,
            "prompt_tokens": prompt_tokens,
        }
        with on_node(cls.NAME, nid):
            reward_name = getattr(shared.get("reward"), "name", None)
            learning.check_preset(preset, widgets, is_zero(shared.get("negative")), reward_name)
        run = render_setup(
            cls.NAME,
            nid,
            **shared,
            last_step=last_step,
            prompt_tokens=prompt_tokens,
            zero_negative=preset == "authors" and shared.get("negative") is None,
            redenoise=Redenoise(cfg_denoise, cfg_inversion, inversion),
            batch_size=batch_size,
        )
        run.renderer.check_inversion(inversion)  # a node error already: before any rendering
        with on_node(cls.NAME, nid):
            name = learning.check_dataset_name(dataset_name)
            samples = learning.plan(run.prompts, samples_per_prompt, seed, shard_index, shard_count)
            folder = host_files.output_folder(name, DATASETS, "dataset_name", _errors(cls.NAME, nid))
            record = learning.dataset_record(
                latent_shape=run.renderer.latent.shape[1:],
                sampling=run.renderer.sampling.as_dict(),
                cfg_denoise=cfg_denoise,
                cfg_inversion=cfg_inversion,
                inversion=inversion,
                tokens=tokens,
                reward=run.reward.name,
                base_seed=seed,
                samples_per_prompt=samples_per_prompt,
                prompts=run.prompts,
            )
            writer = learning.DatasetWriter(folder, record, shard_index, shard_count, samples_per_shard)
        previews = Previews(preview_pairs)
        maker = learning.pair_maker(run.renderer, run.reward, tokens)

        def make(samples):
            with interrupt_as_cancel():
                return maker(samples)

        with progress_and_cancel(max(len(samples), 1), nid) as (progress, cancel), on_node(cls.NAME, nid):
            written = learning.collect(
                samples,
                make,
                writer,
                progress,
                cancel,
                lambda sample, pair: previews.keep(pair.images),
                batch_size=batch_size,
            )
        text = learning.summary(folder, written)
        return io.NodeOutput(str(folder), previews.tensor(), text, ui=ui.PreviewText(text))


class EvaluateGoldenNoise(io.ComfyNode):
    NAME = "Evaluate Golden Noise"
    NODE_ID = "GoldenNoiseEvaluate"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=cls.NODE_ID,
            display_name=cls.NAME,
            category=CATEGORY,
            description="Renders every prompt x seed from plain and from golden noise (same seed) with your "
            "checkpoint, scores both with the reward model, and reports the paired difference: "
            "a chart, a CSV/JSON table in the output folder (rows written as they are scored), and "
            "the image pairs.",
            inputs=[
                *shared_inputs(),
                io.Int.Input(
                    "seed",
                    default=0,
                    min=0,
                    max=0xFFFFFFFFFFFF,
                    control_after_generate=False,  # the same seeds on every queue: comparable runs
                    tooltip="First seed; each prompt is rendered with seeds seed .. seed + seeds - 1 (from "
                    'its own "seed" when a .jsonl prompt_file gives one).',
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
                preview_input(8),
                REWARD.Input(
                    "reward_2",
                    optional=True,
                    tooltip="Another reward model, scored on the same images (its CSV and JSON beside the "
                    "first's, named after it); an independent reward checks that a gain is not the "
                    "first reward's taste alone.",
                ),
                REWARD.Input("reward_3", optional=True, tooltip="A third reward model, as reward_2."),
                batch_input(1),
            ],
            outputs=[
                io.Image.Output(
                    display_name="chart", tooltip="Paired score differences, mean, 95% interval."
                ),
                io.String.Output(display_name="report", tooltip="The result in one paragraph."),
                io.String.Output(display_name="csv_file", tooltip="One row per prompt x seed."),
                io.String.Output(display_name="json_file", tooltip="Settings, summary and rows."),
                io.Image.Output(
                    display_name="images",
                    tooltip="The first preview_pairs plain and golden images, alternating.",
                ),
            ],
            hidden=[io.Hidden.unique_id],
            is_output_node=True,
        )

    @classmethod
    def execute(
        cls,
        seed,
        seeds,
        npnet,
        token_policy,
        strength,
        resolution_mode,
        filename_prefix,
        preview_pairs=8,
        reward_2=None,
        reward_3=None,
        batch_size=1,
        **shared,
    ) -> io.NodeOutput:
        nid = node_id(cls)
        # The output place is checked before any rendering, so a bad prefix costs nothing.
        folder, stem, counter, subfolder = host_files.output_path(
            filename_prefix, "filename_prefix", _errors(cls.NAME, nid)
        )
        run = render_setup(cls.NAME, nid, batch_size=batch_size, **shared)
        origin = Origin(f"{cls.NAME} ({cls.NODE_ID})", nid)
        make_golden = golden_maker(origin, npnet, token_policy, strength, resolution_mode)
        todo = learning.jobs(run.prompts, seed, seeds)  # lazy: a huge prompt list costs nothing here
        given = [("reward", run.reward), ("reward_2", reward_2), ("reward_3", reward_3)]
        given = [(name, r) for name, r in given if r is not None]
        rewards = [r for _, r in given]
        settings = {
            "npnet": getattr(npnet, "name", None),
            **run.renderer.sampling.as_dict(),
            "token_policy": token_policy,
            "strength": strength,
            "resolution_mode": resolution_mode,
            "rewards": [r.name for r in rewards],
        }
        files = [
            learning.ResultFiles(
                folder, f"{stem}_{counter:05}_{suffix}", {**settings, "reward": r.name}, r.name
            )
            for suffix, (_, r) in zip(learning.result_suffixes(given), given, strict=True)
        ]
        previews = Previews(preview_pairs)

        def golden_of(noise, encoded, seeds):
            # Each sample through the Golden Noise node's own NOISE object, from the seed's plain noise.
            latent = {"samples": run.renderer.latent}
            return torch.cat(
                [
                    make_golden(GivenNoise(seed, noise[i : i + 1]), positive)
                    .generate_noise(latent)
                    .to(noise.dtype)
                    for i, (seed, positive) in enumerate(zip(seeds, encoded, strict=True))
                ]
            )

        scorer = learning.job_scorer(run.renderer, rewards, golden_of)

        def score(todo):
            with interrupt_as_cancel():
                return scorer(todo)

        with progress_and_cancel(len(todo), nid) as (progress, cancel), on_node(cls.NAME, nid):
            summaries = learning.run_evaluation(
                todo,
                score,
                files,
                progress,
                cancel,
                lambda job, images: previews.keep(images),
                batch_size=batch_size,
            )
        text = "\n".join(learning.describe(s, r.name) for s, r in zip(summaries, rewards, strict=True))
        primary = files[0]
        chart = learning.evaluation_chart(primary.scores, primary.reward)
        names = [
            str(Path(subfolder) / f.name) if subfolder else f.name
            for f in (primary.csv_path, primary.json_path)
        ]
        image = torch.from_numpy(chart).float().div(255)[None]
        return io.NodeOutput(
            image, text, *names, previews.tensor(), ui=ui.PreviewText(text + "\n" + json.dumps(names))
        )


NODES: list[type] = [RewardModelLoader, CollectNoisePromptDataset, EvaluateGoldenNoise]
