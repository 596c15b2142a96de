"""Golden noise trained on the reward itself (Noise Hypernetworks, Eyring et al. 2025, arXiv 2508.09968).

Imitation (`python -m npnet.train`) regresses NPNet onto the re-denoise target x'_T, so the network can
at best reproduce that target, mistakes included. Here the network is trained on what the target was
only a proxy for: the reward of the image generated from its noise.

The objective
    For a prompt c with token states e and a plain noise x ~ N(0, I), the network gives g = f(x, e) and a
    frozen few-step generator renders the image G(g, e). The loss of a batch is

        L = - mean_b r(G(g_b, e_b), c_b)  +  penalty * mean_b mean_i (g_b,i - x_b,i)^2 / 2

    The first term is the reward (differentiated through the generator); the second keeps g a plausible
    starting noise. In the paper the noise modulation is trained to maximise reward while its
    distribution stays close to the standard Gaussian; for a modulation g = x + d, the KL term they
    derive reduces (to first order, their Eq. for a Gaussian-preserving map) to the L2 size of the
    change d, which is the penalty above, here per element so its weight does not depend on the latent
    size. `penalty` trades reward against staying a Gaussian noise: at 0 the network is free to shrink
    or shift the noise, which a reward may like (cleaner, more average images) for every prompt, the
    wrong one included: reward hacking. Watch an independent reward and the noise's statistics.

    `anchor="init"` keeps g near the golden noise of the `init` network instead of near x: the penalty
    becomes mean (g - f_init(x, e))^2 / 2, as RLHF keeps a fine-tuned policy near its supervised
    reference. Fine-tuning an imitation-trained network this way keeps what imitation learned of the
    prompt; from x, a reward can be raised by one change of the noise that helps every prompt alike
    (docs/learning.md measures both).

The run
    `train_on_reward(render, reward, conditions, out_dir, latent_shape=...)` writes `npnet.safetensors`
    (loadable by `npnet.load`, usable by `npnet.golden_noise`, the nodes and the webui), `state.pt` every
    `save_every` steps and at a stop (exact resume: the batch of step s is drawn from a generator seeded by
    (seed, s), so a resumed run equals an uninterrupted one), and `metrics.jsonl`. The same guards as
    `npnet.train`: an `out_dir` holding a run needs `resume` or `overwrite`, a resume with other settings is
    refused naming them, and everything that can fail is checked before anything is deleted. Cancel
    (`should_cancel`) and SIGTERM/SIGINT (a flag, read between steps) save the state and raise `Cancelled`.
    Under torchrun (an initialised process group) each process renders its part of every global batch
    and the gradients are averaged across processes: the same steps as one process.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.distributed as dist

from ..checkpoint import load, save
from ..config import ARCHITECTURES, NPNetConfig
from ..files import folder_problem, make_folder
from ..golden import Cancelled
from ..inputs import InputError
from ..model import NPNet
from .loop import Loop, StopFlag, Stopped, fit, join_torchrun, share_start
from .runs import STATE_FILE, Metrics, Position, TrainingState, scheduled_rate

RUN_FILES = ("npnet.safetensors", STATE_FILE, "metrics.jsonl")
# What the penalty keeps the golden noise near: the plain noise (the paper's KL to the Gaussian), or the
# golden noise of the `init` network (as RLHF keeps a policy near its supervised reference).
ANCHORS = ("noise", "init")

Render = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
RewardFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def conditions_fingerprint(conditions: Sequence[tuple[str, torch.Tensor]]) -> str:
    digest = hashlib.sha256()
    for prompt, embeds in conditions:
        digest.update(prompt.encode("utf-8", "surrogatepass") + b"\0")
        digest.update(embeds.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _check_conditions(conditions) -> torch.Tensor:
    """The conditions' token states stacked [N, T, D]; every prompt must have the same T and D."""
    if not isinstance(conditions, Sequence) or not conditions:
        raise InputError("conditions", "conditions must be a non-empty list of (prompt, embeds [T, D]).")
    stacked = []
    for i, item in enumerate(conditions):
        if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
            raise InputError("conditions", f"conditions[{i}] must be a (prompt, embeds) pair.")
        embeds = item[1]
        if not isinstance(embeds, torch.Tensor) or embeds.ndim != 2:
            raise InputError("conditions", f"conditions[{i}]: embeds must be a [T, D] tensor.")
        if stacked and embeds.shape != stacked[0].shape:
            raise InputError(
                "conditions",
                f"conditions[{i}]: embeds {tuple(embeds.shape)} differ from the first {tuple(stacked[0].shape)}; "
                "give every prompt the same T (npnet.first_tokens) and D.",
            )
        if not torch.isfinite(embeds).all():
            raise InputError("conditions", f"conditions[{i}]: embeds hold NaN or Inf.")
        stacked.append(embeds.detach().float().cpu())
    return torch.stack(stacked)


