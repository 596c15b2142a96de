"""The model folders: the pack's models/golden_noise (and `golden_noise:` folders) first, then models/npnet
and `npnet:` folders, read but never written; the pack's old files move out of models/npnet."""

from __future__ import annotations

import importlib
import logging
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dev.checkpoints import write_checkpoint
from npnet.export import export


@pytest.fixture
def loader(comfy_inprocess, gn_nodes):
    module = importlib.import_module(comfy_inprocess.pack.__name__ + ".nodes.npnet_weights")
    table = comfy_inprocess.folder_paths.folder_names_and_paths
    saved = {key: table.get(key) for key in ("npnet", "golden_noise")}
    yield module
    for key, value in saved.items():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    if hasattr(comfy_inprocess.folder_paths, "filename_list_cache"):
        comfy_inprocess.folder_paths.filename_list_cache.clear()


def age(folder: Path, seconds: float = 3600) -> None:
    """Files written an hour ago, as an earlier version's are (the move leaves recent files alone)."""
    import os
    import time

    for path in folder.rglob("*"):
        os.utime(path, (time.time() - seconds,) * 2, follow_symlinks=False)


def asagi4_lists_and_loads(folder: Path) -> dict[str, bool]:
    """asagi4/ComfyUI-NPNet (abc6fb1): every .pth/.safetensors under models/npnet is listed; a listed
    .safetensors loads when it has 'text_embedding.linear.weight' (its flat layout), else KeyError."""
    out = {}
    for path in folder.rglob("*"):
        if path.suffix == ".safetensors":
            out[path.name] = "text_embedding.linear.weight" in load_file(path)
        elif path.suffix == ".pth":
            out[path.name] = "embeeding" in torch.load(path, weights_only=True)
    return out


def test_an_extra_model_paths_entry_is_searched_and_models_npnet_is_read(
    loader, comfy_inprocess, tmp_path, monkeypatch
):
    folder_paths = comfy_inprocess.folder_paths
    extra = tmp_path / "shared_npnet"
    # What ComfyUI does for `npnet: <dir>` in extra_model_paths.yaml before custom nodes load.
    folder_paths.folder_names_and_paths.pop("npnet", None)
    folder_paths.folder_names_and_paths.pop("golden_noise", None)
    folder_paths.add_model_folder_path("npnet", str(extra))
    loader.register_folder()

    paths, extensions = folder_paths.folder_names_and_paths["golden_noise"]
    assert paths == [str(loader.default_folder()), str(extra), str(loader.shared_folder())]
    assert extensions == {".pth", ".safetensors"}
    assert folder_paths.folder_names_and_paths["npnet"][0] == [str(extra)]  # another pack's entry untouched

    write_checkpoint(extra / "npnet-dit.safetensors", 1024, seed=3)
    (extra / "notes.txt").write_text("not weights")
    assert "npnet-dit.safetensors" in loader.weight_choices()
    assert "notes.txt" not in loader.weight_choices()

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # found on disk: no download is attempted
    assert loader.resolve("Hunyuan-DiT", node_id="7") == extra / "npnet-dit.safetensors"


def test_the_packs_old_files_leave_models_npnet_and_other_packs_files_stay(
    loader, comfy_inprocess, tmp_path, caplog, monkeypatch
):
    models = tmp_path / "models"
    monkeypatch.setattr(comfy_inprocess.folder_paths, "models_dir", str(models))
    shared, own = models / "npnet", models / "golden_noise"
    ours = write_checkpoint(shared / "npnet-sdxl.safetensors", 2048, seed=5)  # what 0.x downloaded here
    (shared / "sub").mkdir()
    shutil.copy(ours, shared / "sub" / "trained.safetensors")
    export(ours, shared / "asagi4-npnet-sdxl.safetensors", "asagi4")
    export(ours, shared / "sdxl.pth", "official")
    age(shared)
    assert asagi4_lists_and_loads(shared) == {
        "npnet-sdxl.safetensors": False,
        "trained.safetensors": False,
        "asagi4-npnet-sdxl.safetensors": True,
        "sdxl.pth": True,
    }
    folder_paths = comfy_inprocess.folder_paths
    folder_paths.folder_names_and_paths.pop("npnet", None)
    folder_paths.folder_names_and_paths.pop("golden_noise", None)
    with caplog.at_level(logging.WARNING):
        loader.register_folder()

    assert all(asagi4_lists_and_loads(shared).values())  # nothing there fails asagi4 any more
    assert (own / "npnet-sdxl.safetensors").is_file() and (own / "sub" / "trained.safetensors").is_file()
    assert "moved" in caplog.text and "npnet-sdxl.safetensors" in caplog.text
    choices = loader.weight_choices()
    for name in (
        "npnet-sdxl.safetensors",
        "sub/trained.safetensors",
        "asagi4-npnet-sdxl.safetensors",
        "sdxl.pth",
    ):
        assert name in choices  # workflows naming them still find them
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert loader.resolve("SDXL", node_id="1") == own / "npnet-sdxl.safetensors"


