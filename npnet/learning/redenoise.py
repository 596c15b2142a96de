"""Re-denoise sampling: the golden target x'_T of a noise x_T, for any model a host samples.

The paper's data collection (and Zigzag sampling, which it comes from) takes the first step of the
schedule twice: one deterministic DDIM step from the first sigma s0 to the next sigma s1 with a strong
guidance scale (`cfg_denoise`, 5.5 in the paper), then one DDIM *inversion* step from s1 back to s0 with
a weak one (`cfg_inversion`, 1.0: the conditional prediction alone). The point reached at s0 is the
golden noise, expressed back in the unit-variance space of x_T.

Written once for every parameterisation
    A host's sampler works on x = a(s)·x0 + b(s)·e, where x0 is the clean latent and e unit noise:
    a = 1, b = s for epsilon and v-prediction models in k-diffusion form (x = x0 + s·e), a = 1 - s,
    b = s for flow matching (x = (1 - s)·x0 + s·e). The host hands us that map as
    `scaling(sigma, noise, latent)` (ComfyUI's `model_sampling.noise_scaling`) and its denoiser as
    `denoise(x, sigma, cfg) -> x0_hat` (the model's prediction turned into a clean latent, whatever it
    predicts). A DDIM step keeps the predicted clean latent and the noise it implies and re-mixes them at
    the target sigma:

        e_hat = (x - a(s_from)·x0_hat) / b(s_from)
        x'    = a(s_to)·x0_hat + b(s_to)·e_hat          = scaling(s_to, e_hat, x0_hat)

    For epsilon models this is the DDIM update in k-diffusion variables; for flow matching it is the
    Euler step of the rectified-flow ODE, which is that family's DDIM. The inversion is the same update
    from s1 to s0 with the denoiser evaluated at s1. When the prediction does not depend on x and both
    scales are equal, the two steps cancel exactly and x'_T = x_T (a test checks this).

The unit-noise space
    The host starts sampling from x = start_scaling(x_T) (for epsilon models at the top of the schedule
    the noise is scaled by sqrt(1 + s0²), not s0). `to_unit_noise` undoes that scaling for the moved
    point, so the target has the statistics of x_T and is what NPNet learns to output.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Denoise = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
Scaling = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def ddim_step(
    x: torch.Tensor,
    denoised: torch.Tensor,
    sigma_from: torch.Tensor,
    sigma_to: torch.Tensor,
    scaling: Scaling,
) -> torch.Tensor:
    """Move x from sigma_from to sigma_to, keeping the clean latent `denoised` and the noise it implies."""
    zero = torch.zeros_like(x)
    signal = scaling(sigma_from, zero, denoised)  # a(s_from) · x0_hat
    unit = scaling(sigma_from, torch.ones_like(x), zero)  # b(s_from)
    return scaling(sigma_to, (x - signal) / unit, denoised)


def redenoise(
    x: torch.Tensor,
    sigma_start: torch.Tensor,
    sigma_next: torch.Tensor,
    denoise: Denoise,
    scaling: Scaling,
    cfg_denoise: float,
    cfg_inversion: float,
) -> torch.Tensor:
    """x (sampler space, at sigma_start) -> the point at sigma_start after one denoise and one inversion step."""
    if not float(sigma_next) > 0:
        raise ValueError("re-denoise needs a second sigma above zero: use at least 2 sampling steps")
    x_next = ddim_step(x, denoise(x, sigma_start, cfg_denoise), sigma_start, sigma_next, scaling)
    return ddim_step(x_next, denoise(x_next, sigma_next, cfg_inversion), sigma_next, sigma_start, scaling)


def to_unit_noise(
    noise: torch.Tensor, start: torch.Tensor, moved: torch.Tensor, noise_scale: torch.Tensor
) -> torch.Tensor:
    """The noise whose starting point is `moved`, given that `noise` started at `start`.

    The host's start is linear in the noise with slope `noise_scale` (b at s0, as the host scales the
    first step), so the difference of starting points divided by it is the difference of noises.
    """
    return noise + (moved - start) / noise_scale
