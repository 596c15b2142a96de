"""Write an NPNet in the layout another NPNet tool loads: `python -m npnet.export --format F SRC DEST`.

The pack reads every published layout (`npnet.checkpoint.ACCEPTED_FORMATS`) and writes the flat one with
the authors' `embeeding.*` keys. Other tools read one layout each:

- `official`: the authors' nested `.pth`, `torch.save` of {"unet_svd", "unet_embedding", "embeeding": state
  dicts; "alpha", "beta": tensors}; their `inference/npnet_pipeline.py` loads each part strictly (asagi4's
  pack reads this layout too).
- `asagi4`: a flat `.safetensors` with `text_embedding.*` in place of `embeeding.*` (asagi4/ComfyUI-NPNet,
  `models/npnet`, one strict `load_state_dict`).
- `lucipher`: the flat `.safetensors` with `embeeding.*` keys (LucipherDev/ComfyUI-Golden-Noise,
  `models/npnets`).

Those tools build the released network only (the paper's architecture, 4x128x128 latents, 77 tokens of
width 2048 or 1024), so only a file of that shape can be exported; the pack's own files of other shapes
stay with the pack.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from .checkpoint import OFFICIAL_KEYS, read_checked, save_safetensors
from .files import atomic_write

FORMATS = {"official": ".pth", "asagi4": ".safetensors", "lucipher": ".safetensors"}


def layout(state_dict: dict[str, torch.Tensor], fmt: str) -> dict:
    """The pack's flat state dict (`embeeding.*`) in format `fmt`'s layout."""
    if fmt == "lucipher":
        return dict(state_dict)
    if fmt == "asagi4":
        return {
            ("text_embedding." + key.removeprefix("embeeding."))
            if key.startswith("embeeding.")
            else key: value
            for key, value in state_dict.items()
        }
    nested: dict = {part: {} for part in OFFICIAL_KEYS[:3]}
    for key, value in state_dict.items():
        part, _, rest = key.partition(".")
        if part in nested:
            nested[part][rest] = value
        else:
            nested[key] = value  # alpha, beta
    return nested


def export(source: str | os.PathLike, dest: str | os.PathLike, fmt: str) -> Path:
    """Write the NPNet at `source` to `dest` in format `fmt` (see the module docstring); never overwrites."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}.")
    dest = Path(dest)
    if dest.suffix != FORMATS[fmt]:
        raise ValueError(
            f"the {fmt} format is a {FORMATS[fmt]} file; DEST {dest.name} must end in {FORMATS[fmt]}."
        )
    if dest.exists():
        raise ValueError(f"{dest} exists; export never overwrites a file.")
    if not dest.parent.is_dir():
        raise ValueError(f"the folder {dest.parent} does not exist (or is not a folder); create it first.")
    state_dict, model = read_checked(source)
    if not model.config.is_official:
        raise ValueError(
            f"{Path(source).name} is an NPNet of {model.config.describe()}; the {fmt} tool builds only the "
            "released network (the paper's architecture, 4x128x128 latents, 77 tokens of width 2048 or 1024), "
            "so it cannot load this file. Use it with this pack."
        )
    tensors = {key: value.detach().cpu().float().contiguous() for key, value in state_dict.items()}
    out = layout(tensors, fmt)
    if fmt == "official":
        return atomic_write(dest, lambda partial: torch.save(out, partial), exclusive=True)
    return save_safetensors(out, dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m npnet.export",
        description="Write an NPNet file in the layout another NPNet tool loads (see --format).",
    )
    parser.add_argument(
        "--format",
        required=True,
        choices=list(FORMATS),
        help="official: the authors' nested .pth (their npnet_pipeline.py); asagi4: flat .safetensors with "
        "text_embedding.* (asagi4/ComfyUI-NPNet, models/npnet); lucipher: flat .safetensors with "
        "embeeding.* (LucipherDev/ComfyUI-Golden-Noise, models/npnets).",
    )
    parser.add_argument("source", help="an NPNet file in any layout this pack reads")
    parser.add_argument("dest", help="the file to write (.pth for official, .safetensors otherwise)")
    args = parser.parse_args(argv)
    try:
        path = export(args.source, args.dest, args.format)
    except (OSError, ValueError) as error:
        sys.stderr.write(
            f"npnet.export: {error.strerror if isinstance(error, OSError) and error.strerror else error}\n"
        )
        return 2
    sys.stdout.write(f"wrote {path} ({args.format} layout)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
