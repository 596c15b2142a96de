"""Train an NPNet on a noise prompt dataset: `python -m npnet.train --data DIR --out DIR [...]`.

The same command runs as one process or under `torchrun --nproc-per-node N -m npnet.train ...` (one
process per GPU with NCCL, gloo on CPU): torchrun sets RANK / WORLD_SIZE / LOCAL_RANK, every process
starts from rank 0's weights, the gradients are averaged across processes (`loop.average_gradients`), and
only rank 0 prints and writes files. `--batch-size` is the global batch: every step, the processes together take the same
samples a single process would (`loop.GlobalBatchSampler`), and stochastic depth drops the same branches
of the same samples (`drop_path_draws`), so world size 1 and 2 reach the same weights.

Objective (the authors'): MSE between NPNet(x_T, e) and the target x'_T, AdamW, alpha = beta = 0 at the
start. Which defaults are the authors' and which are ours: `AUTHORS_VS_OURS` (printed by --help).

Files in --out: npnet.safetensors (final), npnet-best.safetensors (lowest validation loss), both
loadable by `npnet.load` and the Golden Noise Loader; state.pt (resumable: model, optimiser, position,
RNG, and every setting that decides the result, with a fingerprint of the data; tensors and plain
values only, read with torch.load(weights_only=True)); metrics.jsonl.

Runs are never mixed or lost: a fresh run into an --out that holds one is refused (unless --overwrite),
a --resume whose settings or data differ is refused naming each difference, state.pt is also saved
every --save-every-minutes inside an epoch, and under torchrun a peer that stops answering ends the run
after --dist-timeout seconds. SIGINT/SIGTERM stop the run after the step in progress, saving state.pt.

The steps, validation and saves are `npnet.learning.loop`'s, shared with `train_on_reward`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..checkpoint import load, save
from ..config import ARCHITECTURES, NPNetConfig
from ..files import folder_problem
from ..hub import DownloadError, download, download_imagenet_swin
from ..model import NPNet
from ..variants import VARIANTS
from .dataset import DatasetError, NoisePromptDataset
from .loop import GlobalBatchSampler, Loop, Process, StopFlag, Stopped, fit, join_torchrun, share_start
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
    problem = folder_problem(args.out)
    if problem:
        raise TrainingError(f"--out {problem}; choose a folder.")
    return args


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


def _mean_squared_error(predict, loader, device) -> float:
    """Mean squared error per element between predict(noise, embeds) and x'_T over `loader`."""
    total, elements = 0.0, 0
    with torch.no_grad():
        for noise, golden, embeds in loader:
            noise, golden, embeds = (t.to(device, non_blocking=True) for t in (noise, golden, embeds))
            total += F.mse_loss(predict(noise, embeds).float(), golden, reduction="sum").item()
            elements += golden.numel()
    return total / elements


def evaluate(model: NPNet, loader, device, amp: bool) -> float:
    """Mean squared error per element of the network on the batches of `loader`."""
    model.eval()

    def predict(noise, embeds):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            return model(noise, embeds)

    try:
        return _mean_squared_error(predict, loader, device)
    finally:
        model.train()


def identity_loss(loader) -> float:
    """The validation loss of doing nothing (x'_T taken as x_T): what a useful network must beat."""
    return _mean_squared_error(lambda noise, embeds: noise, loader, torch.device("cpu"))


