"""Collects the node families and hands them to ComfyUI's V3 extension API."""

from __future__ import annotations

from .comfy_host import ComfyExtension


def node_classes() -> list[type]:
    # Imported here, not at module level, so a host without ComfyUI never imports the adapters.
    from . import dpsl_lab, golden_noise, learning, reward_training

    families = [golden_noise.NODES, learning.NODES, reward_training.NODES, dpsl_lab.NODES]
    return [cls for family in families for cls in family]


class GoldenNoiseExtension(ComfyExtension):
    async def get_node_list(self) -> list[type]:
        return node_classes()


async def comfy_entrypoint() -> GoldenNoiseExtension:
    """Called once by every supported core when it loads the pack (newer cores also call `on_load`,
    which 0.3.75 lacks, so set-up happens here)."""
    from . import learning, npnet_weights, reward_models
    from .comfy_host import serve_json

    npnet_weights.register_folder()
    reward_models.register_folder()
    serve_json(learning.PRESETS_ROUTE, learning.preset_widgets)  # web/js/collect_presets.js reads it
    return GoldenNoiseExtension()
