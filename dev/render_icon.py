"""Draws web/icon.png, the Registry icon named in pyproject.toml [tool.comfy] Icon (square, <= 400 px)."""

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

OUT = Path(__file__).resolve().parent.parent / "web" / "icon.png"


def main() -> None:
    fig = Figure(figsize=(2, 2), dpi=128)  # 256 x 256 px
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0, 0, 1, 1])
    rng = np.random.default_rng(2411_09502)
    noise = rng.standard_normal((32, 32))
    # A field of noise drawn toward a golden centre: the pack's idea in one picture.
    yy, xx = np.mgrid[-1:1:32j, -1:1:32j]
    pull = np.exp(-3 * (xx**2 + yy**2))
    ax.imshow(noise * (1 - pull) + 2.5 * pull, cmap="YlOrBr_r", interpolation="nearest")
    ax.set_axis_off()
    fig.savefig(OUT, metadata={"Software": None})


if __name__ == "__main__":
    main()
