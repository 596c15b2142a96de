"""Collects the node families and hands them to the host in the form its API expects."""

from __future__ import annotations

from .comfy_host import HOST_API, ComfyExtension


def node_classes() -> list[type]:
    # Imported here, not at module level, so a host without ComfyUI never imports the adapters.
    from . import dpsl_lab, golden_noise

    families = [golden_noise.NODES, dpsl_lab.NODES]
    return [cls for family in families for cls in family]


if HOST_API == "v3":

    class GoldenNoiseExtension(ComfyExtension):
        async def get_node_list(self) -> list[type]:
            return node_classes()

    async def comfy_entrypoint() -> GoldenNoiseExtension:
        return GoldenNoiseExtension()

elif HOST_API == "v1":
    NODE_CLASS_MAPPINGS = {cls.GET_SCHEMA().node_id: cls for cls in node_classes()}
    NODE_DISPLAY_NAME_MAPPINGS = {
        cls.GET_SCHEMA().node_id: cls.GET_SCHEMA().display_name for cls in node_classes()
    }
