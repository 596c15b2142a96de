"""The pack's example workflows, described once: Golden Noise graphs and the DPSL figures.

`dev/example_workflows.py` turns each description into the UI-format workflow the template browser
loads, its API-format copy the tests check and queue, and its thumbnail.

- Golden Noise graphs (`golden_noise_graphs`) are laid out by hand: nodes with positions and their widget
  values in the order the node shows them, links by output slot and input name.
- DPSL examples (`DPSL_EXAMPLES`) are API prompts (inputs by name), laid out by depth; their thumbnail is
  the chart the workflow produces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
        # A column of boxes with room for their title bars (tests/test_example_layout_browser.py checks
        # the drawn boxes of every example).
        Node("guider", "CFGGuider", (x, y), [cfg]),
        Node("sampler", "KSamplerSelect", (x, y + 180), ["dpmpp_2m"]),
        Node("sigmas", "BasicScheduler", (x, y + 300), ["karras", 30, 1.0]),
        Node("noise", "RandomNoise", (x, y + 480), [seed, "fixed"]),
        Node("npnet", "GoldenNoiseLoader", (x, y + 620), [variant]),
        Node("golden", "GoldenNoiseApply", (x + 360, y + 480), GOLDEN_WIDGETS),
        Node("latent", "EmptyLatentImage", (x + 360, y + 720), [1024, 1024, 1]),
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


def golden_noise_graphs() -> list[Graph]:
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


BATCH = 4  # samples rendered at once in the learning examples (docs/learning.md: choosing a batch size)


def collect_node(
    x: int, y: int, name: str, width: int, height: int, cfg: float, authors: bool = False
) -> Node:
    # prompts, prompt_file, negative, samples/prompt, seed, width, height, sampler, scheduler, steps, cfg,
    # cfg_denoise, cfg_inversion, tokens, dataset_name, samples/shard, shard_index, shard_count, previews,
    # inversion, last_step, prompt_tokens, preset (the authors' collection: preset "authors" with its
    # widget values, see docs/learning.md), batch_size
    return Node(
        "collect",
        "GoldenNoiseCollectDataset",
        (x, y),
        [
            COLLECT_PROMPTS,
            "(none)",
            "" if authors else NEGATIVE,
            4,
            0,
            width,
            height,
            "ddim" if authors else "euler",
            "ddim_uniform" if authors else "normal",
            50 if authors else 10,
            cfg,
            5.5,
            1.0,
            77,
            name,
            64,
            0,
            1,
            4,
            "released" if authors else "paper",
            "authors" if authors else "zero",
            "77" if authors else "all",
            "authors" if authors else "custom",
            BATCH,
        ],
    )


def evaluate_node(x: int, y: int, width: int, height: int, cfg: float) -> Node:
    # prompts, prompt_file, negative, seed, seeds, width, height, sampler, scheduler, steps, cfg,
    # token_policy, strength, resolution_mode, filename_prefix, preview_pairs, batch_size
    return Node(
        "evaluate",
        "GoldenNoiseEvaluate",
        (x, y),
        [EVAL_PROMPTS, "(none)", NEGATIVE, 1000, 4, width, height, "dpmpp_2m", "karras", 30, cfg]
        + GOLDEN_WIDGETS
        + ["golden_noise/evaluation", 8, BATCH],
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
    authors = Graph(
        "golden_noise_collect_authors_sdxl",
        "Collect as the authors' script does (DDIM 50, zero negative, HPSv2.1)",
        [loaders[0], Node("reward", "GoldenNoiseRewardLoader", (0, 420), ["HPSv2.1"])]
        + [
            collect_node(400, 100, "sdxl_npd_authors", 1024, 1024, 5.5, authors=True),
            Node("preview", "PreviewImage", (800, 100)),
        ],
        wire("collect") + [("collect", 1, "preview", "images")],
        "preset authors: their sampler, steps, guidance, inversion, size, last DDIM step, 77-token prompts, "
        "zero negative and reward",
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
        "SD1.5 at 512x512: collect, train, evaluate",
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
        "collect; train with python -m npnet.train; un-bypass Evaluate (README)",
    )
    # The loop's evaluation waits for the user's training run: it starts bypassed.
    for node in loop.nodes:
        if node.key in ("npnet", "evaluate", "chart"):
            node.mode = 4
    turbo = "sd_xl_turbo_1.0_fp16.safetensors"
    reward = Graph(
        "golden_noise_train_reward_sdxl_turbo",
        "SDXL-Turbo: train golden noise on a reward, then use it",
        checkpoint_and_prompts(turbo, negative="")
        + [
            Node("reward", "GoldenNoiseRewardLoader", (0, 560), ["HPSv2.1"]),
            Node(
                "train",
                "GoldenNoiseTrainReward",
                (720, 380),
                # prompts, prompt_file, negative_prompt, width, height, sampler, scheduler, steps, cfg,
                # gradient_checkpointing, batch_size, training_steps, learning_rate, penalty, seed, tokens,
                # output_name, anchor (with an imitation-trained network on init: "init")
                [COLLECT_PROMPTS, "(none)", "", 512, 512, "euler", "sgm_uniform", 1, 1.0, True, 2, 400]
                + [0.001, 1.0, 0, 77, "sdxl_turbo_reward", "noise"],
            ),
            Node("latent", "EmptyLatentImage", (1080, 700), [512, 512, 1]),
            Node(
                "ks",
                "GoldenNoiseKSampler",
                (1440, 100),
                [42, "fixed", 1, 1.0, "euler", "sgm_uniform", 1.0, "first_chunk", 1.0, "strict"],
            ),
            Node("decode", "VAEDecode", (1800, 100)),
            Node("save", "SaveImage", (2160, 100), ["golden_noise_reward"]),
        ],
        [
            ("ckpt", 0, "train", "model"),
            ("ckpt", 1, "train", "clip"),
            ("ckpt", 2, "train", "vae"),
            ("reward", 0, "train", "reward"),
            ("ckpt", 1, "pos", "clip"),
            ("ckpt", 1, "neg", "clip"),
            ("ckpt", 0, "ks", "model"),
            ("pos", 0, "ks", "positive"),
            ("neg", 0, "ks", "negative"),
            ("latent", 0, "ks", "latent_image"),
            ("train", 0, "ks", "npnet"),
            ("ks", 0, "decode", "samples"),
            ("ckpt", 2, "decode", "vae"),
            ("decode", 0, "save", "images"),
        ],
        "trains once (re-queue: the finished run is reused), then samples with it",
    )
    return [collect, authors, evaluate, loop, reward]


# -- DP sequential learning lab -------------------------------------------------------------------


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
    inputs = {"kind": kind, "width": 1024, "height": 640, "theme": "light", "threshold": -3.0, "cost": 0.01}
    inputs.update({name: [src, 0] for name, src in links.items()})
    return {"class_type": "DPSLChart", "inputs": inputs}


def report(prefix: str, **links) -> dict:
    inputs = {"filename_prefix": prefix, **{name: [src, 0] for name, src in links.items()}}
    return {"class_type": "DPSLReport", "inputs": inputs}


# Sizes keep each example to a few seconds on 2 CPU cores; the help pages say how to scale them up.
DPSL_EXAMPLES: dict[str, dict] = {
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
DPSL_EXAMPLES.update(
    {
        # docs/dpsl-model.md §6.2 (MOR Fig. 2): expected pre-cascade reports and calendar time vs eps
        "precascade_reports": {
            "1": scenario(signal="binary", mechanism="rr", p=0.7, agents=400, runs=2000),
            "2": sweep("1", "0.25, 0.5, 0.75, 1, 1.5, 2, 3", series="p", values="0.55, 0.7, 0.9"),
            "3": chart("precascade_reports", sweep="2"),
        },
        # docs/dpsl-model.md §6.3 (MOR Fig. 3): the platform objective; closed form, p from a binary scenario
        "platform_objective": {
            "1": scenario(signal="binary", mechanism="rr", p=0.7),
            "2": chart("platform_objective", scenario="1"),
        },
        # docs/dpsl-model.md §6.4 (MOR Fig. 4): why the Bayes action is not metric DP, no simulation
        "threshold_schematic": {
            "1": scenario(epsilon=1.0),
            "2": chart("threshold_schematic", scenario="1"),
        },
        # docs/dpsl-model.md §6.5 (Fig. J.1): the all-positive-reports recursion, no simulation
        "llr_recursion": {
            "1": scenario(epsilon=1.0),
            "2": chart("llr_recursion", scenario="1"),
        },
    }
)
DPSL_TITLES = {
    "binary_cascade": "Binary signals: P(correct cascade) vs ε (p = 0.55, 0.7, 0.9)",
    "llr_regimes": "Public LLR in five privacy regimes",
    "smooth_rr": "Smooth randomized response illustrated",
    "stopping_time": "Belief-threshold stopping time vs ε",
    "first_correct": "First correct time and mistakes vs ε",
    "precascade_reports": "Binary signals: reports before the cascade vs ε",
    "platform_objective": "Binary signals: the platform objective J(ε)",
    "llr_recursion": "The all-positive-reports recursion (appendix)",
    "threshold_schematic": "The decision step and why it is not private",
}
