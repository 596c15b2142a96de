"""Golden noise trained on the reward against imitation, on the digits world, with the controls that
expose a fake or hacked gain.

The reward-trained network (`npnet.learning.train_on_reward`, reward_a through the world's frozen
10-step DDIM sampler) and the imitation-trained default (`python -m npnet.train` on a dataset collected
with reward_a) are judged by the independent reward_b on held-out seeds, on training and held-out
prompts, as the learning benchmark judges (`learning_benchmark.evaluate`'s statistics). Controls:
the x'_T oracle, a reward-trained network on shuffled prompts (the reward asks for one prompt, the
network reads another), an untrained network, the reward-trained network given the wrong prompt,
plain noise rescaled to the golden noise's norm, and a random change of the golden change's size.
Each row also reports the golden noise's per-sample mean, std and excess kurtosis (a Gaussian: 0, 1, 0).
`penalty_sweep` trains at several penalty weights: without the penalty the network may shrink the
noise and "gain" on every prompt, the wrong one included.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from dev import digits_world as world_module
from dev import learning_benchmark as lb
from npnet import NPNet, golden_noise, load
from npnet.learning import PairScore, summarise, train_on_reward


@dataclass(frozen=True)
class RewardScale:
    steps: int = 400
    batch: int = 32
    eval_seeds: int = 16
    penalty: float = 1.0
    lr: float = 1e-3
    # The penalty of the network fine-tuned from the imitation one with its penalty anchored there
    # (anchor="init"): at 3 it keeps the imitation network's reading of the prompt (penalty 1: wrong
    # prompt +0.123, 2: +0.061, 3: +0.042 against about +0.20 for the right one).
    anchored_penalty: float = 3.0
    # The world's rendering guidance. At 1.0 plain noise follows its prompt loosely and one change of
    # the noise that makes the sampler follow *any* prompt more closely earns most of the gain; at 0.5
    # the noise must carry more of the prompt itself, which the wrong-prompt control then shows.
    guidance: float = world_module.CFG


CI = RewardScale()


def world_for(scale: RewardScale):
    return replace(world_module.load_world(), cfg=scale.guidance)


def conditions(world, held_out: bool = False) -> list[tuple[str, torch.Tensor]]:
    texts = lb.prompts(held_out)
    return list(zip(texts, world.encoder(texts), strict=True))


def train(
    world,
    out: Path,
    scale: RewardScale,
    penalty: float,
    shuffled: bool = False,
    init=None,
    anchor: str = "noise",
    log=print,
) -> Path:
    """Reward-train on the training prompts; `shuffled`: the network reads another prompt's tokens than
    the one the reward asks for (a control: any gain then cannot come from the prompt); `anchor`: what
    the penalty keeps the golden noise near (`train_on_reward`)."""
    conds = conditions(world)
    texts = [t for t, _ in conds]
    if shuffled:
        order = torch.randperm(len(conds), generator=torch.Generator().manual_seed(7)).tolist()
        conds = [(texts[i], conds[j][1]) for i, j in enumerate(order)]

    def reward(images, indexes):
        return world.reward_a.value(images, [texts[i] for i in indexes.tolist()])

    started = time.perf_counter()
    path = train_on_reward(
        world.render,
        reward,
        conds,
        out,
        latent_shape=(world_module.CHANNELS, world_module.SIZE, world_module.SIZE),
        steps=scale.steps,
        batch_size=scale.batch,
        penalty=penalty,
        lr=scale.lr,
        init=init,
        anchor=anchor,
        resume=(out / "state.pt").exists(),  # a finished run in `out` is reused as it is
    )
    log(
        f"reward-trained (penalty {penalty}{', shuffled' if shuffled else ''}, anchor {anchor}) in {time.perf_counter() - started:.0f} s"
    )
    return path


def noise_stats(golden: torch.Tensor) -> dict:
    flat = golden.flatten(1).double()
    mean = flat.mean(1, keepdim=True)
    std = flat.std(1, keepdim=True)
    kurt = (((flat - mean) / std) ** 4).mean(1) - 3
    return {
        "noise_mean": float(mean.mean()),
        "noise_std": float(std.mean()),
        "noise_kurtosis": float(kurt.mean()),
    }


MAIN = "reward-trained network"
ANCHORED = "reward-trained, anchored to the imitation network"
# The networks that are also judged given a wrong prompt, and the name of that row.
WRONG_PROMPT_ROWS = {
    MAIN: "reward-trained, wrong prompt",
    "reward-trained from the imitation network": "reward-trained from the imitation network, wrong prompt",
    ANCHORED: f"{ANCHORED}, wrong prompt",
}


def evaluate(
    world, networks: dict[str, NPNet], scale: RewardScale, held_out: bool, reward=None, main: str = MAIN
) -> list[dict]:
    """Each variant against plain noise on the same held-out seeds, judged by `reward` (reward_b); the
    norm-matched and random-change controls are made from the golden noise of `networks[main]`."""
    judge = reward or world.reward_b
    texts = lb.prompts(held_out)
    seeds = range(lb.EVAL_SEED, lb.EVAL_SEED + scale.eval_seeds)
    scores: dict[str, list[PairScore]] = {}
    starts: dict[str, list[torch.Tensor]] = {}
    for text in texts:
        tokens = world.encoder([text])
        many = tokens.expand(len(seeds), -1, -1)
        noise = world_module.seeded_noise(seeds)
        plain = judge.score(world.sample(noise, many), [text] * len(noise))
        variants = {"x'_T oracle (re-denoise target)": world.golden_target(noise, many)}
        for name, network in networks.items():
            variants[name] = golden_noise(network, noise, tokens)
        wrong = world.encoder([lb.wrong_prompt(text)])
        for name, row in WRONG_PROMPT_ROWS.items():
            if name in networks:
                variants[row] = golden_noise(networks[name], noise, wrong)
        golden = variants[main]
        norms = golden.flatten(1).norm(dim=1) / noise.flatten(1).norm(dim=1)
        variants["plain noise at the golden norm"] = noise * norms.view(-1, 1, 1, 1)
        size = (golden - noise).flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        direction = torch.randn(
            noise.shape, generator=torch.Generator().manual_seed(zlib.crc32(text.encode()))
        )
        direction = direction / direction.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        variants["random change of the same size"] = noise + size * direction
        for name, start in variants.items():
            score = judge.score(world.sample(start, many), [text] * len(start))
            scores.setdefault(name, []).extend(
                PairScore(text, seed, float(p), float(s))
                for seed, p, s in zip(seeds, plain, score, strict=True)
            )
            starts.setdefault(name, []).append(start)
    rows = []
    for name, pairs in scores.items():
        s = summarise(pairs)
        rows.append(
            {
                "name": name,
                "prompts": "held-out" if held_out else "training",
                "mean_difference": s.mean_difference,
                "boot_low": s.boot95_low,
                "boot_high": s.boot95_high,
                "win_rate": s.win_rate,
                "pairs": s.pairs,
                **noise_stats(torch.cat(starts[name])),
            }
        )
    return rows


def run(work: Path, scale: RewardScale = CI, imitation: Path | None = None, log=print) -> dict:
    """The comparison in `work`; `imitation`: an imitation-trained network (else trained here, as the
    learning benchmark does, on a CI-size dataset)."""
    torch.set_num_threads(2)
    world = world_for(scale)
    timings = {}
    t0 = time.perf_counter()
    main = train(
        world, work / f"penalty-{scale.penalty}", scale, scale.penalty, log=log
    )  # the sweep reuses it
    networks = {MAIN: load(main)}
    timings["reward training"] = time.perf_counter() - t0
    if imitation is None:
        data = work / "npd"
        lb.collect_dataset(world, data, lb.CI)
        lb.train(data, work / "imitation")
        imitation = work / "imitation" / "npnet.safetensors"
    networks["imitation-trained network (npnet.train)"] = load(imitation)
    networks["reward-trained from the imitation network"] = load(
        train(world, work / "from-imitation", scale, scale.penalty, init=imitation, log=log)
    )
    networks[ANCHORED] = load(
        train(
            world,
            work / "anchored",
            scale,
            scale.anchored_penalty,
            init=imitation,
            anchor="init",
            log=log,
        )
    )
    networks["reward-trained on shuffled prompts"] = load(
        train(world, work / "shuffled", scale, scale.penalty, shuffled=True, log=log)
    )
    torch.manual_seed(0)
    untrained = NPNet(networks[MAIN].config).eval()
    networks["untrained network"] = untrained
    t0 = time.perf_counter()
    rows = evaluate(world, networks, scale, False) + evaluate(world, networks, scale, True)
    timings["evaluate"] = time.perf_counter() - t0
    return {"scale": asdict(scale), "rows": rows, "timings": timings}


def penalty_sweep(work: Path, penalties, scale: RewardScale = CI, log=print) -> list[dict]:
    """Judge gain, training-reward gain and noise statistics of reward training at each penalty weight."""
    world = world_for(scale)
    found = []
    for penalty in penalties:
        network = load(train(world, work / f"penalty-{penalty}", scale, penalty, log=log))
        nets = {MAIN: network}
        for held_out in (False, True):
            judged = {r["name"]: r for r in evaluate(world, nets, scale, held_out)}
            trained_on = {r["name"]: r for r in evaluate(world, nets, scale, held_out, reward=world.reward_a)}
            row = judged[MAIN]
            found.append(
                {
                    "penalty": penalty,
                    "prompts": row["prompts"],
                    "judge_gain": row["mean_difference"],
                    "judge_low": row["boot_low"],
                    "judge_high": row["boot_high"],
                    "training_reward_gain": trained_on[MAIN]["mean_difference"],
                    "wrong_prompt_judge_gain": judged[WRONG_PROMPT_ROWS[MAIN]]["mean_difference"],
                    **{k: row[k] for k in ("noise_mean", "noise_std", "noise_kurtosis")},
                }
            )
    return found


def table(rows: list[dict]) -> str:
    lines = [
        "| variant | prompts | mean reward_b gain | bootstrap 95% | win | noise mean | noise std | kurtosis |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['prompts']} | {r['mean_difference']:+.4f} | [{r['boot_low']:+.4f}, "
            f"{r['boot_high']:+.4f}] | {r['win_rate']:.0%} | {r['noise_mean']:+.3f} | {r['noise_std']:.3f} | "
            f"{r['noise_kurtosis']:+.2f} |"
        )
    return "\n".join(lines)


def sweep_table(rows: list[dict]) -> str:
    lines = [
        "| penalty | prompts | reward_b gain (judge) | 95% | reward_a gain (trained on) | wrong prompt (judge) | noise mean | std | kurtosis |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['penalty']} | {r['prompts']} | {r['judge_gain']:+.4f} | [{r['judge_low']:+.4f}, {r['judge_high']:+.4f}] | "
            f"{r['training_reward_gain']:+.4f} | {r['wrong_prompt_judge_gain']:+.4f} | {r['noise_mean']:+.3f} | "
            f"{r['noise_std']:.3f} | {r['noise_kurtosis']:+.2f} |"
        )
    return "\n".join(lines)
