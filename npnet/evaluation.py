"""Golden noise against plain noise on one checkpoint: paired reward scores, their summary, chart and files.

Every prompt x seed is rendered twice, from the seed's plain noise and from its golden noise, and both
images are scored by the same reward model. The comparison is paired: the statistic is the difference
d = golden - plain per (prompt, seed), summarised by its mean with a 95% Student-t interval and by the
win rate (share of pairs with d > 0; ties count half). The host renders and scores; this module only
computes, so the numbers a user reads are those in the CSV it writes next to them.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


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
    ci95_low: float | None  # None with a single pair: no spread to estimate
    ci95_high: float | None
    win_rate: float  # share of pairs where golden scores higher; ties count half


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


def summarise(scores: Sequence[PairScore]) -> Summary:
    if not scores:
        raise ValueError("no scored pairs to summarise")
    d = np.array([s.difference for s in scores], dtype=np.float64)
    n = len(d)
    mean = float(d.mean())
    low = high = None
    if n > 1:
        half = student_t_quantile(0.975, n - 1) * float(d.std(ddof=1)) / math.sqrt(n)
        low, high = mean - half, mean + half
    wins = float((d > 0).sum() + 0.5 * (d == 0).sum()) / n
    return Summary(
        pairs=n,
        mean_plain=float(np.mean([s.plain for s in scores])),
        mean_golden=float(np.mean([s.golden for s in scores])),
        mean_difference=mean,
        ci95_low=low,
        ci95_high=high,
        win_rate=wins,
    )


def describe(summary: Summary, reward: str) -> str:
    """The one-paragraph result shown on the node."""
    interval = (
        f"95% interval [{summary.ci95_low:+.4g}, {summary.ci95_high:+.4g}]"
        if summary.ci95_low is not None
        else "no interval from one pair"
    )
    return (
        f"{summary.pairs} prompt x seed pairs scored by {reward}: plain {summary.mean_plain:.4g}, "
        f"golden {summary.mean_golden:.4g}; mean difference {summary.mean_difference:+.4g} ({interval}); "
        f"golden wins {summary.win_rate:.1%}."
    )


def to_csv(scores: Sequence[PairScore]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["prompt", "seed", "plain_score", "golden_score", "difference"])
    for s in scores:
        writer.writerow([s.prompt, s.seed, repr(s.plain), repr(s.golden), repr(s.difference)])
    return out.getvalue()


def read_csv(text: str) -> list[PairScore]:
    rows = csv.DictReader(io.StringIO(text))
    return [
        PairScore(r["prompt"], int(r["seed"]), float(r["plain_score"]), float(r["golden_score"]))
        for r in rows
    ]


def write_files(directory: Path, stem: str, scores: Sequence[PairScore], settings: dict) -> tuple[Path, Path]:
    """`<stem>.csv` (one row per pair) and `<stem>.json` (settings, summary and rows)."""
    directory.mkdir(parents=True, exist_ok=True)
    summary = summarise(scores)
    csv_path, json_path = directory / f"{stem}.csv", directory / f"{stem}.json"
    csv_path.write_text(to_csv(scores), encoding="utf-8")
    document = {"settings": settings, "summary": asdict(summary), "pairs": [asdict(s) for s in scores]}
    json_path.write_text(json.dumps(document, indent=1, ensure_ascii=False), encoding="utf-8")
    return csv_path, json_path


def chart(scores: Sequence[PairScore], reward: str, width: int = 1024, height: int = 640) -> np.ndarray:
    """The paired differences, sorted, with their mean, the 95% interval and the win rate: [H, W, 3] uint8."""
    import matplotlib

    matplotlib.use("Agg", force=False)
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
