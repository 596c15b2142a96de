"""A local HTTP server that speaks enough of the Hugging Face Hub's protocol for the real
`huggingface_hub` client: the repo tree listing, and HEAD and ranged GET on `resolve` URLs.

It stands for huggingface.co, which the tests cannot reach; the client under test is the real one.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
import traceback
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/?]+)(?:/(?P<path>[^?]*))?")
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>[^?]+)")
CDN = re.compile(r"^/cdn/(?P<repo>[^/]+/[^/]+)/(?P<path>[^?]+)")
XET_TOKEN = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/xet-read-token/(?P<rev>[^/?]+)")


class FakeHub:
    """Just enough of the Hub for huggingface_hub: repo tree listing, HEAD and ranged GET on resolve."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        self.truncate: set[str] = set()  # "repo/path" served half, then the connection is dropped
        self.paced: dict[str, float] = {}  # "repo/path": seconds between MiB pieces of a full GET
        self.sent: dict[str, int] = {}  # "repo/path": bytes of the body a paced GET got onto the wire
        self.xet: set[str] = set()  # "repo/path" kept in Xet storage: fetched through XetStorage, not GET
        # "repo/path" kept in LFS: resolve answers 302 to /cdn/..., as the Hub does
        self.cdn: set[str] = set()

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
                if match := CDN.match(self.path):
                    return self._resolve({**match.groupdict(), "rev": "main"}, from_cdn=True)
                if XET_TOKEN.match(self.path):  # what the Hub answers: where Xet storage is, and a token
                    expires = str(int(time.time()) + 3600)
                    headers = {
                        "X-Xet-Cas-Url": XetStorage.URL,
                        "X-Xet-Access-Token": "read",
                        "Content-Length": "0",
                    }
                    return self._send(200, {**headers, "X-Xet-Token-Expiration": expires})
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

            def _resolve(self, match, from_cdn: bool = False) -> None:
                files = hub.repos.get(match["repo"])
                if files is None:
                    return self._error(404, "RepoNotFound")
                data = files.get(match["path"])
                if data is None:
                    return self._error(404, "EntryNotFound")
                key = f"{match['repo']}/{match['path']}"
                if key in hub.cdn and not from_cdn:
                    # The Hub's answer for an LFS file: the file's own etag and size in X-Linked-*, and an
                    # absolute Location that huggingface_hub does not follow for HEAD, only to download.
                    return self._send(
                        302,
                        {
                            "X-Repo-Commit": COMMIT,
                            "ETag": f'"{hashlib.sha1(data).hexdigest()}"',  # the LFS pointer's, not the file's
                            "X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"',
                            "X-Linked-Size": str(len(data)),
                            "Location": f"http://{self.headers['Host']}/cdn/{match['repo']}/{match['path']}",
                            "Content-Length": "0",
                        },
                    )
                headers = {
                    "X-Repo-Commit": COMMIT,
                    "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                    "Accept-Ranges": "bytes",
                    "Content-Type": "application/octet-stream",
                }
                broken = key in hub.truncate
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
                if key in hub.xet:
                    headers["X-Xet-Hash"] = hashlib.sha256(data).hexdigest()
                    route = f"/api/models/{match['repo']}/xet-read-token/{match['rev']}"
                    headers["X-Xet-Refresh-Route"] = f"http://{self.headers['Host']}{route}"
                if self.command == "GET" and key in hub.paced:
                    return self._paced(key, headers, data)
                if self.command == "GET" and broken:
                    self._send(200, headers, data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                return self._send(200, headers, data)

            def _paced(self, key: str, headers: dict[str, str], data: bytes) -> None:
                """The body in MiB pieces with a pause between them, until sent or the client hangs up."""
                self._send(200, headers)
                hub.sent[key] = 0
                piece = 1 << 20
                try:
                    for start in range(0, len(data), piece):
                        chunk = data[start : start + piece]
                        self.wfile.write(chunk)
                        hub.sent[key] = start + len(chunk)
                        time.sleep(hub.paced[key])
                except OSError:
                    pass  # the client closed the connection
                self.close_connection = True

        return Handler

    def serve(self) -> ThreadingHTTPServer:
        """Start serving on a free loopback port in a daemon thread; the caller shuts it down."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


class XetStorage:
    """Stands for hf_xet's XetSession, the Rust client of the Hub's Xet storage, which the tests cannot
    reach (install it with monkeypatch on huggingface_hub.utils._xet.get_xet_session).

    It keeps the behaviour of hf_xet's file download group that a caller can see (read in
    huggingface/xet-core at af1a3ff9, hf_xet/src/background_progress.rs and py_file_download_group.rs):
    `start_download_file` returns at once and the transfer runs on its own thread, here in MiB pieces
    `pace` seconds apart; a poller thread calls the progress callback every 10 ms (hf_xet: 100 ms)
    with hf_xet.GroupProgressReport's fields (bytes written, and network bytes at half of them:
    Xet moves compressed chunks); an exception from the callback is printed and stops the poller, never
    the transfer; leaving the `with` block waits for the transfer and calls the callback once more on
    the caller's thread, printing an exception from it too. Nothing outside can stop a transfer."""

    URL = "http://127.0.0.1:9/xet-cas"  # never contacted: this class does the transfer
    FIELDS = (
        "total_bytes",
        "total_bytes_completed",
        "total_bytes_completion_rate",
        "total_transfer_bytes",
        "total_transfer_bytes_completed",
        "total_transfer_bytes_completion_rate",
    )

    def __init__(self, hub: FakeHub, pace: float = 0.0) -> None:
        self.hub, self.pace = hub, pace
        self.downloads: list[str] = []  # the Xet hashes fetched
        self.finished = threading.Event()  # set when a transfer has written its last byte

    def new_file_download_group(self, *, progress_callback=None, **kwargs):
        return _XetGroup(self, progress_callback)


