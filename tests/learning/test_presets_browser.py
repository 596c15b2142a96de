"""Collect Noise Prompt Dataset in the real front end (headless Chromium): choosing the `authors` preset
sets the widgets it stands for, with the values the node checks when it runs."""

from __future__ import annotations

import json

import pytest

from tests.support import REPO_ROOT


@pytest.mark.server
@pytest.mark.browser
def test_choosing_the_authors_preset_sets_its_widgets(comfy_server, browser):
    comfy_server.request("/settings/Comfy.TutorialCompleted", True)
    browser.navigate(comfy_server.url)
    browser.wait_for("!!(window.app && app.graph && window.LiteGraph && app.canvas)", 120, "the ComfyUI app")
    browser.wait_for(
        "!!LiteGraph.registered_node_types['GoldenNoiseCollectDataset']", 60, "the Collect node definition"
    )
    workflow = json.loads((REPO_ROOT / "example_workflows" / "golden_noise_collect_sdxl.json").read_text())
    node_id = next(n["id"] for n in workflow["nodes"] if n["type"] == "GoldenNoiseCollectDataset")
    browser.evaluate(f"(async () => {{ await app.loadGraphData({json.dumps(workflow)}); return true; }})()")
    names = [
        "sampler_name",
        "scheduler",
        "steps",
        "cfg",
        "cfg_denoise",
        "cfg_inversion",
        "inversion",
        "negative_prompt",
    ]
    read = f"""(() => {{
        const n = app.graph.getNodeById({node_id});
        return Object.fromEntries({json.dumps(names)}.map(k => [k, n.widgets.find(w => w.name === k).value]));
    }})()"""
    before = browser.evaluate(read)
    assert before["sampler_name"] == "euler" and before["negative_prompt"] != ""
    browser.evaluate(f"""(() => {{
        const w = app.graph.getNodeById({node_id}).widgets.find(w => w.name === 'preset');
        w.value = 'authors';
        w.callback(w.value);
        return true;
    }})()""")
    after = browser.wait_for(
        f"(() => {{ const v = {read}; return v.sampler_name === 'ddim' ? v : null; }})()",
        30,
        "the preset's values",
    )
    expected = comfy_server.get_json("/api/golden_noise/collect_presets")["authors"]
    assert after == {name: expected[name] for name in names}
    assert after == {
        "sampler_name": "ddim",
        "scheduler": "ddim_uniform",
        "steps": 50,
        "cfg": 5.5,
        "cfg_denoise": 5.5,
        "cfg_inversion": 1.0,
        "inversion": "released",
        "negative_prompt": "",
    }
