"""Every example workflow (Golden Noise and DPSL) as the front end loads it: thumbnails, the node types,
typed links and widget values the real server declares, and the API copy the tests queue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

UI_DIR = REPO_ROOT / "example_workflows"
API_DIR = Path(__file__).parent / "api_workflows"
WORKFLOWS = sorted(UI_DIR.glob("*.json"))
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
EXPECTED = {
    "golden_noise_sdxl_custom_sampler",
    "golden_noise_sdxl_ksampler",
    "golden_noise_sdxl_ksampler_advanced",
    "golden_noise_hunyuan_dit",
    "golden_noise_side_by_side",
    "golden_noise_collect_sdxl",
    "golden_noise_collect_authors_sdxl",
    "golden_noise_evaluate_sdxl",
    "golden_noise_learning_loop_sd15",
    "golden_noise_train_reward_sdxl_turbo",
    "dpsl_binary_cascade",
    "dpsl_llr_regimes",
    "dpsl_smooth_rr",
    "dpsl_stopping_time",
    "dpsl_first_correct",
    "dpsl_precascade_reports",
    "dpsl_platform_objective",
    "dpsl_llr_recursion",
    "dpsl_threshold_schematic",
}


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_issues_examples_exist_each_with_an_api_copy():
    assert {p.stem for p in WORKFLOWS} == EXPECTED
    assert {p.stem for p in API_DIR.glob("*.json")} == EXPECTED


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_has_a_small_same_name_thumbnail(path):
    # The frontend's template browser requests `<name>.jpg`; a .png beside it would never show.
    thumb = path.with_suffix(".jpg")
    assert thumb.is_file(), f"no {thumb.name} for {path.name}"
    assert thumb.read_bytes()[:3] == b"\xff\xd8\xff", f"{thumb.name} is not a JPEG"
    assert thumb.stat().st_size < 200_000


def declared_inputs(info: dict) -> dict[str, list]:
    return {**info["input"].get("required", {}), **info["input"].get("optional", {})}


def input_type(spec: list) -> str:
    return "COMBO" if isinstance(spec[0], list) else spec[0]


def combo_options(spec: list) -> list:
    return spec[0] if isinstance(spec[0], list) else spec[1].get("options", [])


@pytest.fixture(scope="module")
def object_info(comfy_server) -> dict:
    return comfy_server.object_info()


@pytest.mark.server
@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_matches_the_running_server(path, object_info):
    workflow = load(path)
    assert workflow["version"] == 0.4
    nodes = {node["id"]: node for node in workflow["nodes"]}

    missing = sorted({n["type"] for n in nodes.values()} - set(object_info))
    assert not missing, f"{path.name}: node types unknown to ComfyUI: {missing}"

    for link_id, src, src_slot, dst, dst_slot, kind in workflow["links"]:
        src_info, dst_node = object_info[nodes[src]["type"]], nodes[dst]
        assert src_info["output"][src_slot] == kind, (
            f"link {link_id}: {nodes[src]['type']}[{src_slot}] is not {kind}"
        )
        name = dst_node["inputs"][dst_slot]["name"]
        spec = declared_inputs(object_info[dst_node["type"]]).get(name)
        assert spec is not None, f"link {link_id}: {dst_node['type']} has no input {name!r}"
        assert input_type(spec) == kind, (
            f"link {link_id}: {dst_node['type']}.{name} takes {spec[0]}, not {kind}"
        )
        assert dst_node["inputs"][dst_slot]["link"] == link_id

    for node in nodes.values():
        info = object_info[node["type"]]
        linked = {i["name"] for i in node["inputs"] if i.get("link") is not None}
        specs = declared_inputs(info)
        order = info["input_order"]["required"] + info["input_order"].get("optional", [])
        widgets = [n for n in order if input_type(specs[n]) in WIDGET_TYPES]
        unlinked = [
            n
            for n in order
            if n not in linked
            and input_type(specs[n]) not in WIDGET_TYPES
            and n in info["input"].get("required", {})
        ]
        assert not unlinked, f"{path.name}: {node['type']} has unconnected inputs {unlinked}"
        values = list(node["widgets_values"])
        expected = sum(
            2 if len(specs[n]) > 1 and specs[n][1].get("control_after_generate") else 1 for n in widgets
        )
        assert len(values) == expected, (
            f"{path.name}: {node['type']} has {len(values)} widget values, wants {expected}"
        )
        for name in widgets:  # walk the values in widget order, checking combos against their options
            value = values.pop(0)
            # A loader may name the user's own trained network, which no test server has.
            user_file = node["type"] == "GoldenNoiseLoader" and str(value).endswith(".safetensors")
            if input_type(specs[name]) == "COMBO" and combo_options(specs[name]) and not user_file:
                assert value in combo_options(specs[name]), f"{node['type']}.{name} = {value!r}"
            if len(specs[name]) > 1 and specs[name][1].get("control_after_generate"):
                assert values.pop(0) in ("fixed", "increment", "decrement", "randomize")


def ui_to_api(ui: dict, object_info: dict) -> dict:
    """What the front end sends for a UI workflow: widget values by input_order, links by slot, bypassed
    nodes left out."""
    links = {link[0]: link for link in ui["links"]}
    prompt = {}
    for node in ui["nodes"]:
        if node["mode"] == 4:
            continue
        info = object_info[node["type"]]
        values = list(node["widgets_values"])
        inputs = {}
        for slot in node["inputs"]:
            if slot.get("link") is not None:
                _, src, src_slot, _, _, _ = links[slot["link"]]
                inputs[slot["name"]] = [str(src), src_slot]
        for section in ("required", "optional"):
            for name in info["input_order"].get(section, []):
                spec = info["input"][section][name]
                options = spec[1] if len(spec) > 1 else {}
                if isinstance(spec[0], list) or spec[0] in WIDGET_TYPES:
                    value = values.pop(0)
                    inputs.setdefault(name, value)
                    if options.get("control_after_generate"):
                        values.pop(0)
        assert not values, f"node {node['id']} ({node['type']}) has extra widget values {values}"
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


@pytest.mark.server
@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_ui_file_sends_what_its_api_copy_holds(path, object_info):
    api = load(API_DIR / path.name)
    expected = {nid: {"class_type": e["class_type"], "inputs": e["inputs"]} for nid, e in api.items()}
    assert ui_to_api(load(path), object_info) == expected
