"""Prompts and seeds through the user's own model, as ComfyUI samples them: the host half of dataset
collection and evaluation (`npnet.learning.PairHost`, batched over samples).

`Renderer` holds the user's MODEL, CLIP and VAE and sampler settings, and does what the core cannot:
encode prompts, draw each seed's noise exactly as KSampler does (`prepare_noise`), sample it fully,
decode it, and compute the re-denoise target of `npnet.learning.redenoise` with the model's own guider
and `model_sampling`, so the same code serves epsilon, v-prediction and flow-matching models. A batch
goes through the model at once when its conditionings can be stacked (same shapes) and, for images,
when the sampler draws no noise of its own: ancestral and SDE samplers draw it from one seed for a
whole batch, so their samples are rendered one at a time to stay those of batch 1.
"""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..npnet.learning import redenoise, redenoise_released, to_unit_noise
from .comfy_host import (
    ConditioningZeroOut,
    comfy_model_sampling,
    comfy_sample,
    comfy_samplers,
    fix_empty_latent,
    io,
    k_diffusion_sampling,
    model_management,
)
from .errors import GoldenNoiseError


def conditioning_fingerprint(conditioning: list) -> str:
    """SHA-256 of a CONDITIONING's tensors (cross-attention states and pooled output), for records."""
    digest = hashlib.sha256()
    for cond, extra in conditioning:
        for tensor in (cond, extra.get("pooled_output")):
            if isinstance(tensor, torch.Tensor):
                digest.update(str(tuple(tensor.shape)).encode())
                digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Sampling:
    """How every image of a run is rendered: the widgets Collect and Evaluate share (as on KSampler).

    The negative is the `negative_prompt` text, unless a CONDITIONING is connected (`negative`), or
    `zero_negative` asks for zero embeddings (the authors' collection).
    """

    negative_prompt: str
    width: int
    height: int
    sampler_name: str
    scheduler: str
    steps: int
    cfg: float
    negative: list | None = None
    zero_negative: bool = False
    # The authors' pipeline (Collect's `last_step` and `prompt_tokens`): diffusers' DDIM ends at
    # alphas_cumprod[0] (set_alpha_to_one=False: sigma 0.029 for SD's schedule, a little noise left)
    # where ComfyUI ends at sigma 0, and it truncates a prompt to 77 tokens where ComfyUI encodes
    # every 77-token chunk.
    last_step: str = "zero"
    prompt_tokens: str = "all"

    def as_dict(self) -> dict:
        """The settings as recorded in datasets and reports (`sampler` is KSampler's sampler_name)."""
        record = {
            "width": self.width,
            "height": self.height,
            "sampler": self.sampler_name,
            "scheduler": self.scheduler,
            "steps": self.steps,
            "cfg": self.cfg,
            "negative_prompt": self.negative_prompt,
        }
        if self.negative is not None:
            record["negative_prompt"] = None
            record["negative_conditioning_sha256"] = conditioning_fingerprint(self.negative)
        elif self.zero_negative:
            record["negative_prompt"] = None
            record["negative_conditioning"] = "zero"
        # Recorded only when not ComfyUI's own, so datasets collected before these options resume.
        if self.last_step != "zero":
            record["last_step"] = self.last_step
        if self.prompt_tokens != "all":
            record["prompt_tokens"] = self.prompt_tokens
        return record


@dataclass(frozen=True)
class Redenoise:
    """How a collection computes golden targets (Collect's widgets): the guidance of the denoise and the
    inversion step, and which inversion (`npnet.learning.INVERSIONS`)."""

    cfg_denoise: float = 5.5
    cfg_inversion: float = 1.0
    inversion: str = "paper"


