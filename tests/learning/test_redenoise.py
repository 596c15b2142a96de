"""Re-denoise sampling with ComfyUI's own guider and model_sampling, against independent formulas.

The references below are written in each family's textbook variables, not in ComfyUI's: DDIM on the
variance-preserving z = sqrt(abar) x0 + sqrt(1 - abar) e for the epsilon model, the Euler step of the
rectified-flow ODE dx/dsigma = v for the flow model. Only the network call is shared.
"""

from __future__ import annotations

import pytest
import torch


def renderer(rendering, model, clip, vae, steps=4, cfg=3.0):
    sampling = rendering.Sampling("blurry", 64, 64, "euler", "normal", steps, cfg)
    return rendering.Renderer("test", None, model, clip, vae, sampling)


def guided(model, x, sigma, cond, uncond, cfg):
    """The guided clean-latent prediction, from the network through BaseModel.apply_model."""
    s = torch.full((x.shape[0],), float(sigma))
    c = model.model.apply_model(x, s, c_crossattn=cond[0][0]).float()
    if cfg == 1.0:
        return c
    u = model.model.apply_model(x, s, c_crossattn=uncond[0][0]).float()
    return u + cfg * (c - u)


def test_epsilon_model_matches_ddim_in_vp_variables(comfy_inprocess, rendering, tiny):
    model, clip, vae = tiny.tiny_model("sd15"), tiny.tiny_clip(), tiny.tiny_vae(4)
    r = renderer(rendering, model, clip, vae)
    positive = r.encode_one("a red bicycle")
    noise = r.noise([7])
    got = r.redenoise_target(noise, positive, 5.5, 1.0, seed=7)

    s0, s1 = float(r.sigmas[0]), float(r.sigmas[1])

    def abar(s):
        return 1.0 / (1.0 + s * s)

    def to_x(z, s):  # k-diffusion's x = z / sqrt(abar); only to call the network at its input scale
        return z / abar(s) ** 0.5

    z0 = noise.float()  # at sigma_max ComfyUI scales unit noise by sqrt(1 + sigma^2): z_T = e
    x0_hat = guided(model, to_x(z0, s0), s0, positive, r.negative, 5.5)
    e_hat = (z0 - abar(s0) ** 0.5 * x0_hat) / (1 - abar(s0)) ** 0.5
    z1 = abar(s1) ** 0.5 * x0_hat + (1 - abar(s1)) ** 0.5 * e_hat
    x0_hat = guided(model, to_x(z1, s1), s1, positive, r.negative, 1.0)
    e_hat = (z1 - abar(s1) ** 0.5 * x0_hat) / (1 - abar(s1)) ** 0.5
    z0_new = abar(s0) ** 0.5 * x0_hat + (1 - abar(s0)) ** 0.5 * e_hat
    expected = z0_new  # the unit-noise space is z itself at the top of the schedule
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    assert (got - noise).abs().max() > 1e-3  # the step did move the noise


def test_flow_model_matches_rectified_flow_euler(comfy_inprocess, rendering, tiny):
    model, clip, vae = tiny.tiny_model("sd3"), tiny.tiny_clip(), tiny.tiny_vae(16)
    r = renderer(rendering, model, clip, vae)
    positive = r.encode_one("a red bicycle")
    noise = r.noise([3])
    got = r.redenoise_target(noise, positive, 4.0, 1.5, seed=3)

    s0, s1 = float(r.sigmas[0]), float(r.sigmas[1])
    x = s0 * noise.float()  # x = sigma e + (1 - sigma) x0, with an empty latent
    v = (x - guided(model, x, s0, positive, r.negative, 4.0)) / s0
    x1 = x + (s1 - s0) * v
    v1 = (x1 - guided(model, x1, s1, positive, r.negative, 1.5)) / s1
    x_back = x1 + (s0 - s1) * v1
    expected = x_back / s0
    assert r.latent.shape[1] == 16
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    assert (got - noise).abs().max() > 1e-3


class ConstantPrediction(torch.nn.Module):
    """A network whose output depends on nothing: not on x, the timestep or the prompt."""

    dtype = torch.float32

    def forward(self, x, timesteps=None, context=None, **kwargs):
        return torch.full_like(x, 0.3)


@pytest.mark.parametrize("family", ["sd15", "sd3"])
def test_equal_scales_and_an_x_independent_prediction_give_back_the_noise(
    comfy_inprocess, rendering, tiny, family
):
    model = tiny.tiny_model(family)
    model.model.diffusion_model = ConstantPrediction()
    channels = tiny.FAMILIES[family][2]
    r = renderer(rendering, model, tiny.tiny_clip(), tiny.tiny_vae(channels))
    noise = r.noise([11])
    got = r.redenoise_target(noise, r.encode_one("anything"), 2.0, 2.0, seed=11)
    assert torch.allclose(got, noise, atol=1e-5), (got - noise).abs().max()


def test_one_step_is_refused_with_the_input_named(comfy_inprocess, rendering, tiny):
    with pytest.raises(ValueError, match="'steps'.*at least 2"):
        renderer(rendering, tiny.tiny_model("sd15"), tiny.tiny_clip(), tiny.tiny_vae(4), steps=1)


def test_a_size_the_vae_cannot_take_is_refused(comfy_inprocess, rendering, tiny):
    with pytest.raises(ValueError, match="'width'.*multiple of 8"):
        rendering.Renderer(
            "test",
            None,
            tiny.tiny_model("sd15"),
            tiny.tiny_clip(),
            tiny.tiny_vae(4),
            rendering.Sampling("", 60, 64, "euler", "normal", 4, 3.0),
        )


