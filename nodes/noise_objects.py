"""The golden NOISE object the nodes hand to ComfyUI's samplers, and the arithmetic of the latent route.

ComfyUI noise is unit-variance Gaussian noise in the model's diffusion latent space, the space NPNet was
trained in, so the network's output replaces the sampler's noise one for one (no VAE scale factor).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..npnet import perturbation_transfer
from ..npnet.conditioning import POLICIES, describe_width, fit_tokens
from ..npnet.model import check_noise
from .comfy_host import comfy_sample, comfy_utils, model_management
from .golden_noise_loader import GoldenNoiseError, NPNetWeights

RESOLUTION_MODES = ("strict", "perturbation_transfer")


@dataclass(frozen=True)
class GoldenSettings:
    """The Golden Noise widgets, shared by the NOISE, KSampler and latent-route nodes."""

    token_policy: str = "first_chunk"
    strength: float = 1.0
    resolution_mode: str = "strict"


@dataclass(frozen=True)
class Origin:
    """Which node a golden noise came from, so errors raised later, inside a sampler, can name it."""

    node: str
    node_id: str | None

    def error(self, input_name: str, cause: str) -> GoldenNoiseError:
        return GoldenNoiseError(self.node, self.node_id, input_name, cause)


def prompt_tokens(positive, weights: NPNetWeights, origin: Origin) -> torch.Tensor:
    """The positive conditioning's first entry [B, L, D], checked against the NPNet variant."""
    if not positive or not isinstance(positive[0][0], torch.Tensor):
        raise origin.error("positive", "the conditioning is empty; connect a text encoder's CONDITIONING.")
    tokens = positive[0][0]
    if tokens.ndim != 3:
        raise origin.error("positive", f"expected token states [B, L, D], got shape {tuple(tokens.shape)}.")
    width = tokens.shape[-1]
    if width != weights.embed_dim:
        fits = weights.variants_for_width(width)
        advice = (
            f"load {' or '.join(fits)} in Golden Noise Loader"
            if fits
            else "NPNet has no released weights for that model family"
        )
        raise origin.error(
            "positive",
            f"the conditioning is {width} wide, which looks like {describe_width(width)}, but the NPNET "
            f"({weights.name}) needs {weights.embed_dim}-wide {weights.family} conditioning; {advice}.",
        )
    return tokens


def blend(upstream: torch.Tensor, golden: torch.Tensor, strength: float) -> torch.Tensor:
    """(1 - s) * upstream + s * golden, rescaled per sample to the std the two endpoints have.

    Both endpoints are unit-variance noise, so the blend is too; without the rescale a partial strength
    would shrink the noise (the two are not perfectly correlated) and the sampler would start too clean.
    Strength 0 and 1 return the endpoints exactly.
    """
    if strength <= 0.0:
        return upstream
    if strength >= 1.0:
        return golden
    dims = tuple(range(1, upstream.ndim))
    mix = (1.0 - strength) * upstream + strength * golden
    target = (1.0 - strength) * upstream.std(dim=dims, keepdim=True) + strength * golden.std(
        dim=dims, keepdim=True
    )
    return mix * (target / mix.std(dim=dims, keepdim=True))


class SeedNoise:
    """The noise KSampler draws for a seed (`prepare_noise`, honouring `batch_index`), as a NOISE object."""

    def __init__(self, seed: int):
        self.seed = seed

    def generate_noise(self, input_latent: dict) -> torch.Tensor:
        return comfy_sample.prepare_noise(input_latent["samples"], self.seed, input_latent.get("batch_index"))


