"""GoldenNoiseLoader fetching a released variant on first use, in a server of its own that may go online.

The Hub is the npnet tests' local Hub-protocol server on 127.0.0.1 (HF_ENDPOINT points at it), driven by
the real huggingface_hub inside the real ComfyUI server process.
"""

from __future__ import annotations

import json

import pytest
import websocket

from dev.checkpoints import write_checkpoint
from dev.comfy_harness import start_server
from tests.golden_noise import graphs
from tests.support.fake_hub import FakeHub

pytestmark = pytest.mark.server
OFFICIAL_REPO = "Klayand/GoldenNoiseModel"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    weights = write_checkpoint(tmp_path_factory.mktemp("hub") / "sdxl.safetensors", 2048, seed=4)
    fake = FakeHub()
    fake.add(OFFICIAL_REPO, "weights/sdxl.safetensors", weights.read_bytes())
    http = fake.serve()
    fake.url = f"http://127.0.0.1:{http.server_address[1]}"
    fake.size = weights.stat().st_size
    yield fake
    http.shutdown()
    http.server_close()


@pytest.fixture(scope="module")
def online_server(tmp_path_factory, hub):
    server = start_server(
        tmp_path_factory.mktemp("comfyui_online"),
        env={"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_PROGRESS_BARS": "1"},
    )
    try:
        yield server
    finally:
        server.stop()


def run_listening(server, graph: dict) -> tuple[dict, list[dict]]:
    """Run `graph` while listening on ComfyUI's websocket; return the history entry and the messages."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/ws?clientId={server.client_id}", timeout=120
    )
    messages = []
    try:
        prompt_id = server.queue(graph)
        while True:
            frame = ws.recv()
            if isinstance(frame, bytes):  # binary preview images
                continue
            message = json.loads(frame)
            messages.append(message)
            data = message.get("data", {})
            if (
                message["type"] == "executing"
                and data.get("node") is None
                and data.get("prompt_id") == prompt_id
            ):
                break
    finally:
        ws.close()
    return server.wait(prompt_id), messages


def cached_nodes(entry: dict) -> set[str]:
    return {
        n
        for kind, payload in entry["status"]["messages"]
        if kind == "execution_cached"
        for n in payload["nodes"]
    }


def test_first_use_downloads_with_progress_then_the_cache_serves(online_server, hub):
    graph = graphs.noise_route(weights="SDXL", record_as="download_run")
    entry, messages = run_listening(online_server, graph)
    assert entry["status"]["status_str"] == "success", entry["status"]

    target = online_server.models_dir / "golden_noise" / "npnet-sdxl.safetensors"
    assert target.is_file()
    assert any(path.endswith("/weights/sdxl.safetensors") for _, path in hub.requests)
    progress = [
        m["data"] for m in messages if m["type"] == "progress" and m["data"].get("node") == graphs.LOADER
    ]
    assert len(progress) >= 2, "no download progress reached ComfyUI's progress hook"
    assert progress[-1]["value"] == progress[-1]["max"] == hub.size

    # "Free model and node cache": ComfyUI owns the network's lifetime, so dropping its output cache
    # frees the network (our cache holds it only weakly) and the loader executes again. The file is on
    # disk now: it is loaded again from there, with no request. ComfyUI applies the flag between prompts
    # (before or after the next one, depending on timing), so run twice and look at both.
    requests_before = len(hub.requests)
    online_server.request("/free", {"free_memory": True})
    runs = [online_server.run(graph), online_server.run(graph)]
    assert any(graphs.LOADER not in cached_nodes(e) for e in runs), (
        "ComfyUI's cache answered; the loader never ran"
    )
    assert len(hub.requests) == requests_before
    assert online_server.log().count("loading NPNet weights from") == 2
