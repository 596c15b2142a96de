"""The README's pictures, each made from the real thing; run after a change that shows in one of them:

    .venv/bin/python dev/readme_images.py [--only example_graph|digits|dpsl]

- `example_graph.png`: `example_workflows/golden_noise_sdxl_custom_sampler.json` in ComfyUI's real
  front end (a real server with this pack, headless Chromium through `dev.browser`).
- `digits_plain_vs_golden.png`, `learning_gain.png`: the learning benchmark at CI size
  (`dev.learning_benchmark.run`, a few minutes on 2 cores): the images the world's frozen sampler makes
  from plain and from golden noise (the network the benchmark trained) for held-out prompts, and the
  gain of every row on training and held-out prompts with its 95% bootstrap interval, as the benchmark
  computed it.
- `dpsl_llr_paths.png`: DPSL Chart's public log-likelihood-ratio paths of a smooth-RR simulation.

Everything lands in docs/images/, which `tests/test_readme.py` checks against the README.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

IMAGES = REPO_ROOT / "docs" / "images"
# What each part writes: the README shows exactly these.
OUTPUTS = {
    "example_graph": ("example_graph.png",),
    "digits": ("digits_plain_vs_golden.png", "learning_gain.png"),
    "dpsl": ("dpsl_llr_paths.png",),
}
EXAMPLE = "golden_noise_sdxl_custom_sampler"
# The whole graph in view (LiteGraph's own scale and offset), and the front end's passing notices
# (an announcement banner) out of the picture.
FIT_AND_TIDY = """(() => {
    const nodes = app.graph._nodes, title = LiteGraph.NODE_TITLE_HEIGHT;
    const x0 = Math.min(...nodes.map(n => n.pos[0])), y0 = Math.min(...nodes.map(n => n.pos[1] - title));
    const x1 = Math.max(...nodes.map(n => n.pos[0] + n.size[0]));
    const y1 = Math.max(...nodes.map(n => n.pos[1] + n.size[1]));
    const canvas = app.canvas.canvas, left = 90, top = 120, right = 80, bottom = 60;  // clear of the menus
    const scale = Math.min((canvas.width - left - right) / (x1 - x0), (canvas.height - top - bottom) / (y1 - y0));
    app.canvas.ds.scale = scale;
    app.canvas.ds.offset = [left / scale - x0, top / scale - y0];
    for (const el of document.querySelectorAll('body *')) {  // the full-width strip at the top
        const r = el.getBoundingClientRect();
        if (r.top <= 1 && r.height > 20 && r.height < 80 && r.width > 0.9 * innerWidth
            && /Introducing/.test(el.textContent || '')) {
            el.style.display = 'none';
        }
    }
    app.canvas.setDirty(true, true);
    return true;
})()"""


def example_graph() -> None:
    from dev.browser import Browser, find_browser
    from dev.comfy_harness import start_server

    binary = find_browser()
    if binary is None:
        raise SystemExit("no Chromium-family browser on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as work:
        server = start_server(Path(work) / "comfy")
        browser = Browser(binary, Path(work) / "chromium", width=1920, height=1000)
        try:
            server.request("/settings/Comfy.TutorialCompleted", True)
            server.request("/settings/Comfy.Minimap.Visible", False)
            browser.navigate(server.url)
            browser.wait_for("!!(window.app && app.graph && app.canvas)", 120, "the ComfyUI app")
            browser.wait_for("!!LiteGraph.registered_node_types['GoldenNoiseApply']", 60, "the pack's nodes")
            workflow = (REPO_ROOT / "example_workflows" / f"{EXAMPLE}.json").read_text(encoding="utf-8")
            browser.evaluate(f"(async () => {{ await app.loadGraphData({workflow}); return true; }})()")
            browser.evaluate(FIT_AND_TIDY)
            time.sleep(2)  # the canvas draws on the next frames
            browser.screenshot(IMAGES / "example_graph.png")
        finally:
            browser.close()
            server.stop()


def digits() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from dev import digits_world, learning_benchmark
    from npnet import golden_noise, load

    with tempfile.TemporaryDirectory() as work:
        result = learning_benchmark.run(Path(work))
        network = load(Path(work) / "run-latent" / "npnet.safetensors")
    world = digits_world.load_world()
    texts = learning_benchmark.prompts(held_out=True)[:4]
    seeds = [learning_benchmark.EVAL_SEED + k for k in range(4)]
    fig, axes = plt.subplots(2 * len(texts), len(seeds), figsize=(len(seeds) * 1.2, 2 * len(texts) * 1.3))
    with torch.no_grad():
        for row, text in enumerate(texts):
            tokens = world.encoder([text])
            noise = digits_world.seeded_noise(seeds)
            golden = golden_noise(network, noise, tokens)
            many = tokens.expand(len(seeds), -1, -1)
            for k, (label, start) in enumerate((("plain", noise), ("golden", golden))):
                images = world.sample(start, many)
                scores = world.reward_b.score(images, [text] * len(seeds))
                for col in range(len(seeds)):
                    ax = axes[2 * row + k, col]
                    ax.imshow(images[col].numpy(), cmap="gray_r")
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.set_title(f"{float(scores[col]):+.2f}", fontsize=6)
                axes[2 * row + k, 0].set_ylabel(f"{label}\n{text.split(' ', 3)[-1]}", fontsize=5)
    fig.suptitle("held-out prompts: plain (upper) and golden (lower) noise, reward_b scores", fontsize=7)
    fig.tight_layout()
    fig.savefig(IMAGES / "digits_plain_vs_golden.png", dpi=150)
    plt.close(fig)

    fig, panels = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, prompts in zip(panels, ("training", "held-out"), strict=True):
        rows = [r for r in result["rows"] if r["prompts"] == prompts]
        for i, r in enumerate(rows):
            ax.errorbar(
                r["mean_difference"],
                i,
                xerr=[[r["mean_difference"] - r["boot_low"]], [r["boot_high"] - r["mean_difference"]]],
                fmt="o",
                color="#0072B2" if r["name"] == "trained network" else "#999999",
                capsize=3,
            )
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(rows)), [r["name"] for r in rows], fontsize=7)
        ax.set_title(f"{prompts} prompts", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    panels[0].invert_yaxis()
    fig.supxlabel("mean reward_b gain over plain noise, 95% prompt-clustered bootstrap (CI size)", fontsize=7)
    fig.tight_layout()
    fig.savefig(IMAGES / "learning_gain.png", dpi=150)
    plt.close(fig)
    print(
        json.dumps(
            [
                {k: r[k] for k in ("name", "prompts", "mean_difference", "boot_low", "boot_high")}
                for r in result["rows"]
            ]
        )
    )


def dpsl() -> None:
    from dpsl import Scenario, charts, simulate

    scenario = Scenario(mechanism="smooth", epsilon=1.0, agents=400, runs=400, seed=0, keep_paths=True)
    chart = charts.chart_from(
        "llr_paths", [simulate(scenario)], style=charts.ChartStyle(width=900, height=560)
    )
    (IMAGES / "dpsl_llr_paths.png").write_bytes(chart.png)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=list(OUTPUTS), action="append")
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    for part in args.only or list(OUTPUTS):
        started = time.perf_counter()
        {"example_graph": example_graph, "digits": digits, "dpsl": dpsl}[part]()
        print(f"{part}: {', '.join(OUTPUTS[part])} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
