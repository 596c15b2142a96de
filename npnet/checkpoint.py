"""Read NPNet checkpoints in the three published layouts, check them strictly, build the network."""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .config import METADATA_KEY, OFFICIAL, NPNetConfig
from .files import atomic_write
from .inputs import shown
from .model import NPNet
from .variants import TOKENS, family_for_embed_dim

logger = logging.getLogger(__name__)

# Every weight file the pack writes says so in its metadata, so the pack can tell its own files from a
# user's (the start-up move out of models/npnet touches only these).
WRITER_KEY, WRITER = "written_by", "golden-noise"

OFFICIAL_KEYS = ("unet_svd", "unet_embedding", "embeeding", "alpha", "beta")
TEXT_WEIGHT = "embeeding.linear.weight"
ACCEPTED_FORMATS = (
    "the official .pth: a dict with the 5 keys 'unet_svd', 'unet_embedding', 'embeeding', 'alpha', 'beta' "
    "(Klayand/GoldenNoiseModel);\n"
    "  a flat .safetensors with 'unet_svd.*', 'unet_embedding.*', 'embeeding.*', 'alpha', 'beta' "
    "(LucipherDev/Golden-Noise-NPNets, and what npnet.download writes);\n"
    "  a flat .safetensors with 'text_embedding.*' in place of 'embeeding.*' (asagi4/NPNet);\n"
    "  a .safetensors written by npnet (npnet.save, python -m npnet.train) with its shape in the metadata."
)
_SHOWN = 8


