"""The hostile-input probes against the real server (loopback only, bounded in count and time): each is
refused with the right input named, no NaN is reported as success, and the prompt worker keeps running
prompts afterwards."""

from __future__ import annotations

import math
import os

import pytest

from tests.golden_noise import graphs
from tests.support.dpsl_graphs import simulate_prompt, sweep_prompt

pytestmark = pytest.mark.server


def assert_worker_alive(server):
    server.run(simulate_prompt(agents=20, runs=5, seed=1), timeout=60)


def test_a_model_file_name_that_is_not_utf8_does_not_stop_the_worker(comfy_server, server_checkpoints):
    folder = comfy_server.models_dir / "golden_noise"
    odd = folder / os.fsdecode(b"broken\xff.safetensors")
    odd.write_bytes(server_checkpoints["sdxl"].read_bytes())
    try:
        options = comfy_server.object_info()["GoldenNoiseLoader"]["input"]["required"]["weights"]
        listed = options[0] if isinstance(options[0], list) else options[1]["options"]
        assert "test-sdxl.safetensors" in listed and not any("broken" in name for name in listed)
        comfy_server.run(graphs.noise_route(weights="test-sdxl.safetensors", record_as="hostile_utf8"))
        assert_worker_alive(comfy_server)
    finally:
        odd.unlink()


def test_a_non_finite_strength_sent_to_prompt_is_an_error_on_strength(comfy_server, server_checkpoints):
    from dev.comfy_harness import ExecutionFailed

    # Inf is refused by ComfyUI's own max check; NaN passes every comparison and reaches the node.
    with pytest.raises(ExecutionFailed, match="strength"):
        comfy_server.queue(
            graphs.noise_route(weights="test-sdxl.safetensors", record_as="x", strength=math.inf)
        )
    graph = graphs.noise_route(weights="test-sdxl.safetensors", record_as="hostile_nan", strength=math.nan)
    error = comfy_server.run_expecting_error(graph)
    assert error["node_type"] == "GoldenNoiseApply"
    assert "input 'strength'" in error["exception_message"], error["exception_message"]
    assert "Traceback" not in error["exception_message"]
    assert not (comfy_server.output_dir / "hostile_nan.safetensors").exists()
    assert_worker_alive(comfy_server)


@pytest.mark.parametrize("value", ["test-sdxl.safetensors", 5], ids=["file-name", "number"])
def test_a_literal_on_the_npnet_socket_is_an_error_on_npnet(comfy_server, server_checkpoints, value):
    # The server checks the types of links, not literal values an API prompt puts on a socket.
    graph = graphs.noise_route(weights="test-sdxl.safetensors", record_as="hostile_literal")
    graph[graphs.APPLY]["inputs"]["npnet"] = value
    error = comfy_server.run_expecting_error(graph)
    assert error["node_type"] == "GoldenNoiseApply"
    assert "input 'npnet'" in error["exception_message"] and "an NPNET link" in error["exception_message"]
    assert "Traceback" not in error["exception_message"]
    assert_worker_alive(comfy_server)


@pytest.mark.parametrize(
    "prompt, words",
    [
        (sweep_prompt("linspace(0.1, 1, 2000000)"), ["epsilon_grid", "at most 1000"]),
        (
            simulate_prompt(keep_paths=True, agents=200_000, runs=1_000_000, seed=1),
            ["more than this device has"],
        ),
    ],
    ids=["huge-grid", "budget-beyond-memory"],
)
def test_unbounded_work_is_refused_before_it_starts(comfy_server, prompt, words):
    if "3" in prompt and prompt["3"]["class_type"] == "DPSLSimulate":
        prompt["3"]["inputs"]["memory_budget_gb"] = 1024.0
    message = comfy_server.run_expecting_error(prompt, timeout=60)["exception_message"]
    for word in words:
        assert word in message, message
    assert_worker_alive(comfy_server)
