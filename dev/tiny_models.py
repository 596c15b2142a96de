"""Small models built from ComfyUI's and transformers' own classes with seeded random weights.

The learning-framework tests need what a user's graph has (MODEL, CLIP, VAE, a reward model) without
any download: a ComfyUI BaseModel (real model_sampling and latent format of SD1.5 or SD3) around a tiny
network whose prediction depends on the latent, the timestep and the prompt; ComfyUI's SD1 CLIP text
model at a tiny width with ComfyUI's own CLIP tokenizer; ComfyUI's TAESD as the VAE; and a transformers
CLIPModel with a tiny config, saved as a Hub repository folder for the reward loader.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import comfy.latent_formats
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.sd1_clip
import comfy.supported_models
import comfy.supported_models_base
import comfy.taesd.taesd
import torch

WIDTH = 32  # text encoder width, and so the conditioning's D
TEXT_CONFIG = {
    "architectures": ["CLIPTextModel"],
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "dropout": 0.0,
    "eos_token_id": 49407,
    "hidden_act": "quick_gelu",
    "hidden_size": WIDTH,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "model_type": "clip_text_model",
    "num_attention_heads": 2,
    "num_hidden_layers": 2,
    "pad_token_id": 1,
    "projection_dim": WIDTH,
    "torch_dtype": "float32",
    "vocab_size": 49408,
}
COMFY_TOKENIZER = Path(comfy.sd1_clip.__file__).parent / "sd1_tokenizer"


def randomise(module: torch.nn.Module, seed: int) -> None:
    """Seeded weights for modules built with ComfyUI's no-init ops (their parameters start uninitialised).
    The benchmarks' random SDXL-sized models use it too."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.fill_(1.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.copy_(
                    torch.randn(p.shape, generator=g)
                    * (0.02 if p.ndim < 2 else 1 / max(p[0].numel(), 1) ** 0.5)
                )


class TinyDenoiser(torch.nn.Module):
    """A prediction that depends on x, the timestep and the prompt, so guidance and re-denoise matter."""

    dtype = torch.float32

    def __init__(self, channels: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
        self.text = torch.nn.Linear(WIDTH, channels)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)

    def forward(self, x, timesteps=None, context=None, **kwargs):
        t = timesteps.float().view(-1, 1, 1, 1) / 1000.0
        c = self.text(context.float().mean(dim=1))[:, :, None, None]
        return (torch.tanh(self.conv(x.float()) + c) * (0.5 + t)).to(x.dtype)


FAMILIES = {  # name: (ComfyUI model config, model type, latent channels)
    "sd15": (comfy.supported_models.SD15, comfy.model_base.ModelType.EPS, 4),
    "sd3": (comfy.supported_models.SD3, comfy.model_base.ModelType.FLOW, 16),
}


def tiny_model(family: str = "sd15", seed: int = 0) -> comfy.model_patcher.ModelPatcher:
    config_cls, model_type, channels = FAMILIES[family]
    config = config_cls({"disable_unet_model_creation": True})
    model = comfy.model_base.BaseModel(config, model_type=model_type)
    model.diffusion_model = TinyDenoiser(channels, seed)
    device = comfy.model_management.get_torch_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=torch.device("cpu"))


class _TinyClipL(comfy.sd1_clip.SDClipModel):
    def __init__(self, device="cpu", dtype=None, model_options={}):  # noqa: B006 - ComfyUI's signature
        super().__init__(
            device=device,
            dtype=dtype,
            model_options=model_options,
            textmodel_json_config=dict(TEXT_CONFIG),
            return_projected_pooled=False,
        )


class _TinyClip(comfy.sd1_clip.SD1ClipModel):
    def __init__(self, device="cpu", dtype=None, model_options={}):  # noqa: B006 - ComfyUI's signature
        super().__init__(device=device, dtype=dtype, model_options=model_options, clip_model=_TinyClipL)


def tiny_clip(seed: int = 1) -> comfy.sd.CLIP:
    target = comfy.supported_models_base.ClipTarget(comfy.sd1_clip.SD1Tokenizer, _TinyClip)
    clip = comfy.sd.CLIP(target=target, model_options={"dtype": torch.float32})
    randomise(clip.cond_stage_model, seed)
    return clip


def tiny_vae(latent_channels: int = 4, seed: int = 2) -> comfy.sd.VAE:
    taesd = comfy.taesd.taesd.TAESD(latent_channels=latent_channels)
    randomise(taesd, seed)
    return comfy.sd.VAE(sd=taesd.state_dict())


def tiny_reward_repo(folder: Path, seed: int = 3) -> Path:
    """A transformers CLIPModel repo (config, safetensors weights, tokenizer, preprocessor), as on the Hub."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "vocab_size": 49408,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder, safe_serialization=True)
    for name in ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"):
        shutil.copy(COMFY_TOKENIZER / name, folder / name)
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "crop_size": {"height": 32, "width": 32},
                "do_center_crop": True,
                "do_normalize": True,
                "do_resize": True,
                "image_processor_type": "CLIPImageProcessor",
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711],
                "resample": 3,
                "size": {"shortest_edge": 32},
            }
        )
    )
    return folder