def train_on_reward(
    render: Render,
    reward: RewardFn,
    conditions: Sequence[tuple[str, torch.Tensor]],
    out_dir: str | Path,
    *,
    latent_shape: tuple[int, int, int],
    seed: int = 0,
    steps: int = 400,
    batch_size: int = 16,
    lr: float = 1e-3,
    schedule: str = "cosine",
    warmup_steps: int = 20,
    weight_decay: float = 0.0,
    penalty: float = 1.0,
    anchor: str = "noise",
    arch: str = "latent",
    init: str | Path | None = None,
    device: str | torch.device = "cpu",
    resume: bool = False,
    overwrite: bool = False,
    save_every: int = 50,
    progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    on_step: Callable[[dict], None] | None = None,
) -> Path:
    """Train an NPNet for `conditions` on `reward` through `render`; returns `out_dir/npnet.safetensors`.

    render(noise [B, C, H, W], embeds [B, T, D]) -> images: differentiable (a few steps of a frozen
    model). reward(images, indexes [B] long) -> scores [B]: differentiable, higher is better; `indexes`
    point into `conditions`, a list of (prompt, embeds [T, D]). See the module docstring for the loss,
    the run files and the guards. `on_step(row)` receives each step's metrics (reward, penalty, the
    golden noise's mean and std).
    """
    embeds = _check_conditions(conditions)
    if not (
        isinstance(latent_shape, tuple | list)
        and len(latent_shape) == 3
        and all(isinstance(v, int) and v > 0 for v in latent_shape)
    ):
        raise InputError(
            "latent_shape", f"latent_shape must be (C, H, W) of positive ints, got {latent_shape!r}."
        )
    for name, value, low in (
        ("steps", steps, 1),
        ("batch_size", batch_size, 1),
        ("save_every", save_every, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(name, f"{name} must be an integer >= {low}, got {value!r}.")
    for name, value in (("lr", lr), ("penalty", penalty), ("weight_decay", weight_decay)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise InputError(name, f"{name} must be a finite number >= 0, got {value!r}.")
    if anchor not in ANCHORS:
        raise InputError("anchor", f"anchor must be one of {', '.join(ANCHORS)}, got {anchor!r}.")
    if anchor == "init" and init is None:
        raise InputError("anchor", "anchor 'init' needs an init file: the network the penalty keeps near.")
    if schedule not in ("cosine", "constant"):
        raise InputError("schedule", f"schedule must be cosine or constant, got {schedule!r}.")
    if arch not in ARCHITECTURES:
        raise InputError("arch", f"arch must be one of {', '.join(ARCHITECTURES)}, got {arch!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InputError("seed", f"seed must be an integer in 0 .. 2**63 - 1, got {seed!r}.")
    process, joined = join_torchrun(torch.device(device))
    device = process.device
    try:
        if batch_size % process.world:
            raise InputError(
                "batch_size", f"batch_size {batch_size} must divide among {process.world} processes."
            )
        config = NPNetConfig(*latent_shape, embeds.shape[1], embeds.shape[2], family=None).with_architecture(
            arch
        )
        start = None
        if init is not None:
            if not Path(init).is_file():
                raise InputError(
                    "init", f"init {init} is not a file (a trained NPNet, e.g. from npnet.train)."
                )
            start = load(init)
            if (start.config.latent_shape, start.config.tokens, start.embed_dim) != (
                config.latent_shape,
                config.tokens,
                config.embed_dim,
            ):
                raise InputError(
                    "init",
                    f"init takes {start.config.describe()}, the conditions and latent_shape {config.describe()}.",
                )
            config = config.with_architecture(start.config.architecture)
        settings = {
            "objective": "reward",
            "seed": seed,
            "steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "schedule": schedule,
            "warmup_steps": warmup_steps,
            "weight_decay": weight_decay,
            "penalty": penalty,
            # Recorded only when not the default, so runs saved before anchors existed still resume.
            **({"anchor": anchor} if anchor != "noise" else {}),
            "arch": config.architecture,
            "init_sha256": hashlib.sha256(Path(init).read_bytes()).hexdigest() if init is not None else None,
            "conditions_sha256": conditions_fingerprint(conditions),
        }
        out = Path(out_dir)
        saved = _check_out(out, settings, config, resume, overwrite)
        # Everything that can fail has been checked: only now is an old run deleted (only our own files).
        if process.main:
            try:
                make_folder(out)
            except OSError as error:
                raise InputError("out_dir", f"out_dir: {error.strerror}.") from None
        if overwrite and saved is None and process.main:
            for name in RUN_FILES:
                if (out / name).exists():
                    (out / name).unlink()

        torch.manual_seed(seed)
        model = NPNet(config)
        if start is not None:
            model.load_state_dict(start.state_dict())
        model.init_non_persistent_buffers(device)
        model.to(device)
        reference = None
        if anchor == "init":
            reference = start
            reference.init_non_persistent_buffers(device)
            reference.to(device).eval().requires_grad_(False)
        for name, p in model.named_parameters():
            p.requires_grad_(not name.startswith(model.unused_parameters()))
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay
        )
        position = Position()
        if saved is not None:
            model.load_state_dict(saved.model)
            optimizer.load_state_dict(saved.optimizer)
            done = saved.position.global_step
            # The loop's epochs here are `save_every` steps: the position is a function of the steps done.
            position = Position(epoch=done // save_every, step=done % save_every, global_step=done)
        share_start(process, model)
        metrics = (
            Metrics(out / "metrics.jsonl", position.global_step if saved is not None else None)
            if process.main
            else None
        )
        part = batch_size // process.world

        def save_state() -> None:
            if process.main:
                TrainingState(
                    model=model.state_dict(),
                    optimizer=optimizer.state_dict(),
                    position=position,
                    settings=settings,
                    config=config.to_json(),
                ).save(out / STATE_FILE)

        def batch_of(step: int):
            """This process's part of the global batch of `step`: the same on every process and after
            any resume (a generator seeded by (seed, step))."""
            g = torch.Generator().manual_seed(seed * 1_000_003 + step)
            indexes = torch.randint(0, len(embeds), (batch_size,), generator=g)
            noise = torch.randn(batch_size, *config.latent_shape, generator=g)
            mine = slice(process.rank * part, (process.rank + 1) * part)
            return noise[mine].to(device), embeds[indexes[mine]].to(device), indexes[mine].to(device)

        def epoch_batches(epoch: int, skip: int):
            first, end = epoch * save_every, min((epoch + 1) * save_every, steps)
            return (batch_of(step) for step in range(first + skip, end)), end - first

        def loss(batch, step: int):
            x, e, idx = batch
            golden = model(x, e)
            scores = reward(render(golden, e), idx)
            if scores.shape != (len(x),) or not torch.isfinite(scores).all():
                raise InputError(
                    "reward",
                    f"the reward must give one finite score per image ({len(x)}), got shape "
                    f"{tuple(scores.shape)}{'' if torch.isfinite(scores).all() else ' with NaN or Inf'}.",
                )
            with torch.no_grad():  # what the penalty keeps the golden noise near (`anchor`)
                kept = x if reference is None else reference(x, e)
            change = (golden - kept).pow(2).flatten(1).mean(1)
            flat = golden.detach().flatten(1)
            stats = {
                "reward": scores.detach().mean(),
                "change": change.detach().mean(),
                "noise_mean": flat.mean(),
                "noise_std": flat.std(dim=1).mean(),
            }
            return -scores.mean() + penalty * 0.5 * change.mean(), stats

        def log(row: dict) -> None:
            metrics.write(row)
            if on_step is not None:
                on_step(row)

        stop = StopFlag(should_cancel)
        loop = Loop(
            process=process,
            model=model,
            optimizer=optimizer,
            position=position,
            total_steps=steps,
            rate=lambda step: scheduled_rate(lr, schedule, warmup_steps, step, steps),
            loss=loss,
            save_state=save_state,
            stop=stop,
            log=log,
            samples_per_step=batch_size,
            progress=progress or (lambda done, total: None),
        )
        try:
            fit(loop, -(-steps // save_every), epoch_batches)
            model.eval()
            if process.main:
                save(model, out / "npnet.safetensors")
            if process.world > 1:
                dist.barrier()
        except Stopped as stopped:
            raise Cancelled(f"{stopped}; resume to continue") from None
        finally:
            stop.restore()
            if metrics is not None:
                metrics.close()
    finally:
        if joined:
            dist.destroy_process_group()
    return out / "npnet.safetensors"


def _check_out(out: Path, settings: dict, config: NPNetConfig, resume: bool, overwrite: bool):
    """The saved state to resume (None for a fresh run), after refusing a mixed or an unasked-for reuse of
    `out`: an out_dir holding a run needs resume or overwrite, and a resume the same settings."""
    problem = folder_problem(out)
    if problem:
        raise InputError("out_dir", f"out_dir {problem}; choose a folder.")
    found = [name for name in RUN_FILES if (out / name).exists()]
    if resume and (out / STATE_FILE).exists():
        saved = TrainingState.read(out / STATE_FILE)
        differ = sorted(
            k for k in set(saved.settings) | set(settings) if saved.settings.get(k) != settings.get(k)
        )
        if differ or NPNetConfig.from_json(saved.config).latent_shape != config.latent_shape:
            raise InputError(
                "resume",
                f"the run in {out} was started with other settings ({', '.join(differ) or 'latent_shape'} "
                "differ); resume with the same ones, or choose another out_dir.",
            )
        return saved
    if found and not overwrite:
        raise InputError(
            "out_dir",
            f"{out} already holds a run ({', '.join(found)}): resume it, overwrite it, or choose another out_dir.",
        )
    return None
