"""Does a network trained by this pack make images better? The learning benchmark, on the digits world.

One run, end to end, through the pack's own path:
1. collect a noise prompt dataset for the 24 training prompts with `npnet.learning.collect` and
   `DatasetWriter` (the Collect node's core), filtering reward `reward_a`;
2. train with `python -m npnet.train --data D --out O` and no other flag (plus `--arch` for the
   ablation), and the same on a copy of the data whose prompts are shuffled across samples (control);
3. evaluate on held-out seeds, for the training prompts and for the 6 prompts never collected, with the
   independent reward `reward_b`, through `npnet.golden_noise` and `npnet.learning.summarise` (the
   Evaluate node's statistics: mean paired difference, Student-t and prompt-clustered bootstrap 95%
   intervals, win rate).
Rows: the re-denoise target x'_T itself (the oracle), the trained network, and the controls that would
expose a fake gain: the network trained on shuffled prompts, an untrained network, the trained network
given the wrong prompt, and plain noise rescaled to the golden noise's norm.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dev import digits_world as world_module
from dev.comfyui_setup import REPO_ROOT
from npnet import NPNet, golden_noise, load
from npnet.learning import DatasetWriter, PairScore, collect, pair_maker, plan, summarise, write_shard


@dataclass(frozen=True)
class Scale:
    samples_per_prompt: int  # collected per training prompt
    eval_seeds: int  # held-out seeds per prompt
    batch: int = 256  # rendering batch

    @property
    def name(self) -> str:
        return f"{self.samples_per_prompt} samples/prompt, {self.eval_seeds} eval seeds/prompt"


CI = Scale(samples_per_prompt=60, eval_seeds=16)
FULL = Scale(samples_per_prompt=150, eval_seeds=40)
EVAL_SEED = 1_000_000  # evaluation seeds start here: never collected


def prompts(held_out: bool) -> list[str]:
    return [
        world_module.prompt(d, p)
        for d in range(10)
        for p in range(3)
        if world_module.held_out(d, p) == held_out
    ]


def collect_dataset(world, folder: Path, scale: Scale) -> dict:
    """The dataset, written by the collection core with the pack's pair recipe (`pair_maker`), the world
    being the host (`DigitsHost`), `scale.batch` samples at a time."""
    samples = plan(prompts(False), scale.samples_per_prompt, base_seed=0)
    writer = DatasetWriter(folder, {"world": "digits", "samples_per_prompt": scale.samples_per_prompt})
    make = pair_maker(world_module.DigitsHost(world), world.reward_a, tokens=world_module.TOKENS)
    gains = []
    written = collect(
        samples, make, writer, on_pair=lambda s, p: gains.append(p.gain), batch_size=scale.batch
    )
    gains = torch.tensor(gains)
    return {
        "samples": written,
        "mean_gain_reward_a": float(gains.mean()),
        "kept_gain_positive": int((gains > 0).sum()),
    }


def shuffled_copy(folder: Path, target: Path, seed: int = 7) -> Path:
    """The same dataset with the prompts (token states) shuffled across samples: any gain a network
    trained on it shows cannot come from the prompt."""
    from safetensors.torch import load_file

    target.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    shards = sorted(folder.glob("part-*.safetensors"))
    tensors = [load_file(p) for p in shards]
    embeds = torch.cat([t["embeds"] for t in tensors])
    embeds = embeds[torch.randperm(len(embeds), generator=g)]
    offset = 0
    for i, t in enumerate(tensors):
        n = len(t["noise"])
        write_shard(
            target / f"shuffled-{i:05d}.safetensors",
            t["noise"],
            t["golden"],
            embeds[offset : offset + n],
            t["gain"],
        )
        offset += n
    return target


def first_samples(folder: Path, target: Path, count: int) -> Path:
    """The dataset's samples 0 .. count - 1 (the plan's order: every prompt in turn), as a smaller
    dataset: what a user who collected only `count` pairs would have."""
    from safetensors.torch import load_file

    target.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(sorted(folder.glob("part-*.safetensors"))):
        t = load_file(path)
        keep = t["index"] < count
        if keep.any():
            write_shard(
                target / f"first-{i:05d}.safetensors",
                t["noise"][keep],
                t["golden"][keep],
                t["embeds"][keep],
                t["gain"][keep],
            )
    return target


# -- 2. training ----------------------------------------------------------------------------------------


def train(data: Path, out: Path, *flags: str) -> dict:
    """`python -m npnet.train --data D --out O [flags]`; returns the last metrics line and the time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "npnet.train", "--data", str(data), "--out", str(out), "--overwrite", *flags],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"npnet.train failed ({done.returncode}):\n{done.stderr[-3000:]}")
    last = json.loads(done.stdout.strip().splitlines()[-1])
    return {**last, "seconds": time.perf_counter() - started}


# -- 3. evaluation --------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    prompts: str  # "training" or "held-out"
    pairs: int
    mean_difference: float
    t_low: float
    t_high: float
    boot_low: float
    boot_high: float
    win_rate: float

    def cells(self) -> str:
        return (
            f"| {self.name} | {self.prompts} | {self.mean_difference:+.4f} | "
            f"[{self.boot_low:+.4f}, {self.boot_high:+.4f}] | [{self.t_low:+.4f}, {self.t_high:+.4f}] | "
            f"{self.win_rate:.0%} | {self.pairs} |"
        )


def wrong_prompt(text: str) -> str:
    digit, place = world_module.parse(text)
    return world_module.prompt((digit + 5) % 10, (place + 1) % 3)


