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
