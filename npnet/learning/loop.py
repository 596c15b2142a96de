"""The training loop both trainers share: imitation (`npnet.train`, MSE to x'_T) and `train_on_reward`.

Read `fit` as timm's train.py reads:

    while position.epoch < epochs:
        row = loop.train_one_epoch(batches)   # the steps; a stop is honoured between two of them
        row["val_loss"] = validate()           # explicit, once per epoch (None: the objective has none)
        save the best network, log the row, save the state

What differs between the trainers is passed in: the batches of an epoch, the loss of a batch (with the
statistics to log), the validation, and how state, best and final files are written. Everything about
steps is here once: the learning rate of each step, the optimiser step, the metrics window, timed state
saves, and stopping.

Stopping: SIGINT/SIGTERM (in the main thread) and a host's Cancel (`should_cancel`) only set a flag. It
is read before every step; under torchrun the processes agree on it (a max all-reduce), so all stop at
the same step. Then the state of the last finished step is saved and `Stopped` is raised.

Data parallel under torchrun: `share_start` gives every process rank 0's weights and `average_gradients`
averages the gradients of each step with one all-reduce after the backward pass, which is what
DistributedDataParallel does. Not DistributedDataParallel itself: its all-reduces run inside the backward
pass, where torch 2.14 keeps a Python object (the context of the pass) in the thread state each
collective captures; gloo frees a collective on its own worker thread some time after it completes, and
when that falls after the interpreter began to exit, the process aborts ("terminate called without an
active exception"; a core dump showed the last step's all-reduces kept by the final barrier and freed
then). On a 2-core machine with busy loops beside it, 2-process runs of tests/support/reward_world with
DistributedDataParallel aborted in 1 of 12 and 1 of 24 (two loops), and in 5 of 21 with three loops even
when the run ended on an all-reduce instead of the barrier; with this, 0 of 30 with three loops, and so
did `python -m npnet.train` under torchrun.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist

from .runs import Position, TrainingError


@dataclass
class Process:
    """This process's place in a (possibly data-parallel) run: its rank, the number of processes, its
    device. Only the main process (rank 0) prints and writes files."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def join_torchrun(device_choice: str | torch.device, timeout: float = 300.0) -> tuple[Process, bool]:
    """This process's place: torchrun's (RANK / WORLD_SIZE / LOCAL_RANK) when it started us, joining its
    process group unless one exists, else a single process. Returns it and whether this call joined (the
    caller then leaves the group when done). `device_choice`: auto, cpu, cuda or a torch.device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    kind = torch.device(device_choice).type if isinstance(device_choice, torch.device) else device_choice
    cuda = kind == "cuda" or (kind == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but torch sees no CUDA device.")
    if isinstance(device_choice, torch.device) and (world == 1 or not cuda):
        device = device_choice
    else:
        device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    joined = False
    if world > 1 and not dist.is_initialized():
        # The timeout bounds every collective: a stopped or hung peer ends the run instead of blocking it.
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout))
        joined = True
    if dist.is_available() and dist.is_initialized():
        return Process(dist.get_rank(), dist.get_world_size(), device), joined
    return Process(0, 1, device), joined


def share_start(process: Process, model: torch.nn.Module) -> None:
    """Every process starts from rank 0's parameters and buffers (under torchrun; nothing for one)."""
    if process.world > 1:
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=0)


def average_gradients(process: Process, model: torch.nn.Module) -> None:
    """Replace each gradient by its mean over the processes, so that every process takes the step one
    process would take on the whole global batch (each computed the mean loss of its equal part)."""
    if process.world == 1:
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= process.world
    for g, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        g.copy_(part.view_as(g))


class Stopped(Exception):
    """A stop (signal or Cancel) was honoured: the state of the last finished step is saved."""


