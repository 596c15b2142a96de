"""Checkpoints as the webui's processing code sees them: the `is_*` flags and get_learned_conditioning.

SDXL (Forge backend/diffusion_engine/sdxl.py, A1111 sd_models_xl.py) returns {"crossattn": [n, 77·k, 2048],
"vector": [n, 2816]}; SD1.x a [n, 77, 768] tensor; Forge's Flux engine {"crossattn": [n, 256, 4096], ...}
with no SD flag. The states here are seeded by the text, so each prompt has its own.
"""

from __future__ import annotations

import zlib

import torch


def _states(text: str, shape) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(zlib.crc32(text.encode())))


class StableDiffusionXL:
    is_sdxl, is_sd1, is_sd2, is_sd3 = True, False, False, False

    def get_learned_conditioning(self, texts):
        return {
            "crossattn": torch.stack([_states(t, (77, 2048)) for t in texts]),
            "vector": torch.stack([_states(t + "#pooled", (2816,)) for t in texts]),
        }


class StableDiffusion:
    is_sdxl, is_sd1, is_sd2, is_sd3 = False, True, False, False

    def get_learned_conditioning(self, texts):
        return torch.stack([_states(t, (77, 768)) for t in texts])


class Flux:
    is_sdxl, is_sd1, is_sd2, is_sd3 = False, False, False, False

    def get_learned_conditioning(self, texts):
        return {"crossattn": torch.stack([_states(t, (256, 4096)) for t in texts])}


class _Embedders:
    def __init__(self, *names):
        self.embedders = [type(name, (), {})() for name in names]


class SgmStableDiffusionXL(StableDiffusionXL):
    """A1111 1.10 / Classic SDXL base as sgm loads it: `conditioner.embedders` hold CLIP-L
    (FrozenCLIPEmbedder; A1111's hijack wraps it as FrozenCLIPEmbedderForSDXLWithCustomWords, Classic as
    CLIP_SD_XL_L) and OpenCLIP-bigG (FrozenOpenCLIPEmbedder2)."""

    def __init__(self, clip_l: str = "FrozenCLIPEmbedder"):
        self.conditioner = _Embedders(clip_l, "FrozenOpenCLIPEmbedder2", "ConcatTimestepEmbedderND")
        self.is_sdxl_inpaint = False


class SgmStableDiffusionXLRefiner:
    """The SDXL refiner on A1111 1.10 / Classic: `is_sdxl` is set for it too (A1111 sets it from
    `hasattr(model, 'conditioner')`), and its conditioner has only the OpenCLIP-bigG text embedder."""

    is_sdxl, is_sd1, is_sd2, is_sd3, is_sdxl_inpaint = True, False, False, False, False

    def __init__(self):
        self.conditioner = _Embedders("FrozenOpenCLIPEmbedder2", "ConcatTimestepEmbedderND")

    def get_learned_conditioning(self, texts):
        return {
            "crossattn": torch.stack([_states(t, (77, 1280)) for t in texts]),
            "vector": torch.stack([_states(t + "#pooled", (2560,)) for t in texts]),
        }


class StableDiffusionXLRefiner(SgmStableDiffusionXLRefiner):
    """Forge main backend/diffusion_engine/sdxl.py:157 (dfdcbab6): its own engine class, `is_sdxl = True`
    (:201), no conditioner attribute; `is_inpaint` from the base engine."""

    is_inpaint = False

    def __init__(self):
        pass


class ForgeStableDiffusionXLInpaint(StableDiffusionXL):
    """Forge main's SDXL engine for an inpainting checkpoint: `is_inpaint` (backend/diffusion_engine/base.py:28),
    no `is_sdxl_inpaint`."""

    is_inpaint = True
