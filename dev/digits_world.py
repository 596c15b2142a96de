"""A miniature text-to-image world for judging the learning framework on real data, on 2 CPU cores.

Images are scikit-learn's handwritten digits (8x8, 1797 of them, shipped inside the PyPI package), each
placed on the left, in the middle or on the right (shifted by one column) and mapped to a 4x8x8
"latent" by a fixed per-channel map. A prompt is "a handwritten digit <word> <place>", 30 prompts in
all; a frozen random token encoder turns it into 8 token states of width 32. The world model is a small
conditional epsilon-prediction network (0.48M parameters) trained with classifier-free guidance on
Stable Diffusion's noise schedule, sampled with 10 deterministic DDIM steps. Two reward models are
trained separately on disjoint halves of the data with different architectures: `reward_a` (a CNN;
what collection filters with) and `reward_b` (an MLP; used only to evaluate). A reward is the
classifier's probability of the prompted digit times that of the prompted place.

Everything the framework needs comes from the pack's own code: `npnet.learning.redenoise` for the
golden targets (in k-diffusion variables, x = x0 + sigma * e), `npnet.learning.collect` and
`DatasetWriter` to write the dataset, `python -m npnet.train`, `npnet.golden_noise`, and the
evaluation statistics of `npnet.learning`. `make_world` trains the three networks from scratch (a few
minutes); `save_world` / `load_world` keep them as one small .safetensors file
(tests/fixtures/digits_world.safetensors, made by `python dev/digits_world.py --make-fixture`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: the repository's packages
    sys.path.insert(0, str(REPO_ROOT))

from npnet.learning import redenoise, to_unit_noise  # noqa: E402

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "digits_world.safetensors"
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
PLACES = ("on the left", "in the middle", "on the right")
SHIFTS = (-1, 0, 1)
VOCAB = ("<pad>", "a", "handwritten", "digit", *DIGITS, "on", "in", "the", "left", "middle", "right")
TOKENS, WIDTH, CHANNELS, SIZE = 8, 32, 4, 8
CHANNEL_MAP = torch.tensor([1.0, -0.8, 0.6, 0.4])  # latent channel c = CHANNEL_MAP[c] * the image
STEPS, CFG = 10, 1.0  # rendering guidance: the conditional prediction alone (room for a gain)


def prompt(digit: int, place: int) -> str:
    return f"a handwritten digit {DIGITS[digit]} {PLACES[place]}"


def parse(text: str) -> tuple[int, int]:
    """(digit, place) of a prompt of this world."""
    words = text.split()
    return DIGITS.index(words[3]), PLACES.index(" ".join(words[4:]))


def held_out(digit: int, place: int) -> bool:
    """The 6 of 30 combinations never collected or trained on: evaluation on unseen prompts."""
    return (digit + 2 * place) % 5 == 0


# -- the frozen text encoder --------------------------------------------------------------------------


def token_ids(text: str) -> list[int]:
    ids = [VOCAB.index(w) for w in text.split()] if text else []
    return (ids + [0] * TOKENS)[:TOKENS]


class TokenEncoder:
    """Fixed random embeddings, positions and one mixing layer: what a frozen CLIP is to this world."""

    def __init__(self, seed: int = 1234) -> None:
        g = torch.Generator().manual_seed(seed)
        self.embed = torch.randn(len(VOCAB), WIDTH, generator=g)
        self.position = 0.5 * torch.randn(TOKENS, WIDTH, generator=g)
        self.mix = torch.randn(WIDTH, WIDTH, generator=g) / math.sqrt(WIDTH)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        ids = torch.tensor([token_ids(t) for t in texts])
        h = self.embed[ids] + self.position
        return h + 0.5 * torch.tanh(h @ self.mix)  # [B, 8, 32]


# -- data ---------------------------------------------------------------------------------------------


def digit_images() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 digits as [N, 8, 8] in [-1, 1], and their labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return torch.tensor(data.images, dtype=torch.float32) / 8.0 - 1.0, torch.tensor(data.target)


def to_latent(images: torch.Tensor, places: torch.Tensor) -> torch.Tensor:
    """[N, 8, 8] images placed by `places` (0 left, 1 middle, 2 right) -> [N, 4, 8, 8] latents."""
    out = torch.full_like(images, -1.0)
    for place, shift in enumerate(SHIFTS):
        rows = places == place
        if shift < 0:
            out[rows, :, :shift] = images[rows, :, -shift:]
        elif shift > 0:
            out[rows, :, shift:] = images[rows, :, :-shift]
        else:
            out[rows] = images[rows]
    return CHANNEL_MAP.view(1, -1, 1, 1) * out[:, None]


def from_latent(latents: torch.Tensor) -> torch.Tensor:
    """The image a latent shows (least squares over the channel map): [N, 8, 8]."""
    m = CHANNEL_MAP.view(1, -1, 1, 1)
    return (latents * m).sum(1) / (m * m).sum()


# -- the noise schedule and sampler (Stable Diffusion's, in k-diffusion variables) --------------------

_BETAS = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
_ALPHAS = torch.cumprod(1 - _BETAS, 0)
TRAIN_SIGMAS = ((1 - _ALPHAS) / _ALPHAS).sqrt().float()  # sigma of timestep t


def sampling_sigmas(steps: int = STEPS) -> torch.Tensor:
    t = torch.linspace(999, 0, steps).round().long()
    return torch.cat([TRAIN_SIGMAS[t], torch.zeros(1)])


def timestep(sigma: torch.Tensor) -> torch.Tensor:
    """The (fractional) training timestep of a sigma, interpolated in log sigma."""
    log_s = TRAIN_SIGMAS.log()
    x = sigma.float().clamp(TRAIN_SIGMAS[0], TRAIN_SIGMAS[-1]).log()
    idx = torch.searchsorted(log_s, x.reshape(-1)).clamp(1, 999)
    lo, hi = log_s[idx - 1], log_s[idx]
    return (idx - 1 + (x.reshape(-1) - lo) / (hi - lo)).reshape(sigma.shape)


def scaling(sigma, noise, latent):  # x = x0 + sigma * e
    return latent + sigma * noise


# -- networks -----------------------------------------------------------------------------------------


class EpsModel(nn.Module):
    """A small conditional epsilon predictor on 4x8x8 latents (0.48M parameters)."""

    def __init__(self, width: int = 64, blocks: int = 3) -> None:
        super().__init__()
        self.inp = nn.Conv2d(CHANNELS, width, 3, padding=1)
        self.pos = nn.Parameter(torch.zeros(1, width, SIZE, SIZE))
        self.cond = nn.Sequential(nn.Linear(TOKENS * WIDTH + 64, 256), nn.SiLU(), nn.Linear(256, 256))
        self.norms = nn.ModuleList(nn.GroupNorm(8, width) for _ in range(2 * blocks))
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(2 * blocks))
        self.films = nn.ModuleList(nn.Linear(256, 2 * width) for _ in range(blocks))
        self.out = nn.Conv2d(width, CHANNELS, 3, padding=1)
        self.blocks = blocks

    def forward(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        freqs = torch.exp(torch.linspace(0, math.log(1000), 32))
        angle = t.float().view(-1, 1) / freqs
        temb = torch.cat([angle.sin(), angle.cos()], 1)
        c = self.cond(torch.cat([tokens.flatten(1), temb], 1))
        h = self.inp(x) + self.pos
        for b in range(self.blocks):
            scale, shift = self.films[b](c)[:, :, None, None].chunk(2, 1)
            r = self.convs[2 * b](F.silu(self.norms[2 * b](h)))
            r = self.convs[2 * b + 1](F.silu(self.norms[2 * b + 1](r) * (1 + scale) + shift))
            h = h + r
        return self.out(F.silu(h))


class RewardCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.SiLU(), nn.Conv2d(32, 64, 3, padding=1), nn.SiLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 16, 128), nn.SiLU(), nn.Linear(128, 13),
        )  # fmt: skip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images[:, None])


class RewardMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.Tanh(), nn.Linear(256, 13))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


@dataclass
class Reward:
    """The reward contract (`name`, `score(images, prompts)` -> one float per image) on this world's
    images: P(prompted digit) * P(prompted place) under a classifier with a digit head and a place head."""

    name: str
    net: nn.Module

    @torch.no_grad()
    def score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return self.value(images, prompts)

    def value(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """`score` with gradients to the images (what training on the reward differentiates)."""
        logits = self.net(images.float())
        digit, place = torch.tensor([parse(p) for p in prompts]).T
        p_digit = logits[:, :10].softmax(1).gather(1, digit[:, None])[:, 0]
        p_place = logits[:, 10:].softmax(1).gather(1, place[:, None])[:, 0]
        return p_digit * p_place


@dataclass
class World:
    eps: EpsModel
    reward_a: Reward
    reward_b: Reward
    encoder: TokenEncoder
    # Rendering guidance. 1.0 (the conditional prediction alone) is the benchmarks' world; a weaker one
    # (`dataclasses.replace(world, cfg=0.5)`) leaves more for the noise to carry of the prompt.
    cfg: float = CFG

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, tokens: torch.Tensor, cfg: float) -> torch.Tensor:
        """x0_hat of x at sigma with classifier-free guidance (empty prompt = all-pad tokens)."""
        s = sigma.reshape(-1).expand(x.shape[0]) if sigma.numel() == 1 else sigma.reshape(-1)
        scale = (1 + s**2).rsqrt().view(-1, 1, 1, 1)
        t = timestep(s)
        empty = self.encoder([""]).expand_as(tokens)
        eps = self.eps(torch.cat([x * scale] * 2), torch.cat([t, t]), torch.cat([tokens, empty]))
        cond, uncond = eps.chunk(2)
        guided = uncond + cfg * (cond - uncond)
        return x - s.view(-1, 1, 1, 1) * guided

    @torch.no_grad()
    def sample(self, noise: torch.Tensor, tokens: torch.Tensor, cfg: float | None = None) -> torch.Tensor:
        """DDIM (deterministic) from unit noise: the images [B, 8, 8] the latents show."""
        return self.render(noise, tokens, cfg)

    def render(self, noise: torch.Tensor, tokens: torch.Tensor, cfg: float | None = None) -> torch.Tensor:
        """`sample` with gradients to the noise (the frozen generator that training on the reward
        differentiates through); guidance `cfg`, the world's own by default."""
        cfg = self.cfg if cfg is None else cfg
        sigmas = sampling_sigmas()
        x = noise * sigmas[0]
        for i in range(STEPS):
            x0 = self.denoise(x, sigmas[i], tokens, cfg)
            x = scaling(sigmas[i + 1], (x - x0) / sigmas[i], x0)
        return from_latent(x)

    @torch.no_grad()
    def golden_target(self, noise, tokens, cfg_denoise: float = 5.5, cfg_inversion: float = 1.0):
        """x'_T of the paper's re-denoise sampling, through the pack's own `redenoise`."""
        sigmas = sampling_sigmas()
        start = noise * sigmas[0]
        moved = redenoise(
            start,
            sigmas[0],
            sigmas[1],
            lambda x, s, cfg: self.denoise(x, s, tokens, cfg),
            scaling,
            cfg_denoise,
            cfg_inversion,
        )
        return to_unit_noise(noise, start, moved, sigmas[0])


