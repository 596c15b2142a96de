"""Writes the Golden Noise example workflows (example_workflows/golden_noise_*.json) and their thumbnails.

Each graph is declared once below, compactly; this script turns it into ComfyUI's UI workflow format
(schema 0.4: nodes with slots and widget values, links as [id, from, slot, to, slot, type]) and draws a
thumbnail that is a diagram of the graph, labelled as such: these files never pretend to be generated
images. tests/golden_noise/test_example_workflows.py checks every node type and link against a running
ComfyUI. Run: .venv/bin/python dev/golden_noise_workflows.py
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "example_workflows"
SLOT_H, TITLE_H, WIDTH = 22, 30, 300

# Outputs and linkable inputs of the node types used here, as ComfyUI declares them.
OUTPUTS = {
    "CheckpointLoaderSimple": [("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")],
    "CLIPTextEncode": [("CONDITIONING", "CONDITIONING")],
    "EmptyLatentImage": [("LATENT", "LATENT")],
    "RandomNoise": [("NOISE", "NOISE")],
    "KSamplerSelect": [("SAMPLER", "SAMPLER")],
    "BasicScheduler": [("SIGMAS", "SIGMAS")],
    "CFGGuider": [("GUIDER", "GUIDER")],
    "SamplerCustomAdvanced": [("output", "LATENT"), ("denoised_output", "LATENT")],
    "KSamplerAdvanced": [("LATENT", "LATENT")],
    "VAEDecode": [("IMAGE", "IMAGE")],
    "SaveImage": [],
    "GoldenNoiseLoader": [("npnet", "NPNET")],
    "GoldenNoiseApply": [("noise", "NOISE")],
    "GoldenNoiseKSampler": [("LATENT", "LATENT")],
    "GoldenNoiseToLatent": [("LATENT", "LATENT")],
    "GoldenNoiseRewardLoader": [("reward", "REWARD_MODEL")],
    "GoldenNoiseCollectDataset": [("dataset", "STRING"), ("preview", "IMAGE"), ("summary", "STRING")],
    "GoldenNoiseEvaluate": [
        ("chart", "IMAGE"),
        ("report", "STRING"),
        ("csv_file", "STRING"),
        ("json_file", "STRING"),
        ("images", "IMAGE"),
    ],
    "PreviewImage": [],
}
INPUTS = {
    "CheckpointLoaderSimple": [],
    "CLIPTextEncode": [("clip", "CLIP")],
    "EmptyLatentImage": [],
    "RandomNoise": [],
    "KSamplerSelect": [],
    "BasicScheduler": [("model", "MODEL")],
    "CFGGuider": [("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING")],
    "SamplerCustomAdvanced": [
        ("noise", "NOISE"),
        ("guider", "GUIDER"),
        ("sampler", "SAMPLER"),
        ("sigmas", "SIGMAS"),
        ("latent_image", "LATENT"),
    ],
    "KSamplerAdvanced": [
        ("model", "MODEL"),
        ("positive", "CONDITIONING"),
        ("negative", "CONDITIONING"),
        ("latent_image", "LATENT"),
    ],
    "VAEDecode": [("samples", "LATENT"), ("vae", "VAE")],
    "SaveImage": [("images", "IMAGE")],
    "GoldenNoiseLoader": [],
    "GoldenNoiseApply": [("noise", "NOISE"), ("positive", "CONDITIONING"), ("npnet", "NPNET")],
    "GoldenNoiseKSampler": [
        ("model", "MODEL"),
        ("positive", "CONDITIONING"),
        ("negative", "CONDITIONING"),
        ("latent_image", "LATENT"),
        ("npnet", "NPNET"),
    ],
    "GoldenNoiseToLatent": [
        ("model", "MODEL"),
        ("latent_image", "LATENT"),
        ("positive", "CONDITIONING"),
        ("npnet", "NPNET"),
    ],
    "GoldenNoiseRewardLoader": [],
    "GoldenNoiseCollectDataset": [
        ("model", "MODEL"),
        ("clip", "CLIP"),
        ("vae", "VAE"),
        ("reward", "REWARD_MODEL"),
    ],
    "GoldenNoiseEvaluate": [
        ("model", "MODEL"),
        ("clip", "CLIP"),
        ("vae", "VAE"),
        ("reward", "REWARD_MODEL"),
        ("npnet", "NPNET"),
    ],
    "PreviewImage": [("images", "IMAGE")],
}
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

SDXL_CKPT = "sd_xl_base_1.0.safetensors"
PROMPT = "a lighthouse on a cliff at sunset, dramatic clouds, highly detailed photograph"
NEGATIVE = "blurry, low quality, watermark"
GOLDEN_WIDGETS = ["first_chunk", 1.0, "strict"]


@dataclass
class Node:
    key: str
    type: str
    pos: tuple[int, int]
    widgets: list = field(default_factory=list)
    title: str | None = None
    mode: int = 0  # 0 active, 4 bypassed (the frontend's "Bypass")


@dataclass
class Graph:
    name: str
    title: str
    nodes: list[Node]
    links: list[tuple[str, int, str, str]]  # (from key, output slot, to key, input name)
    note: str


def checkpoint_and_prompts(ckpt: str, x: int = 0, negative: str = NEGATIVE) -> list[Node]:
    return [
        Node("ckpt", "CheckpointLoaderSimple", (x, 180), [ckpt]),
        Node("pos", "CLIPTextEncode", (x + 360, 0), [PROMPT], "Positive prompt"),
        Node("neg", "CLIPTextEncode", (x + 360, 260), [negative], "Negative prompt"),
    ]


def custom_sampler_nodes(seed: int, variant: str, cfg: float, y: int = 0, x: int = 720) -> list[Node]:
    return [
        Node("npnet", "GoldenNoiseLoader", (x, y + 520), [variant]),
        Node("noise", "RandomNoise", (x, y + 380), [seed, "fixed"]),
        Node("golden", "GoldenNoiseApply", (x + 360, y + 420), GOLDEN_WIDGETS),
        Node("guider", "CFGGuider", (x, y), [cfg]),
        Node("sampler", "KSamplerSelect", (x, y + 160), ["dpmpp_2m"]),
        Node("sigmas", "BasicScheduler", (x, y + 250), ["karras", 30, 1.0]),
        Node("latent", "EmptyLatentImage", (x + 360, y + 620), [1024, 1024, 1]),
        Node("sample", "SamplerCustomAdvanced", (x + 720, y + 150)),
        Node("decode", "VAEDecode", (x + 1080, y + 150)),
        Node("save", "SaveImage", (x + 1440, y + 150), ["golden_noise"]),
    ]


CUSTOM_SAMPLER_LINKS = [
    ("ckpt", 1, "pos", "clip"),
    ("ckpt", 1, "neg", "clip"),
    ("ckpt", 0, "guider", "model"),
    ("pos", 0, "guider", "positive"),
    ("neg", 0, "guider", "negative"),
    ("ckpt", 0, "sigmas", "model"),
    ("noise", 0, "golden", "noise"),
    ("pos", 0, "golden", "positive"),
    ("npnet", 0, "golden", "npnet"),
    ("golden", 0, "sample", "noise"),
    ("guider", 0, "sample", "guider"),
    ("sampler", 0, "sample", "sampler"),
    ("sigmas", 0, "sample", "sigmas"),
    ("latent", 0, "sample", "latent_image"),
    ("sample", 0, "decode", "samples"),
    ("ckpt", 2, "decode", "vae"),
    ("decode", 0, "save", "images"),
]


def graphs() -> list[Graph]:
    sdxl = Graph(
        "golden_noise_sdxl_custom_sampler",
        "SDXL 1024x1024, SamplerCustomAdvanced",
        checkpoint_and_prompts(SDXL_CKPT) + custom_sampler_nodes(42, "SDXL", 5.5),
        CUSTOM_SAMPLER_LINKS,
        "RandomNoise -> Golden Noise -> SamplerCustomAdvanced",
    )
    dit = Graph(
        "golden_noise_hunyuan_dit",
        "Hunyuan-DiT 1.2, 1024x1024",
        checkpoint_and_prompts("hunyuan_dit_1.2.safetensors", negative="")
        + custom_sampler_nodes(42, "Hunyuan-DiT", 5.0),
        CUSTOM_SAMPLER_LINKS,
        "Hunyuan-DiT weights + the BERT conditioning of the DiT checkpoint",
    )
    ksampler = Graph(
        "golden_noise_sdxl_ksampler",
        "SDXL, KSampler (Golden Noise)",
        checkpoint_and_prompts(SDXL_CKPT)
        + [
            Node("npnet", "GoldenNoiseLoader", (720, 420), ["SDXL"]),
            Node("latent", "EmptyLatentImage", (720, 540), [1024, 1024, 1]),
            Node(
                "ks",
                "GoldenNoiseKSampler",
                (1080, 100),
                [42, "fixed", 30, 5.5, "dpmpp_2m", "karras", 1.0] + GOLDEN_WIDGETS,
            ),
            Node("decode", "VAEDecode", (1440, 100)),
            Node("save", "SaveImage", (1800, 100), ["golden_noise_ksampler"]),
        ],
        [
            ("ckpt", 1, "pos", "clip"),
            ("ckpt", 1, "neg", "clip"),
            ("ckpt", 0, "ks", "model"),
            ("pos", 0, "ks", "positive"),
            ("neg", 0, "ks", "negative"),
            ("latent", 0, "ks", "latent_image"),
            ("npnet", 0, "ks", "npnet"),
            ("ks", 0, "decode", "samples"),
            ("ckpt", 2, "decode", "vae"),
            ("decode", 0, "save", "images"),
        ],
        "a drop-in for KSampler: same widgets, plus NPNET",
    )
    advanced = Graph(
        "golden_noise_sdxl_ksampler_advanced",
        "SDXL, Golden Noise to Latent + KSamplerAdvanced",
        checkpoint_and_prompts(SDXL_CKPT)
        + [
            Node("npnet", "GoldenNoiseLoader", (720, 420), ["SDXL"]),
            Node("latent", "EmptyLatentImage", (720, 540), [1024, 1024, 1]),
            Node("to_latent", "GoldenNoiseToLatent", (1080, 380), [42, "fixed"] + GOLDEN_WIDGETS),
            Node(
                "ks",
                "KSamplerAdvanced",
                (1440, 100),
                ["disable", 0, "fixed", 30, 5.5, "dpmpp_2m", "karras", 0, 10000, "disable"],
            ),
            Node("decode", "VAEDecode", (1800, 100)),
            Node("save", "SaveImage", (2160, 100), ["golden_noise_advanced"]),
        ],
        [
            ("ckpt", 1, "pos", "clip"),
            ("ckpt", 1, "neg", "clip"),
            ("ckpt", 0, "to_latent", "model"),
            ("latent", 0, "to_latent", "latent_image"),
            ("pos", 0, "to_latent", "positive"),
            ("npnet", 0, "to_latent", "npnet"),
            ("ckpt", 0, "ks", "model"),
            ("pos", 0, "ks", "positive"),
            ("neg", 0, "ks", "negative"),
            ("to_latent", 0, "ks", "latent_image"),
            ("ks", 0, "decode", "samples"),
            ("ckpt", 2, "decode", "vae"),
            ("decode", 0, "save", "images"),
        ],
        "KSamplerAdvanced: add_noise = disable, start_at_step = 0",
    )
    side = Graph(
        "golden_noise_side_by_side",
        "Same seed: plain noise vs golden noise (SDXL)",
        checkpoint_and_prompts(SDXL_CKPT)
        + custom_sampler_nodes(42, "SDXL", 5.5)
        + [
            Node("sample_plain", "SamplerCustomAdvanced", (1440, -300), title="Plain noise"),
            Node("decode_plain", "VAEDecode", (1800, -300)),
            Node("save_plain", "SaveImage", (2160, -300), ["plain_noise"]),
        ],
        CUSTOM_SAMPLER_LINKS
        + [
            ("noise", 0, "sample_plain", "noise"),
            ("guider", 0, "sample_plain", "guider"),
            ("sampler", 0, "sample_plain", "sampler"),
            ("sigmas", 0, "sample_plain", "sigmas"),
            ("latent", 0, "sample_plain", "latent_image"),
            ("sample_plain", 0, "decode_plain", "samples"),
            ("ckpt", 2, "decode_plain", "vae"),
            ("decode_plain", 0, "save_plain", "images"),
        ],
        "one RandomNoise feeds both samplers; only Golden Noise differs",
    )
    for node in side.nodes:
        if node.key == "sample":
            node.title = "Golden noise"
    return [sdxl, ksampler, advanced, dit, side, *learning_graphs()]


EVAL_PROMPTS = "\n".join(
    [
        "a lighthouse on a cliff at sunset, dramatic clouds",
        "a red fox sitting in fresh snow, morning light",
        "a bowl of ramen with a soft-boiled egg, studio photo",
        "an astronaut riding a horse on the moon",
    ]
)
COLLECT_PROMPTS = (
    EVAL_PROMPTS
    + "\n"
    + "\n".join(
        [
            "a cozy reading nook with a window seat, rainy day",
            "a watercolor painting of a harbour town",
        ]
    )
)


def collect_node(x: int, y: int, name: str, width: int, height: int, cfg: float) -> Node:
    # prompts, prompt_file, negative, samples/prompt, seed, width, height, sampler, scheduler, steps, cfg,
    # cfg_denoise, cfg_inversion, tokens, dataset_name, samples/shard, shard_index, shard_count, previews
    return Node(
        "collect",
        "GoldenNoiseCollectDataset",
        (x, y),
        [
            COLLECT_PROMPTS,
            "(none)",
            NEGATIVE,
            4,
            0,
            width,
            height,
            "euler",
            "normal",
            10,
            cfg,
            5.5,
            1.0,
            77,
            name,
            64,
            0,
            1,
            4,
        ],
    )


def evaluate_node(x: int, y: int, width: int, height: int, cfg: float) -> Node:
    # prompts, prompt_file, negative, seed, seeds, width, height, sampler, scheduler, steps, cfg,
    # token_policy, strength, resolution_mode, filename_prefix
    return Node(
        "evaluate",
        "GoldenNoiseEvaluate",
        (x, y),
        [EVAL_PROMPTS, "(none)", NEGATIVE, 1000, 4, width, height, "dpmpp_2m", "karras", 30, cfg]
        + GOLDEN_WIDGETS
        + ["golden_noise/evaluation"],
    )


def learning_graphs() -> list[Graph]:
    loaders = [
        Node("ckpt", "CheckpointLoaderSimple", (0, 100), [SDXL_CKPT]),
        Node("reward", "GoldenNoiseRewardLoader", (0, 420), ["PickScore"]),
    ]
    model_links = [
        ("ckpt", 0, "{n}", "model"),
        ("ckpt", 1, "{n}", "clip"),
        ("ckpt", 2, "{n}", "vae"),
        ("reward", 0, "{n}", "reward"),
    ]

    def wire(node: str) -> list:
        return [(a, b, node if c == "{n}" else c, d) for a, b, c, d in model_links]

    collect = Graph(
        "golden_noise_collect_sdxl",
        "Collect a noise prompt dataset with SDXL",
        loaders
        + [collect_node(400, 100, "sdxl_npd", 1024, 1024, 5.5), Node("preview", "PreviewImage", (800, 100))],
        wire("collect") + [("collect", 1, "preview", "images")],
        "pairs go to output/npd/sdxl_npd/; queue again to resume",
    )
    evaluate = Graph(
        "golden_noise_evaluate_sdxl",
        "Evaluate the released SDXL NPNet on a prompt list",
        loaders
        + [
            Node("npnet", "GoldenNoiseLoader", (0, 560), ["SDXL"]),
            evaluate_node(400, 100, 1024, 1024, 5.5),
            Node("chart", "PreviewImage", (800, 100)),
            Node("pairs", "PreviewImage", (800, 420)),
        ],
        wire("evaluate")
        + [
            ("npnet", 0, "evaluate", "npnet"),
            ("evaluate", 0, "chart", "images"),
            ("evaluate", 4, "pairs", "images"),
        ],
        "paired reward difference golden - plain, CSV/JSON in output/golden_noise/",
    )
    sd15 = "v1-5-pruned-emaonly.safetensors"
    loop_loaders = [Node("ckpt", "CheckpointLoaderSimple", (0, 100), [sd15]), loaders[1]]
    loop = Graph(
        "golden_noise_learning_loop_sd15",
        "The loop for SD1.5 at 512x512: collect, train with the CLI, evaluate the trained NPNet",
        loop_loaders
        + [
            collect_node(400, 100, "sd15_npd", 512, 512, 7.0),
            Node("npnet", "GoldenNoiseLoader", (0, 560), ["npnet_sd15.safetensors"]),
            evaluate_node(800, 100, 512, 512, 7.0),
            Node("chart", "PreviewImage", (1200, 100)),
        ],
        wire("collect")
        + wire("evaluate")
        + [("npnet", 0, "evaluate", "npnet"), ("evaluate", 0, "chart", "images")],
        "1) queue with Evaluate bypassed; 2) python -m npnet.train --data output/npd/sd15_npd "
        "--out runs/sd15 and copy npnet.safetensors to models/npnet/npnet_sd15.safetensors; 3) queue Evaluate",
    )
    # The loop's evaluation waits for the user's training run: it starts bypassed.
    for node in loop.nodes:
        if node.key in ("npnet", "evaluate", "chart"):
            node.mode = 4
    return [collect, evaluate, loop]


def node_height(node: Node) -> int:
    slots = max(len(INPUTS[node.type]), len(OUTPUTS[node.type]))
    return TITLE_H + SLOT_H * (slots + len(node.widgets))


def to_workflow(graph: Graph) -> dict:
    ids = {node.key: i + 1 for i, node in enumerate(graph.nodes)}
    links = []
    incoming: dict[tuple[str, str], int] = {}
    outgoing: dict[tuple[str, int], list[int]] = {}
    for link_id, (src, slot, dst, name) in enumerate(graph.links, start=1):
        dst_type = next(n.type for n in graph.nodes if n.key == dst)
        src_type = next(n.type for n in graph.nodes if n.key == src)
        names = [n for n, _ in INPUTS[dst_type]]
        kind = OUTPUTS[src_type][slot][1]
        assert dict(INPUTS[dst_type])[name] == kind, (graph.name, src, dst, name)
        links.append([link_id, ids[src], slot, ids[dst], names.index(name), kind])
        incoming[(dst, name)] = link_id
        outgoing.setdefault((src, slot), []).append(link_id)
    nodes = []
    for order, node in enumerate(graph.nodes):
        entry = {
            "id": ids[node.key],
            "type": node.type,
            "pos": list(node.pos),
            "size": [WIDTH, node_height(node)],
            "flags": {},
            "order": order,
            "mode": node.mode,
            "inputs": [
                {"name": n, "type": t, "link": incoming.get((node.key, n))} for n, t in INPUTS[node.type]
            ],
            "outputs": [
                {"name": n, "type": t, "links": outgoing.get((node.key, i), []), "slot_index": i}
                for i, (n, t) in enumerate(OUTPUTS[node.type])
            ],
            "properties": {"Node name for S&R": node.type},
            "widgets_values": node.widgets,
        }
        if node.title:
            entry["title"] = node.title
        if node.type.startswith("GoldenNoise"):
            entry["color"], entry["bgcolor"] = "#8a6d00", "#5c4a00"
        nodes.append(entry)
    return {
        "last_node_id": len(nodes),
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.6, "offset": [40, 320]}, "golden_noise_note": graph.note},
        "version": 0.4,
    }


def draw_thumbnail(graph: Graph, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    xs = [n.pos[0] for n in graph.nodes]
    ys = [n.pos[1] for n in graph.nodes]
    ax.set_xlim(min(xs) - 40, max(xs) + WIDTH + 40)
    ax.set_ylim(max(ys) + max(node_height(n) for n in graph.nodes) + 40, min(ys) - 140)
    boxes = {}
    for node in graph.nodes:
        h = node_height(node)
        golden = node.type.startswith("GoldenNoise")
        ax.add_patch(
            FancyBboxPatch(
                (node.pos[0], node.pos[1]),
                WIDTH,
                h,
                boxstyle="round,pad=4",
                facecolor=GOLDEN_TINT if golden else "#eceff1",
                edgecolor="#b8860b" if golden else "#78909c",
                linewidth=1.4 if golden else 0.8,
            )
        )
        ax.text(
            node.pos[0] + WIDTH / 2,
            node.pos[1] + h / 2,
            node.title or node.type,
            ha="center",
            va="center",
            fontsize=6 if len(node.title or node.type) < 20 else 5,
            weight="bold" if golden else "normal",
        )
        boxes[node.key] = (node.pos[0], node.pos[1], h)
    for src, slot, dst, _ in graph.links:
        sx, sy, sh = boxes[src]
        dx, dy, dh = boxes[dst]
        src_type = next(n.type for n in graph.nodes if n.key == src)
        kind = OUTPUTS[src_type][slot][1]
        ax.add_patch(
            FancyArrowPatch(
                (sx + WIDTH, sy + sh / 2),
                (dx, dy + dh / 2),
                arrowstyle="-|>",
                mutation_scale=6,
                color=TYPE_COLOURS.get(kind, "#999"),
                linewidth=0.9,
                connectionstyle="arc3,rad=0.08",
            )
        )
    ax.text(min(xs) - 20, min(ys) - 100, f"Golden Noise example: {graph.title}", fontsize=9, weight="bold")
    ax.text(
        min(xs) - 20,
        min(ys) - 50,
        f"Workflow diagram (not a generated image). {graph.note}",
        fontsize=6.5,
        color="#455a64",
    )
    ax.axis("off")
    fig.tight_layout(pad=0.2)
    fig.savefig(path, pil_kwargs={"quality": 90})
    plt.close(fig)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for graph in graphs():
        (OUT / f"{graph.name}.json").write_text(json.dumps(to_workflow(graph), indent=1) + "\n")
        # The ComfyUI frontend asks for `<workflow>.jpg` as a custom node template's thumbnail.
        draw_thumbnail(graph, OUT / f"{graph.name}.jpg")
        print(f"wrote {graph.name}.json and .jpg")


if __name__ == "__main__":
    main()
