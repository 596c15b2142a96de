"""Train an NPNet on a noise prompt dataset: `python -m npnet.train --data DIR --out DIR [...]`.

The same command runs as one process or under `torchrun --nproc-per-node N -m npnet.train ...` (one
process per GPU with NCCL, gloo on CPU): torchrun sets RANK / WORLD_SIZE / LOCAL_RANK, the model is
wrapped in DistributedDataParallel (gradients averaged across processes), and only rank 0 prints and
writes files. `--batch-size` is the global batch: every step, the processes together take the same
samples a single process would (`GlobalBatches`), so world size 1 and 2 reach the same weights.

Objective (the authors'): MSE between NPNet(x_T, e) and the target x'_T, AdamW, alpha = beta = 0 at the
start. Which defaults are the authors' and which are ours: `AUTHORS_VS_OURS` (printed by --help).

Files in --out: npnet.safetensors (final), npnet-best.safetensors (lowest validation loss), both
loadable by `npnet.load` and the Golden Noise Loader; state.pt (resumable: model, optimiser, position,
RNG, and every setting that decides the result, with a fingerprint of the data; tensors and plain
values only, read with torch.load(weights_only=True)); metrics.jsonl.

Runs are never mixed or lost: a fresh run into an --out that holds one is refused (unless --overwrite),
a --resume whose settings or data differ is refused naming each difference, state.pt is also saved
every --save-every-minutes inside an epoch, and under torchrun a peer that stops answering ends the run
after --dist-timeout seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..checkpoint import load, save
from ..config import ARCHITECTURES, NPNetConfig
from ..hub import DownloadError, download, download_imagenet_swin
from ..model import NPNet
from ..variants import VARIANTS
from .dataset import DatasetError, NoisePromptDataset
from .runs import (
    STATE_FILE,
    Metrics,
    Position,
    TrainingError,
    TrainingState,
    check_resume,
    prepare_out,
    run_settings,
    scheduled_rate,
)


class PeerLost(RuntimeError):
    """Under torchrun, another process stopped answering or failed."""


@dataclass
class Run:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


class GlobalBatches:
    """Index batches for one epoch: a permutation seeded by (seed, epoch), cut into global batches of
    `batch` samples (the remainder dropped), of which rank r takes the r-th of `world` equal parts.

    torch's DistributedSampler deals indices out rank by rank before batching, so the number of steps
    and the samples of a step depend on the world size; this keeps them identical for any world size.
    """

    def __init__(self, size: int, batch: int, run: Run, seed: int) -> None:
        self.size, self.batch, self.run, self.seed = size, batch, run, seed
        self.steps = size // batch

    def epoch(self, epoch: int, skip: int = 0):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(self.size, generator=generator)
        part = self.batch // self.run.world
        for step in range(skip, self.steps):
            first = step * self.batch + self.run.rank * part
            yield step, order[first : first + part].tolist()


AUTHORS_VS_OURS = """defaults: the authors' (xie-lab-ml/Golden-Noise-for-Diffusion-Models training/main.py) and ours
  the authors': --epochs 30, --batch-size 64, --weight-decay 0.01, --drop-path 0.1 (Swin branch, training
    only), the MSE objective
  ours: --lr 1e-3 (theirs 1e-4), --schedule cosine + --warmup-steps 100 (theirs constant), --arch auto ->
    latent for a new network (theirs paper), --init none (theirs imagenet), each sample conditioned on its
    own prompt (theirs: the batch's first prompt)"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m npnet.train",
        description=__doc__.split("\n")[0],
        epilog=AUTHORS_VS_OURS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="NPD folder of *.safetensors shards")
    p.add_argument("--out", required=True, help="folder for npnet.safetensors, state.pt, metrics.jsonl")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64, help="global batch, split over the processes")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (the authors': 1e-4, constant)")
    p.add_argument(
        "--schedule",
        choices=("cosine", "constant"),
        default="cosine",
        help="after the warm-up: cosine decay to lr/10 at the last step, or constant (the authors')",
    )
    p.add_argument(
        "--warmup-steps", type=int, default=100, help="linear warm-up steps (at most a tenth of the run)"
    )
    p.add_argument(
        "--arch",
        choices=("auto", *ARCHITECTURES),
        default="auto",
        help="auto: latent for a new network (conv noise branch at the latent's size + prompt map), the "
        "file's own for --init weights, paper for --init imagenet; paper: the released architecture",
    )
    p.add_argument(
        "--drop-path",
        type=float,
        default=0.1,
        help="stochastic depth of the Swin branch while training (the authors': timm's swin_tiny default, "
        "0.1, rising over the blocks); inference always runs in eval mode, without it. Only --arch paper "
        "has a Swin branch",
    )
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument(
        "--min-gain", type=float, default=0.0, help="keep samples with gain > this (if gains exist)"
    )
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--init", default="none", help="none | imagenet | sdxl | dreamshaper | dit | PATH")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument(
        "--resume", action="store_true", help="continue from --out/state.pt (every setting above must match)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an --out that holds a run, deleting that run",
    )
    p.add_argument("--log-every", type=int, default=10, help="steps between metrics lines")
    p.add_argument(
        "--save-every-minutes",
        type=float,
        default=5.0,
        help="also save state.pt this often inside an epoch, so a kill loses at most that much work",
    )
    p.add_argument(
        "--dist-timeout",
        type=float,
        default=300.0,
        help="under torchrun: seconds to wait for the other processes before the run stops with an error",
    )
    p.add_argument("--weights-dir", default=None, help="where --init downloads go (default: the npnet cache)")
    args = p.parse_args(argv)
    if args.warmup_steps < 0:
        raise TrainingError(f"--warmup-steps must be >= 0, got {args.warmup_steps}.")
    for name in ("epochs", "batch_size", "log_every"):
        if getattr(args, name) < 1:
            raise TrainingError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}.")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise TrainingError(f"--lr must be a finite number > 0, got {args.lr}.")
    if not (math.isfinite(args.drop_path) and 0 <= args.drop_path < 1):
        raise TrainingError(f"--drop-path must be in [0, 1), got {args.drop_path}.")
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        raise TrainingError(f"--weight-decay must be >= 0, got {args.weight_decay}.")
    if not 0 < args.val_fraction < 1:
        raise TrainingError(f"--val-fraction must be between 0 and 1 (exclusive), got {args.val_fraction}.")
    if args.device not in ("auto", "cpu", "cuda"):
        raise TrainingError(f"--device must be auto, cpu or cuda, got {args.device!r}.")
    for name in ("save_every_minutes", "dist_timeout"):
        if not (math.isfinite(getattr(args, name)) and getattr(args, name) > 0):
            raise TrainingError(
                f"--{name.replace('_', '-')} must be a number > 0, got {getattr(args, name)}."
            )
    if not math.isfinite(args.min_gain):
        raise TrainingError(f"--min-gain must be a finite number, got {args.min_gain}.")
    if not 0 <= args.seed < 2**63:
        raise TrainingError(f"--seed must be an integer in 0 .. 2**63 - 1, got {args.seed}.")
    if args.resume and args.overwrite:
        raise TrainingError("--resume and --overwrite contradict each other: pick one.")
    return args


