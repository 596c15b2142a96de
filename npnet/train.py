"""Train an NPNet on a noise prompt dataset: `python -m npnet.train --data DIR --out DIR [...]`.

The same command runs as one process or under `torchrun --nproc-per-node N -m npnet.train ...` (one
process per GPU with NCCL, gloo on CPU): torchrun sets RANK / WORLD_SIZE / LOCAL_RANK, the model is
wrapped in DistributedDataParallel (gradients averaged across processes), and only rank 0 prints and
writes files. `--batch-size` is the global batch: every step, the processes together take the same
samples a single process would (`GlobalBatches`), so world size 1 and 2 reach the same weights.

Objective (the authors'): MSE between NPNet(x_T, e) and the target x'_T, AdamW (lr 1e-4, no
schedule), alpha = beta = 0 at the start, each sample conditioned on its own prompt.

Files in --out: npnet.safetensors (final), npnet-best.safetensors (lowest validation loss), both
loadable by `npnet.load` and the Golden Noise Loader; state.pt (resumable: model, optimiser, position,
RNG; tensors and plain values only, read with torch.load(weights_only=True)); metrics.jsonl.
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
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .checkpoint import load, save
from .config import NPNetConfig
from .dataset import DatasetError, NoisePromptDataset
from .hub import DownloadError, download, download_imagenet_swin
from .model import NPNet
from .variants import VARIANTS

STATE_FILE = "state.pt"
# Parameters NPNet's forward never reads (the SVD branch's BatchNorm, Swin's ImageNet head): kept for
# the checkpoint layout, frozen so DDP does not wait for gradients that never come.
UNUSED = ("unet_svd.bn.", "unet_embedding.swin.head.")


class TrainingError(ValueError):
    """A problem with the command line or the data, found before training starts."""


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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m npnet.train", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="NPD folder of *.safetensors shards")
    p.add_argument("--out", required=True, help="folder for npnet.safetensors, state.pt, metrics.jsonl")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64, help="global batch, split over the processes")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument(
        "--min-gain", type=float, default=0.0, help="keep samples with gain > this (if gains exist)"
    )
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--init", default="none", help="none | imagenet | sdxl | dreamshaper | dit | PATH")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--resume", action="store_true", help="continue from --out/state.pt")
    p.add_argument("--log-every", type=int, default=10, help="steps between metrics lines")
    p.add_argument("--weights-dir", default=None, help="where --init downloads go (default: the npnet cache)")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "log_every"):
        if getattr(args, name) < 1:
            raise TrainingError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}.")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise TrainingError(f"--lr must be a finite number > 0, got {args.lr}.")
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        raise TrainingError(f"--weight-decay must be >= 0, got {args.weight_decay}.")
    if not 0 < args.val_fraction < 1:
        raise TrainingError(f"--val-fraction must be between 0 and 1 (exclusive), got {args.val_fraction}.")
    if args.device not in ("auto", "cpu", "cuda"):
        raise TrainingError(f"--device must be auto, cpu or cuda, got {args.device!r}.")
    return args


def start_run(device_choice: str) -> Run:
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
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    return Run(rank, world, device)


def split(size: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded random train/validation split (the authors': 90/10)."""
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(size * val_fraction))
    return order[n_val:], order[:n_val]


def initial_model(init: str, config: NPNetConfig, seed: int, weights_dir: str | None) -> NPNet:
    """The network to start from; a released or own network must have the data's shape."""
    torch.manual_seed(seed)
    model = NPNet(config)
    if init == "none":
        return model
    if init == "imagenet":
        path = download_imagenet_swin(weights_dir)
        swin = model.unet_embedding.swin
        weights = load_file(path)
        expected = set(swin.state_dict())
        # timm < 0.9.6 exports also carried these buffers; ours rebuilds them, so they are not loaded.
        weights = {
            k: v for k, v in weights.items() if not k.endswith(("relative_position_index", "attn_mask"))
        }
        missing, unexpected = expected - set(weights), set(weights) - expected
        if missing or unexpected:
            raise TrainingError(
                f"{path} is not timm's Swin-T: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}."
            )
        swin.load_state_dict(weights, strict=True)
        return model
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
    model.load_state_dict(start.state_dict())
    return model


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


class StopRequest:
    """SIGINT / SIGTERM set a flag; the loop saves the state at the next step and exits."""

    def __init__(self) -> None:
        self.asked = False
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame) -> None:
        self.asked = True

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


def _state(model, optimizer, epoch, step, global_step, best, config) -> dict:
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "step": step,
        "global_step": global_step,
        "best_val": best,
        "config": config.to_json(),
        "torch_rng": torch.get_rng_state(),
    }


def _atomic_torch_save(obj: dict, path: Path) -> None:
    partial = path.with_name(f".{path.name}.partial")
    torch.save(obj, partial)
    os.replace(partial, path)


