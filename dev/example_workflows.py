"""Write every example workflow of the pack, its API copy and its thumbnail, from `dev/example_graphs.py`.

    .venv/bin/python dev/example_workflows.py            # rewrite everything
    .venv/bin/python dev/example_workflows.py --check    # fail if a committed JSON file is stale

It starts the harness's real ComfyUI server and takes every node's sockets and widget order from its
/object_info (including the extra "control_after_generate" value the front end stores after a seed),
so each UI file is what the front end itself would save. For each example it writes
  example_workflows/<name>.json     the UI-format (schema 0.4) workflow the template browser loads,
  tests/api_workflows/<name>.json   the API-format copy the tests compare with and queue,
  example_workflows/<name>.jpg      the thumbnail the front end shows: a diagram of the graph for the
                                    Golden Noise examples, the chart the workflow produces (served by
                                    the real server through /view) for the DPSL ones.
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

import matplotlib  # noqa: E402

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402
from PIL import Image  # noqa: E402

from dev.comfy_harness import start_server  # noqa: E402
from dev.example_graphs import DPSL_EXAMPLES, DPSL_TITLES, Graph, golden_noise_graphs  # noqa: E402

UI_DIR = REPO / "example_workflows"
API_DIR = REPO / "tests" / "api_workflows"
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
THUMB_WIDTH = 512
SLOT_H, TITLE_H, WIDTH, WIDE = 22, 30, 300, 560
WIDE_NODES = ("DPSLChart", "DPSLReport")
TYPE_COLOURS = {
    "MODEL": "#b39ddb",
    "CLIP": "#ffd54f",
    "VAE": "#ef9a9a",
    "CONDITIONING": "#ffb74d",
    "LATENT": "#f48fb1",
    "NOISE": "#90caf9",
    "NPNET": "#e6b800",
    "GUIDER": "#80cbc4",
    "SAMPLER": "#a5d6a7",
    "SIGMAS": "#bcaaa4",
    "IMAGE": "#64b5f6",
    "REWARD_MODEL": "#ce93d8",
}
GOLDEN_TINT = "#fff3c4"


# -- sockets and widgets, as the server declares them ---------------------------------------------------


def widget_names(info: dict) -> list[tuple[str, bool]]:
    """(name, has control_after_generate) of the node's widget inputs, in the front end's order."""
    out = []
    for section in ("required", "optional"):
        for name in info["input_order"].get(section, []):
            spec = info["input"][section][name]
            options = spec[1] if len(spec) > 1 else {}
            if (isinstance(spec[0], list) or spec[0] in WIDGET_TYPES) and not options.get("forceInput"):
                out.append((name, bool(options.get("control_after_generate"))))
    return out


def socket_type(info: dict, name: str) -> str:
    for section in ("required", "optional"):
        if name in info["input"].get(section, {}):
            kind = info["input"][section][name][0]
            return "COMBO" if isinstance(kind, list) else kind
    raise KeyError(name)


def graph_to_api(graph: Graph, object_info: dict) -> tuple[dict, dict]:
    """A hand-laid-out graph as an API prompt (inputs by name) plus its layout (position, title, mode)."""
    ids = {node.key: str(i + 1) for i, node in enumerate(graph.nodes)}
    prompt, layout = {}, {}
    for node in graph.nodes:
        values = list(node.widgets)
        inputs = {}
        for name, control in widget_names(object_info[node.type]):
            inputs[name] = values.pop(0)
            if control:
                values.pop(0)  # the front end's "fixed" / "randomize" after a seed
        assert not values, f"{graph.name}: {node.type} has extra widget values {values}"
        prompt[ids[node.key]] = {"class_type": node.type, "inputs": inputs}
        layout[ids[node.key]] = {"pos": list(node.pos), "title": node.title, "mode": node.mode}
    for src, slot, dst, name in graph.links:
        prompt[ids[dst]]["inputs"][name] = [ids[src], slot]
    return prompt, layout


# -- API -> UI (schema 0.4) ---------------------------------------------------------------------------


def to_ui(prompt: dict, object_info: dict, title: str, note: str = "", layout: dict | None = None) -> dict:
    """The UI-format workflow for an API prompt; without a layout, nodes stand in columns by depth."""
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
    order = sorted(prompt, key=lambda n: (depth[n], int(n))) if layout is None else list(prompt)
    for nid in order:
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
        kind = entry["class_type"]
        sockets = max(sum(1 for s in inputs if "widget" not in s), len(info["output"]))
        height = TITLE_H + SLOT_H * (sockets + len(widgets))
        if kind in WIDE_NODES:
            height = max(height, 520)
        place = (layout or {}).get(nid)
        if place is None:
            row = rows.get(depth[nid], 0)
            rows[depth[nid]] = row + 1
            place = {"pos": [40 + 380 * depth[nid], 40 + row * 600], "title": None, "mode": 0}
        node = {
            "id": int(nid),
            "type": kind,
            "pos": place["pos"],
            "size": [WIDE if kind in WIDE_NODES else WIDTH, height],
            "flags": {},
            "order": 0,
            "mode": place["mode"],
            "inputs": inputs,
            "outputs": [
                {"name": name, "type": out_type, "links": None, "slot_index": i}
                for i, (name, out_type) in enumerate(zip(info["output_name"], info["output"], strict=True))
            ],
            "properties": {"Node name for S&R": kind},
            "widgets_values": values,
        }
        if place["title"]:
            node["title"] = place["title"]
        if kind.startswith("GoldenNoise"):
            node["color"], node["bgcolor"] = "#8a6d00", "#5c4a00"
        nodes.append(node)
    for order_index, node in enumerate(nodes):
        node["order"] = order_index
        for output in node["outputs"]:
            output["links"] = out_links.get((str(node["id"]), output["slot_index"]), [])
    return {
        "last_node_id": max(int(n) for n in prompt),
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {
            "ds": {"scale": 0.6, "offset": [40, 320]},
            "info": {"title": title, "note": note, "source": "dev/example_workflows.py"},
        },
        "version": 0.4,
    }


def api_copy(prompt: dict, layout: dict | None = None) -> dict:
    """The API copy the tests queue; bypassed nodes are left out, as the front end leaves them out."""
    skipped = {nid for nid, place in (layout or {}).items() if place["mode"] == 4}
    out = {}
    for nid, entry in copy.deepcopy(prompt).items():
        if nid in skipped:
            continue
        entry["_meta"] = {"title": entry["class_type"]}
        out[nid] = entry
    return out


# -- thumbnails -----------------------------------------------------------------------------------------


def diagram(ui: dict, object_info: dict) -> bytes:
    """A JPEG diagram of the graph: boxes where the nodes stand, arrows coloured by socket type."""
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.add_subplot()
    nodes = {n["id"]: n for n in ui["nodes"]}
    xs = [n["pos"][0] for n in nodes.values()]
    ys = [n["pos"][1] for n in nodes.values()]
    ax.set_xlim(min(xs) - 40, max(n["pos"][0] + n["size"][0] for n in nodes.values()) + 40)
    ax.set_ylim(max(n["pos"][1] + n["size"][1] for n in nodes.values()) + 40, min(ys) - 140)
    for node in nodes.values():
        (x, y), (w, h) = node["pos"], node["size"]
        golden = node["type"].startswith("GoldenNoise")
        label = node.get("title") or object_info[node["type"]].get("display_name") or node["type"]
        ax.add_patch(
            FancyBboxPatch(
                (x, y),
                w,
                h,
                boxstyle="round,pad=4",
                facecolor=GOLDEN_TINT if golden else "#eceff1",
                edgecolor="#b8860b" if golden else "#78909c",
                linewidth=1.4 if golden else 0.8,
                alpha=0.45 if node["mode"] == 4 else 1.0,
            )
        )
        ax.text(
            x + w / 2,
            y + h / 2,
            label,
            ha="center",
            va="center",
            fontsize=6 if len(label) < 20 else 5,
            weight="bold" if golden else "normal",
        )
    for _, src, _, dst, _, kind in ui["links"]:
        s, d = nodes[src], nodes[dst]
        ax.add_patch(
            FancyArrowPatch(
                (s["pos"][0] + s["size"][0], s["pos"][1] + s["size"][1] / 2),
                (d["pos"][0], d["pos"][1] + d["size"][1] / 2),
                arrowstyle="-|>",
                mutation_scale=6,
                color=TYPE_COLOURS.get(kind, "#999"),
                linewidth=0.9,
                connectionstyle="arc3,rad=0.08",
            )
        )
    info = ui["extra"]["info"]
    ax.text(min(xs) - 20, min(ys) - 100, f"Golden Noise example: {info['title']}", fontsize=9, weight="bold")
    ax.text(
        min(xs) - 20,
        min(ys) - 50,
        f"Workflow diagram (not a generated image). {info['note']}",
        fontsize=6.5,
        color="#455a64",
    )
    ax.axis("off")
    fig.subplots_adjust(0.01, 0.01, 0.99, 0.99)
    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", pil_kwargs={"quality": 90})
    return buf.getvalue()


def chart_thumbnail(server, prompt: dict) -> bytes:
    """The first chart the workflow produces, served by the real server, as a small JPEG."""
    history = server.run(prompt, timeout=300)
    chart_ids = sorted((nid for nid, e in prompt.items() if e["class_type"] == "DPSLChart"), key=int)
    png = server.view(history["outputs"][chart_ids[0]]["images"][0])
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img = img.resize((THUMB_WIDTH, round(img.height * THUMB_WIDTH / img.width)), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, optimize=False)
    return buf.getvalue()


# -- all examples ---------------------------------------------------------------------------------------


def examples(object_info: dict):
    """(name, UI workflow, API copy, thumbnail kind) for every example."""
    for graph in golden_noise_graphs():
        prompt, layout = graph_to_api(graph, object_info)
        ui = to_ui(prompt, object_info, graph.title, graph.note, layout)
        yield graph.name, ui, api_copy(prompt, layout), "diagram"
    for name, prompt in DPSL_EXAMPLES.items():
        ui = to_ui(prompt, object_info, DPSL_TITLES[name])
        yield f"dpsl_{name}", ui, api_copy(prompt), "chart"


def dumps(obj) -> str:
    return json.dumps(obj, indent=1, ensure_ascii=False) + "\n"


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
            for name, ui, api, thumb in examples(object_info):
                files = {UI_DIR / f"{name}.json": dumps(ui), API_DIR / f"{name}.json": dumps(api)}
                for path, text in files.items():
                    if args.check:
                        if not path.is_file() or path.read_text(encoding="utf-8") != text:
                            stale.append(str(path.relative_to(REPO)))
                        continue
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text, encoding="utf-8")
                if not (args.check or args.no_thumbnails):
                    jpg = diagram(ui, object_info) if thumb == "diagram" else chart_thumbnail(server, api)
                    (UI_DIR / f"{name}.jpg").write_bytes(jpg)
                    print(f"wrote {name}.json / .jpg")
            if stale:
                print("stale, rerun dev/example_workflows.py:", *stale, sep="\n  ")
                return 1
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
