"""Build the DPSL example workflows and their thumbnails from one description.

    .venv/bin/python dev/render_dpsl_thumbnails.py            # rewrite everything
    .venv/bin/python dev/render_dpsl_thumbnails.py --check    # fail if a committed file is stale

For each example in EXAMPLES (one per figure of docs/dpsl-model.md §6) this writes
  example_workflows/dpsl_<name>.json         the UI-format (schema 0.4) workflow the template browser loads,
  tests/dpsl_lab/api_workflows/dpsl_<name>.json  the API-format copy the tests queue,
  example_workflows/dpsl_<name>.jpg          the thumbnail: the chart the workflow produces, as served by
                                             a real ComfyUI (the harness's server) through /view.
Widget order comes from the server's /object_info (`input_order`), including the extra
"control_after_generate" value the front end stores after a seed widget, so the UI file is what the
front end itself would save.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402

from tests.comfy_harness import start_server  # noqa: E402

UI_DIR = REPO / "example_workflows"
API_DIR = REPO / "tests" / "dpsl_lab" / "api_workflows"
THUMB_WIDTH = 512


def scenario(**changes) -> dict:
    base = {
        "signal": "gaussian",
        "sigma": 1.0,
        "p": 0.7,
        "mechanism": "smooth",
        "epsilon_mode": "fixed",
        "epsilon": 1.0,
        "epsilon_low": 0.0,
        "epsilon_high": 1.0,
        "amplitude": "half",
        "agents": 1000,
        "runs": 500,
        "seed": 0,
        "belief_threshold": 0.0,
        "quadrature_nodes": 16,
    }
    return {"class_type": "DPSLScenario", "inputs": {**base, **changes}}


def simulate(src: str, keep_paths: bool = False) -> dict:
    return {
        "class_type": "DPSLSimulate",
        "inputs": {"scenario": [src, 0], "keep_paths": keep_paths, "memory_budget_gb": 2.0},
    }


def sweep(src: str, grid: str, series: str = "none", values: str = "0.55, 0.7, 0.9") -> dict:
    return {
        "class_type": "DPSLSweep",
        "inputs": {
            "scenario": [src, 0],
            "epsilon_grid": grid,
            "series": series,
            "series_values": values,
            "keep_paths": False,
            "memory_budget_gb": 2.0,
        },
    }


def chart(kind: str, **links) -> dict:
    inputs = {"kind": kind, "width": 1024, "height": 640, "theme": "light", "threshold": -3.0}
    inputs.update({name: [src, 0] for name, src in links.items()})
    return {"class_type": "DPSLChart", "inputs": inputs}


def report(prefix: str, **links) -> dict:
    inputs = {"filename_prefix": prefix, **{name: [src, 0] for name, src in links.items()}}
    return {"class_type": "DPSLReport", "inputs": inputs}


# Sizes keep each example to a few seconds on 2 CPU cores; the help pages say how to scale them up.
EXAMPLES: dict[str, dict] = {
    # docs/dpsl-model.md §6.1: binary correct-cascade probability vs eps, p in {0.55, 0.7, 0.9}
    "binary_cascade": {
        "1": scenario(signal="binary", mechanism="rr", p=0.7, runs=2000),
        "2": sweep("1", "0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 4", series="p", values="0.55, 0.7, 0.9"),
        "3": chart("cascade_probability", sweep="2"),
        "4": report("dpsl/binary_cascade", sweep="2"),
    },
    # docs/dpsl-model.md §6.4 (MOR Fig. 7): five regimes of the public LLR
    "llr_regimes": {
        "1": scenario(epsilon_mode="uniform", epsilon_low=0.0, epsilon_high=1.0, runs=50),
        "2": scenario(epsilon=0.1, runs=50),
        "3": scenario(epsilon=0.5, runs=50),
        "4": scenario(epsilon=1.0, runs=50),
        "5": scenario(mechanism="none", runs=50),
        "6": simulate("1", keep_paths=True),
        "7": simulate("2", keep_paths=True),
        "8": simulate("3", keep_paths=True),
        "9": simulate("4", keep_paths=True),
        "10": simulate("5", keep_paths=True),
        "11": chart("llr_paths", result="6", result_2="7", result_3="8", result_4="9", result_5="10"),
    },
    # docs/dpsl-model.md §6.4 (v5 Fig. 3): the smooth randomized response, no simulation
    "smooth_rr": {
        "1": scenario(epsilon=1.0),
        "2": chart("smooth_rr_illustration", scenario="1"),
    },
    # docs/dpsl-model.md §6.4 (MOR Fig. 6a): expected belief-threshold stopping time vs eps, B = 10
    "stopping_time": {
        "1": scenario(belief_threshold=10.0, agents=3000, runs=100),
        "2": sweep("1", "0.3, 0.5, 0.75, 1, 1.5, 2"),
        "3": chart("stopping_time_vs_eps", sweep="2"),
        "4": report("dpsl/stopping_time", sweep="2"),
    },
    # docs/dpsl-model.md §6.6: first correct time and mistakes (actions and reports apart) vs eps
    "first_correct": {
        "1": scenario(runs=500),
        "2": sweep("1", "0.25, 0.5, 0.75, 1, 1.5, 2, 2.5"),
        "3": scenario(mechanism="none", runs=500),
        "4": simulate("3"),
        "5": chart("mistakes_vs_eps", sweep="2", result="4"),
        "6": chart("first_correct_survival", sweep="2"),
    },
}
TITLES = {
    "binary_cascade": "Binary signals: P(correct cascade) vs ε (p = 0.55, 0.7, 0.9)",
    "llr_regimes": "Public LLR in five privacy regimes",
    "smooth_rr": "Smooth randomized response illustrated",
    "stopping_time": "Belief-threshold stopping time vs ε",
    "first_correct": "First correct time and mistakes vs ε",
}


# -- API -> UI (schema 0.4) -------------------------------------------------------------------------


def widget_names(info: dict) -> list[tuple[str, bool]]:
    """(name, has control_after_generate) of the node's widget inputs, in the front end's order."""
    out = []
    for section in ("required", "optional"):
        for name in info["input_order"].get(section, []):
            spec = info["input"][section][name]
            kind = spec[0]
            options = spec[1] if len(spec) > 1 else {}
            is_widget = isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
            if is_widget and not options.get("forceInput"):
                out.append((name, bool(options.get("control_after_generate"))))
    return out


def socket_type(info: dict, name: str) -> str:
    for section in ("required", "optional"):
        if name in info["input"].get(section, {}):
            kind = info["input"][section][name][0]
            return "COMBO" if isinstance(kind, list) else kind
    raise KeyError(name)


def to_ui(prompt: dict, object_info: dict, title: str) -> dict:
    """The UI-format workflow for an API prompt: nodes in columns by depth, links by slot index."""
    depth: dict[str, int] = {}

    def node_depth(nid: str) -> int:
        if nid not in depth:
            ups = [v[0] for v in prompt[nid]["inputs"].values() if isinstance(v, list)]
            depth[nid] = 1 + max((node_depth(u) for u in ups), default=-1)
        return depth[nid]

    for nid in prompt:
        node_depth(nid)
    links, nodes = [], []
    out_links: dict[tuple[str, int], list[int]] = {}
    rows: dict[int, int] = {}
    for nid in sorted(prompt, key=lambda n: (depth[n], int(n))):
        entry, info = prompt[nid], object_info[prompt[nid]["class_type"]]
        inputs, values = [], []
        widgets = dict(widget_names(info))
        for section in ("required", "optional"):
            for name in info["input_order"].get(section, []):
                value = entry["inputs"].get(name)
                slot = {"name": name, "type": socket_type(info, name), "link": None}
                if name in widgets:
                    slot["widget"] = {"name": name}
                    values.append(value)
                    if widgets[name]:
                        values.append("fixed")  # control_after_generate: keep the seed when queued
                if isinstance(value, list):
                    link_id = len(links) + 1
                    src, src_slot = value
                    src_type = object_info[prompt[src]["class_type"]]["output"][src_slot]
                    links.append([link_id, int(src), src_slot, int(nid), len(inputs), src_type])
                    out_links.setdefault((src, src_slot), []).append(link_id)
                    slot["link"] = link_id
                if name in widgets or isinstance(value, list) or section == "optional":
                    inputs.append(slot)
        row = rows.get(depth[nid], 0)
        rows[depth[nid]] = row + 1
        height = 60 + 26 * len(inputs)
        if entry["class_type"] in ("DPSLChart", "DPSLReport"):
            height = max(height, 520)
        nodes.append(
            {
                "id": int(nid),
                "type": entry["class_type"],
                "pos": [40 + 380 * depth[nid], 40 + row * 600],
                "size": [340 if entry["class_type"] not in ("DPSLChart", "DPSLReport") else 560, height],
                "flags": {},
                "order": 0,
                "mode": 0,
                "inputs": inputs,
                "outputs": [
                    {"name": name, "type": kind, "links": None, "slot_index": i}
                    for i, (name, kind) in enumerate(zip(info["output_name"], info["output"], strict=True))
                ],
                "properties": {"Node name for S&R": entry["class_type"]},
                "widgets_values": values,
            }
        )
    for node in nodes:
        for output in node["outputs"]:
            output["links"] = out_links.get((str(node["id"]), output["slot_index"]), [])
    for order, node in enumerate(nodes):
        node["order"] = order
    return {
        "last_node_id": max(int(n) for n in prompt),
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"info": {"title": title, "source": "dev/render_dpsl_thumbnails.py"}},
        "version": 0.4,
    }


def api_copy(prompt: dict, title: str) -> dict:
    out = copy.deepcopy(prompt)
    for nid, entry in out.items():
        entry["_meta"] = {"title": entry["class_type"].replace("DPSL", "DPSL ")}
        entry.setdefault("inputs", {})
        del nid
    return out


def first_chart_png(server, prompt: dict) -> bytes:
    history = server.run(prompt, timeout=300)
    chart_ids = sorted((nid for nid, e in prompt.items() if e["class_type"] == "DPSLChart"), key=int)
    image = history["outputs"][chart_ids[0]]["images"][0]
    return server.view(image)


def thumbnail(png: bytes) -> bytes:
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img = img.resize((THUMB_WIDTH, round(img.height * THUMB_WIDTH / img.width)), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, optimize=False)
    return buf.getvalue()


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare the JSON files; write nothing")
    parser.add_argument("--no-thumbnails", action="store_true", help="write the JSON files only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp))
        try:
            object_info = server.object_info()
            stale = []
            for name, prompt in EXAMPLES.items():
                files = {
                    UI_DIR / f"dpsl_{name}.json": dumps(to_ui(prompt, object_info, TITLES[name])),
                    API_DIR / f"dpsl_{name}.json": dumps(api_copy(prompt, TITLES[name])),
                }
                for path, text in files.items():
                    if args.check:
                        if not path.is_file() or path.read_text(encoding="utf-8") != text:
                            stale.append(str(path.relative_to(REPO)))
                        continue
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text, encoding="utf-8")
                if not (args.check or args.no_thumbnails):
                    (UI_DIR / f"dpsl_{name}.jpg").write_bytes(thumbnail(first_chart_png(server, prompt)))
                    print(f"wrote dpsl_{name}.json / .jpg")
            if stale:
                print("stale, rerun dev/render_dpsl_thumbnails.py:", *stale, sep="\n  ")
                return 1
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