def start_run(device_choice: str, timeout: float = 300.0) -> Run:
    """Join torchrun's process group if there is one; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device_choice == "cuda" or (device_choice == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but torch sees no CUDA device.")
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1:
        # The timeout bounds every collective: a stopped or hung peer ends the run instead of blocking it.
        dist.init_process_group(
            "nccl" if cuda else "gloo", rank=rank, world_size=world, timeout=timedelta(seconds=timeout)
        )
    return Run(rank, world, device)


def split(size: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded random train/validation split (the authors': 90/10)."""
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(size * val_fraction))
    return order[n_val:], order[:n_val]


def initial_model(
    init: str, config: NPNetConfig, seed: int, weights_dir: str | None, arch: str = "auto"
) -> NPNet:
    """The network to start from. `config` is the data's shape; `arch` an ARCHITECTURES name or "auto":
    the file's own architecture for a released or own network (which must have the data's shape), the
    paper's for imagenet (it initialises the Swin branch), else `latent`."""
    if init not in ("none", "imagenet"):
        path = download(init, weights_dir) if init in VARIANTS else Path(init)
        if not path.is_file():
            raise TrainingError(
                f"--init {init!r} is neither none, imagenet, {', '.join(VARIANTS)} nor a weights file."
            )
        start = load(path)
        if start.config.latent_shape != config.latent_shape or (start.config.tokens, start.embed_dim) != (
            config.tokens,
            config.embed_dim,
        ):
            raise TrainingError(
                f"--init {init}: that network takes {start.config.describe()}, but the data holds "
                f"{config.describe()}. Use --init none or imagenet, or weights trained on data of this shape."
            )
        if arch not in ("auto", start.config.architecture):
            raise TrainingError(
                f"--init {init} is a network of the {start.config.architecture} architecture, not {arch}: "
                "leave --arch at auto to fine-tune it."
            )
        torch.manual_seed(seed)
        model = NPNet(config.with_architecture(start.config.architecture))
        model.load_state_dict(start.state_dict())
        return model
    if init == "imagenet" and arch not in ("auto", "paper"):
        raise TrainingError(f"--init imagenet initialises the paper's Swin branch; --arch {arch} has none.")
    chosen = "paper" if init == "imagenet" else ("latent" if arch == "auto" else arch)
    torch.manual_seed(seed)
    model = NPNet(config.with_architecture(chosen))
    if init == "imagenet":
        path = download_imagenet_swin(weights_dir)
        try:
            model.unet_embedding.swin.load_imagenet(load_file(path), str(path))
        except ValueError as error:
            raise TrainingError(str(error)) from None
    return model


