"""Train Golden Noise (reward) queued through the real server's /prompt on the test pack's tiny,
differentiable models: the trained file is listed by Golden Noise Loader and used by the Golden Noise
KSampler in a second queue; Cancel keeps the state and a re-queue resumes; bad input is named."""

from __future__ import annotations

import hashlib
import json

import pytest

import npnet
from npnet.learning.runs import TrainingState

pytestmark = pytest.mark.server


def train_graph(name: str, **changes) -> dict:
    inputs = {
        "model": ["1", 0],
        "clip": ["1", 1],
        "vae": ["1", 2],
        "reward": ["2", 0],
        "prompts": "a red bicycle\na bowl of ramen",
        "prompt_file": "(none)",
        "negative_prompt": "",
        "width": 64,
        "height": 64,
        "sampler_name": "euler",
        "scheduler": "normal",
        "steps": 2,
        "cfg": 1.0,
        "gradient_checkpointing": True,
        "batch_size": 2,
        "training_steps": 6,
        "learning_rate": 0.001,
        "penalty": 1.0,
        "seed": 0,
        "tokens": 8,
        "output_name": name,
        **changes,
    }
    return {
        "1": {"class_type": "GoldenNoiseTinyCheckpoint", "inputs": {"family": "sd15", "seed": 0}},
        "2": {"class_type": "GoldenNoiseTinyReward", "inputs": {"nan_from": 0}},
        "3": {"class_type": "GoldenNoiseTrainReward", "inputs": inputs},
    }


def test_the_trained_file_is_listed_and_used_by_the_golden_noise_ksampler(comfy_server):
    entry = comfy_server.run(train_graph("reward_net"), timeout=600)
    text = "".join(entry["outputs"]["3"]["text"])
    assert "reward_net.safetensors: 6 steps" in text and "noise mean" in text
    path = comfy_server.models_dir / "golden_noise" / "reward_net.safetensors"
    network = npnet.load(path)
    assert network.config.latent_shape == (4, 8, 8) and network.config.tokens == 8
    metrics = (comfy_server.output_dir / "golden_noise_runs" / "reward_net" / "metrics.jsonl").read_text()
    assert len(metrics.splitlines()) == 6 and all(
        "reward" in json.loads(line) for line in metrics.splitlines()
    )
    options = comfy_server.object_info("GoldenNoiseLoader")["GoldenNoiseLoader"]["input"]["required"][
        "weights"
    ]
    listed = options[0] if isinstance(options[0], list) else options[1]["options"]
    assert "reward_net.safetensors" in listed
    use = {
        "1": {"class_type": "GoldenNoiseTinyCheckpoint", "inputs": {"family": "sd15", "seed": 0}},
        "4": {"class_type": "GoldenNoiseLoader", "inputs": {"weights": "reward_net.safetensors"}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red bicycle", "clip": ["1", 1]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "8": {
            "class_type": "GoldenNoiseKSampler",
            "inputs": {
                "model": ["1", 0],
                "positive": ["5", 0],
                "negative": ["6", 0],
                "latent_image": ["7", 0],
                "npnet": ["4", 0],
                "seed": 3,
                "steps": 2,
                "cfg": 1.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
                "token_policy": "first_chunk",
                "strength": 1.0,
                "resolution_mode": "strict",
            },
        },
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["1", 2]}},
        "10": {"class_type": "PreviewImage", "inputs": {"images": ["9", 0]}},
        "11": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0],
                "positive": ["5", 0],
                "negative": ["6", 0],
                "latent_image": ["7", 0],
                "seed": 3,
                "steps": 2,
                "cfg": 1.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
            },
        },
        "12": {"class_type": "VAEDecode", "inputs": {"samples": ["11", 0], "vae": ["1", 2]}},
        "13": {"class_type": "PreviewImage", "inputs": {"images": ["12", 0]}},
    }
    inputs = comfy_server.object_info("GoldenNoiseKSampler")["GoldenNoiseKSampler"]["input"]
    expected = set(inputs["required"]) | set(inputs.get("optional", {}))
    assert {"npnet", "seed", "strength"} <= expected
    use["8"]["inputs"] = {k: v for k, v in use["8"]["inputs"].items() if k in expected}
    entry = comfy_server.run(use, timeout=300)
    golden, plain = (comfy_server.view(entry["outputs"][n]["images"][0]) for n in ("10", "13"))
    assert golden != plain  # the trained network changed the starting noise of the same seed


