"""An open_clip CLIP checkpoint (HPSv2.1's format) as a transformers `CLIPModel` folder.

The paper filters its dataset with HPSv2.1, which is published only as an open_clip ViT-H-14 state dict
(`HPS_v2.1_compressed.pt`, {"state_dict": ...}). The pack scores rewards with transformers' CLIPModel (a
ComfyUI dependency already), so the checkpoint is converted once: the same tensors under transformers'
names, the fused attention input projection split into q, k and v, and the two projections transposed.
Nothing here imports open_clip or transformers: the result is a state dict and a config.json.

open_clip -> transformers, for the text tower (prefix `text_model.`) and the visual one (`visual.` ->
`vision_model.`):
    transformer.resblocks.i.ln_1 / ln_2          encoder.layers.i.layer_norm1 / layer_norm2
    ... attn.in_proj_weight / in_proj_bias        ... self_attn.{q,k,v}_proj (split in three)
    ... attn.out_proj                             ... self_attn.out_proj
    ... mlp.c_fc / mlp.c_proj                     ... mlp.fc1 / mlp.fc2
    token_embedding, positional_embedding         embeddings.token_embedding, embeddings.position_embedding
    ln_final                                      final_layer_norm
    visual.conv1, class_embedding, positional_embedding   embeddings.patch_embedding, class_embedding, position_embedding
    visual.ln_pre / ln_post                       pre_layrnorm (sic) / post_layernorm
    text_projection, visual.proj (x @ P)          text_projection, visual_projection (Linear: P transposed)
The towers use exact GELU and LayerNorm eps 1e-5, as open_clip's ViT-H-14 does. Head counts are not in
the tensors' shapes: ViT-H-14 has 16 in both towers (head width 80 and 64).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..files import umask

LAYER = re.compile(r"^(?P<tower>visual\.)?transformer\.resblocks\.(?P<i>\d+)\.(?P<rest>.+)$")
LAYER_PARTS = {
    "ln_1": "layer_norm1",
    "ln_2": "layer_norm2",
    "attn.out_proj": "self_attn.out_proj",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
}
DIRECT = {
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final.weight": "text_model.final_layer_norm.weight",
    "ln_final.bias": "text_model.final_layer_norm.bias",
    "logit_scale": "logit_scale",
    "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "visual.class_embedding": "vision_model.embeddings.class_embedding",
    "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
    "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "visual.ln_post.weight": "vision_model.post_layernorm.weight",
    "visual.ln_post.bias": "vision_model.post_layernorm.bias",
}
TRANSPOSED = {"text_projection": "text_projection.weight", "visual.proj": "visual_projection.weight"}


class ConversionError(ValueError):
    """The file is not an open_clip CLIP checkpoint of the layout this converter knows."""


def open_clip_state_dict(raw: object) -> dict[str, torch.Tensor]:
    """The model tensors of a loaded open_clip checkpoint: {"state_dict": ...} or the dict itself, with a
    DataParallel "module." prefix removed."""
    state = raw.get("state_dict", raw) if isinstance(raw, Mapping) else None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConversionError("expected a dict of tensors (or {'state_dict': ...}) saved by open_clip")
    return {key.removeprefix("module."): value for key, value in state.items()}


def convert(
    state_dict: Mapping[str, torch.Tensor], vision_heads: int = 16, text_heads: int = 16
) -> tuple[dict[str, torch.Tensor], dict]:
    """(transformers CLIPModel state dict, its config.json as a dict) for an open_clip CLIP state dict."""
    missing = [key for key in (*DIRECT, *TRANSPOSED) if key not in state_dict]
    if missing:
        raise ConversionError(f"not an open_clip CLIP checkpoint: no {', '.join(missing[:4])}")
    out: dict[str, torch.Tensor] = {}
    layers = {"text": set(), "vision": set()}
    for key, value in state_dict.items():
        value = value.float()
        if key in DIRECT:
            out[DIRECT[key]] = value.reshape(()) if key == "logit_scale" else value
            continue
        if key in TRANSPOSED:
            out[TRANSPOSED[key]] = value.t().contiguous()
            continue
        match = LAYER.match(key)
        if match is None:
            if key == "attn_mask" or key.endswith(".attn_mask"):
                continue  # a causal-mask buffer some open_clip versions saved
            raise ConversionError(f"unexpected tensor {key!r} for an open_clip CLIP checkpoint")
        tower = "vision" if match["tower"] else "text"
        i, rest = int(match["i"]), match["rest"]
        layers[tower].add(i)
        prefix = f"{tower}_model.encoder.layers.{i}."
        if rest.startswith("attn.in_proj_"):
            kind = rest.removeprefix("attn.in_proj_")  # weight or bias
            for name, part in zip(("q", "k", "v"), value.chunk(3, dim=0), strict=True):
                out[f"{prefix}self_attn.{name}_proj.{kind}"] = part.contiguous()
            continue
        part, _, leaf = rest.rpartition(".")
        if part not in LAYER_PARTS:
            raise ConversionError(f"unexpected tensor {key!r} for an open_clip CLIP checkpoint")
        out[f"{prefix}{LAYER_PARTS[part]}.{leaf}"] = value
    text_width = state_dict["token_embedding.weight"].shape[1]
    vision_width, _, patch, _ = state_dict["visual.conv1.weight"].shape
    positions = state_dict["visual.positional_embedding"].shape[0] - 1
    grid = round(positions**0.5)
    if grid * grid != positions:
        raise ConversionError(f"{positions} image patches is not a square grid")
    config = {
        "architectures": ["CLIPModel"],
        "model_type": "clip",
        "projection_dim": int(state_dict["text_projection"].shape[1]),
        "logit_scale_init_value": float(state_dict["logit_scale"].reshape(())),
        "text_config": {
            "model_type": "clip_text_model",
            "vocab_size": int(state_dict["token_embedding.weight"].shape[0]),
            "hidden_size": int(text_width),
            "intermediate_size": int(state_dict["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
            "num_hidden_layers": len(layers["text"]),
            "num_attention_heads": text_heads,
            "max_position_embeddings": int(state_dict["positional_embedding"].shape[0]),
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-5,
            "projection_dim": int(state_dict["text_projection"].shape[1]),
            "bos_token_id": 49406,
            "eos_token_id": 49407,
            "pad_token_id": 0,
        },
        "vision_config": {
            "model_type": "clip_vision_model",
            "hidden_size": int(vision_width),
            "intermediate_size": int(state_dict["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
            "num_hidden_layers": len(layers["vision"]),
            "num_attention_heads": vision_heads,
            "image_size": int(grid * patch),
            "patch_size": int(patch),
            "num_channels": 3,
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-5,
            "projection_dim": int(state_dict["visual.proj"].shape[1]),
        },
    }
    for tower, width, heads in (("text", text_width, text_heads), ("vision", vision_width, vision_heads)):
        if width % heads:
            raise ConversionError(f"the {tower} tower is {width} wide, which {heads} heads do not divide")
    return out, config


def convert_file(
    source: str | os.PathLike, dest: str | os.PathLike, vision_heads: int = 16, text_heads: int = 16
) -> Path:
    """Convert the open_clip checkpoint at `source` into the transformers folder `dest` (config.json and
    model.safetensors), written beside it and renamed into place: `dest` existing means complete."""
    dest = Path(dest)
    raw = torch.load(source, map_location="cpu", weights_only=True)
    tensors, config = convert(open_clip_state_dict(raw), vision_heads, text_heads)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-convert-", dir=dest.parent))
    try:
        save_file(tensors, staging / "model.safetensors", metadata={"format": "pt"})
        os.chmod(staging / "model.safetensors", 0o666 & ~umask())  # safetensors writes 0600
        (staging / "config.json").write_text(json.dumps(config, indent=2))
        os.replace(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest
