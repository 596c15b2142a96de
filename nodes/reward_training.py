"""Train Golden Noise (reward): an NPNet trained on a reward through the user's own model, in the graph.

The node is the ComfyUI host of `npnet.learning.train_on_reward`: it encodes the prompts, and gives the
core a differentiable `render` (ComfyUI's own sampler function of a deterministic sampler, unwrapped from
its no_grad, run through the model's CFGGuider, then the VAE decode) and a differentiable `reward` (the
Reward Model Loader's CLIP scores, preprocessing in torch). As the host's own training node
(`comfy_extras/nodes_train.py`) does, training runs with inference mode off and gradients on; the frozen
models' inference-mode weights are replaced by ordinary copies of the same values (ComfyUI creates every
tensor under inference mode, which autograd refuses to save for backward). Gradient checkpointing
recomputes each sampler step in the backward pass instead of keeping its activations.

The run's folder is output/golden_noise_runs/<output_name>/ (state, metrics): Cancel saves the state and
a re-queue with the same settings resumes. The finished network is copied to
models/golden_noise/<output_name>.safetensors, which Golden Noise Loader lists.
"""

from __future__ import annotations

import inspect
import json
import math
import shutil
from contextlib import contextmanager

import torch
import torch.utils.checkpoint

from ..npnet import InputError, learning
from . import host_files
from .comfy_host import MENU, comfy_samplers, io, progress_and_cancel, ui
from .errors import GoldenNoiseError
from .golden_noise import NPNET, node_id
from .learning_inputs import _errors, read_prompts, shared_inputs, size_inputs
from .npnet_weights import default_folder, load_weights, wired_weights
from .rendering import Sampling, _stacked, check_size, draws_no_noise, k_diffusion_function

CATEGORY = f"{MENU}/learning"
RUNS = "golden_noise_runs"  # output/golden_noise_runs/<output_name>/
NAME = "Train Golden Noise (reward)"


def differentiable_samplers() -> list[str]:
    """ComfyUI's samplers that draw no noise of their own and have a k-diffusion function, which can be
    unwrapped from its no_grad: the images are then a differentiable function of the noise."""
    return [
        name
        for name in comfy_samplers.KSampler.SAMPLERS
        if k_diffusion_function(name) is not None and draws_no_noise(name)
    ]


def usable_by_autograd(module: torch.nn.Module) -> None:
    """Replace the module's inference-mode tensors by ordinary copies (same values, no gradient).

    ComfyUI runs every node, loaders included, under torch.inference_mode(), and autograd cannot save
    such tensors for the backward pass; the frozen weights are still needed there to pass the gradient
    on to the noise."""
    with torch.inference_mode(False):
        for sub in module.modules():
            for name, p in list(sub._parameters.items()):
                if p is not None and p.is_inference():
                    sub._parameters[name] = torch.nn.Parameter(p.detach().clone(), requires_grad=False)
                elif p is not None:
                    p.requires_grad_(False)
            for name, b in list(sub._buffers.items()):
                if b is not None and b.is_inference():
                    sub._buffers[name] = b.clone()


@contextmanager
def checkpointed(diffusion_model: torch.nn.Module, enabled: bool):
    """The diffusion model's forward recomputed in the backward pass (gradient checkpointing per
    sampler step): only each step's inputs are kept. Restored afterwards."""
    if not enabled:
        yield
        return
    original = diffusion_model.forward

    def forward(*args, **kwargs):
        return torch.utils.checkpoint.checkpoint(original, *args, use_reentrant=False, **kwargs)

    diffusion_model.forward = forward
    try:
        yield
    finally:
        del diffusion_model.forward  # the class's own forward again


