"""Test-only nodes for the DP sequential learning lab tests."""

NODES: list[type] = []