def evaluate(world, networks: dict[str, NPNet | None], scale: Scale, held_out: bool) -> list[Row]:
    """Each variant against plain noise on the same held-out seeds, scored by `reward_b`."""
    texts = prompts(held_out)
    seeds = range(EVAL_SEED, EVAL_SEED + scale.eval_seeds)
    scores: dict[str, list[PairScore]] = {}
    trained = networks["trained network"]
    for text in texts:
        tokens = world.encoder([text])
        noise = world_module.seeded_noise(seeds)
        plain_score = world.reward_b.score(
            world.sample(noise, tokens.expand(len(noise), -1, -1)), [text] * len(noise)
        )
        variants = {
            "x'_T oracle (re-denoise target)": world.golden_target(noise, tokens.expand(len(noise), -1, -1))
        }
        for name, network in networks.items():
            variants[name] = golden_noise(network, noise, tokens)
        variants["trained network, wrong prompt"] = golden_noise(
            trained, noise, world.encoder([wrong_prompt(text)])
        )
        golden = variants["trained network"]
        norms = golden.flatten(1).norm(dim=1) / noise.flatten(1).norm(dim=1)
        variants["plain noise at the golden norm"] = noise * norms.view(-1, 1, 1, 1)
        for name, start in variants.items():
            images = world.sample(start, tokens.expand(len(start), -1, -1))
            score = world.reward_b.score(images, [text] * len(start))
            scores.setdefault(name, []).extend(
                PairScore(text, seed, float(p), float(s))
                for seed, p, s in zip(seeds, plain_score, score, strict=True)
            )
    rows = []
    for name, pairs in scores.items():
        s = summarise(pairs)
        rows.append(
            Row(
                name,
                "held-out" if held_out else "training",
                s.pairs,
                s.mean_difference,
                s.ci95_low,
                s.ci95_high,
                s.boot95_low,
                s.boot95_high,
                s.win_rate,
            )  # fmt: skip
        )
    return rows


def gain_by_pairs(world, data: Path, work: Path, scale: Scale, counts, total: int) -> list[dict]:
    """The default network trained on the first n collected pairs, for each n in `counts` and the full
    set: its reward_b gain (bootstrap interval) on training and held-out prompts."""
    found = []
    for n in [c for c in counts if c < total] + [total]:
        subset = data if n == total else first_samples(data, work / f"npd-first-{n}", n)
        train(subset, work / f"run-first-{n}")
        network = load(work / f"run-first-{n}" / "npnet.safetensors")
        for held_out in (False, True):
            (row,) = [
                r
                for r in evaluate(world, {"trained network": network}, scale, held_out)
                if r.name == "trained network"
            ]
            found.append({**asdict(row), "collected": n})
    return found


def run(
    work: Path,
    scale: Scale = CI,
    architectures: tuple[str, ...] = ("latent",),
    log=print,
    pair_counts: tuple[int, ...] = (),
) -> dict:
    """The whole benchmark in `work`; returns the rows and what each stage took (with `pair_counts`, also
    the gain of networks trained on fewer collected pairs: `gain_by_pairs`)."""
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    world = world_module.load_world()
    timings, out = {}, {"scale": asdict(scale)}
    started = time.perf_counter()
    data = work / "npd"
    shutil.rmtree(data, ignore_errors=True)
    out["collection"] = collect_dataset(world, data, scale)
    timings["collect"] = time.perf_counter() - started
    log(f"collected {out['collection']} in {timings['collect']:.0f} s")
    networks, trainings = {}, {}
    for arch in architectures:
        flags = () if arch == "latent" else ("--arch", arch)  # latent is the default: no flag at all
        t0 = time.perf_counter()
        trainings[arch] = train(data, work / f"run-{arch}", *flags)
        timings[f"train {arch}"] = time.perf_counter() - t0
        log(f"trained {arch}: {trainings[arch]}")
        label = "trained network" if arch == architectures[0] else f"trained network ({arch})"
        networks[label] = load(work / f"run-{arch}" / "npnet.safetensors")
    t0 = time.perf_counter()
    shuffled = shuffled_copy(data, work / "npd-shuffled")
    flags = () if architectures[0] == "latent" else ("--arch", architectures[0])
    trainings["shuffled"] = train(shuffled, work / "run-shuffled", *flags)
    timings["train shuffled"] = time.perf_counter() - t0
    networks["trained on shuffled prompts"] = load(work / "run-shuffled" / "npnet.safetensors")
    torch.manual_seed(0)
    untrained = NPNet(networks["trained network"].config).eval()
    untrained.init_non_persistent_buffers(torch.device("cpu"))
    networks["untrained network"] = untrained
    t0 = time.perf_counter()
    rows = evaluate(world, networks, scale, held_out=False) + evaluate(world, networks, scale, held_out=True)
    timings["evaluate"] = time.perf_counter() - t0
    if pair_counts:
        t0 = time.perf_counter()
        out["by_pairs"] = gain_by_pairs(world, data, work, scale, pair_counts, out["collection"]["samples"])
        timings["gain by pairs"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    out.update(rows=[asdict(r) for r in rows], trainings=trainings, timings=timings)
    return out


def table(result: dict) -> str:
    lines = [
        "| variant | prompts | mean reward_b gain | bootstrap 95% (prompt clusters) | Student-t 95% | win | pairs |",
        "|---|---|---|---|---|---|---|",
    ]
    return "\n".join(lines + [Row(**r).cells() for r in result["rows"]])


def pairs_table(result: dict) -> str:
    lines = [
        "| collected pairs | prompts | mean reward_b gain | bootstrap 95% (prompt clusters) | win |",
        "|---|---|---|---|---|",
    ]
    for r in result.get("by_pairs", []):
        lines.append(
            f"| {r['collected']} | {r['prompts']} | {r['mean_difference']:+.4f} | "
            f"[{r['boot_low']:+.4f}, {r['boot_high']:+.4f}] | {r['win_rate']:.0%} |"
        )
    return "\n".join(lines)
