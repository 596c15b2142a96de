"""ComfyUI entry point of the Golden Noise pack: registration only.

The work lives in `npnet/` and `dpsl/` (host-free) and `nodes/` (the ComfyUI adapters). Outside ComfyUI
(plain Python, or the webui, which loads `scripts/` instead) nothing is registered.
"""

WEB_DIRECTORY = "./web"
__all__ = ["WEB_DIRECTORY"]

# ComfyUI imports this folder as a package, whatever its name. pytest, in a clone whose folder is not a
# Python name (ComfyUI-GoldenNoise), imports this file without a parent package: nothing to register.
if __package__:
    from .nodes.comfy_host import HOST_API

    if HOST_API == "v3":
        from .nodes.extension import comfy_entrypoint

        __all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