def learning_rate(args: argparse.Namespace, step: int, total: int) -> float:
    """The rate of optimiser step `step` (0-based) under --lr, --schedule and --warmup-steps
    (`runs.scheduled_rate`, the one schedule both trainers use)."""
    return scheduled_rate(args.lr, args.schedule, args.warmup_steps, step, total)


def _stack(dataset, indices: list[int], device: torch.device):
    rows = [dataset[i] for i in indices]
    return [torch.stack(col).to(device, non_blocking=True) for col in zip(*rows, strict=True)]


def evaluate(model: NPNet, dataset, indices: list[int], device, batch: int, amp: bool) -> float:
    """Mean squared error of the network on `indices`."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(indices), batch):
            noise, golden, embeds = _stack(dataset, indices[start : start + batch], device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = model(noise, embeds)
            total += F.mse_loss(out.float(), golden, reduction="sum").item()
    model.train()
    return total / (len(indices) * dataset.config.channels * dataset.config.height * dataset.config.width)


def identity_loss(dataset, indices: list[int]) -> float:
    """The validation loss of doing nothing (x'_T taken as x_T): what a useful network must beat."""
    total = sum(F.mse_loss(dataset[i][0], dataset[i][1], reduction="sum").item() for i in indices)
    c = dataset.config
    return total / (len(indices) * c.channels * c.height * c.width)


class StepAbandoned(Exception):
    """A stop arrived during a step's forward or backward pass: the step is dropped (no weight changed)."""


class StopRequest:
    """SIGINT / SIGTERM set a flag; the loop saves the state at the next step boundary and exits.

    A single process does not wait for a long step to end: while `abandonable` (inside the forward and
    backward passes, before the optimiser changes any weight) the signal abandons the step at once, and
    the state of the last finished step is saved. Under torchrun every process must stop at the same step
    (they meet in collectives), so there the flag is only read between steps."""

    def __init__(self) -> None:
        self.asked = False
        self.abandonable = False
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame) -> None:
        self.asked = True
        if self.abandonable:
            self.abandonable = False
            raise StepAbandoned

    def agreed(self, run: Run) -> bool:
        """True once any process was asked to stop: all stop at the same step."""
        if run.world == 1:
            return self.asked
        flag = torch.tensor([1.0 if self.asked else 0.0], device=run.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


class Trainer:
    """One training run in stages: `setup` (data, network, optimiser, resume), then per epoch `run_epoch`
    (steps, metrics, `validate` at its end, a timed `save_state`), then `finish`. Every process runs the
    same stages; only rank 0 writes files."""

    def __init__(self, args: argparse.Namespace, run: Run) -> None:
        self.args, self.run, self.out = args, run, Path(args.out)
        self.position = Position()
        self.metrics: Metrics | None = None
        self.setup()

    # -- set-up ------------------------------------------------------------------------------------
    def setup(self) -> None:
        args, run = self.args, self.run
        try:
            self.dataset = NoisePromptDataset(args.data, min_gain=args.min_gain)
        except DatasetError as error:
            raise TrainingError(str(error)) from None
        self.config = self.dataset.config
        if len(self.dataset) < 2:
            raise TrainingError(
                f"--min-gain {args.min_gain:g} kept {len(self.dataset)} of the samples in {args.data} (those "
                "with gain > it): a run needs at least 2 (one to train, one to validate); lower --min-gain."
            )
        self.train_idx, self.val_idx = split(len(self.dataset), args.val_fraction, args.seed)
        self._check_batches()
        self.settings = run_settings(args, self.dataset)
        saved = self._saved_state()
        try:
            model = initial_model(args.init, self.config, args.seed, args.weights_dir, args.arch)
        except DownloadError as error:
            raise TrainingError(str(error)) from None
        # Only once everything that can fail has been checked (the data, --resume, --init) may --overwrite
        # delete the previous run.
        prepare_out(args, run.main)
        self.config = model.config
        swin = getattr(getattr(model, "unet_embedding", None), "swin", None)
        if swin is not None:
            swin.set_drop_path(args.drop_path)
        model.init_non_persistent_buffers(torch.device("cpu"))
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(not name.startswith(model.unused_parameters()))
        self.model = model.to(run.device).train()
        self.trained = DistributedDataParallel(model) if run.world > 1 else model
        self.optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=args.weight_decay
        )
        if saved is not None:
            self.model.load_state_dict(saved.model)
            self.optimizer.load_state_dict(saved.optimizer)
            self.position = saved.position
            torch.set_rng_state(saved.torch_rng)
        self.amp = run.device.type == "cuda" and torch.cuda.is_bf16_supported()
        self.batches = GlobalBatches(len(self.train_idx), args.batch_size, run, args.seed)
        self.baseline = identity_loss(self.dataset, self.val_idx) if run.main else math.nan
        if run.main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.metrics = Metrics(self.out / "metrics.jsonl", self.position.global_step if saved else None)
            if self.dataset.duplicates:
                print(
                    f"note: {self.dataset.duplicates} samples appear in two shards (servers that raced); "
                    "each is trained on once",
                    file=sys.stderr,
                )

    def _check_batches(self) -> None:
        args, run, train_idx = self.args, self.run, self.train_idx
        if args.batch_size % run.world:
            raise TrainingError(
                f"--batch-size {args.batch_size} must be a multiple of the {run.world} processes."
            )
        if run.world > len(train_idx):
            raise TrainingError(
                f"{run.world} processes for {len(train_idx)} training samples: use fewer processes."
            )
        if len(train_idx) < args.batch_size:
            raise TrainingError(
                f"the dataset has {len(train_idx)} training samples (of {len(self.dataset)} kept, min gain "
                f"{args.min_gain}), fewer than one batch of {args.batch_size}: lower --batch-size or collect more."
            )

    def _saved_state(self) -> TrainingState | None:
        if not self.args.resume:
            return None
        path = self.out / STATE_FILE
        if not path.is_file():
            raise TrainingError(f"--resume: there is no {path} to resume from.")
        saved = TrainingState.read(path)
        check_resume(saved, self.settings, self.config, self.out)
        return saved

    # -- the stages --------------------------------------------------------------------------------
    def train(self, stop: StopRequest) -> dict:
        args, last = self.args, {}
        bar = tqdm(
            total=self.batches.steps * args.epochs,
            initial=self.position.epoch * self.batches.steps + self.position.step,
            disable=not self.run.main,
            unit="step",
            desc="npnet.train",
        )
        try:
            while self.position.epoch < args.epochs:
                last = self.run_epoch(stop, bar) or last
                self.position.epoch, self.position.step = self.position.epoch + 1, 0
                if self.run.main:
                    if last.get("val_loss") is not None and last["val_loss"] < self.position.best_val:
                        self.position.best_val = last["val_loss"]
                        save(self.model, self.out / "npnet-best.safetensors")
                    self.save_state()
            self.finish()
        finally:
            bar.close()
            if self.metrics is not None:
                self.metrics.close()
        return last

    def run_epoch(self, stop: StopRequest, bar) -> dict:
        """The rest of the current epoch: steps, metrics lines, the validation at its end, timed saves."""
        args, run, position = self.args, self.run, self.position
        window_start, window_samples, losses, last = time.perf_counter(), 0, [], {}
        saved_at = time.monotonic()
        for step, local in self.batches.epoch(position.epoch, skip=position.step):
            try:
                losses.append(self.train_step(local, stop))
            except StepAbandoned:
                self.stop_here()
            position.step, position.global_step = step + 1, position.global_step + 1
            window_samples += args.batch_size
            end_of_epoch = step == self.batches.steps - 1
            if run.main and (position.global_step % args.log_every == 0 or end_of_epoch):
                rate = window_samples / max(time.perf_counter() - window_start, 1e-9)
                last = self.log(torch.stack(losses).mean().item(), rate, end_of_epoch)
                bar.set_postfix(loss=f"{last['train_loss']:.4f}", samples_s=f"{rate:.1f}")
                window_start, window_samples, losses = time.perf_counter(), 0, []
            bar.update(1)
            if stop.agreed(run):
                self.stop_here()
            if run.main and not end_of_epoch and time.monotonic() - saved_at >= 60 * args.save_every_minutes:
                self.save_state()
                saved_at = time.monotonic()
        return last

    def stop_here(self) -> None:
        """Save the state of the last finished step (rank 0) and leave the run as interrupted."""
        if self.run.main:
            self.save_state()
            print(f"stopped; state saved to {self.out / STATE_FILE} (resume with --resume)", file=sys.stderr)
        raise KeyboardInterrupt

    def train_step(self, local: list[int], stop: StopRequest) -> torch.Tensor:
        noise, golden, embeds = _stack(self.dataset, [self.train_idx[i] for i in local], self.run.device)
        stop.abandonable = self.run.world == 1
        # DropPath draws its masks from torch's RNG: seeded per step and rank, a run resumed after an
        # interrupt (whose abandoned step had already drawn some) draws the masks an uninterrupted one does.
        torch.manual_seed((self.args.seed * 1_000_003 + self.position.global_step) * 4096 + self.run.rank)
        try:
            with torch.autocast(self.run.device.type, dtype=torch.bfloat16, enabled=self.amp):
                output = self.trained(noise, embeds)
            loss = F.mse_loss(output.float(), golden)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            stop.abandonable = False
        lr = learning_rate(self.args, self.position.global_step, self.batches.steps * self.args.epochs)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        return loss.detach()

    def log(self, train_loss: float, rate: float, end_of_epoch: bool) -> dict:
        if not math.isfinite(train_loss):
            raise TrainingError(
                f"the training loss became {train_loss} at step {self.position.global_step}: lower --lr."
            )
        row = {
            "epoch": self.position.epoch,
            "step": self.position.global_step,
            "train_loss": train_loss,
            "val_loss": self.validate() if end_of_epoch else None,
            "identity_val_loss": self.baseline,
            "samples_per_s": rate,
            "lr": self.optimizer.param_groups[0]["lr"],  # the rate of the step just taken
        }
        self.metrics.write(row)
        return row

    def validate(self) -> float:
        return evaluate(
            self.model, self.dataset, self.val_idx, self.run.device, self.args.batch_size, self.amp
        )

    def save_state(self) -> None:
        TrainingState(
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            position=self.position,
            settings=self.settings,
            config=self.config.to_json(),
        ).save(self.out / STATE_FILE)

    def finish(self) -> None:
        if self.run.main:
            save(self.model, self.out / "npnet.safetensors")
        if self.run.world > 1:
            dist.barrier()


