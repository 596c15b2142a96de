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

Two inversions (`INVERSIONS`)
    `paper` is the update above: the inversion evaluates the denoiser at s1 and moves s1 -> s0, in the
    host's own start convention. `released` reproduces the authors' released collection code for
    epsilon models on a DDPM schedule (`redenoise_released`): it starts where diffusers does
    (z_T = x_T in variance-preserving variables), evaluates the network for the inversion at timestep
    t0 instead of t1, and calls diffusers' `DDIMInverseScheduler.step(eps, t1, z1)`, which since
    diffusers 0.22 moves from timestep t1 - 1000/steps up to t1 (941 -> 961 at 50 steps), not from t1
    to t0. The result stays at t1's noise level and is used as x'_T as is. It is a larger perturbation
    in the same direction (x1.03 at 50 steps, x1.12 at 10 under an ideal denoiser).

The unit-noise space
    The host starts sampling from x = start_scaling(x_T) (for epsilon models at the top of the schedule
    the noise is scaled by sqrt(1 + s0²), not s0). `to_unit_noise` undoes that scaling for the moved
    point, so the target has the statistics of x_T and is what NPNet learns to output.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

INVERSIONS = ("paper", "released")

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


def redenoise_released(
    noise: torch.Tensor,
    sigma_start: float,
    sigma_next: float,
    sigma_back: float,
    denoise: Denoise,
    cfg_denoise: float,
    cfg_inversion: float,
) -> torch.Tensor:
    """The authors' released target for unit noise `noise` (epsilon models): see the module docstring.

    Written in the two variable sets the released code mixes: k-diffusion's x = x0 + s·e (what `denoise`
    takes, as the host's model wrapper does) and diffusers' variance-preserving z = x / sqrt(1 + s²).
    `sigma_back` is the sigma of timestep t1 - 1000/steps (of timestep 0 below that, as the SDXL
    scheduler's `set_alpha_to_one=False` gives), where the inverse scheduler believes z1 sits.
    """

    def vp(s: float) -> float:
        return (1.0 + s * s) ** 0.5

    x = noise * vp(sigma_start)  # diffusers starts from z_T = noise at t0
    x0_hat = denoise(x, torch.as_tensor(sigma_start), cfg_denoise)
    z1 = (x0_hat + sigma_next * (x - x0_hat) / sigma_start) / vp(sigma_next)  # DDIMScheduler.step t0 -> t1
    x_in = z1 * vp(sigma_start)  # the UNet sees z1 with timestep t0
    eps = (x_in - denoise(x_in, torch.as_tensor(sigma_start), cfg_inversion)) / sigma_start
    x0_back = z1 * vp(sigma_back) - sigma_back * eps  # DDIMInverseScheduler.step: z1 read at t1 - stride
    return (x0_back + sigma_next * eps) / vp(sigma_next)  # ... and moved to t1
