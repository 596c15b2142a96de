"""The ComfyUI page in a real headless Chromium: load a DPSL example, queue it, see the chart.

Needs the Debian packages `chromium` (any Chromium-family browser on PATH, or $CHROMIUM). Without
one the test is skipped with the reason, except under CI=true, where a missing browser fails.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support import REPO_ROOT as REPO

EXAMPLE = "dpsl_binary_cascade"
SEED = 424242  # not used by other tests, so the server cannot answer from its cache


@pytest.mark.server
@pytest.mark.browser
def test_example_loads_queues_and_shows_its_chart(comfy_server, browser, artifacts_dir):
    # A first visit opens the template browser over the canvas; a returning user's setting skips it.
    comfy_server.request("/settings/Comfy.TutorialCompleted", True)
    browser.navigate(comfy_server.url)
    browser.wait_for("!!(window.app && app.graph && window.LiteGraph && app.canvas)", 120, "the ComfyUI app")
    browser.wait_for("!!LiteGraph.registered_node_types['DPSLChart']", 60, "the DPSL node definitions")

    workflow = json.loads((REPO / "example_workflows" / f"{EXAMPLE}.json").read_text())
    missing = browser.evaluate(f"""(async () => {{
        const wf = {json.dumps(workflow)};
        await app.loadGraphData(wf);
        return wf.nodes.map(n => n.type).filter(t => !LiteGraph.registered_node_types[t]);
    }})()""")
    assert missing == [], f"missing node types: {missing}"
    assert browser.evaluate("app.graph._nodes.length") == len(workflow["nodes"])

    # What the front end would send equals the API copy the server tests run (widget order included).
    scenario_id = next(n["id"] for n in workflow["nodes"] if n["type"] == "DPSLScenario")
    browser.evaluate(f"""(() => {{
        const w = app.graph.getNodeById({scenario_id}).widgets.find(w => w.name === 'seed');
        w.value = {SEED};
        return true;
    }})()""")
    sent = browser.evaluate("(async () => (await app.graphToPrompt()).output)()")
    expected = json.loads((Path(__file__).parents[1] / "api_workflows" / f"{EXAMPLE}.json").read_text())
    expected[str(scenario_id)]["inputs"]["seed"] = SEED
    assert {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in sent.items()} == {
        k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in expected.items()
    }

    browser.evaluate("(async () => { await app.queuePrompt(0, 1); return true; })()")
    chart_id = next(n["id"] for n in workflow["nodes"] if n["type"] == "DPSLChart")
    width = browser.wait_for(
        f"""(() => {{
        const n = app.graph.getNodeById({chart_id});
        const img = n && n.imgs && n.imgs[0];
        return img && img.complete ? img.naturalWidth : 0;
    }})()""",
        120,
        "the chart image on the DPSLChart node",
    )
    assert width == 1024

    report_id = next(n["id"] for n in workflow["nodes"] if n["type"] == "DPSLReport")
    report_text = browser.wait_for(
        f"""(() => {{
        const w = app.graph.getNodeById({report_id}).widgets.find(w => w.name === 'report_view');
        return w && w.value && w.value.includes('P(correct cascade)') ? w.value : '';
    }})()""",
        30,
        "the report table on the DPSLReport node",
    )
    assert "closed form" in report_text

    browser.evaluate("""(async () => {
        // Above LiteGraph's low-quality zoom, so widgets and the report text are drawn.
        app.canvas.ds.scale = 0.75;
        app.canvas.ds.offset = [100, 40];
        app.graph.setDirtyCanvas(true, true);
        await new Promise(r => setTimeout(r, 1000));
        return true;
    })()""")
    shot = artifacts_dir / f"browser_{EXAMPLE}.png"
    browser.screenshot(shot)
    pixels = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("RGB"), dtype=float)
    assert pixels.std() > 10, "the screenshot is blank"
    errors = [line for line in browser.console if "dpsl" in line.lower() and "error" in line.lower()]
    assert not errors, errors