class RewardRender:
    """render(noise [B, C, H, W], embeds [B, T, D]) -> images [B, H, W, 3], differentiable in `noise`.

    `keys` [N, T, D] are the token states the network reads, one per prompt (what the core indexes);
    each row of `embeds` is matched to its prompt by value and rendered from that prompt's whole
    CONDITIONING (every token chunk, pooled output and all)."""

    def __init__(self, model, vae, sampling: Sampling, negative, conditionings, keys):
        self.model, self.vae, self.sampling, self.negative = model, vae, sampling, negative
        self.conditionings, self.keys = conditionings, keys.flatten(1)
        self.sigmas = comfy_samplers.calculate_sigmas(
            model.get_model_object("model_sampling"), sampling.scheduler, sampling.steps
        ).cpu()
        function = inspect.unwrap(k_diffusion_function(sampling.sampler_name))

        def sample(model_k, x, sigmas, extra_args=None, callback=None, disable=None):
            return function(model_k, x, sigmas, extra_args=extra_args, disable=True)

        self.sampler = comfy_samplers.KSAMPLER(sample)

    def __call__(self, noise: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        rows = [
            int((self.keys - row).abs().sum(1).argmin()) for row in embeds.detach().float().cpu().flatten(1)
        ]
        positive = _stacked([self.conditionings[i] for i in rows])
        guider = comfy_samplers.CFGGuider(self.model)
        guider.set_conds(positive, self.negative)
        guider.set_cfg(self.sampling.cfg)
        latent = torch.zeros(noise.shape, dtype=noise.dtype)
        samples = guider.sample(
            noise.cpu(), latent, self.sampler, self.sigmas.clone(), disable_pbar=True, seed=0
        )
        images = self.vae.decode(samples)
        return images.reshape(len(noise), -1, *images.shape[-3:])[:, 0]


class TrainGoldenNoiseReward(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GoldenNoiseTrainReward",
            display_name=NAME,
            category=CATEGORY,
            description="Trains an NPNet on a reward model through your own (few-step) model: the golden "
            "noise of each prompt is rendered, scored, and the network learns to raise the score while a "
            "penalty keeps its noise Gaussian (Noise Hypernetworks). Connect an imitation-trained network "
            "to init and set anchor to init to keep the prompt-following it learned. Writes "
            "models/golden_noise/<output_name>.safetensors for Golden Noise Loader. Cancel keeps the last "
            "saved state; queue again to resume.",
            inputs=[
                *shared_inputs(),  # the reward: the score the network learns to raise
                *size_inputs(),
                io.Combo.Input(
                    "sampler_name",
                    options=differentiable_samplers(),
                    default="euler",
                    tooltip="A deterministic sampler (gradients flow through every step; samplers that draw "
                    "their own noise are not offered).",
                ),
                io.Combo.Input(
                    "scheduler",
                    options=comfy_samplers.KSampler.SCHEDULERS,
                    default="sgm_uniform",
                    tooltip="The noise schedule (as on KSampler).",
                ),
                io.Int.Input(
                    "steps",
                    default=4,
                    min=1,
                    max=50,
                    tooltip="Sampler steps per image: 1-4 for distilled models (SDXL-Turbo, -Lightning), "
                    "more if memory allows (each step's activations, or its recomputation, are paid).",
                ),
                io.Float.Input(
                    "cfg",
                    default=1.0,
                    min=0.0,
                    max=30.0,
                    step=0.1,
                    round=0.01,
                    tooltip="Guidance scale of the rendered images (1.0 for Turbo/Lightning).",
                ),
                io.Boolean.Input(
                    "gradient_checkpointing",
                    default=True,
                    tooltip="Recompute each sampler step in the backward pass: much less memory, about a "
                    "third more time.",
                ),
                io.Int.Input(
                    "batch_size",
                    default=4,
                    min=1,
                    max=256,
                    tooltip="Images per training step (memory grows with it).",
                ),
                io.Int.Input("training_steps", default=400, min=1, max=1_000_000, tooltip="Optimiser steps."),
                io.Float.Input(
                    "learning_rate",
                    default=1e-3,
                    min=0.0,
                    max=1.0,
                    step=1e-5,
                    round=1e-6,
                    tooltip="AdamW learning rate (warm-up then cosine to a tenth).",
                ),
                io.Float.Input(
                    "penalty",
                    default=1.0,
                    min=0.0,
                    max=1000.0,
                    step=0.01,
                    round=0.001,
                    tooltip="Weight of the L2 penalty on the change of the noise: higher keeps it closer to "
                    "plain Gaussian noise; 0 lets the network shrink the noise (reward hacking).",
                ),
                io.Int.Input(
                    "seed",
                    default=0,
                    min=0,
                    max=0xFFFFFFFFFFFF,
                    control_after_generate=False,
                    tooltip="Seeds the network's start and every batch's prompts and noise.",
                ),
                io.Int.Input(
                    "tokens",
                    default=77,
                    min=1,
                    max=4096,
                    tooltip="Prompt tokens the network reads (the first ones).",
                ),
                io.String.Input(
                    "output_name",
                    default="golden_noise_reward",
                    tooltip="The trained file: models/golden_noise/<output_name>.safetensors (letters, digits, "
                    "'-', '_', '.'). The same name and settings resume the run.",
                ),
                # Last, so that workflows saved before it keep their widget values in place; optional, so
                # that API prompts written before it (which lack it) still validate, as 'noise'.
                io.Combo.Input(
                    "anchor",
                    options=list(learning.ANCHORS),
                    default="noise",
                    optional=True,
                    tooltip="What the penalty keeps the golden noise near: 'noise', the plain noise; 'init', "
                    "the init network's golden noise, so the prompt-following it learned (by imitation) is "
                    "kept and the reward adds to it. 'init' needs a network on init.",
                ),
                NPNET.Input(
                    "init",
                    optional=True,
                    tooltip="Start from this network instead of an untrained one (e.g. an imitation-trained "
                    "network from Golden Noise Loader); its latent size and tokens must match this run's.",
                ),
            ],
            outputs=[
                NPNET.Output(
                    display_name="npnet", tooltip="The trained network, for the Golden Noise nodes."
                ),
                io.String.Output(
                    display_name="summary", tooltip="The run's last reward and noise statistics."
                ),
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
        width,
        height,
        sampler_name,
        scheduler,
        steps,
        cfg,
        gradient_checkpointing,
        batch_size,
        training_steps,
        learning_rate,
        penalty,
        seed,
        tokens,
        output_name,
        anchor="noise",
        negative=None,
        init=None,
    ) -> io.NodeOutput:
        nid = node_id(cls)
        errors = _errors(NAME, nid)
        if sampler_name not in differentiable_samplers():
            raise errors(
                "sampler_name", f"{sampler_name!r} is not a deterministic sampler; pick one of the list."
            )
        for widget, value in (("cfg", cfg), ("learning_rate", learning_rate), ("penalty", penalty)):
            if not math.isfinite(value) or value < 0:
                raise errors(widget, f"{widget} must be a finite number >= 0, got {value!r}.")
        try:
            name = learning.check_dataset_name(output_name)
        except InputError as error:
            raise errors("output_name", str(error).replace("dataset_name", "output_name")) from None
        target = default_folder() / f"{name}.safetensors"
        # An anchor outside ANCHORS is refused by the core, naming it (the server does not check an
        # optional combo's value).
        if init is not None:
            init = wired_weights(init, errors, "init")
        if anchor == "init" and init is None:
            raise errors(
                "anchor",
                "anchor 'init' keeps the noise near the init network's golden noise: connect a network to "
                "init (an imitation-trained one from Golden Noise Loader), or set anchor to 'noise'.",
            )
        if init is not None and init.path.resolve() == target.resolve():
            raise errors(
                "init",
                f"init is {target.name}, the file this run writes (output_name); load another network or "
                "choose another output_name.",
            )
        run_dir = host_files.output_folder(name, RUNS, "output_name", errors)
        prompt_list = read_prompts(NAME, nid, prompts, prompt_file)
        ratio = check_size(vae, width, height, batch_size, errors)
        sampling = Sampling(
            negative_prompt, width, height, sampler_name, scheduler, steps, cfg, negative=negative
        )
        if target.exists() and not (run_dir / "state.pt").exists():
            raise errors(
                "output_name",
                f"{target.name} already exists in {target.parent} and is not this node's run; choose another "
                "output_name.",
            )
        conditionings = [clip.encode_from_tokens_scheduled(clip.tokenize(p)) for p in prompt_list]
        negative_cond = (
            negative
            if negative is not None
            else clip.encode_from_tokens_scheduled(clip.tokenize(negative_prompt))
        )
        states = [c[0][0][0] for c in conditionings]
        conditions = [
            (p, torch.nn.functional.pad(s[:tokens], (0, 0, 0, max(0, tokens - len(s)))).float().cpu())
            for p, s in zip(prompt_list, states, strict=True)
        ]
        channels = int(model.get_model_object("latent_format").latent_channels)
        latent_shape = (channels, height // ratio, width // ratio)
        differentiable = getattr(reward, "value", None)
        if differentiable is None:
            raise errors("reward", f"the reward {reward.name} offers no differentiable score (value()).")
        with torch.inference_mode(False), torch.enable_grad():
            held = getattr(getattr(reward, "patcher", None), "model", None)
            for module in (model.model, vae.first_stage_model, held):
                if module is not None:
                    usable_by_autograd(module)
            full = [[[c[0][0].clone(), dict(c[0][1])]] for c in conditionings]
            keys = torch.stack([c for _, c in conditions])
            render = RewardRender(model, vae, sampling, negative_cond, full, keys)

            def score(images, indexes):
                return differentiable(images, [prompt_list[i] for i in indexes.tolist()]).to(images.device)

            last = {}
            with (
                checkpointed(model.model.diffusion_model, gradient_checkpointing),
                progress_and_cancel(training_steps, nid) as (progress, cancel),
            ):
                try:
                    learning.train_on_reward(
                        render,
                        score,
                        conditions,
                        run_dir,
                        latent_shape=latent_shape,
                        seed=seed,
                        steps=training_steps,
                        batch_size=batch_size,
                        lr=learning_rate,
                        penalty=penalty,
                        anchor=anchor,
                        init=None if init is None else init.path,
                        resume=(run_dir / "state.pt").exists(),
                        progress=progress,
                        should_cancel=cancel,
                        on_step=last.update,
                    )
                except InputError as error:
                    where = "output_name" if error.input in ("resume", "out_dir") else error.input
                    raise GoldenNoiseError(NAME, nid, where, str(error)) from error
        default_folder().mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(run_dir / "npnet.safetensors", partial)
        partial.replace(target)
        (run_dir / "settings.json").write_text(json.dumps({"prompts": prompt_list, "file": str(target)}))
        text = (
            f"{target.name}: {training_steps} steps; last batch reward {last.get('reward', float('nan')):+.4g}, "
            f"noise mean {last.get('noise_mean', float('nan')):+.3f}, std {last.get('noise_std', float('nan')):.3f}"
            if last
            else f"{target.name}: the run was already complete."
        )
        return io.NodeOutput(load_weights(target.name, nid), text, ui=ui.PreviewText(text))


NODES: list[type] = [TrainGoldenNoiseReward]
