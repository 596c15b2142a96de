"""The golden NOISE object the nodes hand to ComfyUI's samplers, and the arithmetic of the latent route.

ComfyUI noise is unit-variance Gaussian noise in the model's diffusion latent space, the space NPNet was
trained in, so the network's output replaces the sampler's noise one for one (no VAE scale factor).
The golden noise itself is `npnet.condition` / `npnet.golden_noise`: this module only translates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .. import npnet
from .comfy_host import progress_and_cancel
from .errors import GoldenNoiseError
from .npnet_weights import NPNetWeights, wired_weights


@dataclass(frozen=True)
class Origin:
    """Which node a golden noise came from, so errors raised later, inside a sampler, can name it."""

    node: str
    node_id: str | None

    def error(self, input_name: str, cause: str) -> GoldenNoiseError:
        return GoldenNoiseError(self.node, self.node_id, input_name, cause)

    def settings(self, token_policy: str, strength: float, resolution_mode: str) -> npnet.GoldenSettings:
        """The Golden Noise widgets as npnet's settings; a bad value is an error on this node's widget."""
        try:
            return npnet.GoldenSettings(token_policy, strength, resolution_mode)
        except npnet.InputError as error:
            raise self.translate(error) from error

    def translate(self, error: npnet.InputError) -> GoldenNoiseError:
        """npnet's error, under the name of the node input the user can change."""
        if error.input == "prompt_embeds":
            return self.error("positive", f"{error} Load matching weights in Golden Noise Loader.")
        return self.error(error.input, str(error))


def golden_maker(
    origin: Origin, weights: NPNetWeights, token_policy: str, strength: float, resolution_mode: str
):
    """The one way a node builds golden noise: its Golden Noise widgets checked once (an error names the
    node's widget), then make(upstream NOISE, positive CONDITIONING) -> GoldenNoise."""
    settings = origin.settings(token_policy, strength, resolution_mode)
    weights = wired_weights(weights, origin.error, "npnet")

    def make(upstream, positive) -> GoldenNoise:
        return GoldenNoise(upstream, weights, positive, settings, origin)

    return make


def prompt_states(positive) -> torch.Tensor | None:
    """The token states [B, L, D] of the positive conditioning's first entry (None if there are none)."""
    if not positive or not isinstance(positive[0][0], torch.Tensor):
        return None
    return positive[0][0]


class GivenNoise:
    """A ComfyUI NOISE that hands out noise already drawn for `seed` (a batch's slice), so a GoldenNoise
    can refine noise the caller drew."""

    def __init__(self, seed: int, noise: torch.Tensor):
        self.seed, self.noise = seed, noise

    def generate_noise(self, input_latent: dict) -> torch.Tensor:
        return self.noise


class GoldenNoise:
    """A ComfyUI NOISE: the upstream noise (same `.seed`), refined by NPNet for the positive prompt."""

    def __init__(
        self, upstream, weights: NPNetWeights, positive, settings: npnet.GoldenSettings, origin: Origin
    ):
        self.upstream = upstream
        self.seed = upstream.seed  # SDE and ancestral samplers draw their own noise from this seed
        self.weights = weights
        self.origin = origin
        tokens = prompt_states(positive)
        if tokens is None:
            raise origin.error(
                "positive", "the conditioning is empty; connect a text encoder's CONDITIONING."
            )
        try:
            self.conditioned = npnet.condition(weights.model, tokens, **asdict(settings))
        except npnet.InputError as error:
            raise origin.translate(error) from error

    def generate_noise(self, input_latent: dict) -> torch.Tensor:
        samples = input_latent["samples"]
        noise = self.upstream.generate_noise(input_latent)
        self.weights.on_device()  # model management moves the network to ComfyUI's device
        try:
            with progress_and_cancel(1, self.origin.node_id) as (progress, cancel):
                golden = self.conditioned(noise, progress=progress, should_cancel=cancel)
        except npnet.InputError as error:
            raise self.origin.translate(error) from error
        return golden.to(device="cpu", dtype=samples.dtype)


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
