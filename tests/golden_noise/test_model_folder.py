"""The `npnet` model folder: models/npnet plus `npnet:` folders from extra_model_paths.yaml."""

from __future__ import annotations

import importlib

import pytest

from tests.golden_noise.checkpoints import write_checkpoint


@pytest.fixture
def loader(comfy_inprocess, gn_nodes):
    module = importlib.import_module(comfy_inprocess.pack.__name__ + ".nodes.npnet_weights")
    saved = comfy_inprocess.folder_paths.folder_names_and_paths["npnet"]
    yield module
    comfy_inprocess.folder_paths.folder_names_and_paths["npnet"] = saved


def test_an_extra_model_paths_entry_is_searched_beside_models_npnet(
    loader, comfy_inprocess, tmp_path, monkeypatch
):
    folder_paths = comfy_inprocess.folder_paths
    extra = tmp_path / "shared_npnet"
    # What ComfyUI does for `npnet: <dir>` in extra_model_paths.yaml before custom nodes load.
    del folder_paths.folder_names_and_paths["npnet"]
    folder_paths.add_model_folder_path("npnet", str(extra))
    loader.register_folder()

    paths, extensions = folder_paths.folder_names_and_paths["npnet"]
    assert paths == [str(extra), str(loader.default_folder())]
    assert extensions == {".pth", ".safetensors"}

    write_checkpoint(extra / "npnet-dit.safetensors", 1024, seed=3)
    (extra / "notes.txt").write_text("not weights")
    assert "npnet-dit.safetensors" in loader.weight_choices()
    assert "notes.txt" not in loader.weight_choices()

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # found on disk: no download is attempted
    assert loader.resolve("Hunyuan-DiT", node_id="7") == extra / "npnet-dit.safetensors"
