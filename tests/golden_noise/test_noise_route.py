"""RandomNoise -> GoldenNoiseApply -> SamplerCustomAdvanced in the real server, and the errors users see."""

from __future__ import annotations

import uuid

import pytest
import torch
from safetensors import safe_open

from dev.checkpoints import expected_golden
from tests.golden_noise import graphs

pytestmark = pytest.mark.server


def recorded(server, name: str) -> tuple[torch.Tensor, int]:
    with safe_open(server.output_dir / f"{name}.safetensors", "pt") as f:
        return f.get_tensor("noise"), int(f.get_tensor("seed")[0])


def test_guider_receives_npnet_of_the_seeded_noise_and_the_seed(comfy_server, server_checkpoints, probes):
    name = f"golden_{uuid.uuid4().hex[:8]}"
    comfy_server.run(
        graphs.noise_route(weights="test-sdxl.safetensors", record_as=name, seed=1234, cond_seed=3)
    )

    noise, seed = recorded(comfy_server, name)
    tokens = probes.probe_conditioning(3, "sdxl")[0][0]
    expected = expected_golden(server_checkpoints["sdxl"], 1234, (1, 4, 128, 128), tokens)
    assert seed == 1234
    assert noise.dtype == torch.float32 and noise.shape == (1, 4, 128, 128)
    assert (noise - expected).abs().max().item() <= 1e-5
    # and it really is golden, not the plain seeded noise
    import comfy.sample

    plain = comfy.sample.prepare_noise(torch.zeros(1, 4, 128, 128), 1234)
    assert (noise - plain).abs().max().item() > 1e-2


def test_strength_zero_passes_the_upstream_noise_through(comfy_server, server_checkpoints):
    import comfy.sample

    name = f"plain_{uuid.uuid4().hex[:8]}"
    comfy_server.run(
        graphs.noise_route(weights="test-sdxl.safetensors", record_as=name, seed=77, strength=0.0)
    )
    noise, seed = recorded(comfy_server, name)
    assert seed == 77
    assert torch.equal(noise, comfy.sample.prepare_noise(torch.zeros(1, 4, 128, 128), 77))


def assert_user_error(server, graph: dict, *, node: str, words: list[str], record_as: str) -> dict:
    """The run ends in an execution error whose message names our node and the cause; no noise was used."""
    error = server.run_expecting_error(graph)
    message = error["exception_message"]
    assert f"(node {node})" in message, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert not (server.output_dir / f"{record_as}.safetensors").exists(), "a sampler ran on some noise"
    return error


def test_16_channel_latent_is_an_error_naming_the_node(comfy_server, server_checkpoints):
    # An SD3-format model turns the empty 4-channel latent into 16 channels, as in a real SD3 graph.
    name = f"sd3_{uuid.uuid4().hex[:8]}"
    graph = graphs.noise_route(weights="test-sdxl.safetensors", record_as=name, model_family="sd3")
    error = assert_user_error(
        comfy_server, graph, node=graphs.APPLY, words=["16 channels", "'noise'"], record_as=name
    )
    assert error["node_id"] == graphs.SAMPLE  # raised where ComfyUI asks for the noise


def test_dit_weights_with_sdxl_conditioning_say_which_variant_fits(comfy_server, server_checkpoints):
    name = f"mismatch_{uuid.uuid4().hex[:8]}"
    graph = graphs.noise_route(weights="test-dit.safetensors", record_as=name, family="sdxl")
    error = assert_user_error(
        comfy_server,
        graph,
        node=graphs.APPLY,
        words=["'positive'", "2048", "SDXL or DreamShaper-XL", "Golden Noise Loader"],
        record_as=name,
    )
    assert error["node_id"] == graphs.APPLY and error["node_type"] == "GoldenNoiseApply"


def test_non_128_latent_in_strict_mode_is_an_error(comfy_server, server_checkpoints):
    name = f"size_{uuid.uuid4().hex[:8]}"
    graph = graphs.noise_route(weights="test-sdxl.safetensors", record_as=name, width=512, height=512)
    assert_user_error(
        comfy_server,
        graph,
        node=graphs.APPLY,
        words=["64x64", "128x128", "'resolution_mode'", "perturbation_transfer"],
        record_as=name,
    )


def test_perturbation_transfer_gives_unit_noise_at_other_sizes(comfy_server, server_checkpoints):
    name = f"transfer_{uuid.uuid4().hex[:8]}"
    comfy_server.run(
        graphs.noise_route(
            weights="test-sdxl.safetensors",
            record_as=name,
            width=832,
            height=1216,
            resolution_mode="perturbation_transfer",
        )
    )
    noise, _ = recorded(comfy_server, name)
    assert noise.shape == (1, 4, 152, 104)
    assert abs(noise.mean().item()) < 0.05 and abs(noise.std().item() - 1.0) < 0.02


def test_missing_variant_offline_names_the_file_and_folder_in_history(comfy_server, server_checkpoints):
    # The session server runs with HF_HUB_OFFLINE=1 and holds no Hunyuan-DiT weights under a variant name.
    name = f"offline_{uuid.uuid4().hex[:8]}"
    graph = graphs.noise_route(weights="Hunyuan-DiT", record_as=name, family="dit")
    entry = comfy_server.wait(comfy_server.queue(graph))
    errors = [payload for kind, payload in entry["status"]["messages"] if kind == "execution_error"]
    assert entry["status"]["status_str"] == "error" and errors
    error = errors[0]
    assert error["node_id"] == graphs.LOADER and error["node_type"] == "GoldenNoiseLoader"
    message = error["exception_message"]
    assert "npnet-dit.safetensors" in message
    assert str(comfy_server.models_dir / "npnet") in message
    assert f"(node {graphs.LOADER})" in message