class GoldenNoise:
    """A ComfyUI NOISE: the upstream noise (same `.seed`), refined by NPNet for the positive prompt."""

    def __init__(self, upstream, weights: NPNetWeights, positive, settings: GoldenSettings, origin: Origin):
        if settings.token_policy not in POLICIES or settings.resolution_mode not in RESOLUTION_MODES:
            raise origin.error(
                "token_policy/resolution_mode", f"accepted: {POLICIES} and {RESOLUTION_MODES}."
            )
        self.upstream = upstream
        self.seed = upstream.seed  # SDE and ancestral samplers draw their own noise from this seed
        self.weights = weights
        self.tokens = prompt_tokens(positive, weights, origin)
        self.settings = settings
        self.origin = origin
        try:
            self.prompt = fit_tokens(self.tokens, family=weights.family, policy=settings.token_policy)
        except ValueError as error:
            raise origin.error("token_policy", str(error)) from error

    def generate_noise(self, input_latent: dict) -> torch.Tensor:
        samples = input_latent["samples"]
        noise = self.upstream.generate_noise(input_latent)
        if getattr(noise, "is_nested", False) or noise.ndim != 4:
            raise self.origin.error(
                "noise",
                f"the latent has shape {tuple(samples.shape)}; Golden Noise works "
                "on image latents [B, 4, H, W] (SDXL family, Hunyuan-DiT), not video.",
            )
        transfer = self.settings.resolution_mode == "perturbation_transfer"
        try:
            check_noise(noise, any_size=transfer)
        except ValueError as error:
            if noise.shape[1] != 4:
                raise self.origin.error("noise", str(error)) from error
            raise self.origin.error(
                "resolution_mode",
                f"{error} Here: use a 1024x1024 latent, or set resolution_mode to 'perturbation_transfer'.",
            ) from error
        golden = self._run(noise)
        return blend(noise.float(), golden.float(), self.settings.strength).to(
            device="cpu", dtype=samples.dtype
        )

    def _run(self, noise: torch.Tensor) -> torch.Tensor:
        model = self.weights.on_device()
        device = model_management.get_torch_device()
        prompt = self.prompt.to(device)
        # One sample at a time: a progress step each, Cancel honoured between samples, and peak
        # memory independent of the batch size (NPNet is per-sample, so the result is the same).
        pbar = comfy_utils.ProgressBar(noise.shape[0])
        out = []
        for i in range(noise.shape[0]):
            model_management.throw_exception_if_processing_interrupted()
            x = noise[i : i + 1].to(device=device, dtype=torch.float32)
            e = prompt[i : i + 1] if prompt.shape[0] > 1 else prompt
            try:
                if self.settings.resolution_mode == "perturbation_transfer":
                    out.append(perturbation_transfer(model, x, e).cpu())
                else:
                    out.append(model(x, e).cpu())
            except ValueError as error:
                raise self.origin.error("positive", str(error)) from error
            pbar.update(1)
        return torch.cat(out)


def start_latent(model, golden: torch.Tensor, latent_samples: torch.Tensor) -> torch.Tensor:
    """The raw-space LATENT that KSamplerAdvanced(add_noise=disable, start_at_step=0) starts from as if
    it had added `golden` itself at the model's largest sigma.

    Mirrors ComfyUI's sampler: it maps a non-empty latent into diffusion space (`process_latent_in`),
    then starts from `noise_scaling(sigmas[0], noise, latent, max_denoise)`, which for sigmas[0] = sigma_max
    is noise * sqrt(1 + sigma^2) + latent on EPS/V models and noise on flow models. With add_noise=disable
    its noise is zero, so the start is process_latent_in(what we return): we return process_latent_out of
    that starting point.
    """
    model_sampling = model.get_model_object("model_sampling")
    process_in = model.get_model_object("process_latent_in")
    process_out = model.get_model_object("process_latent_out")
    latent = latent_samples.float()
    if torch.count_nonzero(latent) > 0:  # the sampler leaves an empty latent unshifted, and so do we
        latent = process_in(latent)
    sigma = model_sampling.sigma_max.float().cpu()
    start = model_sampling.noise_scaling(sigma, golden.float(), latent, max_denoise=True)
    return process_out(start).to(latent_samples.dtype)
