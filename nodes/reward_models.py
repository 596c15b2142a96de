"""Human-preference reward models in ComfyUI: the `reward_models` folder, first-use download, scoring.

A reward model is a CLIP image-text model in the `transformers` format (a ComfyUI dependency, so no new
library): PickScore (Kirstain et al. 2023) and HPSv2 (Wu et al. 2023) as published on the Hub, HPSv2.1
(the paper's filter, published only in open_clip format: converted once on download by
`npnet.learning.clip_conversion`), or any CLIP folder of the user's in `models/reward_models/<name>/`.
The score is what each model's authors compute: PickScore the CLIP logit, logit_scale·cos(image, text);
HPSv2 and HPSv2.1 the cosine itself. A REWARD_MODEL wire carries a `ClipReward`, whose `score(images, prompts)`
is the host-free interface collection and evaluation call: one float per image.

The network is wrapped in ComfyUI's ModelPatcher and loaded through model management before scoring,
so it shares the GPU with the diffusion model like any other model and can be offloaded.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from ..npnet import Cancelled, download_folder
from ..npnet.learning import convert_open_clip_checkpoint
from .comfy_host import (
    folder_paths,
    model_management,
    model_patcher,
    progress_and_cancel,
    register_model_folder,
)
from .errors import GoldenNoiseError

log = logging.getLogger(__name__)

FOLDER = "reward_models"
NODE = "Reward Model Loader"


@dataclass(frozen=True)
class RewardSpec:
    label: str
    repo: str  # the model's weights and config
    processor_repo: str  # tokenizer and image preprocessing (the CLIP it was fine-tuned from)
    score: str  # "logit": logit_scale * cos, "cosine": cos
    folder: str
    open_clip_file: str | None = None  # published as this open_clip checkpoint: converted once


PUBLISHED = {
    spec.label: spec
    for spec in (
        RewardSpec(
            "PickScore",
            "yuvalkirstain/PickScore_v1",
            "laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
            "logit",
            "PickScore_v1",
        ),
        # HPSv2 converted to transformers' CLIPModel by a third party; HPSv2.1 (the paper's filter) is
        # published only in open_clip format (ViT-H-14), so it is converted here, once.
        RewardSpec("HPSv2", "adams-story/HPSv2-hf", "adams-story/HPSv2-hf", "cosine", "HPSv2"),
        RewardSpec(
            "HPSv2.1",
            "xswu/HPSv2",
            "laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
            "cosine",
            "HPSv2.1",
            "HPS_v2.1_compressed.pt",
        ),
    )
}
PAPER_REWARD = "HPSv2.1"
_MODEL_FILES = ("config.json",)
_PROCESSOR_FILES = (
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
)


def default_folder() -> Path:
    return Path(folder_paths.models_dir) / FOLDER


def register_folder() -> None:
    """Declare `models/reward_models` (plus any `reward_models:` folders of extra_model_paths.yaml)."""
    register_model_folder(FOLDER, str(default_folder()), set())


def _local_models() -> dict[str, Path]:
    """Folders with a CLIP config in any reward_models folder (the published ones included, once there)."""
    found = {}
    for root in folder_paths.get_folder_paths(FOLDER):
        root = Path(root)
        if root.is_dir():
            for sub in sorted(root.iterdir()):
                if (sub / "config.json").is_file() and not sub.name.startswith("."):
                    found.setdefault(sub.name, sub)
    return found


def choices() -> list[str]:
    published = {spec.folder for spec in PUBLISHED.values()}
    return list(PUBLISHED) + [name for name in _local_models() if name not in published]


def default_choice() -> str:
    """The paper's filter, HPSv2.1, once it is on disk; before that PickScore (a smaller first download)."""
    return PAPER_REWARD if PUBLISHED[PAPER_REWARD].folder in _local_models() else "PickScore"


def _pick_model(files: list[str]) -> list[str]:
    # Weights as safetensors when the repo has them; transformers reads a .bin with weights_only.
    weights = [f for f in files if f == "model.safetensors"] or [f for f in files if f == "pytorch_model.bin"]
    return [f for f in files if f in _MODEL_FILES] + weights


def _pick_processor(files: list[str]) -> list[str]:
    return [f for f in files if f in _PROCESSOR_FILES]


def resolve(choice: str, node_id: str | None) -> tuple[Path, Path, str]:
    """(model folder, processor folder, score kind) for a combo choice; published models download once."""
    spec = PUBLISHED.get(choice)
    if spec is None:
        folder = _local_models().get(choice)
        if folder is None:
            raise GoldenNoiseError(
                NODE, node_id, "reward", f"{choice!r} is not a folder with a config.json in {_folders()}."
            )
        return folder, folder, "cosine"
    base = _local_models().get(spec.folder, default_folder() / spec.folder)
    with progress_and_cancel(1, node_id) as (progress, cancel):
        try:
            if spec.processor_repo == spec.repo:
                model = processor = download_folder(
                    spec.repo,
                    base,
                    lambda files: _pick_model(files) + _pick_processor(files),
                    progress,
                    cancel,
                )
            else:
                model = (
                    _converted(spec, base, progress, cancel)
                    if spec.open_clip_file is not None
                    else download_folder(spec.repo, base, _pick_model, progress, cancel)
                )
                processor = download_folder(
                    spec.processor_repo,
                    base.with_name(base.name + "-processor"),
                    _pick_processor,
                    progress,
                    cancel,
                )
        except Cancelled:
            raise
        except Exception as error:  # offline, stalled, network, Hub: the message says what to fetch and where
            raise GoldenNoiseError(NODE, node_id, "reward", f"{choice} is not available: {error}") from error
    return model, processor, spec.score


