"""ComfyUI entry point of the Golden Noise pack: registration only.

The work lives in `npnet/` and `dpsl/` (host-free) and `nodes/` (the ComfyUI adapters). Exactly one of
`comfy_entrypoint` (V3 schema API) or `NODE_CLASS_MAPPINGS` (older cores) is exported: ComfyUI takes
the V1 name first when both exist, which would hide the V3 registration.
"""

from .nodes.comfy_host import HOST_API

WEB_DIRECTORY = "./web"

if HOST_API == "v3":
    from .nodes.extension import comfy_entrypoint

    __all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
elif HOST_API == "v1":
    from .nodes.extension import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    __all__ = ["WEB_DIRECTORY", "NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
else:  # imported outside ComfyUI (plain Python, Forge): nothing to register
    __all__ = ["WEB_DIRECTORY"]
