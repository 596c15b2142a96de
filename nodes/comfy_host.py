"""The one place that imports ComfyUI.

Every other module of `nodes/` takes the host's API from here, so a change in ComfyUI's API touches
this file alone. Three hosts are possible:

- ``"v3"``: ComfyUI >= 0.3.48, with the schema API `comfy_api.latest`;
- ``"v1"``: an older ComfyUI; `io`/`ui` then come from `v1_schema`, a small stand-in that turns the
  same V3-style node classes into classic V1 nodes (`INPUT_TYPES`, `RETURN_TYPES`, `FUNCTION`);
- ``None``: no ComfyUI at all (plain Python, Forge, tests of the cores); nothing is registered.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# One top-level menu for the whole pack; families add their own sub-menu.
MENU = "golden_noise"

try:
    import comfy.model_management as model_management
    import comfy.utils as comfy_utils
    import folder_paths
except ImportError:  # not running inside ComfyUI
    model_management = comfy_utils = folder_paths = None

# Sampling internals for the Golden Noise nodes (KSampler drop-in, latent route, NPNet offloading).
# Separate guard: a core that moved one of these still registers the other nodes.
try:
    import comfy.model_patcher as model_patcher
    import comfy.sample as comfy_sample
    import comfy.samplers as comfy_samplers
    import latent_preview
except ImportError:
    model_patcher = comfy_sample = comfy_samplers = latent_preview = None

if folder_paths is None:
    HOST_API = None
    io = ui = ComfyExtension = None
else:
    try:
        from comfy_api.latest import ComfyExtension, io, ui

        HOST_API = "v3"
    except ImportError:
        from . import v1_schema as _v1

        io, ui, ComfyExtension = _v1.io, _v1.ui, None
        HOST_API = "v1"


def prompt_server():
    """ComfyUI's running server (for text shown on a node), or None outside a server."""
    try:
        from server import PromptServer
    except ImportError:
        return None
    return getattr(PromptServer, "instance", None)