class Trainer:
    """One imitation run: `setup` (data, network, optimiser, resume), then `fit` of the shared loop
    (`npnet.learning.loop`) with this objective's batches, loss and validation, then the final file.
    Every process runs the same stages; only rank 0 writes files."""

    def __init__(self, args: argparse.Namespace, process: Process, stop: StopFlag) -> None:
        self.args, self.process, self.out, self.stop = args, process, Path(args.out), stop
        self.position = Position()
        self.metrics: Metrics | None = None
        self.setup()

    # -- set-up ------------------------------------------------------------------------------------
    def setup(self) -> None:
        args, process = self.args, self.process
        try:
            # Opening reads every byte of the data (checked and fingerprinted in one pass): a stop asked
            # for meanwhile ends it between two blocks.
            if process.main:
                print(f"checking the data in {args.data} ...", file=sys.stderr, flush=True)
            self.dataset = NoisePromptDataset(args.data, min_gain=args.min_gain, interrupt=self.stop.check)
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
        prepare_out(args, process.main)
        self.config = model.config
        self.swin = getattr(getattr(model, "unet_embedding", None), "swin", None)
        if self.swin is not None:
            self.swin.set_drop_path(args.drop_path)
        model.init_non_persistent_buffers(torch.device("cpu"))
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(not name.startswith(model.unused_parameters()))
        self.model = model.to(process.device).train()
        share_start(process, model)
        self.optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=args.weight_decay
        )
        if saved is not None:
            self.model.load_state_dict(saved.model)
            self.optimizer.load_state_dict(saved.optimizer)
            self.position = saved.position
            torch.set_rng_state(saved.torch_rng)
        self.amp = process.device.type == "cuda" and torch.cuda.is_bf16_supported()
        cuda = process.device.type == "cuda"
        # The shards are read memory-mapped in this process (workers would each reopen every shard).
        self.sampler = GlobalBatchSampler(self.train_idx, args.batch_size, process, args.seed)
        self.loader = DataLoader(self.dataset, batch_sampler=self.sampler, pin_memory=cuda)
        validation = [
            self.val_idx[i : i + args.batch_size] for i in range(0, len(self.val_idx), args.batch_size)
        ]
        self.val_loader = DataLoader(self.dataset, batch_sampler=validation, pin_memory=cuda)
        self.baseline = identity_loss(self.val_loader) if process.main else math.nan
        if process.main:
            self.metrics = Metrics(self.out / "metrics.jsonl", self.position.global_step if saved else None)
            if self.dataset.duplicates:
                print(
                    f"note: {self.dataset.duplicates} samples appear in two shards (servers that raced); "
                    "each is trained on once",
                    file=sys.stderr,
                )

    def _check_batches(self) -> None:
        args, process, train_idx = self.args, self.process, self.train_idx
        if args.batch_size % process.world:
            raise TrainingError(
                f"--batch-size {args.batch_size} must be a multiple of the {process.world} processes."
            )
        if process.world > len(train_idx):
            raise TrainingError(
                f"{process.world} processes for {len(train_idx)} training samples: use fewer processes."
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

    # -- the objective -----------------------------------------------------------------------------
    def epoch_batches(self, epoch: int, skip: int):
        self.sampler.set_epoch(epoch, skip)
        return self.loader, self.sampler.steps

    def loss(self, batch, step: int):
        noise, golden, embeds = (t.to(self.process.device, non_blocking=True) for t in batch)
        if self.swin is not None and self.args.drop_path > 0:
            self.swin.set_drop_path_draws(self.drop_path_draws(step))
        with torch.autocast(self.process.device.type, dtype=torch.bfloat16, enabled=self.amp):
            output = self.model(noise, embeds)
        loss = F.mse_loss(output.float(), golden)
        return loss, {"train_loss": loss}

    def drop_path_draws(self, step: int) -> torch.Tensor:
        """This process's rows of the step's stochastic-depth draws: drawn for the whole global batch from
        (seed, step), so every sample's masks are the same for any number of processes and after a resume."""
        generator = torch.Generator().manual_seed(self.args.seed * 1_000_003 + step)
        draws = torch.rand(self.args.batch_size, self.swin.drop_path_columns, generator=generator)
        part = self.args.batch_size // self.process.world
        return draws[self.process.rank * part : (self.process.rank + 1) * part].to(self.process.device)

    def validate(self) -> float | None:
        if not self.process.main:
            return None
        return evaluate(self.model, self.val_loader, self.process.device, self.amp)

    def log(self, row: dict) -> None:
        if not math.isfinite(row["train_loss"]):
            raise TrainingError(
                f"the training loss became {row['train_loss']} at step {row['step']}: lower --lr."
            )
        # In place: the row `fit` returns (printed as the run's result) carries the baseline too.
        row.setdefault("val_loss", None)
        row["identity_val_loss"] = self.baseline
        self.metrics.write(row)

    # -- files -------------------------------------------------------------------------------------
    def save_state(self) -> None:
        if self.process.main:
            TrainingState(
                model=self.model.state_dict(),
                optimizer=self.optimizer.state_dict(),
                position=self.position,
                settings=self.settings,
                config=self.config.to_json(),
            ).save(self.out / STATE_FILE)

    def save_best(self) -> None:
        save(self.model, self.out / "npnet-best.safetensors")

    # -- the run -----------------------------------------------------------------------------------
    def train(self) -> dict:
        args, total = self.args, self.sampler.steps * self.args.epochs
        bar = tqdm(
            total=total,
            initial=self.position.global_step,
            disable=not self.process.main,
            unit="step",
            desc="npnet.train",
        )

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        loop = Loop(
            process=self.process,
            model=self.model,
            optimizer=self.optimizer,
            position=self.position,
            total_steps=total,
            rate=lambda step: scheduled_rate(args.lr, args.schedule, args.warmup_steps, step, total),
            loss=self.loss,
            save_state=self.save_state,
            stop=self.stop,
            log=self.log,
            log_every=args.log_every,
            save_every_s=60 * args.save_every_minutes,
            samples_per_step=args.batch_size,
            progress=progress,
        )
        try:
            last = fit(loop, args.epochs, self.epoch_batches, self.validate, self.save_best)
            if self.process.main:
                save(self.model, self.out / "npnet.safetensors")
            if self.process.world > 1:
                dist.barrier()
        except Stopped:
            if self.process.main:
                print(
                    f"stopped; state saved to {self.out / STATE_FILE} (resume with --resume)", file=sys.stderr
                )
            raise KeyboardInterrupt from None
        finally:
            bar.close()
            if self.metrics is not None:
                self.metrics.close()
        return last


def train(args: argparse.Namespace, process: Process | None = None) -> dict:
    """Run the training `args` describe; returns the final metrics (rank 0) or {} (other ranks).

    `process`: this process's place (rank, world size, device); by default torchrun's environment's.
    """
    joined = False
    if process is None:
        process, joined = join_torchrun(args.device, args.dist_timeout)
    stop = StopFlag()
    try:
        return Trainer(args, process, stop).train()
    except Stopped:  # during the set-up (the loop's own stops print where the state went)
        print("stopped before the first step; nothing was written", file=sys.stderr)
        raise KeyboardInterrupt from None
    except RuntimeError as error:
        if process.world == 1 or not _peer_failure(error):
            raise
        raise PeerLost(
            f"process {process.rank} of {process.world}: another process stopped answering (nothing within "
            f"--dist-timeout {args.dist_timeout:g} s) or failed: {str(error).splitlines()[0][:300]}"
        ) from None
    finally:
        stop.restore()
        if joined:
            dist.destroy_process_group()


def _peer_failure(error: RuntimeError) -> bool:
    """A collective that failed because another process did: a DistError, or gloo's / NCCL's own
    RuntimeError (the gradient all-reduce or the start's broadcast raises the latter; its
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
    except OSError as error:  # a full disk or a folder that became unwritable while saving
        print(
            f"error: {error.strerror or error}; the files already in --out are whole (each is written "
            "beside its name and moved into place), so --resume continues from the last saved state.",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130
    if result:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
