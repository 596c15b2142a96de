"""Re-denoise sampling with ComfyUI's own guider and model_sampling, against independent formulas.

The references below are written in each family's textbook variables, not in ComfyUI's: DDIM on the
variance-preserving z = sqrt(abar) x0 + sqrt(1 - abar) e for the epsilon model, the Euler step of the
rectified-flow ODE dx/dsigma = v for the flow model. Only the network call is shared.
"""

from __future__ import annotations

import importlib

import pytest
import torch


@pytest.fixture(scope="module")
def rendering(comfy_inprocess):
    return importlib.import_module(comfy_inprocess.pack.__name__ + ".nodes.rendering")


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
    positive = r.encode("a red bicycle")
    noise = r.noise(7)
    got = r.golden_target(noise, positive, 5.5, 1.0, seed=7)

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
    positive = r.encode("a red bicycle")
    noise = r.noise(3)
    got = r.golden_target(noise, positive, 4.0, 1.5, seed=3)

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
    noise = r.noise(11)
    got = r.golden_target(noise, r.encode("anything"), 2.0, 2.0, seed=11)
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
