"""Every example workflow loaded into the real front end (headless Chromium) sends exactly its API copy:
each widget value lands on the widget it was saved for (a front end that adds a widget the file does not
hold, such as a seed's control_after_generate, would shift every value after it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

EXAMPLES = sorted(p.stem for p in (REPO_ROOT / "example_workflows").glob("*.json"))


@pytest.fixture(scope="module")
def page(comfy_server, browser):
    comfy_server.request("/settings/Comfy.TutorialCompleted", True)
    browser.navigate(comfy_server.url)
    browser.wait_for("!!(window.app && app.graph && window.LiteGraph && app.canvas)", 120, "the ComfyUI app")
    browser.wait_for("!!LiteGraph.registered_node_types['GoldenNoiseCollectDataset']", 60, "the pack's nodes")
    return browser


@pytest.mark.server
@pytest.mark.browser
@pytest.mark.parametrize("name", EXAMPLES)
def test_the_front_end_sends_what_the_api_copy_holds(page, name):
    workflow = json.loads((REPO_ROOT / "example_workflows" / f"{name}.json").read_text())
    sent = page.evaluate(f"""(async () => {{
        await app.loadGraphData({json.dumps(workflow)});
        return (await app.graphToPrompt()).output;
    }})()""")
    expected = json.loads((Path(__file__).parent / "api_workflows" / f"{name}.json").read_text())
    assert {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in sent.items()} == {
        k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in expected.items()
    }
