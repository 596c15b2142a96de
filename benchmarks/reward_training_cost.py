"""What a step of reward training costs at SDXL size: seconds per step and peak memory.

The path the Train Golden Noise (reward) node runs: an SDXL-sized UNet and VAE from ComfyUI's own
classes with seeded random weights (`collection_throughput.random_sdxl`, no download), made usable by
autograd as the node does, the node's differentiable `RewardRender` (euler through `--sampler-steps`
steps, the diffusion model checkpointed per step or not), and `npnet.learning.train_on_reward` with a
differentiable mean-brightness reward (a real reward model adds its own forward and backward). Rows
for each batch size and checkpointing choice: seconds per training step (median after one warm-up
step), peak CUDA memory.

    .venv/bin/python benchmarks/reward_training_cost.py --device cuda        # gpu_check.sh, 1024x1024
    .venv/bin/python benchmarks/reward_training_cost.py --small --steps 2    # CPU smoke run, 256x256
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from benchmarks.collection_throughput import PROMPTS, random_sdxl  # noqa: E402
from npnet.learning import train_on_reward  # noqa: E402


def measure(
    work: Path, device: str, small: bool, batch: int, checkpoint: bool, steps: int, sampler_steps: int
):
    import importlib

    from dev.comfy_harness import import_inprocess

    comfy = import_inprocess(work, "golden_noise_benchmark", device=device)
    node = importlib.import_module(comfy.pack.__name__ + ".nodes.reward_training")
    rendering = importlib.import_module(comfy.pack.__name__ + ".nodes.rendering")
    model, clip, vae = random_sdxl(device, small)
    size = 256 if small else 1024
    sampling = rendering.Sampling("", size, size, "euler", "simple", sampler_steps, 1.0)
    conditionings = [clip.encode_from_tokens_scheduled(p) for p in PROMPTS]
    conditions = [(p, c[0][0][0].float()) for p, c in zip(PROMPTS, conditionings, strict=True)]
    keys = torch.stack([e for _, e in conditions])
    times = []
    with torch.inference_mode(False), torch.enable_grad():
        import comfy.model_management

        comfy.model_management.load_models_gpu([model])
        for module in (model.model, vae.first_stage_model):
            node.usable_by_autograd(module)
        render = node.RewardRender(model, vae, sampling, conditionings[0], conditionings, keys)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        last = [time.perf_counter()]

        def step_done(row):
            if device == "cuda":
                torch.cuda.synchronize()
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now

        with node.checkpointed(model.model.diffusion_model, checkpoint):
            train_on_reward(
                render,
                lambda images, indexes: images.float().mean(dim=(1, 2, 3)),
                conditions,
                work / f"run-{batch}-{checkpoint}",
                latent_shape=(4, size // 8, size // 8),
                steps=steps + 1,
                batch_size=batch,
                save_every=steps + 1,
                device=device,
                on_step=step_done,
            )
    row = {
        "batch": batch,
        "checkpointing": checkpoint,
        "sampler_steps": sampler_steps,
        "seconds_per_step": round(statistics.median(times[1:]), 3),
    }
    if device == "cuda":
        row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--small", action="store_true", help="a narrow, shallow UNet at 256 px (smoke run)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per row")
    parser.add_argument("--sampler-steps", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for checkpoint in (True, False):
            for batch in args.batches:
                rows.append(
                    measure(
                        Path(work), args.device, args.small, batch, checkpoint, args.steps, args.sampler_steps
                    )
                )
                print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"device": args.device, "small": args.small, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