class _XetGroup:
    def __init__(self, storage: XetStorage, callback) -> None:
        self.storage, self.callback = storage, callback
        self.size = self.done = 0
        self.transfers: list[threading.Thread] = []
        self.stop = threading.Event()
        self.poller = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        self.poller.start()
        return self

    def __exit__(self, *exc_info) -> None:
        for transfer in self.transfers:
            transfer.join()
        self.stop.set()
        self.poller.join()
        self._report()

    def start_download_file(self, file_info, dest_path: str) -> None:
        files = self.storage.hub.repos.values()
        data = next(d for f in files for d in f.values() if hashlib.sha256(d).hexdigest() == file_info.hash)
        self.storage.downloads.append(file_info.hash)
        self.size = len(data)
        transfer = threading.Thread(target=self._write, args=(data, dest_path), daemon=True)
        self.transfers.append(transfer)
        transfer.start()

    def _write(self, data: bytes, dest_path: str) -> None:
        with open(dest_path, "wb") as out:
            for start in range(0, len(data), 1 << 20):
                out.write(piece := data[start : start + (1 << 20)])
                out.flush()
                self.done = start + len(piece)
                time.sleep(self.storage.pace)
        self.storage.finished.set()

    def _snapshot(self):
        values = (self.size, self.done, 1.0, self.size // 2, self.done // 2, 1.0)
        return types.SimpleNamespace(**dict(zip(XetStorage.FIELDS, values, strict=True)))

    def _report(self) -> bool:
        try:
            if self.callback is not None:
                self.callback(self._snapshot(), {})
            return True
        except Exception:  # noqa: BLE001 - hf_xet prints it and carries on
            traceback.print_exc()
            return False

    def _poll(self) -> None:
        while not self.stop.wait(0.01):
            if not self._report():
                return


class SilentHub:
    """A loopback server that accepts every connection and never answers: a stalled Hub."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held = []
        self.connected = threading.Event()  # set once a client is held waiting
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                self.held.append(self.sock.accept()[0])
                self.connected.set()
            except OSError:
                continue

    def close(self):
        """Answer every held request with a 404 and stop listening, then wait for the pack's abandoned
        Hub calls to end; raises if one outlives that.

        A cancelled or stalled download leaves its blocked call on a daemon thread (npnet/hub.py). Only
        closing the held sockets made that call retry against a closed port for half a minute, with
        huggingface_hub's warnings landing in whichever test ran next; a 404 is not retried, so the
        call ends here and a leak fails the test that caused it."""
        self.stop.set()
        for conn in self.held:
            try:
                conn.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:  # read it all: closing over unread bytes sends a reset
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    request += chunk
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the client already gave up on this connection
            conn.close()
        self.sock.close()
        alive = wait_for_abandoned_calls()
        if alive:
            raise AssertionError(f"{len(alive)} abandoned Hub call(s) still running after the hub closed")


def hub_calls() -> list[threading.Thread]:
    """The pack's Hub calls running now (npnet.hub._Watch's worker threads), abandoned ones included."""
    return [t for t in threading.enumerate() if t.name == "npnet-hub"]


def wait_for_abandoned_calls(timeout: float = 30) -> list[threading.Thread]:
    """Wait up to `timeout` s for each of the pack's Hub calls to end; the ones still running."""
    calls = hub_calls()
    for call in calls:
        call.join(timeout=timeout)
    return [call for call in calls if call.is_alive()]
