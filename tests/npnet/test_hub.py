"""`npnet.download` through the real huggingface_hub client against a local Hub-like HTTP server."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import npnet
from npnet.hub import variant_file
from tests.npnet.reference import official_checkpoint, text_embedding_flavour

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/?]+)(?:/(?P<path>[^?]*))?")
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>[^?]+)")


class FakeHub:
    """Just enough of the Hub for huggingface_hub: repo tree listing, HEAD and ranged GET on resolve."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        self.truncate: set[str] = set()  # "repo/path" served half, then the connection is dropped

    def add(self, repo: str, path: str, data: bytes) -> None:
        self.repos.setdefault(repo, {})[path] = data

    def handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD" and body:
                    self.wfile.write(body)

            def _error(self, status: int, code: str) -> None:
                body = json.dumps({"error": code}).encode()
                headers = {"X-Error-Code": code, "X-Repo-Commit": COMMIT, "Content-Type": "application/json"}
                self._send(status, {**headers, "Content-Length": str(len(body))}, body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                hub.requests.append((self.command, self.path))
                if match := TREE.match(self.path):
                    return self._tree(match)
                if match := RESOLVE.match(self.path):
                    return self._resolve(match)
                self._error(404, "NotFound")

            do_HEAD = do_GET  # noqa: N815

            def _tree(self, match) -> None:
                files = hub.repos.get(match["repo"])
                if files is None:
                    return self._error(404, "RepoNotFound")
                entries = [
                    {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                    for path, data in files.items()
                ]
                body = json.dumps(entries).encode()
                self._send(200, {"Content-Type": "application/json", "Content-Length": str(len(body))}, body)

            def _resolve(self, match) -> None:
                files = hub.repos.get(match["repo"])
                if files is None:
                    return self._error(404, "RepoNotFound")
                data = files.get(match["path"])
                if data is None:
                    return self._error(404, "EntryNotFound")
                headers = {
                    "X-Repo-Commit": COMMIT,
                    "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                    "Accept-Ranges": "bytes",
                    "Content-Type": "application/octet-stream",
                }
                broken = f"{match['repo']}/{match['path']}" in hub.truncate
                range_header = self.headers.get("Range")
                if self.command == "GET" and range_header:
                    if broken:
                        return self._error(500, "Interrupted")
                    start = int(re.match(r"bytes=(\d+)-", range_header)[1])
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                    return self._send(
                        206, {**headers, "Content-Length": str(len(data) - start)}, data[start:]
                    )
                headers["Content-Length"] = str(len(data))
                if self.command == "GET" and broken:
                    self._send(200, headers, data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                return self._send(200, headers, data)

        return Handler


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
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
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