def load(
    source: str | os.PathLike, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> NPNet:
    """Build the NPNet stored at `source`, on `device` (default CPU), ready to call.

    `source` is a path to any of the accepted formats (see ACCEPTED_FORMATS). The network's shape comes
    from the file's `npnet` metadata (files npnet writes, any shape), else from the weights, which must
    then be a released shape: SDXL family (D = 2048) or Hunyuan-DiT (D = 1024), 4x128x128 latents. `.pth` files are
    read with `torch.load(weights_only=True)`, so a pickle carrying code is refused, never run.
    `dtype` must be None or torch.float32: NPNet computes in float32 (there is no half-precision SVD and
    the weights were trained in float32).
    """
    if dtype not in (None, torch.float32):
        raise ValueError(
            f"dtype={dtype} is not supported: NPNet's weights are float32 and it computes in float32 "
            "(torch.linalg.svd has no float16/bfloat16 kernel). Pass dtype=None or torch.float32; "
            "the golden noise is returned in the input noise's dtype."
        )
    device = torch.device(device if device is not None else "cpu")
    state_dict, model = read_checked(source, device)
    # assign=True adopts the loaded tensors as the parameters: no random init, no second copy.
    model.load_state_dict(state_dict, strict=True, assign=True)
    model.init_non_persistent_buffers(device)
    return model.requires_grad_(False).eval()


def read_checked(
    source: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[dict[str, torch.Tensor], NPNet]:
    """The checkpoint's tensors, strictly checked, and a weightless (meta-device) NPNet of its shape."""
    state_dict, config = read_state_dict(source, device)
    if config is None:
        config = released_config(state_dict, source)
    with torch.device("meta"):
        model = NPNet(config)
    check_state_dict(state_dict, model, source)
    return state_dict, model


def read_state_dict(
    source: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[dict[str, torch.Tensor], NPNetConfig | None]:
    """Tensors of the checkpoint at `source` under NPNet's own flat keys, in float32, and the shape its
    metadata records (None for files without one: the released checkpoints and their mirrors)."""
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"NPNet weights not found: {shown(path)}")
    config = None
    if path.suffix.lower() == ".safetensors":
        try:
            with safe_open(path, "pt") as file:
                metadata = file.metadata() or {}
            raw = load_file(path, device=str(device))
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{shown(path)} is not a readable .safetensors file ({error}).") from None
        if METADATA_KEY in metadata:
            config = NPNetConfig.from_json(metadata[METADATA_KEY], path)
    else:
        raw = _read_pickle(path)
    state_dict = {key: value.to(device=device) for key, value in _flatten(raw, path).items()}
    for key, value in state_dict.items():
        if value.is_floating_point() and value.dtype != torch.float32:
            # Widening to float32 is exact; NPNet always computes in float32.
            state_dict[key] = value.float()
    return state_dict, config


def _read_pickle(path: Path) -> Mapping:
    if path.stat().st_size == 0:
        raise ValueError(
            f"{shown(path)} is empty (0 bytes): an interrupted copy or download? Fetch it again."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()[-1]
        raise ValueError(
            f"refused to load {shown(path)}: it is a pickle that holds Python objects other than tensors, which "
            f"could run code when unpickled ({reason}). NPNet checkpoints contain only tensors; use a file "
            f"from the official repo or a .safetensors conversion. Accepted formats:\n  {ACCEPTED_FORMATS}"
        ) from None
    except Exception as error:  # noqa: BLE001 - torch.load raises anything for a file that is not its format
        reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise ValueError(
            f"{shown(path)} is not a readable PyTorch checkpoint ({reason}). Accepted formats:\n  {ACCEPTED_FORMATS}"
        ) from None


def _flatten(raw: object, path: Path) -> dict[str, torch.Tensor]:
    """Official nested dict or either flat flavour -> flat keys with the official `embeeding.` prefix."""
    if not isinstance(raw, Mapping):
        raise ValueError(
            f"{shown(path)} holds a {type(raw).__name__}, not a dict of tensors. Accepted formats:\n  "
            f"{ACCEPTED_FORMATS}"
        )
    flat: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{sub}": tensor for sub, tensor in value.items()})
        else:
            flat[key] = value
    if any(key.startswith("text_embedding.") for key in flat):
        if any(key.startswith("embeeding.") for key in flat):
            raise ValueError(
                f"{shown(path)} has both 'embeeding.*' and 'text_embedding.*' keys; it must hold one text branch."
            )
        flat = {
            ("embeeding." + key.removeprefix("text_embedding."))
            if key.startswith("text_embedding.")
            else key: value
            for key, value in flat.items()
        }
    not_tensors = [key for key, value in flat.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise ValueError(
            f"{shown(path)}: entries {not_tensors[:_SHOWN]} are not tensors. Accepted formats:\n  {ACCEPTED_FORMATS}"
        )
    return flat


def released_config(state_dict: Mapping[str, torch.Tensor], source: object) -> NPNetConfig:
    """The released shape a file without metadata holds, from the text branch's Linear(77 * D, 8)."""
    weight = state_dict.get(TEXT_WEIGHT)
    if weight is None:
        raise ValueError(
            f"{shown(source)} has no text-branch weight ('embeeding.linear.weight' or 'text_embedding.linear.weight'), "
            f"so it is not an NPNet checkpoint. Accepted formats:\n  {ACCEPTED_FORMATS}"
        )
    if weight.ndim != 2 or weight.shape[1] % TOKENS:
        raise ValueError(
            f"{shown(source)}: '{TEXT_WEIGHT}' has shape {list(weight.shape)}; NPNet's is [8, 77 * D] with D = 2048 "
            "(SDXL, DreamShaper XL) or 1024 (Hunyuan-DiT)."
        )
    return OFFICIAL[family_for_embed_dim(weight.shape[1] // TOKENS).name]


def check_state_dict(state_dict: Mapping[str, torch.Tensor], model: NPNet, source: object) -> None:
    """ValueError naming every missing, unexpected and mis-shaped key, unless `state_dict` fits `model` exactly."""
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    mis_shaped = [
        f"{key}: file {list(state_dict[key].shape)}, NPNet {list(shape)}"
        for key, shape in expected.items()
        if key in state_dict and tuple(state_dict[key].shape) != shape
    ]
    floating = {key for key, value in model.state_dict().items() if value.is_floating_point()}
    not_float = [
        f"{key}: {state_dict[key].dtype}"
        for key in sorted(floating)
        if key in state_dict and not state_dict[key].is_floating_point()
    ]
    not_finite = [
        key
        for key in expected
        if key in state_dict
        and state_dict[key].is_floating_point()
        and not torch.isfinite(state_dict[key]).all()
    ]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_some(unexpected)}")
        if any(key.endswith(("relative_position_index", "attn_mask")) for key in unexpected):
            problems.append(
                "(relative_position_index / attn_mask are buffers that timm < 0.9.6 saved; the "
                "released checkpoints do not have them)"
            )
    if mis_shaped:
        problems.append(f"wrong shapes ({len(mis_shaped)}): {_some(mis_shaped)}")
    if not_float:
        problems.append(f"not floating point ({len(not_float)}): {_some(not_float)}; NPNet weights are float")
    if not_finite:
        problems.append(f"NaN or Inf values ({len(not_finite)}): {_some(not_finite)}; the file is damaged")
    if problems:
        raise ValueError(
            f"{shown(source)} does not match NPNet ({model.family or 'custom'} family, D={model.embed_dim}, "
            f"{model.config.describe()}):\n  "
            + "\n  ".join(problems)
            + f"\nAccepted formats:\n  {ACCEPTED_FORMATS}"
        )


def _some(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f", ... and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def written_by_this_pack(path: str | os.PathLike) -> bool:
    """Whether the .safetensors at `path` was written by this pack: its metadata carries the pack's mark
    (every file written since the mark exists) or the pack's network description (earlier versions wrote
    one into every file). Another tool's file has neither; an unreadable file is not ours."""
    try:
        with safe_open(path, "pt") as file:
            metadata = file.metadata() or {}
    except Exception:  # not a safetensors file
        return False
    if metadata.get(WRITER_KEY) == WRITER:
        return True
    try:
        return METADATA_KEY in metadata and bool(NPNetConfig.from_json(metadata[METADATA_KEY], str(path)))
    except ValueError:
        return False


def save(model: NPNet, path: str | os.PathLike) -> Path:
    """Write `model`'s weights to `path` (.safetensors) with its shape in the metadata, so `load` rebuilds
    it from the file alone. Key names are the official ones, so other NPNet loaders read released shapes."""
    return save_safetensors(model.state_dict(), path, model.config)


def save_safetensors(
    state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike, config: NPNetConfig | None = None
) -> Path:
    """Write `state_dict` to `path` atomically: a crash leaves at most a `*.partial` file, never `path`."""
    metadata = {"format": "pt", WRITER_KEY: WRITER}
    if config is not None:
        metadata[METADATA_KEY] = config.to_json()
    return atomic_write(
        path,
        lambda partial: save_file(
            {key: value.detach().cpu().contiguous() for key, value in state_dict.items()},
            partial,
            metadata=metadata,
        ),
    )
