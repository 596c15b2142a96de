"""Test-only nodes for the Golden Noise tests."""

NODES: list[type] = []