class StopFlag:
    """SIGINT / SIGTERM set a flag (never raise inside a step); `should_cancel` is polled as well. Signal
    handlers are installed only in the main thread: a host's worker thread cannot take signals, and there
    Cancel is the way to stop."""

    def __init__(self, should_cancel: Callable[[], bool] | None = None) -> None:
        self.asked = False
        self.should_cancel = should_cancel
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame) -> None:
        self.asked = True

    def _asked(self) -> bool:
        return self.asked or (self.should_cancel is not None and bool(self.should_cancel()))

    def check(self) -> None:
        """Raise `Stopped` if a stop was asked for (between the blocks of a long set-up)."""
        if self._asked():
            raise Stopped("stopped before the first step")

    def agreed(self, process: Process) -> bool:
        """True once this process was asked to stop, or (under torchrun) any other was."""
        asked = self._asked()
        if process.world == 1:
            return asked
        flag = torch.tensor([float(asked)], device=process.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


class GlobalBatchSampler(torch.utils.data.Sampler):
    """A DataLoader's `batch_sampler` whose batches do not depend on the number of processes.

    Per epoch, `indices` are permuted by a generator seeded by (seed, epoch) and cut into global batches
    of `batch` (the remainder dropped); process r takes the r-th of `world` equal parts of each. torch's
    DistributedSampler deals indices out process by process before batching, so there the samples of a
    step depend on the world size; here one process and N take the same samples at every step, so they
    reach the same weights. `set_epoch(epoch, skip)` chooses the epoch and the steps already done in it
    (a resume)."""

    def __init__(self, indices: list[int], batch: int, process: Process, seed: int) -> None:
        self.indices, self.batch, self.process, self.seed = indices, batch, process, seed
        self.steps = len(indices) // batch
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.steps - self.skip

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.indices), generator=generator).tolist()
        part = self.batch // self.process.world
        for step in range(self.skip, self.steps):
            first = step * self.batch + self.process.rank * part
            yield [self.indices[i] for i in order[first : first + part]]


# The loss of one batch: (the value to minimise, statistics to log: name -> number or 0-d tensor).
LossFn = Callable[[object, int], tuple[torch.Tensor, dict]]


@dataclass
class Loop:
    """One run's steps. `model` is the network the steps train (its gradients averaged across processes
    under torchrun), validated and saved. `rate(step)` is the learning rate of global step `step`
    (0-based); `loss(batch, step)` the objective; `log(row)` writes a metrics row (main process only);
    `save_state()` writes state.pt (it checks for the main process itself)."""

    process: Process
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    position: Position
    total_steps: int
    rate: Callable[[int], float]
    loss: LossFn
    save_state: Callable[[], None]
    stop: StopFlag
    log: Callable[[dict], None] = lambda row: None
    log_every: int = 1
    save_every_s: float = math.inf
    samples_per_step: int = 1
    progress: Callable[[int, int], None] = lambda done, total: None

    def train_one_epoch(self, batches: Iterable, steps_in_epoch: int) -> dict:
        """The rest of the current epoch. Rows of every `log_every` steps are logged as they fill; the
        epoch's last row is returned unlogged, for `fit` to complete with the validation."""
        position, process = self.position, self.process
        self.model.train()
        window, started, count = {}, time.perf_counter(), 0
        saved_at, last = time.monotonic(), {}
        for batch in batches:
            if self.stop.agreed(process):
                self.save_state()
                raise Stopped(f"stopped after step {position.global_step} of {self.total_steps}")
            for group in self.optimizer.param_groups:
                group["lr"] = self.rate(position.global_step)
            loss, stats = self.loss(batch, position.global_step)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            average_gradients(process, self.model)
            self.optimizer.step()
            position.step, position.global_step = position.step + 1, position.global_step + 1
            for name, value in stats.items():  # summed as tensors: no device sync until a row is logged
                window[name] = window.get(name, 0.0) + value.detach()
            count += 1
            end_of_epoch = position.step == steps_in_epoch
            if process.main and (position.global_step % self.log_every == 0 or end_of_epoch):
                seconds = max(time.perf_counter() - started, 1e-9)
                last = {
                    "epoch": position.epoch,
                    "step": position.global_step,
                    **{name: float(total) / count for name, total in window.items()},
                    "samples_per_s": count * self.samples_per_step / seconds,
                    "lr": self.optimizer.param_groups[0]["lr"],  # the rate of the step just taken
                }
                if not end_of_epoch:
                    self.log(last)
                window, started, count = {}, time.perf_counter(), 0
            self.progress(position.global_step, self.total_steps)
            if process.main and not end_of_epoch and time.monotonic() - saved_at >= self.save_every_s:
                self.save_state()
                saved_at = time.monotonic()
        return last


def fit(
    loop: Loop,
    epochs: int,
    epoch_batches: Callable[[int, int], tuple[Iterable, int]],
    validate: Callable[[], float | None] = lambda: None,
    save_best: Callable[[], None] = lambda: None,
) -> dict:
    """Run `loop` from its position to the end of epoch `epochs`; returns the last metrics row.

    `epoch_batches(epoch, skip)` -> (the epoch's batches from step `skip` on, the epoch's step count)."""
    position, last = loop.position, {}
    while position.epoch < epochs:
        batches, steps_in_epoch = epoch_batches(position.epoch, position.step)
        row = loop.train_one_epoch(batches, steps_in_epoch)
        val = validate()
        if loop.process.main:
            last = row if val is None else {**row, "val_loss": val}
            loop.log(last)
            if val is not None and val < position.best_val:
                position.best_val = val
                save_best()
        position.epoch, position.step = position.epoch + 1, 0
        loop.save_state()
    return last
