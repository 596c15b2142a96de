"""Test-only ComfyUI node pack: feeds synthetic inputs to the real server and records what our nodes
emit, as ComfyUI's own execution tests do with their `testing-pack`. Never shipped (.comfyignore)."""

from comfy_api.latest import ComfyExtension


def _node_classes() -> list[type]:
    from . import golden_noise_probes, learning_probes

    return [*golden_noise_probes.NODES, *learning_probes.NODES]


class GoldenNoiseTestingExtension(ComfyExtension):
    async def get_node_list(self) -> list[type]:
        return _node_classes()


async def comfy_entrypoint() -> GoldenNoiseTestingExtension:
    return GoldenNoiseTestingExtension()