def test_a_pth_in_models_npnet_is_read_in_place_never_converted_there(
    loader, comfy_inprocess, tmp_path, monkeypatch
):
    models = tmp_path / "models"
    monkeypatch.setattr(comfy_inprocess.folder_paths, "models_dir", str(models))
    ours = write_checkpoint(tmp_path / "w.safetensors", 1024, seed=6)
    (models / "npnet").mkdir(parents=True)
    export(ours, models / "npnet" / "dit.pth", "official")
    comfy_inprocess.folder_paths.folder_names_and_paths.pop("golden_noise", None)
    comfy_inprocess.folder_paths.folder_names_and_paths.pop("npnet", None)
    loader.register_folder()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert loader.resolve("Hunyuan-DiT", node_id="1") == models / "npnet" / "dit.pth"
    assert sorted(p.name for p in (models / "npnet").iterdir()) == ["dit.pth"]


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
    folder_paths.folder_names_and_paths["golden_noise"] = ([str(folder)], {".pth", ".safetensors"})
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
    timer = threading.Timer(0.5, mm.interrupt_current_processing, args=(True,))  # the user presses Cancel
    try:
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
        timer.cancel()  # a failure before it fired must not interrupt a later test
        mm.interrupt_current_processing(False)
        hub.close()
    assert not list(loader.default_folder().glob("npnet-dreamshaper*"))


def test_the_move_touches_only_finished_files_the_pack_wrote_never_over_anything_and_runs_once(
    loader, comfy_inprocess, tmp_path, caplog, monkeypatch
):
    import os

    from safetensors.torch import save_file

    models = tmp_path / "models"
    monkeypatch.setattr(comfy_inprocess.folder_paths, "models_dir", str(models))
    shared, own = models / "npnet", models / "golden_noise"
    ours = write_checkpoint(shared / "ours.safetensors", 2048, seed=5)
    state = load_file(ours)
    # LucipherDev's layout (the same embeeding.* keys) without the pack's metadata: a user's file
    save_file(state, shared / "lucipher.safetensors")
    shutil.copy(ours, shared / "in-progress.safetensors")  # ours, but still open for writing
    shutil.copy(ours, shared / "taken.safetensors")
    own.mkdir(parents=True)
    os.symlink(tmp_path / "nowhere", own / "taken.safetensors")  # a dangling link holds the name
    age(shared)
    shutil.copy(ours, shared / "just-written.safetensors")  # ours, modified a moment ago
    before = {p.name: p.read_bytes() for p in shared.iterdir()}
    writer = open(shared / "in-progress.safetensors", "r+b")  # noqa: SIM115 (held open across the move)
    try:
        with caplog.at_level(logging.WARNING):
            loader.migrate_shared_folder(shared, own)
    finally:
        writer.close()
    assert (own / "ours.safetensors").read_bytes() == before["ours.safetensors"]
    assert not (shared / "ours.safetensors").exists()
    for name in (
        "lucipher.safetensors",
        "in-progress.safetensors",
        "just-written.safetensors",
        "taken.safetensors",
    ):
        assert (shared / name).read_bytes() == before[name], name  # untouched
        assert name == "taken.safetensors" or not os.path.lexists(own / name), name
    assert os.readlink(own / "taken.safetensors") == str(tmp_path / "nowhere")  # the link is still there
    assert "open for writing" in caplog.text and "modified" in caplog.text and "already exists" in caplog.text
    assert "remove one" not in caplog.text

    # Once: a file of ours put into models/npnet later stays there (it cannot be told from a user's copy).
    later = shutil.copy(ours := own / "ours.safetensors", shared / "later.safetensors")
    age(shared)
    loader.migrate_shared_folder(shared, own)
    assert Path(later).is_file() and not (own / "later.safetensors").exists() and ours.is_file()


def test_models_npnet_linked_to_models_golden_noise_is_one_folder_and_nothing_moves(
    loader, comfy_inprocess, tmp_path, caplog, monkeypatch
):
    import os

    models = tmp_path / "models"
    own = models / "golden_noise"
    ours = write_checkpoint(own / "ours.safetensors", 2048, seed=5)
    age(own)
    os.symlink(own, models / "npnet")
    with caplog.at_level(logging.WARNING):
        loader.migrate_shared_folder(models / "npnet", own)
    assert ours.is_file() and caplog.text == ""  # no advice that would delete the only copy
