"""`golden_noise`: the one function a host calls to turn its starting noise into golden noise.

It validates everything once (the `npnet.inputs` checks), owns the batch loop (one sample at a time, so
peak memory does not grow with the batch, with progress and cancel between samples), and hands the
bare network only float32 tensors of its own shape on its own device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .conditioning import POLICIES, fit_checked
from .inputs import (
    InputError,
    check_batches,
    check_choice,
    check_noise,
    check_prompt_embeds,
    check_strength,
)
from .model import NPNet
from .resolution import perturbation_transfer

RESOLUTION_MODES = ("strict", "perturbation_transfer")

Progress = Callable[[int, int], None]


class Cancelled(RuntimeError):
    """`should_cancel` returned True between two samples; nothing was returned."""


def blend(upstream: torch.Tensor, golden: torch.Tensor, strength: float) -> torch.Tensor:
    """(1 - s) * upstream + s * golden, rescaled per sample to (1 - s) * std(upstream) + s * std(golden).

    The golden noise need not have unit variance (NPNet's output is the network's, not a normalised
    noise), so the blend's spread moves from the plain noise's to the golden noise's as s goes from 0 to
    1; without the rescale a partial strength would shrink the noise (the two are not perfectly
    correlated) and the sampler would start too clean. Strength 0 and 1 return the endpoints exactly.
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


class ConditionedNPNet:
    """A network bound to one prompt and the golden-noise settings, validated; call it on noise.

    Made by `condition`. Hosts whose noise arrives later than the prompt (ComfyUI's NOISE objects) make
    it when the prompt is known and call it when the noise is; the network may move devices between.
    """

    def __init__(
        self, model: NPNet, prompt: torch.Tensor, strength: float, transfer: bool, policy: str = "first_chunk"
    ) -> None:
        self.model, self.prompt, self.strength, self.transfer = model, prompt, strength, transfer
        self.policy = policy  # chain / average_outputs: `prompt` holds chunks [B, K, T, D]

    def _network(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        def once(x, e):
            return perturbation_transfer(self.model, x, e) if self.transfer else self.model(x, e)

        if self.policy == "chain":
            for k in range(e.shape[1]):
                x = once(x, e[:, k])
            return x
        if self.policy == "average_outputs":
            return torch.stack([once(x, e[:, k]) for k in range(e.shape[1])]).mean(dim=0)
        return once(x, e)

    @property
    def config(self):
        return self.model.config

    def __call__(
        self,
        noise: torch.Tensor,
        *,
        progress: Progress | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> torch.Tensor:
        """Golden noise for `noise` [B, C, H, W]; see `golden_noise`."""
        check_noise(noise, self.config, any_size=self.transfer)
        batch = noise.shape[0]
        check_batches(self.prompt.shape[0], batch)
        if self.strength == 0.0:
            return noise
        device = self.model.alpha.device
        prompt = self.prompt.to(device=device, dtype=torch.float32)
        out = []
        with torch.no_grad():
            for i in range(batch):
                if should_cancel is not None and should_cancel():
                    raise Cancelled(f"cancelled after {i} of {batch} samples")
                x = noise[i : i + 1].to(device=device, dtype=torch.float32)
                e = prompt[i : i + 1] if prompt.shape[0] > 1 else prompt
                golden = self._network(x, e)
                out.append(blend(x, golden, self.strength).to(device=noise.device))
                if progress is not None:
                    progress(i + 1, batch)
        result = torch.cat(out)
        if not torch.isfinite(result).all():
            raise InputError(
                "npnet",
                "the network turned finite noise into NaN or Inf values: its weights are broken (or were "
                "trained to diverge). Use other weights; the noise was not used.",
            )
        return result.to(dtype=noise.dtype)


@dataclass(frozen=True)
class GoldenSettings:
    """How a golden noise is made from a network and a prompt; every host holds its widgets as one of
    these. Checked at construction: a bad value raises InputError naming it ("strength", ...).

    token_policy: how L tokens become the network's T (see `npnet.fit_tokens`); strength: 0 returns the
    noise unchanged, 1 the golden noise, in between a blend whose spread lies between the two (`blend`); resolution_mode: "strict"
    accepts only the network's H x W, "perturbation_transfer" any size (see `npnet.resolution`).
    """

    token_policy: str = "first_chunk"
    strength: float = 1.0
    resolution_mode: str = "strict"

    def __post_init__(self) -> None:
        check_choice("token_policy", self.token_policy, POLICIES)
        check_choice("resolution_mode", self.resolution_mode, RESOLUTION_MODES)
        object.__setattr__(self, "strength", check_strength(self.strength))


def condition(
    model: NPNet,
    prompt_embeds: torch.Tensor,
    *,
    token_policy: str = "first_chunk",
    strength: float = 1.0,
    resolution_mode: str = "strict",
) -> ConditionedNPNet:
    """Validate the network, the prompt's token states [B or 1, L, D] and the settings (`GoldenSettings`,
    whose fields these keywords are); fit the tokens."""
    if not isinstance(model, NPNet):
        raise InputError(
            "npnet", f"model must be an npnet.NPNet (see npnet.load), got {type(model).__name__}."
        )
    settings = GoldenSettings(token_policy, strength, resolution_mode)
    check_prompt_embeds(prompt_embeds, model.config)
    prompt = fit_checked(prompt_embeds, model.config, settings.token_policy)
    return ConditionedNPNet(
        model,
        prompt,
        settings.strength,
        settings.resolution_mode == "perturbation_transfer",
        settings.token_policy,
    )


def golden_noise(
    model: NPNet,
    noise: torch.Tensor,
    prompt_embeds: torch.Tensor,
    *,
    token_policy: str = "first_chunk",
    strength: float = 1.0,
    resolution_mode: str = "strict",
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> torch.Tensor:
    """Golden noise for `noise` [B, C, H, W] and the prompt's token states `prompt_embeds` [B or 1, L, D].

    The settings are those of `condition`. progress(done, total) is called after each sample;
    should_cancel() is polled before each and raises `Cancelled` when it returns True. Computes in
    float32 on the model's device without autograd and returns the input's dtype and device.

    Raises `InputError` (a ValueError whose `.input` names the bad argument) for unusable inputs, and for
    weights that turn finite noise into NaN or Inf ("npnet"): never a non-finite result.
    """
    conditioned = condition(
        model, prompt_embeds, token_policy=token_policy, strength=strength, resolution_mode=resolution_mode
    )
    return conditioned(noise, progress=progress, should_cancel=should_cancel)
