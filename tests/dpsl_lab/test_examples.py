"""The DPSL example workflows run on the real server: their charts and reports (the files themselves are
checked with every other example in tests/test_example_workflows.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support import REPO_ROOT as REPO

UI_DIR = REPO / "example_workflows"
API_DIR = REPO / "tests" / "api_workflows"
EXAMPLES = sorted(p.stem for p in UI_DIR.glob("dpsl_*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runs(comfy_server) -> dict[str, dict]:
    """Each example queued once on the real server: name -> (prompt, history entry)."""
    out = {}
    for name in EXAMPLES:
        prompt = load(API_DIR / f"{name}.json")
        out[name] = (prompt, comfy_server.run(prompt, timeout=300))
    return out


def chart_outputs(prompt: dict, entry: dict) -> list[dict]:
    ids = [nid for nid, e in prompt.items() if e["class_type"] == "DPSLChart"]
    assert ids
    return [entry["outputs"][nid]["images"][0] for nid in sorted(ids, key=int)]


def assert_readable_chart(png: bytes, size=(1024, 640)) -> np.ndarray:
    img = Image.open(io.BytesIO(png))
    assert img.size == size
    rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
    background = np.all(rgb > 245, axis=-1)
    assert 0.02 < 1 - background.mean() < 0.6, "chart is blank or a solid block"
    assert rgb.std() > 20
    # Colour is drawn, not only black text and grid: some strongly saturated pixels exist.
    saturation = rgb.max(axis=-1) - rgb.min(axis=-1)
    assert (saturation > 80).mean() > 0.002
    return rgb


@pytest.mark.server
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_and_its_charts_are_served(name, runs, comfy_server, artifacts_dir):
    prompt, entry = runs[name]
    for i, image in enumerate(chart_outputs(prompt, entry)):
        png = comfy_server.view(image)
        assert_readable_chart(png)
        (artifacts_dir / f"{name}_{i}.png").write_bytes(png)


@pytest.mark.server
@pytest.mark.parametrize("name", EXAMPLES)
def test_thumbnail_is_the_chart_the_workflow_produces(name, runs, comfy_server):
    prompt, entry = runs[name]
    png = comfy_server.view(chart_outputs(prompt, entry)[0])
    thumb = Image.open(UI_DIR / f"{name}.jpg").convert("RGB")
    chart = Image.open(io.BytesIO(png)).convert("RGB").resize(thumb.size, Image.LANCZOS)
    diff = np.abs(np.asarray(thumb, dtype=float) - np.asarray(chart, dtype=float)).mean()
    assert diff < 4.0, (
        f"thumbnail differs from the chart by {diff:.1f} grey levels: rerun dev/example_workflows.py"
    )


@pytest.mark.server
def test_binary_report_matches_the_closed_form(runs, comfy_server):
    prompt, entry = runs["dpsl_binary_cascade"]
    report_id = next(nid for nid, e in prompt.items() if e["class_type"] == "DPSLReport")
    text = entry["outputs"][report_id]["text"][0]
    assert "P(correct cascade)" in text and "p=0.55" in text and "p=0.9" in text
    doc = json.loads(max((comfy_server.output_dir / "dpsl").glob("binary_cascade_*.json")).read_text())
    exact = [r for r in doc["rows"] if r["relation"] == "=" and r["se"]]
    assert {r["metric"] for r in exact} == {"p_correct_cascade", "reports_before_cascade_mean"}
    assert len(exact) == 2 * 3 * 9
    worst = max(exact, key=lambda r: abs(r["z"]))
    # 54 comparisons: |z| < 4.5 fails by chance with probability ~4e-4.
    assert abs(worst["z"]) < 4.5, worst
    csv_text = max((comfy_server.output_dir / "dpsl").glob("binary_cascade_*.csv")).read_text()
    assert csv_text.startswith("setting,metric,label,simulated,se,closed_form,relation,z")