def _converted(spec: RewardSpec, base: Path, progress, cancel) -> Path:
    """`base` holding the transformers conversion of the spec's open_clip checkpoint, made once: the
    checkpoint is downloaded beside it, converted, and removed (only the conversion is loaded)."""
    if (base / "config.json").is_file():
        return base
    raw = download_folder(
        spec.repo,
        base.with_name(base.name + "-open_clip"),
        lambda files: [f for f in files if f == spec.open_clip_file],
        progress,
        cancel,
    )
    log.info(
        "converting %s (open_clip) to transformers' CLIPModel in %s (once)", raw / spec.open_clip_file, base
    )
    convert_open_clip_checkpoint(raw / spec.open_clip_file, base)
    shutil.rmtree(raw, ignore_errors=True)
    return base


def _folders() -> str:
    return ", ".join(folder_paths.get_folder_paths(FOLDER))


class _Held(torch.nn.Module):
    """The CLIPModel inside a plain module: ModelPatcher assigns `.device` on what it manages, which
    transformers models expose as a read-only property."""

    def __init__(self, clip: torch.nn.Module):
        super().__init__()
        self.clip = clip


class ClipReward:
    """score(images [B, H, W, 3] in 0..1, prompts) -> [B] float32 on the CPU."""

    def __init__(self, name: str, model_dir: Path, processor_dir: Path, kind: str):
        from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

        self.name, self.kind = name, kind
        offload = model_management.unet_offload_device()
        model = CLIPModel.from_pretrained(model_dir, torch_dtype=torch.float32).eval().to(offload)
        self.patcher = model_patcher.ModelPatcher(
            _Held(model), load_device=model_management.get_torch_device(), offload_device=offload
        )
        self.tokenizer = AutoTokenizer.from_pretrained(processor_dir)
        image = CLIPImageProcessor.from_pretrained(processor_dir)
        self.size = _edge(image.size)
        self.crop = _edge(image.crop_size)
        self.mean = torch.tensor(image.image_mean).view(1, 3, 1, 1)
        self.std = torch.tensor(image.image_std).view(1, 3, 1, 1)

    def _pixels(self, images: torch.Tensor, device) -> torch.Tensor:
        """CLIP's preprocessing on tensors: shortest side to `size` (bicubic), centre crop, normalise."""
        x = images.movedim(-1, 1).to(device, torch.float32)
        h, w = x.shape[-2:]
        scale = self.size / min(h, w)
        x = torch.nn.functional.interpolate(
            x,
            size=(max(self.crop, int(h * scale)), max(self.crop, int(w * scale))),
            mode="bicubic",
            antialias=True,
            align_corners=False,
        ).clamp(0, 1)
        top, left = (x.shape[-2] - self.crop) // 2, (x.shape[-1] - self.crop) // 2
        x = x[..., top : top + self.crop, left : left + self.crop]
        return (x - self.mean.to(device)) / self.std.to(device)

    @torch.no_grad()
    def score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return self.value(images, prompts).cpu()

    def value(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """`score` with gradients to the images, on the model's device (Train Golden Noise (reward))."""
        if len(prompts) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(prompts)} prompts")
        model_management.load_models_gpu([self.patcher])
        model = self.patcher.model.clip
        device = next(model.parameters()).device
        text = self.tokenizer(prompts, padding=True, truncation=True, max_length=77, return_tensors="pt").to(
            device
        )
        image_embeds = _projected(model.get_image_features(pixel_values=self._pixels(images, device)))
        text_embeds = _projected(model.get_text_features(**text))
        cos = torch.nn.functional.cosine_similarity(image_embeds.float(), text_embeds.float(), dim=-1)
        if self.kind == "logit":
            cos = model.logit_scale.exp().float() * cos
        return cos


def _projected(features) -> torch.Tensor:
    """transformers 4 returns the projected embeddings; 5 an output whose pooler_output holds them."""
    return features if isinstance(features, torch.Tensor) else features.pooler_output


def _edge(size) -> int:
    """An image processor's size setting ({"shortest_edge": n}, {"height": n, ...}, a SizeDict or n) as one number."""
    if isinstance(size, int):
        return size
    if isinstance(size, dict):
        return int(size.get("shortest_edge") or size.get("height"))
    return int(getattr(size, "shortest_edge", None) or size.height)


def load_reward(choice: str, node_id: str | None = None) -> ClipReward:
    model_dir, processor_dir, kind = resolve(choice, node_id)
    try:
        return ClipReward(choice, model_dir, processor_dir, kind)
    except Exception as error:  # a damaged or foreign folder: say which, never a traceback
        raise GoldenNoiseError(
            NODE, node_id, "reward", f"{choice} in {model_dir} could not be loaded as a CLIP model: {error}"
        ) from error
