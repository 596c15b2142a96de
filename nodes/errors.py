"""The error the Golden Noise nodes raise for anything the person in front of the graph can fix."""

from __future__ import annotations


class GoldenNoiseError(ValueError):
    """A problem the person in front of the graph can fix; the message names the node and its input."""

    def __init__(self, node: str, node_id: str | None, input_name: str, cause: str):
        where = f"{node} (node {node_id})" if node_id is not None else node
        super().__init__(f"{where}, input '{input_name}': {cause}")
