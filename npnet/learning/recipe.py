"""The recipe of a pair, once for every host, batched over samples.

A pair is what the learning framework pays for: a seed's plain noise and its re-denoise golden target,
both rendered by the user's model, both scored by a reward, and the gain between them. Collection
(`collect`) stores pairs; evaluation (`run_evaluation`) renders plain and golden-network noise the same
way. The host provides what only it can do, for a batch of samples at once (`PairHost`); everything
else lives here, so the ComfyUI node, Evaluate and the learning benchmark make the very same pairs:

- the order of a batch's work (encode, noise per seed, golden target, the plain and golden images in
  one rendering call, one reward call over [plain..., golden...]),
- the gains, the stored token states (`first_tokens`), and the checks on what a reward returns,
- the dataset's metadata record (`dataset_record`), and the authors' preset with its check.

Batches change speed, never results: noise is drawn per seed, not per batch, so sample g has the same
starting noise, golden target and gain at every batch size (within float tolerance of batched
arithmetic); a host whose sampler draws noise of its own renders such samples one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import torch

from ..conditioning import first_tokens
from ..inputs import InputError
from .collection import Pair, Sample, prompts_fingerprint
from .evaluation import Job

Encoded = Any  # a host's conditioning of a batch of prompts, opaque to the core


class PairHost(Protocol):
    """What a host provides to make pairs; every method works on a batch of B samples."""

    def encode(self, prompts: Sequence[str]) -> Encoded:
        """The positive conditioning of each prompt (B prompts, repeats allowed)."""

    def token_states(self, encoded: Encoded) -> list[torch.Tensor]:
        """Each prompt's token states [T_i, D] (what NPNet reads; T_i may differ between prompts)."""

    def noise(self, seeds: Sequence[int]) -> torch.Tensor:
        """[B, C, H, W]: each seed's starting noise, drawn per seed exactly as the host's sampler would."""

    def golden_target(self, noise: torch.Tensor, encoded: Encoded, seeds: Sequence[int]) -> torch.Tensor:
        """[B, C, H, W]: the re-denoise target x'_T of each noise (`npnet.learning.redenoise`)."""

    def render(self, noise: torch.Tensor, encoded: Encoded, seeds: Sequence[int]) -> torch.Tensor:
        """[k·B, ...] images sampled from `noise` [k·B, C, H, W] with the run's settings, as the reward
        reads them; row r is sample r % B (its conditioning and seed): the recipe renders a batch's plain
        and golden noise in one call."""


class Reward(Protocol):
    """A reward model: `name`, and `score(images, prompts)` -> one float per image (higher is better)."""

    name: str

    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor | Sequence[float]: ...