def train(args: argparse.Namespace, run: Run | None = None) -> dict:
    """Run the training `args` describe; returns the final metrics (rank 0) or {} (other ranks).

    `run`: this process's place (rank, world size, device); by default torchrun's environment's.
    """
    joined = run is None
    run = run or start_run(args.device, args.dist_timeout)
    stop = StopRequest()
    try:
        return Trainer(args, run).train(stop)
    except RuntimeError as error:
        if run.world == 1 or not _peer_failure(error):
            raise
        raise PeerLost(
            f"process {run.rank} of {run.world}: another process stopped answering (nothing within "
            f"--dist-timeout {args.dist_timeout:g} s) or failed: {str(error).splitlines()[0][:300]}"
        ) from None
    finally:
        stop.restore()
        if joined and run.world > 1:
            dist.destroy_process_group()


def _peer_failure(error: RuntimeError) -> bool:
    """A collective that failed because another process did: a DistError, or gloo's / NCCL's own
    RuntimeError (a DDP all-reduce inside backward, or its buffer broadcast, raises the latter; its
    wording varies: "Timed out waiting ...", "Application timeout caused pair closure", "Connection
    closed by peer")."""
    text = str(error).lower()
    return isinstance(error, dist.DistError) or any(
        mark in text
        for mark in ("timed out", "timeout", "pair closure", "connection closed", "connection reset", "nccl")
    )


def main(argv: list[str] | None = None) -> int:
    try:
        result = train(parse_args(argv))
    except TrainingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except PeerLost as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if result:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
