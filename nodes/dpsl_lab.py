"""DP sequential learning lab nodes: scenario, simulate, sweep, chart, report."""

NODES: list[type] = []
