"""`npnet.download` through the real huggingface_hub client against a local Hub-like HTTP server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import npnet
from dev.npnet_reference import official_checkpoint, text_embedding_flavour
from npnet.hub import variant_file
from tests.support.fake_hub import FakeHub, SilentHub, XetStorage, hub_calls, wait_for_abandoned_calls


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory, sdxl_state_dict) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("hub-files")
    torch.save(official_checkpoint(sdxl_state_dict), folder / "sdxl.pth")
    save_file(sdxl_state_dict, folder / "sdxl.safetensors")
    save_file(text_embedding_flavour(sdxl_state_dict), folder / "npnet-sdxl.safetensors")
    return {
        name: (folder / name).read_bytes()
        for name in ("sdxl.pth", "sdxl.safetensors", "npnet-sdxl.safetensors")
    }


@pytest.fixture
def hub(monkeypatch):
    fake = FakeHub()
    server = fake.serve()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    yield fake
    server.shutdown()
    server.server_close()


def _weight_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_official_pth_is_downloaded_and_converted_once(
    hub, checkpoint_bytes, sdxl_model, tmp_path, monkeypatch
):
    hub.add("Klayand/GoldenNoiseModel", "README.md", b"# NPNet")
    hub.add("Klayand/GoldenNoiseModel", "weights/sdxl.pth", checkpoint_bytes["sdxl.pth"])
    hub.add("Klayand/GoldenNoiseModel", "weights/dit.pth", b"not this one")
    reports = []
    path = npnet.download("sdxl", tmp_path, progress=lambda done, total: reports.append((done, total)))

    assert path == tmp_path / "npnet-sdxl.safetensors"
    assert _weight_files(tmp_path) == ["npnet-sdxl.safetensors"]  # no pickle, no partial, no staging left
    size = len(checkpoint_bytes["sdxl.pth"])
    assert reports and reports[-1] == (size, size)
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)
    downloads = [p for m, p in hub.requests if m == "GET" and "/resolve/" in p]
    assert downloads == ["/Klayand/GoldenNoiseModel/resolve/main/weights/sdxl.pth"]
    state_dict = npnet.load(path).state_dict()
    assert all(torch.equal(value, state_dict[key]) for key, value in sdxl_model.state_dict().items())

    # Second call, offline: the converted file is returned without a single request.
    hub.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert npnet.download("sdxl", tmp_path) == path
    assert hub.requests == []


def test_a_file_in_xet_storage_downloads_with_one_monotonic_progress(
    hub, checkpoint_bytes, sdxl_model, tmp_path, monkeypatch, capfd
):
    """The Hub keeps large files in Xet storage, which huggingface_hub fetches through hf_xet (installed
    with it) and reports through its own XetDownloadProgressReporter: two counts (bytes written, network
    bytes) and display calls a plain HTTP download never makes."""
    import hashlib

    import hf_xet

    assert set(XetStorage.FIELDS) <= set(dir(hf_xet.GroupProgressReport))  # the stand-in's report is hf_xet's
    data = checkpoint_bytes["sdxl.pth"]
    storage = _xet_file(hub, monkeypatch, data)
    reports = []
    path = npnet.download("sdxl", tmp_path, progress=lambda done, total: reports.append((done, total)))

    assert storage.downloads == [hashlib.sha256(data).hexdigest()]  # the Xet path, not a GET
    assert not [p for m, p in hub.requests if m == "GET" and "/resolve/" in p]
    assert reports[-1] == (len(data), len(data))  # bytes written, never the network's smaller count
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)
    assert "Traceback" not in capfd.readouterr().err  # hf_xet prints what the progress callback raises
    state_dict = npnet.load(path).state_dict()
    assert all(torch.equal(value, state_dict[key]) for key, value in sdxl_model.state_dict().items())


def _xet_file(hub, monkeypatch, data: bytes, pace: float = 0.0) -> XetStorage:
    """`data` as weights/sdxl.pth of the official repo, kept in Xet storage that writes a MiB per `pace` s."""
    import huggingface_hub.utils._xet

    hub.add("Klayand/GoldenNoiseModel", "weights/sdxl.pth", data)
    hub.xet.add("Klayand/GoldenNoiseModel/weights/sdxl.pth")
    storage = XetStorage(hub, pace=pace)
    monkeypatch.setattr(huggingface_hub.utils._xet, "get_xet_session", lambda: storage)
    return storage


def test_a_xet_transfer_longer_than_the_stall_timeout_is_not_a_stall(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("GOLDEN_NOISE_HUB_TIMEOUT", "1")
    _xet_file(hub, monkeypatch, bytes(4 << 20), pace=0.5)  # 2 s, a MiB every 0.5 s
    reports = []
    # The whole file arrives, and only the check of its contents (zeros) refuses it: no HubStalled.
    with pytest.raises(
        npnet.DownloadError, match="sdxl.pth: ValueError: .* is not a readable PyTorch checkpoint"
    ):
        npnet.download("sdxl", tmp_path, progress=lambda done, total: reports.append(done))
    assert reports[-1] == 4 << 20
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_a_cancelled_xet_download_returns_at_once_and_leaves_nothing_when_its_transfer_ends(
    hub, tmp_path, monkeypatch, capfd
):
    """hf_xet's transfer cannot be stopped from outside: the download returns on Cancel, and whatever
    the abandoned transfer still writes is removed when it ends."""
    import threading

    storage = _xet_file(hub, monkeypatch, bytes(8 << 20), pace=0.2)  # 1.6 s
    cancel = threading.Event()
    with pytest.raises(npnet.Cancelled):
        npnet.download(
            "sdxl", tmp_path, progress=lambda done, total: cancel.set(), should_cancel=cancel.is_set
        )
    assert not storage.finished.is_set()  # returned while the transfer was still running
    assert wait_for_abandoned_calls() == []
    assert storage.finished.is_set()
    assert list(tmp_path.rglob("*")) == []  # no file, no staging folder
    assert "Traceback" not in capfd.readouterr().err  # what hf_xet prints when a progress callback raises


def test_an_lfs_file_behind_the_hubs_redirect_downloads(hub, checkpoint_bytes, sdxl_model, tmp_path):
    """huggingface.co answers resolve for an LFS file with a 302 to its CDN (another host), the file's
    etag and size in X-Linked-* headers; the download follows it like any other."""
    data = checkpoint_bytes["sdxl.pth"]
    hub.add("Klayand/GoldenNoiseModel", "weights/sdxl.pth", data)
    hub.cdn.add("Klayand/GoldenNoiseModel/weights/sdxl.pth")
    reports = []
    path = npnet.download("sdxl", tmp_path, progress=lambda done, total: reports.append((done, total)))

    assert ("GET", "/cdn/Klayand/GoldenNoiseModel/weights/sdxl.pth") in hub.requests  # the redirect taken
    assert reports[-1] == (len(data), len(data))
    assert _weight_files(tmp_path) == ["npnet-sdxl.safetensors"]
    state_dict = npnet.load(path).state_dict()
    assert all(torch.equal(value, state_dict[key]) for key, value in sdxl_model.state_dict().items())


def test_existing_file_is_used_without_network(hub, tmp_path, checkpoint_bytes):
    (tmp_path / "sdxl.safetensors").write_bytes(checkpoint_bytes["sdxl.safetensors"])
    assert npnet.download("sdxl", tmp_path) == tmp_path / "sdxl.safetensors"
    assert hub.requests == []


def test_local_official_pth_is_converted_beside_it(hub, tmp_path, checkpoint_bytes):
    (tmp_path / "sdxl.pth").write_bytes(checkpoint_bytes["sdxl.pth"])
    path = npnet.download("sdxl", tmp_path)
    assert path == tmp_path / "npnet-sdxl.safetensors"
    assert _weight_files(tmp_path) == ["npnet-sdxl.safetensors", "sdxl.pth"]
    assert hub.requests == []


def test_falls_back_to_a_mirror_when_the_official_repo_lacks_the_file(hub, tmp_path, checkpoint_bytes):
    hub.add("Klayand/GoldenNoiseModel", "weights/dit.pth", b"only dit here")
    hub.add("asagi4/NPNet", "npnet-sdxl.safetensors", checkpoint_bytes["npnet-sdxl.safetensors"])
    path = npnet.download("sdxl", tmp_path)
    assert path == tmp_path / "npnet-sdxl.safetensors"
    assert npnet.load(path).family == "sdxl"
    resolved = [p for m, p in hub.requests if m == "GET" and "/resolve/" in p]
    assert resolved == ["/asagi4/NPNet/resolve/main/npnet-sdxl.safetensors"]
    # LucipherDev's mirror (tried before asagi4's) answered 404 for its repo.
    assert any(p.startswith("/LucipherDev/Golden-Noise-NPNets/resolve/") for _, p in hub.requests)


def test_interrupted_download_leaves_nothing_to_load(hub, tmp_path, checkpoint_bytes, monkeypatch):
    hub.add("Klayand/GoldenNoiseModel", "weights/sdxl.pth", checkpoint_bytes["sdxl.pth"])
    hub.truncate.add("Klayand/GoldenNoiseModel/weights/sdxl.pth")
    with pytest.raises(npnet.DownloadError) as error:
        npnet.download("sdxl", tmp_path)
    message = str(error.value)
    assert "Klayand/GoldenNoiseModel/weights/sdxl.pth" in message and "asagi4/NPNet" in message
    assert _weight_files(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir()] == []

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(npnet.DownloadError, match="downloads are off"):
        npnet.download("sdxl", tmp_path)


def test_offline_without_a_file_says_what_to_fetch_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example")
    with pytest.raises(npnet.DownloadError) as error:
        npnet.download("dit", tmp_path / "models" / "npnet")
    message = str(error.value)
    assert "https://hub.example/asagi4/NPNet/resolve/main/npnet-dit.safetensors" in message
    assert str(tmp_path / "models" / "npnet" / "npnet-dit.safetensors") in message
    assert "HF_HUB_OFFLINE" in message


def test_wrong_variant_weights_are_rejected(hub, tmp_path, checkpoint_bytes):
    # An SDXL-family file published under the DiT name must not become npnet-dit.safetensors.
    hub.add("Klayand/GoldenNoiseModel", "weights/dit.pth", checkpoint_bytes["sdxl.pth"])
    with pytest.raises(npnet.DownloadError, match="conditions on D=1024"):
        npnet.download("dit", tmp_path)
    assert _weight_files(tmp_path) == []


def test_unknown_variant():
    with pytest.raises(ValueError, match="variant must be one of"):
        npnet.download("flux")


@pytest.mark.parametrize(
    "files, variant, expected",
    [
        (
            ["README.md", "weights/sdxl.pth", "weights/dit.pth", "weights/dreamshaper.pth"],
            "sdxl",
            "weights/sdxl.pth",
        ),
        (["weights/SDXL.pth", "weights/DiT.pth"], "dit", "weights/DiT.pth"),
        (["Old_pth/sdxl.pth", "sdxl.safetensors"], "sdxl", "sdxl.safetensors"),
        (["weights/dreamshaper_sdxl.pth", "weights/npnet-sdxl.pt"], "sdxl", "weights/npnet-sdxl.pt"),
        (["weights/model.pth", "sdxl.json"], "sdxl", None),
    ],
)
def test_variant_file_matching(files, variant, expected):
    assert variant_file(files, variant) == expected


@pytest.fixture
def silent_hub(monkeypatch):
    hub = SilentHub()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("GOLDEN_NOISE_HUB_TIMEOUT", "2")
    yield hub
    hub.close()


def _download_in_thread(tmp_path, **kwargs):
    """npnet.download on a thread, and a dict that receives what it raised."""
    import threading

    outcome = {}

    def run():
        try:
            npnet.download("sdxl", dest_dir=tmp_path, **kwargs)
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_hub_that_never_answers_times_out_with_a_clear_error(silent_hub, tmp_path):
    from npnet.hub import HubStalled

    thread, outcome = _download_in_thread(tmp_path)
    thread.join(timeout=120)  # only the 2 s stall timeout can end it: the hub never answers
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), HubStalled)
    assert re.search("sent nothing for 2 s.*GOLDEN_NOISE_HUB_TIMEOUT", str(outcome["error"]))
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.startswith(".")]


def test_cancel_stops_a_stalled_download(silent_hub, tmp_path, monkeypatch):
    import threading

    monkeypatch.setenv("GOLDEN_NOISE_HUB_TIMEOUT", "600")
    cancel = threading.Event()
    thread, outcome = _download_in_thread(tmp_path, should_cancel=cancel.is_set)
    assert silent_hub.connected.wait(timeout=60)  # the download is now blocked on the silent hub
    cancel.set()
    thread.join(timeout=60)  # far below the 600 s stall timeout: only Cancel can have ended it
    assert not thread.is_alive() and isinstance(outcome.get("error"), npnet.Cancelled)
    assert not list(tmp_path.glob("npnet-*.safetensors"))
    # Cancel ended the job: no mirror was tried after it, so the held listing is the only call left.
    assert len(hub_calls()) == 1


def test_a_cancelled_download_stops_transferring(hub, tmp_path):
    """After Cancel the abandoned call stops at its next progress report (huggingface_hub reports every
    10 MiB) instead of fetching the rest of the file in the background."""
    import threading

    size = 64 << 20
    hub.add("Klayand/GoldenNoiseModel", "sdxl.pth", bytes(size))
    hub.paced["Klayand/GoldenNoiseModel/sdxl.pth"] = 0.03  # ~2 s for the whole file
    cancel = threading.Event()
    with pytest.raises(npnet.Cancelled):
        npnet.download(
            "sdxl", tmp_path, progress=lambda done, total: cancel.set(), should_cancel=cancel.is_set
        )
    assert wait_for_abandoned_calls() == []
    assert hub.sent["Klayand/GoldenNoiseModel/sdxl.pth"] < size // 2  # stopped, not fetched to the end
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_a_download_cancelled_before_it_starts_sends_nothing_and_is_a_cancel(silent_hub, tmp_path):
    from npnet.hub import download_imagenet_swin

    with pytest.raises(npnet.Cancelled):  # not a DownloadError: the user asked for it
        download_imagenet_swin(tmp_path, should_cancel=lambda: True)
    with pytest.raises(npnet.Cancelled):
        npnet.download("sdxl", tmp_path, should_cancel=lambda: True)
    assert silent_hub.held == [] and not silent_hub.connected.is_set()


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf", "1e999"])
def test_a_stall_timeout_that_is_not_seconds_is_refused_before_any_request(hub, tmp_path, monkeypatch, value):
    from npnet.hub import DownloadError, download_folder, download_imagenet_swin

    monkeypatch.setenv("GOLDEN_NOISE_HUB_TIMEOUT", value)
    hub.add("Klayand/GoldenNoiseModel", "weights/sdxl.pth", b"unused")
    for fetch in (
        lambda: npnet.download("sdxl", tmp_path / "npnet"),
        lambda: download_imagenet_swin(tmp_path / "swin"),
        lambda: download_folder("org/reward", tmp_path / "reward", lambda files: files),
    ):
        with pytest.raises(DownloadError, match=f"GOLDEN_NOISE_HUB_TIMEOUT='{value}': .*a number > 0"):
            fetch()
    assert hub.requests == []
    assert not [p for p in tmp_path.rglob("*")]  # not even a staging folder
