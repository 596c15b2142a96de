"""Test-only nodes for the Golden Noise tests: synthetic inputs in, recorded noise out.

- GoldenNoiseProbeConditioning: seeded random CONDITIONING shaped like ComfyUI's SDXL or Hunyuan-DiT
  text encoders ([1, 77*k, D] + pooled_output).
- GoldenNoiseProbeModel: a real ComfyUI model (BaseModel + ModelPatcher, real model_sampling and latent
  format) whose network predicts zero noise, so every sampler leaves its starting point unchanged and the
  output latent is process_latent_out(start): the start becomes observable without any checkpoint.
- GoldenNoiseProbeGuider: a GUIDER for SamplerCustomAdvanced that saves the noise and seed it receives
  to output/<name>.safetensors and returns the latent.
"""

from __future__ import annotations

import json
import os

import comfy.latent_formats
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.supported_models
import folder_paths
import torch
from comfy_api.latest import io
from safetensors.torch import save_file

CATEGORY = "golden_noise_testing"
WIDTHS = {"sdxl": (2048, 1280), "dit": (1024, 1024)}


class GoldenNoiseProbeConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GoldenNoiseProbeConditioning",
            category=CATEGORY,
            inputs=[
                io.Int.Input("seed", default=0, min=0, max=2**31),
                io.Combo.Input("family", options=list(WIDTHS)),
                io.Int.Input("chunks", default=1, min=1, max=8),
            ],
            outputs=[io.Conditioning.Output()],
        )

    @classmethod
    def execute(cls, seed, family, chunks) -> io.NodeOutput:
        return io.NodeOutput(probe_conditioning(seed, family, chunks))


def probe_conditioning(seed: int, family: str, chunks: int = 1) -> list:
    """The CONDITIONING the probe node emits (tests rebuild it in-process to compute expectations)."""
    width, pooled = WIDTHS[family]
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(1, 77 * chunks, width, generator=g)
    return [[tokens, {"pooled_output": torch.randn(1, pooled, generator=g)}]]


class ZeroEps(torch.nn.Module):
    """A diffusion network that predicts zero noise: denoised == input at every step."""

    dtype = torch.float32

    def forward(self, x, timesteps=None, **kwargs):
        return torch.zeros_like(x)


def probe_model(family: str) -> comfy.model_patcher.ModelPatcher:
    config_cls = {"sdxl": comfy.supported_models.SDXL, "sd3": comfy.supported_models.SD3}[family]
    config = config_cls({"disable_unet_model_creation": True})
    model_type = comfy.model_base.ModelType.EPS if family == "sdxl" else comfy.model_base.ModelType.FLOW
    model = comfy.model_base.BaseModel(config, model_type=model_type)
    model.diffusion_model = ZeroEps()
    device = comfy.model_management.get_torch_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=torch.device("cpu"))


class GoldenNoiseProbeModel(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GoldenNoiseProbeModel",
            category=CATEGORY,
            inputs=[io.Combo.Input("family", options=["sdxl", "sd3"])],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def execute(cls, family) -> io.NodeOutput:
        return io.NodeOutput(probe_model(family))


class RecordingGuider:
    def __init__(self, model_patcher, name: str):
        self.model_patcher = model_patcher
        self.name = name

    def sample(
        self,
        noise,
        latent_image,
        sampler,
        sigmas,
        denoise_mask=None,
        callback=None,
        disable_pbar=False,
        seed=None,
    ):
        out = os.path.join(folder_paths.get_output_directory(), f"{self.name}.safetensors")
        save_file(
            {"noise": noise.contiguous(), "seed": torch.tensor([seed], dtype=torch.int64)},
            out,
            metadata={
                "noise_dtype": str(noise.dtype),
                "noise_device": str(noise.device),
                "seed": json.dumps(seed),
            },
        )
        return latent_image.float()


class GoldenNoiseProbeGuider(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GoldenNoiseProbeGuider",
            category=CATEGORY,
            inputs=[io.Model.Input("model"), io.String.Input("name", default="recorded_noise")],
            outputs=[io.Guider.Output()],
        )

    @classmethod
    def execute(cls, model, name) -> io.NodeOutput:
        return io.NodeOutput(RecordingGuider(model, name))


class GoldenNoiseProbeSaveLatent(io.ComfyNode):
    """Saves a LATENT's samples to output/<name>.safetensors (an output node, so the graph runs)."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GoldenNoiseProbeSaveLatent",
            category=CATEGORY,
            inputs=[io.Latent.Input("latent"), io.String.Input("name", default="latent")],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, latent, name) -> io.NodeOutput:
        out = os.path.join(folder_paths.get_output_directory(), f"{name}.safetensors")
        save_file({"samples": latent["samples"].float().contiguous()}, out)
        return io.NodeOutput()


NODES: list[type] = [
    GoldenNoiseProbeConditioning,
    GoldenNoiseProbeModel,
    GoldenNoiseProbeGuider,
    GoldenNoiseProbeSaveLatent,
]