def test_a_requeue_of_a_finished_run_changes_nothing_and_other_settings_are_refused(comfy_server):
    comfy_server.run(train_graph("reward_again"), timeout=600)
    path = comfy_server.models_dir / "golden_noise" / "reward_again.safetensors"
    before = path.read_bytes()
    error = comfy_server.run_expecting_error(train_graph("reward_again", penalty=2.0), timeout=600)
    assert error["node_type"] == "GoldenNoiseTrainReward" and "output_name" in error["exception_message"]
    assert "penalty" in error["exception_message"] and "Traceback" not in error["exception_message"]
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "changes, name",
    [({"output_name": "../escape"}, "output_name"), ({"prompts": ""}, "prompts"), ({"width": 60}, "width")],
)
def test_bad_input_is_named(comfy_server, changes, name):
    error = comfy_server.run_expecting_error(train_graph("reward_bad", **changes), timeout=120)
    assert f"'{name}'" in error["exception_message"] and "Traceback" not in error["exception_message"]


def test_the_reward_training_example_runs_on_the_tiny_models(comfy_server):
    from tests.learning.test_server import example

    prompt = example(
        "golden_noise_train_reward_sdxl_turbo",
        width=64,
        height=64,
        steps=2,
        training_steps=4,
        tokens=8,
        output_name="example_reward",
    )
    entry = comfy_server.run(prompt, timeout=600)
    assert (comfy_server.models_dir / "golden_noise" / "example_reward.safetensors").is_file()
    save = next(k for k, n in prompt.items() if n["class_type"] == "SaveImage")
    assert entry["outputs"][save]["images"]


def with_init(graph: dict, weights: str) -> dict:
    """The graph with Golden Noise Loader's network for `weights` on the trainer's init input."""
    graph["4"] = {"class_type": "GoldenNoiseLoader", "inputs": {"weights": weights}}
    graph["3"]["inputs"]["init"] = ["4", 0]
    return graph


def test_anchored_to_an_init_network_the_run_starts_from_it_and_records_both(comfy_server):
    comfy_server.run(train_graph("reward_base"), timeout=600)
    base = comfy_server.models_dir / "golden_noise" / "reward_base.safetensors"
    comfy_server.run(with_init(train_graph("reward_anchored", anchor="init"), base.name), timeout=600)
    settings = TrainingState.read(
        comfy_server.output_dir / "golden_noise_runs" / "reward_anchored" / "state.pt"
    ).settings
    assert settings["anchor"] == "init"
    assert settings["init_sha256"] == hashlib.sha256(base.read_bytes()).hexdigest()
    # The default anchor with the same init records no anchor (runs saved before anchors still resume).
    comfy_server.run(with_init(train_graph("reward_from_base"), base.name), timeout=600)
    settings = TrainingState.read(
        comfy_server.output_dir / "golden_noise_runs" / "reward_from_base" / "state.pt"
    ).settings
    assert "anchor" not in settings and settings["init_sha256"] is not None


@pytest.mark.parametrize(
    "name, graph, message",
    [
        ("anchor", lambda: train_graph("reward_no_init", anchor="init"), "connect a network to init"),
        (
            "init",  # the run's own output file as its start: it would be replaced under the run
            lambda: with_init(train_graph("reward_base"), "reward_base.safetensors"),
            "the file this run writes",
        ),
        (
            "init",  # trained for 8 tokens, this run reads 4
            lambda: with_init(train_graph("reward_tokens", tokens=4), "reward_base.safetensors"),
            "init takes",
        ),
        # An API prompt can put a literal on a socket: the server checks links' types, not values.
        ("init", lambda: train_graph("reward_literal", init="../escape.safetensors"), "an NPNET link"),
        ("init", lambda: train_graph("reward_number", init=5), "an NPNET link"),
        # Nor does it check an optional combo's value.
        ("anchor", lambda: train_graph("reward_bogus", anchor="bogus"), "must be one of noise, init"),
        ("anchor", lambda: train_graph("reward_blank", anchor=""), "must be one of noise, init"),
    ],
)
def test_a_bad_init_or_anchor_is_named(comfy_server, name, graph, message):
    if not (comfy_server.models_dir / "golden_noise" / "reward_base.safetensors").is_file():
        comfy_server.run(train_graph("reward_base"), timeout=600)
    base = comfy_server.models_dir / "golden_noise" / "reward_base.safetensors"
    before = base.read_bytes()
    prompt = graph()
    output_name = prompt["3"]["inputs"]["output_name"]
    error = comfy_server.run_expecting_error(prompt, timeout=300)
    text = error["exception_message"]
    assert f"'{name}'" in text and message in text and "Traceback" not in text
    # Refused before anything is written: no new run folder, the loaded network untouched.
    assert base.read_bytes() == before
    if output_name != "reward_base":
        assert not (comfy_server.output_dir / "golden_noise_runs" / output_name).exists()
        assert not (comfy_server.models_dir / "golden_noise" / f"{output_name}.safetensors").exists()