def seeded_noise(seeds) -> torch.Tensor:
    """Each seed's own unit noise [B, 4, 8, 8] (drawn per seed, so a batch never changes a sample)."""
    return torch.cat(
        [torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    )


@dataclass
class DigitsHost:
    """The world as an `npnet.learning.PairHost`: the benchmark makes its pairs with the pack's recipe."""

    world: World

    def encode(self, prompts) -> torch.Tensor:
        return self.world.encoder(list(prompts))

    def token_states(self, encoded: torch.Tensor) -> list[torch.Tensor]:
        return list(encoded)

    def noise(self, seeds) -> torch.Tensor:
        return seeded_noise(seeds)

    def golden_target(self, noise, encoded, seeds) -> torch.Tensor:
        return self.world.golden_target(noise, encoded)

    def render(self, noise, encoded, seeds) -> torch.Tensor:
        return self.world.sample(noise, encoded.repeat(len(noise) // len(encoded), 1, 1))


# -- making the world ---------------------------------------------------------------------------------


def _split(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[: n // 2], order[n // 2 :]


def _train_reward(net: nn.Module, images, digits, places, steps: int, seed: int) -> None:
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    for _ in range(steps):
        idx = torch.randint(0, len(images), (128,))
        x = images[idx] + 0.15 * torch.randn_like(images[idx])  # robust to sampler artefacts
        logits = net(x)
        loss = F.cross_entropy(logits[:, :10], digits[idx]) + F.cross_entropy(logits[:, 10:], places[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def make_world(eps_steps: int = 4000, seed: int = 0, log=print) -> World:
    images, digits = digit_images()
    n = len(images)
    # every image in every place: the world model learns all 30 prompts
    all_images = images.repeat(3, 1, 1)
    all_digits = digits.repeat(3)
    all_places = torch.arange(3).repeat_interleave(n)
    latents = to_latent(all_images, all_places)
    placed = from_latent(latents)
    encoder = TokenEncoder()
    texts = [prompt(int(d), int(p)) for d, p in zip(all_digits, all_places, strict=True)]
    tokens = encoder(texts)
    empty = encoder([""])
    torch.manual_seed(seed)
    eps = EpsModel()
    opt = torch.optim.AdamW(eps.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=eps_steps, pct_start=0.05)
    for step in range(eps_steps):
        idx = torch.randint(0, len(latents), (64,))
        t = torch.randint(0, 1000, (64,))
        s = TRAIN_SIGMAS[t].view(-1, 1, 1, 1)
        noise = torch.randn_like(latents[idx])
        x = (latents[idx] + s * noise) * (1 + s**2).rsqrt()
        cond = torch.where(torch.rand(64, 1, 1) < 0.1, empty, tokens[idx])  # 10% unconditional
        loss = F.mse_loss(eps(x, t, cond), noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        if step % 1000 == 0:
            log(f"world model step {step}: loss {loss.item():.4f}")
    a_half, b_half = _split(len(placed), seed + 1)
    reward_a, reward_b = RewardCNN(), RewardMLP()
    _train_reward(reward_a, placed[a_half], all_digits[a_half], all_places[a_half], 1500, seed + 2)
    _train_reward(reward_b, placed[b_half], all_digits[b_half], all_places[b_half], 3000, seed + 3)
    for net in (eps, reward_a, reward_b):
        net.eval()
    return World(eps, Reward("reward_a (CNN)", reward_a), Reward("reward_b (MLP)", reward_b), encoder)


def save_world(world: World, path: Path) -> None:
    tensors = {}
    for prefix, net in (
        ("eps.", world.eps),
        ("reward_a.", world.reward_a.net),
        ("reward_b.", world.reward_b.net),
    ):
        tensors.update({prefix + k: v.detach().contiguous() for k, v in net.state_dict().items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, path, metadata={"world": json.dumps({"steps": STEPS, "cfg": CFG})})


def load_world(path: Path = FIXTURE) -> World:
    tensors = load_file(path)
    nets = {"eps.": EpsModel(), "reward_a.": RewardCNN(), "reward_b.": RewardMLP()}
    for prefix, net in nets.items():
        net.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        net.eval().requires_grad_(False)  # frozen: training on the reward differentiates through them
    return World(
        nets["eps."],
        Reward("reward_a (CNN)", nets["reward_a."]),
        Reward("reward_b (MLP)", nets["reward_b."]),
        TokenEncoder(),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--make-fixture", action="store_true", help=f"train the world and write {FIXTURE}")
    parser.add_argument("--eps-steps", type=int, default=4000)
    args = parser.parse_args(argv)
    if args.make_fixture:
        torch.set_num_threads(2)
        world = make_world(args.eps_steps)
        save_world(world, FIXTURE)
        print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
