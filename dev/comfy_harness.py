"""A real ComfyUI server for the tests, and a small HTTP client for it.

The server is the genuine ComfyUI tree that `make test` extracts (dev/comfyui_setup.py), started as
users start it, with its own base, output and temp folders so tests never touch a user's ComfyUI.
ComfyUI logs a pack that fails to import and keeps serving, so `start()` checks the log and
`/object_info` and fails loudly instead.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from dev.comfyui_setup import PACK_FOLDER_NAME, REPO_ROOT, link_pack, server_command

TESTING_PACK = REPO_ROOT / "tests" / "testing_pack"
TESTING_PACK_NAME = "golden_noise_testing"
IMPORT_FAILED_MARK = "IMPORT FAILED"


def comfyui_dir() -> Path:
    path = Path(os.environ.get("COMFYUI_DIR", REPO_ROOT / ".comfyui" / "ComfyUI"))
    if not (path / "main.py").is_file():
        raise RuntimeError(f"no ComfyUI at {path}: run the suite through `make test`, which installs it")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pack_import_failures(log_text: str, pack_name: str = PACK_FOLDER_NAME) -> list[str]:
    """Lines where ComfyUI reports that the pack could not be imported."""
    return [
        line
        for line in log_text.splitlines()
        if pack_name in line and (IMPORT_FAILED_MARK in line or "Cannot import" in line)
    ]


class ExecutionFailed(AssertionError):
    def __init__(self, message: str, history: dict):
        super().__init__(message)
        self.history = history


@dataclass
class ComfyServer:
    base_dir: Path
    port: int
    process: subprocess.Popen | None = None
    log_path: Path = field(init=False)
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self):
        self.log_path = self.base_dir / "comfyui.log"

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def models_dir(self) -> Path:
        return self.base_dir / "models"

    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    def start(
        self,
        packs: dict[str, Path] | None = None,
        timeout: float = 120.0,
        env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
    ) -> ComfyServer:
        """Start the server; `extra_args` go to ComfyUI's main.py (e.g. a shared --output-directory)."""
        packs = packs if packs is not None else {PACK_FOLDER_NAME: REPO_ROOT, TESTING_PACK_NAME: TESTING_PACK}
        custom_nodes = self.base_dir / "custom_nodes"
        for name, source in packs.items():
            link_pack(custom_nodes, source, name)
        for sub in ("models", "input", "output", "temp", "user"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        cmd = server_command(
            comfyui_dir(),
            self.port,
            [
                "--base-directory",
                str(self.base_dir),
                "--database-url",
                "sqlite:///:memory:",
                "--log-stdout",
                *(extra_args or []),
            ],
        )
        full_env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "HF_HOME": str(self.base_dir / "hf_home"),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.process = subprocess.Popen(
            cmd,
            cwd=comfyui_dir(),
            env=full_env,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                self.get_json("/system_stats")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        raise TimeoutError(f"ComfyUI not ready after {timeout} s:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            stop_process(self.process, timeout=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- HTTP --------------------------------------------------------------------------------------
    def request(self, path: str, data: dict | None = None, timeout: float = 30.0) -> bytes:
        body = json.dumps(data).encode() if data is not None else None
        req = urllib.request.Request(
            self.url + path, data=body, headers={"Content-Type": "application/json"} if body else {}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()

    def get_json(self, path: str):
        return json.loads(self.request(path))

    def object_info(self, node_id: str | None = None) -> dict:
        return self.get_json("/object_info" + (f"/{node_id}" if node_id else ""))

    def queue(self, prompt: dict) -> str:
        """Queue an API-format graph; a graph that fails validation raises with ComfyUI's node errors."""
        try:
            reply = json.loads(self.request("/prompt", {"prompt": prompt, "client_id": self.client_id}))
        except urllib.error.HTTPError as err:
            raise ExecutionFailed(f"ComfyUI rejected the graph: {err.read().decode()}", {}) from err
        return reply["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 120.0) -> dict:
        """The /history entry of a finished prompt (success or error)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.get_json(f"/history/{prompt_id}")
            if prompt_id in history:  # ComfyUI writes the entry once the prompt has finished
                return history[prompt_id]
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI died while running {prompt_id}:\n{self.log()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"prompt {prompt_id} not finished after {timeout} s")

    def run(self, prompt: dict, timeout: float = 120.0) -> dict:
        """Queue a graph and return its history entry; raise if it did not succeed."""
        entry = self.wait(self.queue(prompt), timeout)
        if entry["status"].get("status_str") != "success":
            raise ExecutionFailed(f"graph failed: {execution_error(entry)}", entry)
        return entry

    def run_expecting_error(self, prompt: dict, timeout: float = 120.0) -> dict:
        """Queue a graph that must fail at execution; return ComfyUI's execution_error message."""
        entry = self.wait(self.queue(prompt), timeout)
        error = execution_error(entry)
        assert entry["status"].get("status_str") == "error" and error, (
            f"expected an error, got {entry['status']}"
        )
        return error

    def view(self, image: dict) -> bytes:
        query = urllib.parse.urlencode({k: image[k] for k in ("filename", "subfolder", "type")})
        return self.request(f"/view?{query}")

    def interrupt(self) -> None:
        self.request("/interrupt", {})

    def messages(self):
        """A websocket on /ws for this client's prompts (ComfyUI's own progress and status messages)."""
        import websocket

        ws = websocket.create_connection(
            f"ws://127.0.0.1:{self.port}/ws?clientId={self.client_id}", timeout=60
        )
        return ws


def wait_for_message(ws, kind: str, timeout: float = 60.0, **data) -> dict:
    """The first websocket message of type `kind` whose data holds `data` (e.g. node="3"); binary frames
    (previews) are skipped. Raises TimeoutError when none comes in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.settimeout(max(deadline - time.monotonic(), 0.01))
        frame = ws.recv()
        if isinstance(frame, bytes):
            continue
        message = json.loads(frame)
        if message.get("type") == kind and all(message["data"].get(k) == v for k, v in data.items()):
            return message
    raise TimeoutError(f"no {kind} message {data} within {timeout} s")


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """Terminate, and kill if it has not exited after `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def execution_error(entry: dict) -> dict | None:
    """The `execution_error` message of a history entry (node_id, node_type, exception_message...)."""
    for kind, payload in entry.get("status", {}).get("messages", []):
        if kind == "execution_error":
            return payload
    return None


def start_server(base_dir: Path, **kwargs) -> ComfyServer:
    return ComfyServer(base_dir=base_dir, port=free_port()).start(**kwargs)


def quick_import_check(base_dir: Path, packs: dict[str, Path]) -> str:
    """Run ComfyUI's own `--quick-test-for-ci` (import everything, then exit) and return its log."""
    custom_nodes = base_dir / "custom_nodes"
    for name, source in packs.items():
        link_pack(custom_nodes, source, name)
    cmd = server_command(
        comfyui_dir(),
        free_port(),
        [
            "--base-directory",
            str(base_dir),
            "--database-url",
            "sqlite:///:memory:",
            "--quick-test-for-ci",
        ],
    )
    done = subprocess.run(
        cmd,
        cwd=comfyui_dir(),
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    return done.stdout + done.stderr


def import_inprocess(base: Path, pack_name: str, device: str = "cpu"):
    """ComfyUI's modules imported into this process and this pack imported as ComfyUI imports it.

    For the fast node tests and the benchmarks that call `Node.execute(...)` directly. Output, temp and
    model folders go under `base`. Returns a namespace with `pack` (our package module), ComfyUI's
    `folder_paths` and `base_dir`. `device` "cpu" forces ComfyUI onto the CPU; "cuda" leaves it its GPU.
    """
    import asyncio
    import importlib.util
    import sys
    import types

    comfy = str(comfyui_dir())
    if comfy not in sys.path:
        # Before the repo root: ComfyUI's top-level `nodes.py` must win over our `nodes/` package.
        sys.path.insert(0, comfy)
    from comfy.cli_args import args

    args.cpu = device == "cpu"
    args.disable_api_nodes = True
    import comfy.model_management  # noqa: F401  (reads args.cpu on import)
    import folder_paths

    folder_paths.set_output_directory(str(base / "output"))
    folder_paths.set_temp_directory(str(base / "temp"))
    folder_paths.models_dir = str(base / "models")

    spec = importlib.util.spec_from_file_location(
        pack_name, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
    )
    pack = importlib.util.module_from_spec(spec)
    sys.modules[pack_name] = pack
    spec.loader.exec_module(pack)
    # What the host does when it loads the pack: the entry point sets the pack up (model folders).
    asyncio.run(pack.comfy_entrypoint())
    return types.SimpleNamespace(pack=pack, folder_paths=folder_paths, base_dir=base)
