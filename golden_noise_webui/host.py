"""The one module of the webui adapter that imports the webui's own modules (Forge or Automatic1111).

What it uses is common to lllyasviel/stable-diffusion-webui-forge (main, dfdcbab6),
Haoming02/sd-webui-forge-classic (classic, 1f95d717) and AUTOMATIC1111/stable-diffusion-webui 1.6-1.10: `modules.scripts` (Script, scripts_data),
`modules.processing` (StableDiffusionProcessingTxt2Img), `modules.shared` (sd_model, state),
`modules.paths` (models_path) and `modules.script_callbacks` (on_before_ui).
"""

from __future__ import annotations

import logging
from pathlib import Path

from modules import paths, processing, script_callbacks, scripts, shared

log = logging.getLogger("golden_noise")

AlwaysVisible = scripts.AlwaysVisible
Script = scripts.Script


def models_folder() -> Path:
    """`models/npnet` of this webui, created on first use."""
    folder = Path(paths.models_path) / "npnet"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def has_sampling_hook() -> bool:
    """Forge, Forge Classic and Automatic1111 1.10 call `process_before_every_sampling`; 1.6-1.9 do not."""
    return hasattr(scripts.Script, "process_before_every_sampling")


def is_txt2img(p) -> bool:
    return isinstance(p, processing.StableDiffusionProcessingTxt2Img)


def sd_model():
    return shared.sd_model


def interrupt() -> None:
    shared.state.interrupt()


def interrupted() -> bool:
    """The user pressed Interrupt (the webui clears it when the next job begins)."""
    return shared.state.interrupted


def report(message: str) -> None:
    """Into the webui's console log, where its own errors go."""
    log.error(message)


def on_before_ui(callback) -> None:
    script_callbacks.on_before_ui(callback)


def xyz_grid():
    """The X/Y/Z plot script's module, when the webui has it loaded."""
    for data in scripts.scripts_data:
        if data.script_class.__module__ in ("xyz_grid.py", "scripts.xyz_grid") and hasattr(
            data.module, "AxisOption"
        ):
            return data.module
    return None
