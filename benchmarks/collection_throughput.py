"""Collection throughput: pairs/s of the pair recipe (`npnet.learning.make_pairs`) at batch 1, 4, 8, 16,
side by side in one run, each batch size on the same samples.

    .venv/bin/python benchmarks/collection_throughput.py                       # test pack + digits, CPU
    .venv/bin/python benchmarks/collection_throughput.py --world sdxl --device cuda   # gpu_check.sh

Worlds:
- `test-pack`: ComfyUI's own sampling through the pack's `Renderer` (in-process ComfyUI) on the test
  pack's tiny SD1.5 model, CLIP and TAESD at 128x128, euler/normal, 10 steps: what the Collect node
  runs, with models small enough that ComfyUI's per-call work shows.
- `digits`: the learning benchmark's world (`dev/digits_world.py`), its reward_a.
- `sdxl`: an SDXL-sized UNet, VAE and conditioning built from ComfyUI's own classes with random
  weights (no download), 1024x1024 (128x128 latents), euler/normal, 4 steps, float16: the shapes and
  the cost of a real SDXL collection, not its images. Meant for a GPU.
The reward of test-pack and sdxl is the images' mean brightness (the cost of a real reward is not
measured here). Each row: seconds for `--samples` pairs after one warm-up batch, pairs/s, and the ratio
to batch 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from npnet.learning import Sample, make_pairs  # noqa: E402

BATCHES = (1, 4, 8, 16)


class Brightness:
    name = "brightness"

    def score(self, images, prompts):
        return images.float().mean(dim=tuple(range(1, images.ndim)))


PROMPTS = ["a red bicycle", "a lighthouse at dusk", "a bowl of ramen", "a cat on a windowsill"]


def samples(prompts: list[str], count: int, start: int = 0) -> list[Sample]:
    return [
        Sample(g, g % len(prompts), prompts[g % len(prompts)], 1000 + g) for g in range(start, start + count)
    ]


def rate(host, reward, prompts, count: int, batch: int, tokens: int, device: str) -> dict:
    make_pairs(host, reward, samples(prompts, batch, start=10_000), tokens)  # warm-up: loading, caches
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    todo = samples(prompts, count)
    started = time.perf_counter()
    for i in range(0, count, batch):
        make_pairs(host, reward, todo[i : i + batch], tokens)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    row = {"batch": batch, "seconds": round(seconds, 3), "pairs_per_s": round(count / seconds, 3)}
    if device == "cuda":
        row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row


def comfy_renderer(base: Path, device: str, world: str, small: bool = False):
    """The pack's Renderer around models built from ComfyUI's classes (in-process ComfyUI)."""
    from dev.comfy_harness import import_inprocess

    comfy = import_inprocess(base, "golden_noise_benchmark", device=device)
    rendering = sys.modules[comfy.pack.__name__ + ".nodes.rendering"]
    if world == "test-pack":
        from dev import tiny_models

        model, clip, vae = tiny_models.tiny_model("sd15"), tiny_models.tiny_clip(), tiny_models.tiny_vae(4)
        sampling = rendering.Sampling("", 128, 128, "euler", "normal", 10, 5.5)
    else:
        model, clip, vae = random_sdxl(device, small)
        size = 256 if small else 1024
        sampling = rendering.Sampling("", size, size, "euler", "normal", 4, 5.5)
    return rendering.Renderer("benchmark", None, model, clip, vae, sampling)


def random_sdxl(device: str, small: bool = False):
    """SDXL's UNet and VAE from ComfyUI's classes with seeded random weights, and a text encoder stand-in
    that gives SDXL-shaped conditioning ([1, 77, 2048] and a 1280 pooled output) per prompt. `small`:
    narrower and shallower (a smoke run of this code on a CPU), SDXL's interfaces kept."""
    import comfy.ldm.models.autoencoder
    import comfy.model_management
    import comfy.model_patcher
    import comfy.sd
    import comfy.supported_models

    from dev.tiny_models import randomise  # imports comfy: only once ComfyUI is on sys.path

    unet = {
        "use_checkpoint": False,
        "image_size": 32,
        "out_channels": 4,
        "use_spatial_transformer": True,
        "legacy": False,
        "num_classes": "sequential",
        "adm_in_channels": 2816,
        "in_channels": 4,
        "model_channels": 320,
        "num_res_blocks": [2, 2, 2],
        "transformer_depth": [0, 0, 2, 2, 10, 10],
        "channel_mult": [1, 2, 4],
        "transformer_depth_middle": 10,
        "use_linear_in_transformer": True,
        "context_dim": 2048,
        "num_head_channels": 64,
        "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10],
        "use_temporal_attention": False,
        "use_temporal_resblock": False,
    }
    if small:
        unet.update(
            model_channels=64,
            transformer_depth=[0, 0, 1, 1, 1, 1],
            transformer_depth_middle=1,
            transformer_depth_output=[0, 0, 0, 1, 1, 1, 1, 1, 1],
        )
    dtype = torch.float16 if device == "cuda" else torch.float32
    config = comfy.supported_models.SDXL(unet)
    config.set_inference_dtype(dtype, None)
    load = comfy.model_management.get_torch_device()
    model = config.get_model({}, device=load)
    randomise(model.diffusion_model, 0)
    model.diffusion_model.to(load, dtype)
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=load, offload_device=torch.device("cpu"))
    ddconfig = {
        "double_z": True,
        "z_channels": 4,
        "resolution": 256,
        "in_channels": 3,
        "out_ch": 3,
        "ch": 128,  # comfy.sd.VAE reads SD's VAE at this width from a state dict
        "ch_mult": [1, 2, 4, 4],
        "num_res_blocks": 2,
        "attn_resolutions": [],
        "dropout": 0.0,
    }
    autoencoder = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=ddconfig, embed_dim=4)
    randomise(autoencoder, 1)
    vae = comfy.sd.VAE(sd=autoencoder.state_dict())
    return patcher, SDXLConditioning(), vae


