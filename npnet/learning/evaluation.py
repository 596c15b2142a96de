"""Golden noise against plain noise on one checkpoint: paired reward scores, their summary, chart and files.

Every prompt x seed is rendered twice, from the seed's plain noise and from its golden noise, and both
images are scored by the same reward model. The comparison is paired: the statistic is the difference
d = golden - plain per (prompt, seed), summarised by its mean with a 95% Student-t interval and by the
win rate (share of pairs with d > 0; ties count half). The host renders and scores (`score_pair`);
`run` is the loop every host shares (progress, Cancel, the rule that a NaN score is an error), and
`ResultFiles` streams each row to the CSV as it is scored, so the numbers a user reads are those in the
CSV, and work finished before a Cancel or an error is kept.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..files import atomic_write
from ..golden import Cancelled
from ..inputs import InputError
from .collection import LazySequence, check_seed_range, given_seeds


@dataclass(frozen=True)
class PairScore:
    prompt: str
    seed: int
    plain: float
    golden: float

    @property
    def difference(self) -> float:
        return self.golden - self.plain


@dataclass(frozen=True)
class Summary:
    pairs: int
    mean_plain: float
    mean_golden: float
    mean_difference: float
    ci95_low: float | None  # Student-t; None with a single pair: no spread to estimate
    ci95_high: float | None
    win_rate: float  # share of pairs where golden scores higher; ties count half
    boot95_low: float | None = None  # paired bootstrap, resampling whole prompts when a prompt has
    boot95_high: float | None = None  # several seeds (their pairs are not independent)
    bootstrap_unit: str = "pair"  # what the bootstrap resampled: "prompt" or "pair"


def student_t_quantile(p: float, dof: int) -> float:
    """The p-quantile (p > 0.5) of Student's t with `dof` degrees of freedom, by bisection on its CDF.

    The CDF is integrated numerically from the closed-form density (Simpson's rule on a fine grid); this
    keeps the core free of SciPy and is accurate to ~1e-7 for the 0.975 quantile at any dof >= 1.
    """
    log_norm = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)

    def cdf(t: float) -> float:
        n = 20000  # even
        x = np.linspace(0.0, t, n + 1)
        f = np.exp(log_norm - (dof + 1) / 2 * np.log1p(x * x / dof))
        simpson = (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum()) * (t / n) / 3
        return 0.5 + simpson

    low, high = 0.0, 1.0
    while cdf(high) < p:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < p else (low, mid)
    return (low + high) / 2


BOOTSTRAP_RESAMPLES = 4000


def bootstrap_interval(
    differences: Sequence[float],
    clusters: Sequence[object],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float, str]:
    """A 95% percentile-bootstrap interval of the mean paired difference, and the unit it resampled.

    Pairs that share a prompt are not independent (the prompt decides much of the score), so when any
    prompt has several pairs whole prompts are resampled with all their pairs (a cluster bootstrap);
    otherwise single pairs are. Seeded: the same scores give the same interval.
    """
    d = np.asarray(differences, dtype=np.float64)
    keys = {key: i for i, key in enumerate(dict.fromkeys(clusters))}
    ids = np.array([keys[c] for c in clusters])
    unit = "prompt" if len(keys) < len(d) else "pair"
    if unit == "pair":
        sums, counts = d, np.ones_like(d)
    else:
        sums = np.bincount(ids, weights=d, minlength=len(keys))
        counts = np.bincount(ids, minlength=len(keys)).astype(np.float64)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(sums), size=(resamples, len(sums)))
    means = sums[pick].sum(1) / counts[pick].sum(1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high), unit


def win_rate(differences: np.ndarray) -> float:
    """The share of pairs where golden scores higher; ties count half."""
    return float((differences > 0).sum() + 0.5 * (differences == 0).sum()) / len(differences)


def summarise(scores: Sequence[PairScore]) -> Summary:
    if not scores:
        raise ValueError("no scored pairs to summarise")
    d = np.array([s.difference for s in scores], dtype=np.float64)
    n = len(d)
    mean = float(d.mean())
    low = high = boot_low = boot_high = None
    unit = "pair"
    if n > 1:
        half = student_t_quantile(0.975, n - 1) * float(d.std(ddof=1)) / math.sqrt(n)
        low, high = mean - half, mean + half
        boot_low, boot_high, unit = bootstrap_interval(d, [s.prompt for s in scores])
    return Summary(
        pairs=n,
        mean_plain=float(np.mean([s.plain for s in scores])),
        mean_golden=float(np.mean([s.golden for s in scores])),
        mean_difference=mean,
        ci95_low=low,
        ci95_high=high,
        win_rate=win_rate(d),
        boot95_low=boot_low,
        boot95_high=boot_high,
        bootstrap_unit=unit,
    )


def per_prompt(scores: Sequence[PairScore]) -> list[dict]:
    """One row per prompt, in first-seen order: pairs, mean plain, golden and difference, win rate."""
    rows: dict[str, list[PairScore]] = {}
    for s in scores:
        rows.setdefault(s.prompt, []).append(s)
    table = []
    for prompt, group in rows.items():
        d = np.array([s.difference for s in group])
        table.append(
            {
                "prompt": prompt,
                "pairs": len(group),
                "mean_plain": float(np.mean([s.plain for s in group])),
                "mean_golden": float(np.mean([s.golden for s in group])),
                "mean_difference": float(d.mean()),
                "win_rate": win_rate(d),
            }
        )
    return table


def describe(summary: Summary, reward: str) -> str:
    """The one-paragraph result shown on the node."""
    interval = (
        f"95% interval [{summary.ci95_low:+.4g}, {summary.ci95_high:+.4g}] (Student t), "
        f"[{summary.boot95_low:+.4g}, {summary.boot95_high:+.4g}] (bootstrap over {summary.bootstrap_unit}s)"
        if summary.ci95_low is not None
        else "no interval from one pair"
    )
    return (
        f"{summary.pairs} prompt x seed pairs scored by {reward}: plain {summary.mean_plain:.4g}, "
        f"golden {summary.mean_golden:.4g}; mean difference {summary.mean_difference:+.4g} ({interval}); "
        f"golden wins {summary.win_rate:.1%}."
    )


CSV_HEADER = ["prompt", "seed", "plain_score", "golden_score", "difference"]


def _csv_row(s: PairScore) -> list:
    return [s.prompt, s.seed, repr(s.plain), repr(s.golden), repr(s.difference)]


@dataclass(frozen=True)
class Job:
    prompt: str
    seed: int


class Jobs(LazySequence):
    """Every prompt with seeds first_seed .. first_seed + seeds - 1, prompt by prompt; a prompt whose
    file gave it a seed s uses s .. s + seeds - 1 instead. Computed on demand: a million prompts cost
    nothing before the first pair."""

    def __init__(self, prompts: Sequence[str], first_seed: int, seeds: int) -> None:
        self.prompts, self.first_seed, self.seeds = prompts, first_seed, seeds
        self.given = given_seeds(prompts)

    def __len__(self) -> int:
        return len(self.prompts) * self.seeds

    def item(self, i: int) -> Job:
        p, k = divmod(i, self.seeds)
        return Job(self.prompts[p], (self.given[p] if self.given else self.first_seed) + k)


def jobs(prompts: Sequence[str], first_seed: int, seeds: int) -> Jobs:
    """The evaluation's prompt x seed jobs, lazily (`Jobs`); every seed checked below 2**64 first."""
    check_seed_range(prompts, first_seed, seeds, seeds)
    return Jobs(prompts, first_seed, seeds)


class ResultFiles:
    """`<stem>.csv`, a row written (and flushed) per scored pair, and `<stem>.json` (settings, summary,
    rows, and whether the run completed) written when the run ends, however it ends."""

    def __init__(self, directory: Path, stem: str, settings: Mapping, reward: str = "reward") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.reward = reward
        self.csv_path, self.json_path = directory / f"{stem}.csv", directory / f"{stem}.json"
        self.settings = dict(settings)
        self.scores: list[PairScore] = []
        self._file = self.csv_path.open("x", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._csv.writerow(CSV_HEADER)
        self._file.flush()

    def add(self, score: PairScore) -> None:
        self.scores.append(score)
        self._csv.writerow(_csv_row(score))
        self._file.flush()

    def close(self, stopped: str | None = None) -> Summary | None:
        """Finish both files; `stopped` says why the run ended early (None: every pair was scored)."""
        self._file.close()
        summary = summarise(self.scores) if self.scores else None
        document = {
            "settings": self.settings,
            "complete": stopped is None,
            "stopped": stopped,
            "summary": asdict(summary) if summary else None,
            "prompts": per_prompt(self.scores),
            "pairs": [asdict(s) for s in self.scores],
        }
        text = json.dumps(document, indent=1, ensure_ascii=False)
        atomic_write(self.json_path, lambda partial: partial.write_text(text, encoding="utf-8"))
        return summary


# score_batch(jobs) -> (per job [(plain score, golden score) for each reward], per job its two images)
ScoreBatch = Callable[[Sequence[Job]], tuple[Sequence[Sequence[tuple[float, float]]], Sequence[object]]]


def run_evaluation(
    todo: Sequence[Job],
    score_batch: ScoreBatch,
    files: Sequence[ResultFiles],
    progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    on_pair: Callable[[Job, object], None] | None = None,
    batch_size: int = 1,
) -> list[Summary]:
    """Score every job with every reward (each image rendered once), `batch_size` jobs at a time
    (`recipe.job_scorer`), streaming rows into each reward's `files` in job order; returns one summary
    per reward.

    A NaN/Inf score is an InputError on `reward` naming the reward (nothing is summarised from a broken
    pair; the rows of the jobs before it, in its batch too, are kept); on that, Cancel (checked between
    batches) or any host error the rows scored so far stay in the CSVs and the JSONs say the run stopped.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError("batch_size", f"batch_size must be an integer >= 1, got {batch_size!r}.")
    stopped = "failed"
    total = len(todo)
    number = 0
    try:
        for start in range(0, total, batch_size):
            if should_cancel is not None and should_cancel():
                stopped = f"cancelled after {number} of {total} pairs"
                raise Cancelled(stopped)
            batch = todo[start : start + batch_size]
            scores, images = score_batch(batch)
            for job, job_scores, job_images in zip(batch, scores, images, strict=True):
                for (plain, golden), out in zip(job_scores, files, strict=True):
                    if not (math.isfinite(plain) and math.isfinite(golden)):
                        stopped = f"prompt {job.prompt!r}, seed {job.seed} scored NaN or Inf by {out.reward}"
                        raise InputError(
                            "reward",
                            f"the reward {out.reward} scored prompt {job.prompt!r}, seed {job.seed} as NaN or "
                            "Inf; the images may hold NaN (the model diverged at these settings: check cfg "
                            f"and steps). The {len(out.scores)} pairs scored before it are in "
                            f"{out.csv_path.name}; nothing was summarised.",
                        )
                for (plain, golden), out in zip(job_scores, files, strict=True):
                    out.add(PairScore(job.prompt, job.seed, plain, golden))
                if on_pair is not None:
                    on_pair(job, job_images)
                number += 1
            if progress is not None:
                progress(number, total)
        stopped = None
    except Cancelled:
        # Also a Cancel the host raised from inside its own work (the text encoder, the sampler).
        stopped = f"cancelled after {number} of {total} pairs"
        raise
    finally:
        summaries = [out.close(stopped) for out in files]
    return summaries


def result_suffixes(given: Sequence[tuple[str, object]]) -> list[str]:
    """The file-name part of each reward's CSV/JSON, given (input name, reward) pairs in order: none for the
    first, the reward's name for the others, and the input's name too when that name is taken (the same
    model on two inputs), so no two rewards ever write one file."""
    suffixes, taken = [], set()
    for k, (input_name, reward) in enumerate(given):
        suffix = "" if k == 0 else f"{reward_slug(reward.name)}_"
        if suffix in taken:
            suffix = f"{reward_slug(reward.name)}_{input_name}_"
        taken.add(suffix)
        suffixes.append(suffix)
    return suffixes


def reward_slug(name: str) -> str:
    """A reward's name as a file-name part: letters, digits, '-' and '_' only."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "reward"


def read_csv(text: str) -> list[PairScore]:
    rows = csv.DictReader(io.StringIO(text))
    return [
        PairScore(r["prompt"], int(r["seed"]), float(r["plain_score"]), float(r["golden_score"]))
        for r in rows
    ]


def chart(scores: Sequence[PairScore], reward: str, width: int = 1024, height: int = 640) -> np.ndarray:
    """The paired differences, sorted, with their mean, the 95% interval and the win rate: [H, W, 3] uint8."""
    # The Agg canvas draws off-screen by itself: the process-wide backend is the host's to choose.
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    summary = summarise(scores)
    d = np.sort(np.array([s.difference for s in scores]))
    dpi = 100
    with matplotlib.rc_context({"font.size": max(8.0, width / 90), "svg.hashsalt": "golden-noise"}):
        fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        x = np.arange(1, len(d) + 1)
        colours = np.where(d > 0, "#009E73", np.where(d < 0, "#D55E00", "#999999"))  # Okabe-Ito
        ax.scatter(x, d, c=colours, s=max(12, 600 / max(len(d), 1)), zorder=3)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.axhline(summary.mean_difference, color="#0072B2", linewidth=1.6, label="mean difference")
        if summary.ci95_low is not None:
            ax.axhspan(summary.ci95_low, summary.ci95_high, color="#56B4E9", alpha=0.25, label="95% interval")
        ax.set_xlabel("prompt x seed pairs, sorted by difference")
        ax.set_ylabel(f"{reward}: golden - plain")
        ax.set_title(
            f"Golden vs plain noise, {summary.pairs} pairs: mean {summary.mean_difference:+.3g}, "
            f"golden wins {summary.win_rate:.0%}"
        )
        ax.legend(loc="upper left")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
    return rgba[..., :3].copy()