# --- The authors' preset: DDIM "leading" timesteps, zero negative, and both inversions ----------------
#
# Written in diffusers' variables (z = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, integer timesteps), from
# the SD schedule's betas, with the network called on z and the timestep as the authors' UNet is.
# With 50 steps ComfyUI's ddim_uniform gives diffusers' DDIMScheduler timesteps for SDXL's config
# ("leading", steps_offset 1): 981, 961, ..., 1.


def alphas_cumprod() -> torch.Tensor:
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def eps_of(model, z, t, cond, cfg):
    """The guided noise prediction at integer timestep t, with the zero negative."""
    net = model.model.diffusion_model
    ts = torch.full((z.shape[0],), float(t))
    c = net(z.float(), ts, context=cond).double()
    if cfg == 1.0:
        return c
    u = net(z.float(), ts, context=torch.zeros_like(cond)).double()
    return u + cfg * (c - u)


def ddim_step(eps, z, a_from, a_to):
    """diffusers' DDIMScheduler.step / DDIMInverseScheduler.step with eta 0, epsilon prediction."""
    x0 = (z - (1 - a_from) ** 0.5 * eps) / a_from**0.5
    return a_to**0.5 * x0 + (1 - a_to) ** 0.5 * eps


def authors_renderer(rendering, tiny, steps=50):
    model, clip, vae = tiny.tiny_model("sd15"), tiny.tiny_clip(), tiny.tiny_vae(4)
    sampling = rendering.Sampling("", 64, 64, "ddim", "ddim_uniform", steps, 5.5, zero_negative=True)
    return model, rendering.Renderer("test", None, model, clip, vae, sampling)


@pytest.mark.parametrize("steps", [50, 10])
def test_released_inversion_equals_the_authors_two_diffusers_calls(comfy_inprocess, rendering, tiny, steps):
    model, r = authors_renderer(rendering, tiny, steps)
    positive = r.encode_one("a red bicycle")
    noise = r.noise([5])
    got = r.redenoise_target(noise, positive, 5.5, 1.0, seed=5, inversion="released")

    abar, stride = alphas_cumprod(), 1000 // steps
    t0, t1 = 1000 - stride + 1, 1000 - 2 * stride + 1  # leading spacing, offset 1
    cond = positive[0][0]
    z0 = noise.double()  # diffusers: latents = randn * init_noise_sigma (1.0)
    # pipe: scheduler.step(eps(z_T, t0), t0, z_T) -> t1
    z1 = ddim_step(eps_of(model, z0, t0, cond, 5.5), z0, abar[t0], abar[t1])
    # forward_ours: the UNet on z1 at timestep t0 (cfg 1.0), then inv_scheduler.step(eps, timesteps[1], z1),
    # which reads z1 at t1 - stride and moves it to t1
    eps = eps_of(model, z1, t0, cond, 1.0)
    expected = ddim_step(eps, z1, abar[t1 - stride], abar[t1])
    assert [round(float(model.get_model_object("model_sampling").timestep(s))) for s in r.sigmas[:2]] == [
        t0,
        t1,
    ]
    assert torch.allclose(got.double(), expected, atol=1e-4), (got.double() - expected).abs().max()
    assert (got - noise).abs().max() > 1e-3


def test_paper_inversion_with_the_authors_preset_is_the_textbook_pair(comfy_inprocess, rendering, tiny):
    model, r = authors_renderer(rendering, tiny)
    positive = r.encode_one("a red bicycle")
    noise = r.noise([5])
    got = r.redenoise_target(noise, positive, 5.5, 1.0, seed=5, inversion="paper")

    abar = alphas_cumprod()
    t0, t1 = 981, 961
    cond = positive[0][0]
    # ComfyUI starts below the top of the schedule at x = sigma0 * noise, i.e. z = sqrt(1 - abar) * noise
    z0 = (1 - abar[t0]) ** 0.5 * noise.double()
    z1 = ddim_step(eps_of(model, z0, t0, cond, 5.5), z0, abar[t0], abar[t1])  # t0 -> t1
    z0_new = ddim_step(eps_of(model, z1, t1, cond, 1.0), z1, abar[t1], abar[t0])  # t1 -> t0, at t1
    expected = z0_new / (1 - abar[t0]) ** 0.5
    assert torch.allclose(got.double(), expected, atol=1e-4), (got.double() - expected).abs().max()
    released = r.redenoise_target(noise, positive, 5.5, 1.0, seed=5, inversion="released")
    assert (released - got).abs().max() > 1e-3  # the two inversions are told apart


def test_the_zero_negative_is_conditioning_zero_out(comfy_inprocess, rendering, tiny):
    _, r = authors_renderer(rendering, tiny)
    ((cond, extra),) = r.negative
    assert cond.shape == r.encode_one("")[0][0].shape and not cond.any()
    assert r.sampling.as_dict()["negative_conditioning"] == "zero"


def test_released_inversion_is_refused_for_a_flow_model(comfy_inprocess, rendering, tiny):
    model, clip, vae = tiny.tiny_model("sd3"), tiny.tiny_clip(), tiny.tiny_vae(16)
    r = renderer(rendering, model, clip, vae)
    with pytest.raises(ValueError, match="'inversion'.*epsilon-prediction"):
        r.redenoise_target(r.noise([1]), r.encode_one("x"), 5.5, 1.0, seed=1, inversion="released")
