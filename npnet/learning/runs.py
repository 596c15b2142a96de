"""What a training run's --out folder holds besides the weights, and the rules that keep runs apart.

- `state.pt` (`TrainingState`): model, optimiser, `Position`, RNG, and the run's settings: every flag
  that decides the weights (`RESULT_ARGS`) and a SHA-256 of the data's files. `check_resume` refuses a
  resume that differs in any of them, naming each difference.
- `prepare_out`: a fresh run never writes over another run's files unless asked to (--overwrite).
- `Metrics` (`metrics.jsonl`): after a resume, lines past the saved step are dropped before the run
  logs them again, so no step appears twice.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..config import NPNetConfig
from ..files import atomic_write, make_folder
from .dataset import NoisePromptDataset

STATE_FILE = "state.pt"
# Arguments whose change changes the weights a run reaches: a resume must match them all.
RESULT_ARGS = (
    "epochs",
    "batch_size",
    "lr",
    "schedule",
    "warmup_steps",
    "weight_decay",
    "min_gain",
    "val_fraction",
    "init",
    "arch",
    "drop_path",
    "seed",
)
RUN_FILES = ("npnet.safetensors", "npnet-best.safetensors", STATE_FILE, "metrics.jsonl")


def scheduled_rate(lr: float, schedule: str, warmup: int, step: int, total: int) -> float:
    """The rate of optimiser step `step` (0-based) of `total`: a linear warm-up over `warmup` steps (at most
    a tenth of the run), then constant or a cosine decay to a tenth of `lr` at the last step. A function of
    the step alone, so a resume needs no scheduler state."""
    warmup = min(warmup, total // 10)  # a short run is not all warm-up
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    if schedule == "constant" or total <= warmup + 1:
        return lr
    done = (step - warmup) / (total - warmup - 1)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))))


class TrainingError(ValueError):
    """A problem with the command line or the data, found before training starts."""


def run_settings(args: argparse.Namespace, dataset: NoisePromptDataset) -> dict:
    """Everything that decides the weights a run reaches: the result-affecting flags and the data."""
    return {
        **{name: getattr(args, name) for name in RESULT_ARGS},
        "samples": len(dataset),
        "data_sha256": dataset.sha256,  # every shard's name and bytes, read once while opening
    }


@dataclass
class Position:
    """Where a run is: the next epoch and step to run, steps done, the best validation loss so far."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    best_val: float = math.inf


@dataclass
class TrainingState:
    """What state.pt holds (tensors and plain values only): enough to continue exactly, and the settings
    a resume must match."""

    model: dict
    optimizer: dict
    position: Position
    settings: dict
    config: str
    torch_rng: torch.Tensor = field(default_factory=torch.get_rng_state)

    def save(self, path: Path) -> None:
        document = {**asdict(self), "settings": json.dumps(self.settings)}
        atomic_write(path, lambda partial: torch.save(document, partial))

    @classmethod
    def read(cls, path: Path) -> TrainingState:
        try:
            document = torch.load(path, map_location="cpu", weights_only=True)
            return cls(
                model=document["model"],
                optimizer=document["optimizer"],
                position=Position(**document["position"]),
                settings=json.loads(document["settings"]),
                config=document["config"],
                torch_rng=document["torch_rng"],
            )
        except Exception as error:  # an older version's state, a truncated or a foreign file
            raise TrainingError(
                f"--resume: {path} is not a state this version can continue ({type(error).__name__}: "
                f"{str(error)[:200]}); start a new --out."
            ) from None


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def check_resume(saved: TrainingState, settings: dict, config: NPNetConfig, out: Path) -> None:
    """Refuse to continue a run with anything that would change its result, naming every difference."""
    saved_shape = NPNetConfig.from_json(saved.config)
    if (saved_shape.latent_shape, saved_shape.tokens, saved_shape.embed_dim) != (
        config.latent_shape,
        config.tokens,
        config.embed_dim,
    ):
        raise TrainingError(f"--resume: {out / STATE_FILE} trains another network shape than the data holds.")
    differ = []
    for key in sorted(set(saved.settings) | set(settings)):
        before, now = saved.settings.get(key), settings.get(key)
        if before == now:
            continue
        if key == "data_sha256":
            differ.append("--data (its files are not the ones the run started on)")
        elif key == "samples":
            differ.append(f"--data (it gives {now} samples, the run had {before})")
        else:
            differ.append(f"{_flag(key)} (the run used {before}, now {now})")
    if differ:
        raise TrainingError(
            f"--resume: the run in {out} was started with other settings: {'; '.join(differ)}. Resume with "
            "the same settings, or start a new --out."
        )


def prepare_out(args: argparse.Namespace, main_process: bool) -> None:
    """A fresh run never writes over another: an --out holding a run needs --resume or --overwrite. The
    folder is created and checked writable before anything in it is deleted."""
    out = Path(args.out)
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found and not (args.resume or args.overwrite):
        raise TrainingError(
            f"--out {out} already holds a run ({', '.join(found)}): continue it with --resume, start it "
            "again with --overwrite (deleting it), or choose another --out."
        )
    if main_process:
        try:
            make_folder(out)
        except OSError as error:
            raise TrainingError(f"--out: {error.strerror}.") from None
        if found and not args.resume:
            for name in found:
                (out / name).unlink()


class Metrics:
    """metrics.jsonl, one line per logged step. After a resume, lines past the saved step (logged after
    the last save, and about to be logged again) are dropped first, so no line is ever written twice."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        if resume_step is not None and path.exists():
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            kept = "".join(line for line in lines if _line_step(line) <= resume_step)
            atomic_write(path, lambda partial: partial.write_text(kept, encoding="utf-8"))
        self._file = path.open("a", encoding="utf-8")

    def write(self, row: dict) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _line_step(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf  # a torn last line from a kill is dropped
