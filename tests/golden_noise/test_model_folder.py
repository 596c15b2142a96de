"""The `npnet` model folder: models/npnet plus `npnet:` folders from extra_model_paths.yaml."""

from __future__ import annotations

import importlib

import pytest

from tests.support.checkpoints import write_checkpoint


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


def test_a_file_name_that_is_not_utf8_is_left_out_of_the_list_and_the_log_survives(
    loader, comfy_inprocess, tmp_path, caplog
):
    """A surrogate-escaped name in a log line kills ComfyUI's prompt worker: the list skips it, escaped."""
    import os

    folder_paths = comfy_inprocess.folder_paths
    folder = tmp_path / "odd_npnet"
    folder.mkdir()
    (folder / os.fsdecode(b"broken\xff.safetensors")).write_bytes(b"x")
    (folder / "fine.safetensors").write_bytes(b"x")
    folder_paths.folder_names_and_paths["npnet"] = ([str(folder)], {".pth", ".safetensors"})
    if hasattr(folder_paths, "filename_list_cache"):  # the list is cached per folder type
        folder_paths.filename_list_cache.clear()
    choices = loader.weight_choices()
    assert "fine.safetensors" in choices
    assert all(name.encode("utf-8") for name in choices)
    assert "broken\\xff.safetensors" in caplog.text
    caplog.text.encode("utf-8")


def test_cancel_stops_a_stalled_download_and_a_stall_is_a_node_error(loader, comfy_inprocess, monkeypatch):
    import threading
    import time

    import comfy.model_management as mm

    from tests.support.fake_hub import SilentHub

    hub = SilentHub()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("GOLDEN_NOISE_HUB_TIMEOUT", "600")
    try:
        timer = threading.Timer(0.5, mm.interrupt_current_processing, args=(True,))  # the user presses Cancel
        timer.start()
        started = time.monotonic()
        with pytest.raises(mm.InterruptProcessingException):
            loader.resolve("DreamShaper-XL", node_id="3")
        assert time.monotonic() - started < 3
        mm.interrupt_current_processing(False)
        monkeypatch.setenv("GOLDEN_NOISE_HUB_TIMEOUT", "1")
        with pytest.raises(
            ValueError, match="Golden Noise Loader \\(node 3\\), input 'weights'.*sent nothing for 1 s"
        ):
            loader.resolve("DreamShaper-XL", node_id="3")
    finally:
        mm.interrupt_current_processing(False)
        hub.close()
    assert not list(loader.default_folder().glob("npnet-dreamshaper*"))
