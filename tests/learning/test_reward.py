"""Reward Model Loader: the published reward models through the real huggingface_hub against the local Hub
server, offline once present, and scores equal to transformers' own CLIP pipeline."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support.fake_hub import FakeHub


@pytest.fixture(scope="module")
def rewards(comfy_inprocess):
    return importlib.import_module(comfy_inprocess.pack.__name__ + ".nodes.reward_models")


@pytest.fixture(scope="module")
def hub(tmp_path_factory, tiny):
    repo = tiny.tiny_reward_repo(tmp_path_factory.mktemp("reward_repo"))
    fake = FakeHub()
    for path in repo.iterdir():
        fake.add("adams-story/HPSv2-hf", path.name, path.read_bytes())
        if path.name in ("config.json", "model.safetensors"):
            fake.add("yuvalkirstain/PickScore_v1", path.name, path.read_bytes())
        else:
            fake.add("laion/CLIP-ViT-H-14-laion2B-s32B-b79K", path.name, path.read_bytes())
    fake.add("adams-story/HPSv2-hf", "pytorch_model.bin", b"never fetched when safetensors exist")
    http = fake.serve()
    fake.url = f"http://127.0.0.1:{http.server_address[1]}"
    fake.repo = repo
    yield fake
    http.shutdown()
    http.server_close()


@pytest.fixture
def online(monkeypatch, hub, rewards):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    shutil.rmtree(rewards.default_folder(), ignore_errors=True)
    hub.requests.clear()
    return hub


def images(seed: int, n: int = 3) -> torch.Tensor:
    """Smooth pictures (random low-resolution colours, upsampled): images, not per-pixel noise, so the
    two resamplers (PIL's on 8-bit pixels, ours on floats) see the same content."""
    small = torch.rand((n, 3, 5, 7), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(
        small, size=(40, 56), mode="bilinear", align_corners=False
    ).movedim(1, -1)


@pytest.mark.parametrize("label, kind", [("HPSv2", "cosine"), ("PickScore", "logit")])
def test_download_then_scores_equal_transformers_own_pipeline(
    comfy_inprocess, rewards, online, label, kind, monkeypatch
):
    from transformers import CLIPModel, CLIPProcessor

    learning = importlib.import_module(comfy_inprocess.pack.__name__ + ".nodes.learning")
    reward = learning.RewardModelLoader.execute(label).result[0]
    assert reward.kind == kind
    assert not any("pytorch_model.bin" in path for _, path in online.requests)
    prompts = ["a red bicycle", "a lighthouse", "a bowl of ramen"]
    pictures = images(0)
    got = reward.score(pictures, prompts)

    model = CLIPModel.from_pretrained(online.repo).eval()
    processor = CLIPProcessor.from_pretrained(online.repo)
    pil = [Image.fromarray((p.numpy() * 255).round().astype(np.uint8)) for p in pictures]
    with torch.no_grad():
        out = model(**processor(text=prompts, images=pil, return_tensors="pt", padding=True))
    logits = out.logits_per_image.diagonal()
    expected = (logits if kind == "logit" else logits / model.logit_scale.exp()).detach()
    # PIL's 8-bit bicubic resize vs a float one: the same model and texts, scores agree closely.
    assert torch.allclose(got, expected, atol=5e-3 * float(expected.abs().max())), (got, expected)
    order = torch.argsort(expected)
    assert torch.equal(torch.argsort(got), order)

    # Offline afterwards: the folder is there, nothing is fetched.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    online.requests.clear()
    again = learning.RewardModelLoader.execute(label).result[0]
    assert online.requests == []
    assert torch.equal(again.score(pictures, prompts), got)


def test_offline_without_the_model_says_what_to_download(comfy_inprocess, rewards, online, monkeypatch):
    learning = importlib.import_module(comfy_inprocess.pack.__name__ + ".nodes.learning")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="Reward Model Loader.*'reward'.*HPSv2.*downloads are off.*HPSv2-hf"):
        learning.RewardModelLoader.execute("HPSv2")
    assert not any(p.name == "HPSv2" for p in rewards.default_folder().glob("*"))


def test_a_broken_local_folder_is_a_node_error(comfy_inprocess, rewards, online):
    broken = Path(rewards.default_folder()) / "my-broken-clip"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{not json")
    assert "my-broken-clip" in rewards.choices()
    with pytest.raises(ValueError, match="Reward Model Loader.*my-broken-clip.*could not be loaded"):
        rewards.load_reward("my-broken-clip")


@pytest.mark.slow
def test_hpsv21_downloads_once_in_open_clip_format_converts_and_becomes_the_default(
    comfy_inprocess, rewards, hub, monkeypatch, tmp_path_factory
):
    """The paper's filter: the open_clip checkpoint fetched from the Hub, converted once, the checkpoint
    removed, the converted model scoring as open_clip's own (tests/npnet/test_clip_conversion.py holds
    the conversion itself to open_clip's scores)."""
    from npnet.learning.clip_conversion import convert_file
    from tests.support.open_clip_run import open_clip_run

    made = open_clip_run(tmp_path_factory.mktemp("open_clip_site"), tmp_path_factory.mktemp("open_clip_run"))
    hub.add("xswu/HPSv2", "HPS_v2.1_compressed.pt", (made / "HPS_tiny.pt").read_bytes())
    hub.add("xswu/HPSv2", "HPS_v2_compressed.pt", b"the other version: never fetched")
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    shutil.rmtree(rewards.default_folder(), ignore_errors=True)
    assert rewards.default_choice() == "PickScore"
    learning = importlib.import_module(comfy_inprocess.pack.__name__ + ".nodes.learning")
    hub.requests.clear()
    reward = learning.RewardModelLoader.execute("HPSv2.1").result[0]
    assert not any("HPS_v2_compressed" in path for _, path in hub.requests)
    folder = rewards.default_folder() / "HPSv2.1"
    assert (folder / "config.json").is_file() and not list(rewards.default_folder().glob("*open_clip*"))
    assert reward.kind == "cosine" and rewards.default_choice() == "HPSv2.1"

    from transformers import CLIPModel

    reference = CLIPModel.from_pretrained(
        convert_file(made / "HPS_tiny.pt", tmp_path_factory.mktemp("ref") / "m")
    )
    expected = torch.load(made / "expected.pt", weights_only=True)
    held = reward.patcher.model.clip
    for name, tensor in reference.state_dict().items():
        assert torch.equal(held.state_dict()[name].cpu(), tensor), name
    pictures, prompts = images(1), ["a red bicycle", "a lighthouse", "a bowl of ramen"]
    scores = reward.score(pictures, prompts)
    assert scores.shape == (3,) and torch.isfinite(scores).all() and expected["cosine"].std() > 0

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.requests.clear()
    assert torch.equal(
        learning.RewardModelLoader.execute("HPSv2.1").result[0].score(pictures, prompts), scores
    )
    assert hub.requests == []
