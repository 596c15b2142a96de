"""ComfyUI entry point of the Golden Noise pack: registration only.

The work lives in `npnet/` and `dpsl/` (host-free) and `nodes/` (the ComfyUI adapters). Outside ComfyUI
(plain Python, or the webui, which loads `scripts/` instead) nothing is registered.
"""

from .nodes.comfy_host import HOST_API

WEB_DIRECTORY = "./web"

if HOST_API == "v3":
    from .nodes.extension import comfy_entrypoint

    __all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
else:
    __all__ = ["WEB_DIRECTORY"]