@dataclass
class Renderer:
    node: str  # for errors: the node's display name
    node_id: str | None
    model: object
    clip: object
    vae: object
    sampling: Sampling
    redenoise: Redenoise = field(default_factory=Redenoise)
    batch: int = 1  # samples rendered at once (2 images each: plain and golden)
    latent: torch.Tensor = field(init=False)
    _negative: list = field(init=False, default=None)
    _encoded: dict = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        # A batch decodes 2 images a sample: the plain and the golden one.
        ratio = check_size(self.vae, self.sampling.width, self.sampling.height, 2 * self.batch, self.error)
        if not math.isfinite(self.sampling.cfg):
            raise self.error("cfg", f"cfg must be a finite number, got {self.sampling.cfg!r}.")
        if self.sampling.steps < 2:
            raise self.error(
                "steps", "re-denoise sampling needs at least 2 steps (it takes the first one twice)."
            )
        empty = torch.zeros([1, 4, self.sampling.height // ratio, self.sampling.width // ratio])
        self.latent = fix_empty_latent(self.model, {"samples": empty})["samples"]
        model_sampling = self.model.get_model_object("model_sampling")
        self.sigmas = comfy_samplers.calculate_sigmas(
            model_sampling, self.sampling.scheduler, self.sampling.steps
        ).cpu()
        self.model_sampling = model_sampling
        if self.sampling.last_step == "authors":
            self.authors_sigmas = self._authors_sigmas()

    def _authors_sigmas(self) -> torch.Tensor:
        """The schedule's sigmas with the last one at alphas_cumprod[0] instead of 0 (diffusers' DDIM with
        set_alpha_to_one=False): the first of the model's 1000 training sigmas."""
        table = getattr(self.model_sampling, "sigmas", None)
        # The step before the last must stay clearly above it (karras ends at the model's sigma_min).
        if table is None or len(table) != 1000 or float(self.sigmas[-2]) <= float(table[0]) * 1.001:
            raise self.error(
                "last_step",
                "last_step authors ends at the model's alphas_cumprod[0]: it needs a model with a 1000-step "
                f"noise schedule and a scheduler whose last step is above it ({self.sampling.scheduler} is "
                "not); use last_step zero.",
            )
        sigmas = self.sigmas.clone()
        sigmas[-1] = float(table[0])
        return sigmas

    def error(self, input_name: str, cause: str) -> GoldenNoiseError:
        return GoldenNoiseError(self.node, self.node_id, input_name, cause)

    def encode_one(self, text: str) -> list:
        """CONDITIONING for `text`, as CLIP Text Encode makes it (only its first 77-token chunk when
        `prompt_tokens` is "77": the authors' truncation)."""
        tokens = self.clip.tokenize(text)
        if self.sampling.prompt_tokens == "77" and isinstance(tokens, dict):
            # Each encoder's token list is a list of 77-token chunks (start, 75 tokens, end, padding).
            tokens = {
                key: chunks[:1] if isinstance(chunks, list) else chunks for key, chunks in tokens.items()
            }
        return self.clip.encode_from_tokens_scheduled(tokens)

    def encode(self, prompts: Sequence[str]) -> list[list]:
        """Each prompt's CONDITIONING (a prompt repeated in a batch or the batch before is encoded once)."""
        fresh = {p: self._encoded.get(p) or self.encode_one(p) for p in dict.fromkeys(prompts)}
        self._encoded = fresh  # bounded by one batch's prompts
        return [fresh[p] for p in prompts]

    def token_states(self, encoded: list[list]) -> list[torch.Tensor]:
        """[T, D] token states of each prompt's first conditioning entry (what NPNet and datasets read)."""
        return [conditioning[0][0][0] for conditioning in encoded]

    @property
    def negative(self) -> list:
        if self._negative is None:
            if self.sampling.negative is not None:
                self._negative = self.sampling.negative
            elif self.sampling.zero_negative:
                # ComfyUI's own ConditioningZeroOut: the unconditional branch of diffusers' SDXL pipeline
                # for an empty negative (`force_zeros_for_empty_prompt`).
                self._negative = ConditioningZeroOut().zero_out(self.encode_one(""))[0]
            else:
                self._negative = self.encode_one(self.sampling.negative_prompt)
        return self._negative

    def noise(self, seeds: Sequence[int]) -> torch.Tensor:
        """Each seed's starting noise, exactly what KSampler draws for this latent: [B, C, H, W]."""
        return torch.cat([comfy_sample.prepare_noise(self.latent, int(seed)) for seed in seeds])

    def batches(self, encoded: list[list], together: bool = True) -> list[tuple[list[int], list]]:
        """(sample numbers, one stacked CONDITIONING) groups of a batch: samples whose conditionings have
        the same shapes go through the model together; with `together` False, one sample a group."""
        groups: dict[object, list[int]] = {}
        for i, conditioning in enumerate(encoded):
            key = _stack_key(conditioning) if together else None
            groups.setdefault(key if key is not None else ("alone", i), []).append(i)
        return [(rows, _stacked([encoded[i] for i in rows])) for rows in groups.values()]

    def check_inversion(self, inversion: str) -> None:
        """`released` is the authors' diffusers code: defined for epsilon models on a 1000-step DDPM schedule."""
        epsilon = type(self.model_sampling).calculate_denoised is comfy_model_sampling.EPS.calculate_denoised
        if inversion == "released" and not (
            epsilon and len(getattr(self.model_sampling, "sigmas", ())) == 1000
        ):
            raise self.error(
                "inversion",
                "inversion 'released' reproduces the authors' diffusers code, which is defined for "
                "epsilon-prediction models on a 1000-step schedule (SD1.5, SDXL); this model is "
                f"{type(self.model_sampling).__name__}. Use inversion 'paper'.",
            )

    def sigma_back(self) -> float:
        """Where diffusers' DDIMInverseScheduler.step(eps, t1, ...) reads its input: timestep t1 - 1000/steps."""
        t1 = int(round(float(self.model_sampling.timestep(self.sigmas[1:2])[0])))
        return float(self.model_sampling.sigmas[max(t1 - 1000 // self.sampling.steps, 0)])

    @torch.no_grad()  # ComfyUI runs nodes in inference mode; outside it (plain Python) no graph either
    def redenoise_target(
        self,
        noise: torch.Tensor,
        positive: list,
        cfg_denoise: float,
        cfg_inversion: float,
        seed: int,
        inversion: str = "paper",
    ) -> torch.Tensor:
        """x'_T of `noise` [B, C, H, W] under one stacked CONDITIONING of batch B (or 1): one denoise and one
        inversion step (npnet.learning.redenoise) with the model's guider; `inversion` 'released' is the
        authors' released code instead (redenoise_released). Deterministic: `seed` reaches no noise."""
        self.check_inversion(inversion)
        guider = comfy_samplers.CFGGuider(self.model)
        guider.set_conds(positive, self.negative)
        guider.set_cfg(cfg_denoise)
        scaling = self.model_sampling.noise_scaling
        found = {}

        def two_steps(model_k, x, sigmas, extra_args=None, callback=None, disable=None):
            # A KSAMPLER sampler function: ComfyUI has loaded the model, prepared the conds and scaled the
            # noise into x. The guidance scale is read at every call, so it can change between the steps.
            s_in = x.new_ones([x.shape[0]])

            def denoise(x, sigma, cfg):
                guider.set_cfg(cfg)
                return model_k(x, sigma * s_in, **(extra_args or {}))

            if inversion == "released":
                unit = noise.to(x)
                s0, s1 = float(sigmas[0]), float(sigmas[1])
                found["target"] = redenoise_released(
                    unit, s0, s1, self.sigma_back(), denoise, cfg_denoise, cfg_inversion
                )
                return x
            found["start"] = x.clone()
            found["moved"] = redenoise(x, sigmas[0], sigmas[1], denoise, scaling, cfg_denoise, cfg_inversion)
            found["max_denoise"] = sampler.max_denoise(model_k.inner_model, sigmas)
            return x

        sampler = comfy_samplers.KSAMPLER(two_steps)
        guider.sample(
            noise, self.empty(len(noise)), sampler, self.sigmas[:2].clone(), disable_pbar=True, seed=seed
        )
        if "target" in found:
            return found["target"].cpu().float().to(noise.dtype)
        sigma = self.sigmas[0]
        scale = scaling(sigma, torch.ones(1), torch.zeros(1), found["max_denoise"]).flatten()[0]
        return to_unit_noise(noise, found["start"].cpu().float(), found["moved"].cpu().float(), scale).to(
            noise.dtype
        )

    def empty(self, batch: int) -> torch.Tensor:
        return self.latent.expand(batch, *self.latent.shape[1:]).contiguous()

    @torch.no_grad()
    def image(self, noise: torch.Tensor, positive: list, seed: int) -> torch.Tensor:
        """The images sampled from `noise` [B, ...] with the user's settings, decoded: [B, H, W, 3] in 0..1."""
        try:
            if self.sampling.last_step == "authors":
                samples = comfy_sample.sample_custom(
                    self.model,
                    noise,
                    self.sampling.cfg,
                    comfy_samplers.sampler_object(self.sampling.sampler_name),
                    self.authors_sigmas,
                    positive,
                    self.negative,
                    self.empty(len(noise)),
                    seed=seed,
                    disable_pbar=True,
                )
            else:
                samples = comfy_sample.sample(
                    self.model,
                    noise,
                    self.sampling.steps,
                    self.sampling.cfg,
                    self.sampling.sampler_name,
                    self.sampling.scheduler,
                    positive,
                    self.negative,
                    self.empty(len(noise)),
                    seed=seed,
                    disable_pbar=True,
                )
        except RuntimeError as error:
            if "size" in str(error) or "shape" in str(error):
                raise self.error(
                    "width",
                    f"the model cannot sample a {self.sampling.width}x{self.sampling.height} image: {error}",
                ) from error
            raise
        images = self.vae.decode(samples)
        return images.reshape(len(noise), -1, *images.shape[-3:])[:, 0].float().cpu()

    # -- npnet.learning.PairHost ---------------------------------------------------------------------

    def golden_target(self, noise: torch.Tensor, encoded: list[list], seeds: Sequence[int]) -> torch.Tensor:
        out = torch.empty_like(noise)
        settings = self.redenoise
        for rows, positive in self.batches(encoded):
            out[rows] = self.redenoise_target(
                noise[rows],
                positive,
                settings.cfg_denoise,
                settings.cfg_inversion,
                seeds[rows[0]],
                settings.inversion,
            )
        return out

    def render(self, noise: torch.Tensor, encoded: list[list], seeds: Sequence[int]) -> torch.Tensor:
        # Row r of `noise` is sample r % B: the plain and the golden noise of a batch in one call.
        rows_of = [encoded[r % len(encoded)] for r in range(len(noise))]
        seed_of = [seeds[r % len(seeds)] for r in range(len(noise))]
        parts: dict[int, torch.Tensor] = {}
        for rows, positive in self.batches(rows_of, together=self.deterministic):
            # A stochastic sampler seeds its own noise from `seed`: alone, each sample keeps its seed.
            for i, image in zip(rows, self.image(noise[rows], positive, seed_of[rows[0]]), strict=True):
                parts[i] = image
        return torch.stack([parts[i] for i in range(len(noise))])

    @property
    def deterministic(self) -> bool:
        """Whether the sampler draws no noise of its own (then a batch renders what batch 1 renders)."""
        return draws_no_noise(self.sampling.sampler_name)


def k_diffusion_function(sampler_name: str):
    """The k-diffusion sampler function behind a KSampler name (`ddim` is KSampler's euler), or None
    (UniPC, or a sampler this core does not have)."""
    name = "euler" if sampler_name == "ddim" else sampler_name
    return getattr(k_diffusion_sampling, f"sample_{name}", None)


def draws_no_noise(sampler_name: str) -> bool:
    """Whether a KSampler sampler is deterministic: UniPC, or a k-diffusion function without a
    `noise_sampler` (the ancestral, SDE and similar samplers draw noise from the seed)."""
    if sampler_name in ("uni_pc", "uni_pc_bh2"):
        return True
    function = k_diffusion_function(sampler_name)
    return function is not None and "noise_sampler" not in inspect.signature(function).parameters


def check_size(vae, width: int, height: int, images: int, error) -> int:
    """The VAE's scale factor, once the size is usable: `width` and `height` multiples of it, and
    `images` of that size decodable in free memory (`_check_memory`); else `error(input, cause)`."""
    ratio = int(vae.spacial_compression_decode())
    for name, value in (("width", width), ("height", height)):
        if value < ratio or value % ratio:
            raise error(name, f"{name} must be a multiple of {ratio} (the VAE's scale factor), got {value}.")
    _check_memory(vae, width, height, images, error)
    return ratio


def _check_memory(vae, width: int, height: int, images: int, error) -> None:
    """Refuse, before any work, a size whose decoding cannot fit in this machine's free memory (a CPU run
    that tries is killed by the kernel, and ComfyUI's queue with it).

    A lower bound, not ComfyUI's own (deliberately generous) estimate: one full-resolution activation of
    the VAE decoder's last layer, in and out, for one image (ComfyUI decodes image by image when it must,
    and tiles on a GPU that runs out), plus the `images` decoded float32 images that are kept."""
    channels = _full_resolution_channels(getattr(vae, "first_stage_model", None))
    decode = (
        2 * width * height * channels * model_management.dtype_size(getattr(vae, "vae_dtype", torch.float32))
    )
    kept = images * width * height * 3 * 4
    on_cpu = torch.device(getattr(vae, "device", "cpu")).type == "cpu"
    need = kept + (decode if on_cpu else 0)
    free = model_management.get_free_memory(torch.device("cpu"))
    if need > free:
        raise error(
            "width",
            f"{width}x{height} px needs at least {need / 2**30:.1f} GiB of memory to decode and keep "
            f"{images} images, and {free / 2**30:.1f} GiB is free: lower width/height (or batch_size).",
        )


def _full_resolution_channels(decoder) -> int:
    """The input channels of the last convolution that gives the image (64 when none is found)."""
    last = None
    for module in decoder.modules() if isinstance(decoder, torch.nn.Module) else ():
        if isinstance(module, torch.nn.Conv2d) and module.out_channels in (3, 4):
            last = module
    return last.in_channels if last is not None else 64


def _stack_key(conditioning: list):
    """What must agree for conditionings to stack into one batch: one entry, same tensor shapes and the
    same other values; None when this one cannot stack at all."""
    if len(conditioning) != 1:
        return None
    cond, extra = conditioning[0]
    key = [tuple(cond.shape)]
    for name in sorted(extra):
        value = extra[name]
        if isinstance(value, torch.Tensor):
            key.append((name, tuple(value.shape)))
        elif isinstance(value, (int, float, str, bool, type(None))):
            key.append((name, value))
        else:
            return None
    return tuple(key)


def _stacked(conditionings: list[list]) -> list:
    """One CONDITIONING of batch B from B stackable ones (or the one itself)."""
    if len(conditionings) == 1:
        return conditionings[0]
    first_cond, first_extra = conditionings[0][0]
    extra = {
        name: torch.cat([c[0][1][name] for c in conditionings]) if isinstance(value, torch.Tensor) else value
        for name, value in first_extra.items()
    }
    return [[torch.cat([c[0][0] for c in conditionings]), extra]]


class Previews:
    """The first `pairs` plain/golden image pairs of a run, for the node's image output."""

    def __init__(self, pairs: int) -> None:
        self.pairs, self.images = pairs, []

    def keep(self, images) -> None:
        if images is not None and len(self.images) < 2 * self.pairs:
            self.images.extend(images)

    def tensor(self) -> torch.Tensor:
        return torch.stack(self.images) if self.images else torch.zeros([1, 64, 64, 3])


def ksampler_widgets(*, cfg: float, scheduler: str, min_steps: int) -> dict[str, object]:
    """KSampler's four sampling widgets, defined once; each node places them in its own order (saved
    workflows keep widget values by position). The defaults differ on purpose and are the caller's:
    `cfg` and `scheduler` (KSampler's own, 8.0 and its first scheduler, where a node replaces KSampler;
    the paper's 5.5 and normal in the learning nodes); `min_steps`: 2 where re-denoise needs two."""
    return {
        "sampler_name": io.Combo.Input(
            "sampler_name",
            options=comfy_samplers.KSampler.SAMPLERS,
            default="euler",
            tooltip="The sampling algorithm (as on KSampler).",
        ),
        "scheduler": io.Combo.Input(
            "scheduler",
            options=comfy_samplers.KSampler.SCHEDULERS,
            default=scheduler,
            tooltip="How the noise level falls over the steps (as on KSampler); re-denoise uses its first "
            "two sigmas.",
        ),
        "steps": io.Int.Input(
            "steps", default=20, min=min_steps, max=10000, tooltip=f"Sampling steps (at least {min_steps})."
        ),
        "cfg": io.Float.Input(
            "cfg",
            default=cfg,
            min=0.0,
            max=100.0,
            step=0.1,
            round=0.01,
            tooltip="Classifier-free guidance scale (as on KSampler).",
        ),
    }


def sampler_inputs() -> list:
    """The learning nodes' sampler widgets: KSampler's, in the order sampler, scheduler, steps, cfg."""
    widgets = ksampler_widgets(cfg=5.5, scheduler="normal", min_steps=2)
    return [widgets[name] for name in ("sampler_name", "scheduler", "steps", "cfg")]