def checked_scores(reward: Reward, images: torch.Tensor, prompts: Sequence[str]) -> list[float]:
    """`reward.score` as a list of floats, one per image; anything else is an InputError on `reward`."""
    name = getattr(reward, "name", type(reward).__name__)
    got = reward.score(images, list(prompts))
    try:
        values = torch.as_tensor(got, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        values = None
    if values is None or values.ndim != 1 or len(values) != len(prompts):
        shape = tuple(values.shape) if values is not None else type(got).__name__
        raise InputError(
            "reward",
            f"the reward {name} must return one number per image ({len(prompts)} here, a 1-D tensor or "
            f"list), got {shape}. Check the reward model's score().",
        )
    return values.tolist()


def make_pairs(host: PairHost, reward: Reward, samples: Sequence[Sample], tokens: int) -> list[Pair]:
    """The pairs of `samples`, made as one batch: the collection recipe."""
    prompts = [s.prompt for s in samples]
    seeds = [s.seed for s in samples]
    encoded = host.encode(prompts)
    noise = host.noise(seeds)
    golden = host.golden_target(noise, encoded, seeds)
    images = host.render(torch.cat([noise, golden]), encoded, seeds)  # plain..., golden...
    plain_images, golden_images = images[: len(samples)], images[len(samples) :]
    scores = checked_scores(reward, images, prompts + prompts)
    states = host.token_states(encoded)
    pairs = []
    for i in range(len(samples)):
        plain_score, golden_score = scores[i], scores[len(samples) + i]
        pairs.append(
            Pair(
                noise[i : i + 1].float(),
                golden[i : i + 1].float(),
                first_tokens(states[i][None].float().cpu(), tokens),
                golden_score - plain_score,
                torch.stack([plain_images[i], golden_images[i]]),
            )
        )
    return pairs


# golden(noise [B, C, H, W], encoded, seeds) -> the golden noise a network makes of it, [B, C, H, W]
GoldenOf = Callable[[torch.Tensor, Encoded, Sequence[int]], torch.Tensor]


def score_jobs(
    host: PairHost, rewards: Sequence[Reward], golden_of: GoldenOf, todo: Sequence[Job]
) -> tuple[list[list[tuple[float, float]]], list[torch.Tensor]]:
    """The evaluation recipe for one batch of jobs: each job's plain and golden image (each rendered
    once), scored by every reward. Returns, per job, [(plain, golden) per reward] and the job's two
    images. Scores are not checked for NaN here: the evaluation loop keeps the rows before a bad one."""
    prompts = [j.prompt for j in todo]
    seeds = [j.seed for j in todo]
    encoded = host.encode(prompts)
    noise = host.noise(seeds)
    images = host.render(torch.cat([noise, golden_of(noise, encoded, seeds)]), encoded, seeds)
    plain_images, golden_images = images[: len(todo)], images[len(todo) :]
    per_reward = [checked_scores(r, images, prompts + prompts) for r in rewards]
    n = len(todo)
    scores = [[(s[i], s[n + i]) for s in per_reward] for i in range(n)]
    return scores, [torch.stack([plain_images[i], golden_images[i]]) for i in range(n)]


def pair_maker(host: PairHost, reward: Reward, tokens: int) -> Callable[[Sequence[Sample]], list[Pair]]:
    """`make_pairs` bound to a host, for `collect` (which refuses a NaN/Inf gain as it stores a pair, so
    the pairs of a batch before a bad one are kept)."""
    return lambda samples: make_pairs(host, reward, samples, tokens)


def job_scorer(host: PairHost, rewards: Sequence[Reward], golden_of: GoldenOf):
    """`score_jobs` bound to a host and rewards, for `run_evaluation`."""
    return lambda todo: score_jobs(host, rewards, golden_of, todo)


# -- the dataset's record and the authors' preset --------------------------------------------------

# The authors' collection script (training/dataset_collection.py, forward_ours, SDXL's scheduler config):
# DDIMScheduler at 50 steps with "leading" spacing and offset 1 (ComfyUI's ddim_uniform gives the same
# timesteps, 981, 961, ...; its ddim sampler is deterministic DDIM), guidance 5.5 for the images and the
# denoise step, 1.0 for the inversion, zero embeddings as the unconditional branch, their inverse step.
# How an image's sampling ends: at sigma 0 (ComfyUI) or at alphas_cumprod[0] (the authors' diffusers DDIM,
# set_alpha_to_one=False); and how much of a prompt is encoded: every 77-token chunk (ComfyUI) or the
# first 77 tokens (the authors' pipeline truncates).
LAST_STEPS = ("zero", "authors")
PROMPT_TOKENS = ("all", "77")
AUTHORS_REWARD = "HPSv2.1"  # the reward their collection script filters with

PRESETS: dict[str, dict] = {
    "custom": {},
    "authors": {
        "sampler_name": "ddim",
        "scheduler": "ddim_uniform",
        "steps": 50,
        "cfg": 5.5,
        "cfg_denoise": 5.5,
        "cfg_inversion": 1.0,
        "inversion": "released",
        "width": 1024,
        "height": 1024,
        "last_step": "authors",
        "prompt_tokens": "77",
    },
}


def preset_widgets() -> dict:
    """What choosing each preset sets on a host's form: its values, and for `authors` an empty
    negative_prompt (the zero negative)."""
    return {
        name: {**values, **({"negative_prompt": ""} if values else {})} for name, values in PRESETS.items()
    }


def check_preset(preset: str, values: Mapping, negative_is_zero: bool, reward: str | None = None) -> None:
    """A preset's widgets must hold its values: a preset never overrides what the host shows.

    `values` are the host's settings by widget name; `negative_is_zero` says whether the negative is
    none or zero embeddings (ComfyUI's ConditioningZeroOut); `reward` the reward's name (the authors
    filter with HPSv2.1)."""
    if preset not in PRESETS:
        raise InputError("preset", f"preset must be one of {list(PRESETS)}, got {preset!r}.")
    if preset == "authors" and reward is not None and reward != AUTHORS_REWARD:
        raise InputError(
            "reward",
            f"preset 'authors' scores with {AUTHORS_REWARD} (the reward their collection filters with); this "
            f"node's reward is {reward}. Load {AUTHORS_REWARD} in the Reward Model Loader, or choose preset custom.",
        )
    wanted = PRESETS[preset]
    wrong = [name for name, value in wanted.items() if values.get(name) != value]
    if preset == "authors" and (str(values.get("negative_prompt", "")).strip() or not negative_is_zero):
        wrong.append("negative_prompt")
    if wrong:
        needs = ", ".join(f"{name} {value}" for name, value in wanted.items())
        have = ", ".join(f"{name} {values.get(name)!r}" for name in wrong if name in wanted)
        raise InputError(
            wrong[0],
            f"preset {preset!r} collects with {needs}, an empty negative_prompt and no negative "
            f"connected, or a zeroed one (zero embeddings); "
            + (f"this node has {have}" if have else "a negative is given")
            + ". Set those, or choose preset custom.",
        )


def dataset_record(
    *,
    latent_shape: Sequence[int],
    sampling: Mapping,
    cfg_denoise: float,
    cfg_inversion: float,
    inversion: str,
    tokens: int,
    reward: str,
    base_seed: int,
    samples_per_prompt: int,
    prompts: Sequence[str],
) -> dict:
    """The settings a dataset records in every shard; a resume must match them all. The batch size is
    not among them: it changes speed, not samples."""
    return {
        "latent_shape": list(latent_shape),
        **sampling,
        "cfg_denoise": cfg_denoise,
        "cfg_inversion": cfg_inversion,
        **({"inversion": inversion} if inversion != "paper" else {}),
        "tokens": tokens,
        "reward": reward,
        "base_seed": base_seed,
        "samples_per_prompt": samples_per_prompt,
        "prompt_count": len(prompts),
        "prompts_sha256": prompts_fingerprint(prompts),
    }
