"""API graphs of the DPSL examples with their parameters changed, for the node and hostile-input tests."""

from __future__ import annotations

import copy
import json

from tests.support import REPO_ROOT

API_DIR = REPO_ROOT / "tests" / "api_workflows"


def simulate_prompt(keep_paths=False, **scenario) -> dict:
    prompt = json.loads((API_DIR / "dpsl_smooth_rr.json").read_text())
    prompt["1"]["inputs"].update(scenario)
    prompt["3"] = {
        "class_type": "DPSLSimulate",
        "inputs": {"scenario": ["1", 0], "keep_paths": keep_paths, "memory_budget_gb": 2.0},
    }
    prompt["2"] = {"class_type": "DPSLReport", "inputs": {"filename_prefix": "dpsl/test", "result": ["3", 0]}}
    return prompt


def report_prompt(prefix: str) -> dict:
    prompt = simulate_prompt(agents=20, runs=5, seed=1)
    prompt["2"]["inputs"]["filename_prefix"] = prefix
    return prompt


def sweep_prompt_none() -> dict:
    prompt = sweep_prompt("0.5, 1")
    prompt["1"]["inputs"]["mechanism"] = "none"
    return prompt


def sweep_prompt(grid: str) -> dict:
    prompt = copy.deepcopy(json.loads((API_DIR / "dpsl_stopping_time.json").read_text()))
    prompt["1"]["inputs"].update(runs=10, agents=50)
    prompt["2"]["inputs"]["epsilon_grid"] = grid
    return prompt
