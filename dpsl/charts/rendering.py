"""What every DPSL chart shares: the Okabe-Ito palette, the style, one figure, and PNG bytes that are the
same for the same inputs (see the package docstring for the rules)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

# Okabe & Ito (2008), "Color Universal Design": distinguishable under protanopia, deuteranopia and
# tritanopia. Black is first so that the reference (non-private) curve is the neutral colour.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}

# Order for a sequence of series; yellow last: it is hard to see on white.
SERIES_COLOURS = ("blue", "vermillion", "green", "purple", "orange", "sky_blue", "yellow")

LINESTYLES = ("-", "--", ":", "-.")

MARKERS = ("o", "s", "^", "D", "v", "P")

DPI = 100

MIN_SIZE, MAX_SIZE = 320, 4096
THEMES = ("light", "dark")


@dataclass(frozen=True)
class ChartStyle:
    """Pixel size and colour theme of a chart."""

    width: int = 1024
    height: int = 640
    theme: str = "light"

    def __post_init__(self):
        for name in ("width", "height"):
            value = getattr(self, name)
            if not (MIN_SIZE <= value <= MAX_SIZE):
                raise ValueError(f"{name} must be between {MIN_SIZE} and {MAX_SIZE} px, got {value}")
        if self.theme not in THEMES:
            raise ValueError(f"theme must be one of {', '.join(THEMES)}, got {self.theme!r}")


DEFAULT_STYLE = ChartStyle()  # frozen: one shared default for every chart function


@dataclass(frozen=True)
class Chart:
    rgb: np.ndarray  # H, W, 3 uint8
    png: bytes


def _palette(theme: str) -> dict[str, str]:
    colours = dict(OKABE_ITO)
    if theme == "dark":
        # Black disappears on a dark background; the reference colour becomes light grey.
        colours["black"] = "#E8E8E8"
    return colours


def _rc(style: ChartStyle) -> dict:
    # Font sizes grow with the picture so a 1024 px chart reads like a journal figure and a 2048 px
    # one is not tiny text in a corner.
    base = 11.0 * max(style.width, 640) / 1024
    dark = style.theme == "dark"
    fg, bg, grid = ("#E8E8E8", "#1E1E1E", "#4A4A4A") if dark else ("#222222", "#FFFFFF", "#D9D9D9")
    return {
        "font.family": "DejaVu Sans",
        "mathtext.fontset": "dejavusans",
        "font.size": base,
        "axes.titlesize": base * 1.0,
        "axes.labelsize": base,
        "figure.titlesize": base * 1.2,
        "legend.fontsize": base * 0.85,
        "xtick.labelsize": base * 0.9,
        "ytick.labelsize": base * 0.9,
        "lines.linewidth": 1.8 * base / 11,
        "figure.facecolor": bg,
        "axes.facecolor": bg,
        "savefig.facecolor": bg,
        "text.color": fg,
        "axes.labelcolor": fg,
        "axes.edgecolor": fg,
        "xtick.color": fg,
        "ytick.color": fg,
        "grid.color": grid,
        "grid.linewidth": 0.6,
        "axes.grid": True,
        "axes.axisbelow": True,
        "legend.framealpha": 0.9,
        "legend.facecolor": bg,
        "legend.edgecolor": grid,
        "path.simplify": True,
        # Hatch/marker rendering must not depend on a random salt or on the user's matplotlibrc.
        "svg.hashsalt": "dpsl",
        "axes.unicode_minus": True,
    }


def _new_figure(style: ChartStyle, ncols: int = 1) -> tuple[Figure, list]:
    with matplotlib.rc_context(_rc(style)):
        fig = Figure(figsize=(style.width / DPI, style.height / DPI), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _render(fig: Figure, style: ChartStyle) -> Chart:
    with matplotlib.rc_context(_rc(style)):
        canvas = fig.canvas
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
    rgb = np.ascontiguousarray(rgba[:, :, :3])
    buf = io.BytesIO()
    # PIL writes no text chunks unless asked: no time stamp, no "Software" key, same bytes each time.
    Image.fromarray(rgb, mode="RGB").save(buf, format="PNG", optimize=False, compress_level=6)
    return Chart(rgb=rgb, png=buf.getvalue())


def _draw(style: ChartStyle, ncols: int, draw) -> Chart:
    """Build a figure, let `draw(fig, axes, colours)` fill it, and render it under the same rc."""
    with matplotlib.rc_context(_rc(style)):
        fig, axes = _new_figure(style, ncols)
        draw(fig, axes, _palette(style.theme))
        return _render(fig, style)