def train(args: argparse.Namespace) -> dict:
    """Run the training `args` describe; returns the final metrics (rank 0) or {} (other ranks)."""
    run = start_run(args.device)
    try:
        return _train(args, run)
    finally:
        if run.world > 1:
            dist.destroy_process_group()


def _train(args: argparse.Namespace, run: Run) -> dict:
    out = Path(args.out)
    try:
        dataset = NoisePromptDataset(args.data, min_gain=args.min_gain)
    except DatasetError as error:
        raise TrainingError(str(error)) from None
    config = dataset.config
    train_idx, val_idx = split(len(dataset), args.val_fraction, args.seed)
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
            f"the dataset has {len(train_idx)} training samples (of {len(dataset)} kept, min gain "
            f"{args.min_gain}), fewer than one batch of {args.batch_size}: lower --batch-size or collect more."
        )
    state = None
    if args.resume:
        state_path = out / STATE_FILE
        if not state_path.is_file():
            raise TrainingError(f"--resume: there is no {state_path} to resume from.")
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if NPNetConfig.from_json(state["config"]) != config:
            raise TrainingError(
                f"--resume: {state_path} trains another network shape than {args.data} holds."
            )

    try:
        model = initial_model(args.init, config, args.seed, args.weights_dir)
    except DownloadError as error:
        raise TrainingError(str(error)) from None
    model.init_non_persistent_buffers(torch.device("cpu"))
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(not name.startswith(UNUSED))
    model.to(run.device).train()
    trained = DistributedDataParallel(model) if run.world > 1 else model
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=args.weight_decay
    )
    epoch = step0 = global_step = 0
    best = math.inf
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, step0, global_step, best = (
            state["epoch"],
            state["step"],
            state["global_step"],
            state["best_val"],
        )
        torch.set_rng_state(state["torch_rng"])

    amp = run.device.type == "cuda" and torch.cuda.is_bf16_supported()
    batches = GlobalBatches(len(train_idx), args.batch_size, run, args.seed)
    baseline = identity_loss(dataset, val_idx) if run.main else math.nan
    if run.main:
        out.mkdir(parents=True, exist_ok=True)
    metrics = (out / "metrics.jsonl").open("a") if run.main else None
    stop = StopRequest()
    last: dict = {}
    bar = tqdm(
        total=batches.steps * args.epochs,
        initial=epoch * batches.steps + step0,
        disable=not run.main,
        unit="step",
        desc="npnet.train",
    )
    try:
        while epoch < args.epochs:
            window_start, window_samples, losses = time.perf_counter(), 0, []
            for step, local in batches.epoch(epoch, skip=step0):
                noise, golden, embeds = _stack(dataset, [train_idx[i] for i in local], run.device)
                with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=amp):
                    output = trained(noise, embeds)
                loss = F.mse_loss(output.float(), golden)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                global_step += 1
                losses.append(loss.detach())
                window_samples += args.batch_size
                end_of_epoch = step == batches.steps - 1
                if run.main and (global_step % args.log_every == 0 or end_of_epoch):
                    train_loss = torch.stack(losses).mean().item()
                    if not math.isfinite(train_loss):
                        raise TrainingError(
                            f"the training loss became {train_loss} at step {global_step}: lower --lr."
                        )
                    rate = window_samples / max(time.perf_counter() - window_start, 1e-9)
                    last = {
                        "epoch": epoch,
                        "step": global_step,
                        "train_loss": train_loss,
                        "val_loss": None,
                        "identity_val_loss": baseline,
                        "samples_per_s": rate,
                        "lr": args.lr,
                    }
                    if end_of_epoch:
                        last["val_loss"] = evaluate(model, dataset, val_idx, run.device, args.batch_size, amp)
                    metrics.write(json.dumps(last) + "\n")
                    metrics.flush()
                    bar.set_postfix(loss=f"{train_loss:.4f}", samples_s=f"{rate:.1f}")
                    window_start, window_samples, losses = time.perf_counter(), 0, []
                bar.update(1)
                if stop.agreed(run):
                    if run.main:
                        _atomic_torch_save(
                            _state(model, optimizer, epoch, step + 1, global_step, best, config),
                            out / STATE_FILE,
                        )
                        print(
                            f"stopped; state saved to {out / STATE_FILE} (resume with --resume)",
                            file=sys.stderr,
                        )
                    raise KeyboardInterrupt
            epoch, step0 = epoch + 1, 0
            if run.main:
                if last.get("val_loss") is not None and last["val_loss"] < best:
                    best = last["val_loss"]
                    save(model, out / "npnet-best.safetensors")
                _atomic_torch_save(
                    _state(model, optimizer, epoch, 0, global_step, best, config), out / STATE_FILE
                )
        if run.main:
            save(model, out / "npnet.safetensors")
        if run.world > 1:
            dist.barrier()
    finally:
        bar.close()
        stop.restore()
        if metrics is not None:
            metrics.close()
    return last


def main(argv: list[str] | None = None) -> int:
    try:
        result = train(parse_args(argv))
    except TrainingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if result:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