class SDXLConditioning:
    """A CLIP stand-in: `tokenize` and `encode_from_tokens_scheduled` as ComfyUI's CLIP, SDXL's shapes."""

    def tokenize(self, text: str) -> str:
        return text

    def encode_from_tokens_scheduled(self, text: str) -> list:
        g = torch.Generator().manual_seed(sum(map(ord, text)))
        return [[torch.randn(1, 77, 2048, generator=g), {"pooled_output": torch.randn(1, 1280, generator=g)}]]


def digits_host():
    from dev import digits_world

    world = digits_world.load_world()
    prompts = [digits_world.prompt(d, p) for d in range(4) for p in range(1)]
    return digits_world.DigitsHost(world), world.reward_a, digits_world.TOKENS, prompts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", action="append", choices=("test-pack", "digits", "sdxl"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--samples", type=int, default=32, help="pairs timed per batch size")
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument(
        "--small", action="store_true", help="sdxl: a narrow, shallow UNet at 256 px (smoke run)"
    )
    args = parser.parse_args()
    worlds = args.world or ["test-pack", "digits"]
    if args.device == "cpu":
        torch.set_num_threads(2)
    table = {}
    with tempfile.TemporaryDirectory() as work:
        for world in worlds:
            if world == "digits":
                host, reward, tokens, prompts = digits_host()
            else:
                host, reward, tokens = (
                    comfy_renderer(Path(work), args.device, world, args.small),
                    Brightness(),
                    77,
                )
                prompts = PROMPTS
            rows = [rate(host, reward, prompts, args.samples, b, tokens, args.device) for b in args.batches]
            for row in rows:
                row["vs_batch_1"] = round(row["pairs_per_s"] / rows[0]["pairs_per_s"], 2)
            table[world] = rows
            print(f"{world} ({args.device}, {args.samples} pairs per batch size):")
            for row in rows:
                print("  " + json.dumps(row))
    print(json.dumps(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
