"""Every example workflow as ComfyUI's real front end draws it (headless Chromium): no node lies over
another, so every title and widget of a shared graph can be read and clicked."""

from __future__ import annotations

import itertools
import json

import pytest

from tests.support import REPO_ROOT

EXAMPLES = sorted((REPO_ROOT / "example_workflows").glob("*.json"))

# The boxes as drawn: LiteGraph keeps `pos` at the top left of the body; the title bar sits above it.
BOXES = """(() => app.graph._nodes.map(n => ({
    id: n.id, title: n.title, x: n.pos[0], y: n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT,
    w: n.size[0], h: n.size[1] + LiteGraph.NODE_TITLE_HEIGHT,
})))()"""


def overlaps(boxes: list[dict]) -> list[tuple[str, str]]:
    """Pairs of boxes whose areas intersect (touching edges do not count)."""
    found = []
    for a, b in itertools.combinations(boxes, 2):
        if (
            a["x"] < b["x"] + b["w"]
            and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"]
            and b["y"] < a["y"] + a["h"]
        ):
            found.append((f"{a['title']} ({a['id']})", f"{b['title']} ({b['id']})"))
    return found


def test_the_overlap_check_sees_an_overlap():
    """The check itself: two boxes sharing an area are reported, boxes side by side are not."""
    a = {"id": 1, "title": "a", "x": 0, "y": 0, "w": 100, "h": 100}
    assert overlaps([a, {**a, "id": 2, "title": "b", "x": 50, "y": 50}]) == [("a (1)", "b (2)")]
    assert overlaps([a, {**a, "id": 2, "title": "b", "x": 100}]) == []


@pytest.mark.server
@pytest.mark.browser
def test_no_example_has_a_node_over_another(comfy_server, browser):
    comfy_server.request("/settings/Comfy.TutorialCompleted", True)
    browser.navigate(comfy_server.url)
    browser.wait_for("!!(window.app && app.graph && window.LiteGraph && app.canvas)", 120, "the ComfyUI app")
    browser.wait_for("!!LiteGraph.registered_node_types['GoldenNoiseApply']", 60, "the pack's nodes")
    found = {}
    for path in EXAMPLES:
        workflow = json.loads(path.read_text(encoding="utf-8"))
        browser.evaluate(
            f"(async () => {{ await app.loadGraphData({json.dumps(workflow)}); return true; }})()"
        )
        boxes = browser.wait_for(
            f"(() => {{ const b = {BOXES}; return b.length === {len(workflow['nodes'])} ? b : null; }})()",
            30,
            f"{path.name} drawn",
        )
        if overlaps(boxes):
            found[path.name] = overlaps(boxes)
    assert found == {}, json.dumps(found, indent=1)
