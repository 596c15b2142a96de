"""Publication-quality charts of the DP sequential learning lab (host-free: numpy + matplotlib only).

The package: `rendering` (palette, style, figure, PNG bytes), the painters grouped by what they show
(`beliefs`, `cascades`, `privacy`), and `from_results` (`chart_from`: a chart kind from simulation
results). Each `*_chart` function takes plain numbers and arrays (what was simulated, and the closed forms to
draw next to it) and returns a `Chart`: the picture as an RGB uint8 array `[H, W, 3]` and as PNG
bytes. The ComfyUI nodes turn a `dpsl` result into these inputs; nothing here knows about ComfyUI.

Rules every chart follows, so that the pictures can go into a paper or onto a slide:
- the object-oriented matplotlib API with the Agg canvas, never pyplot, so no global figure state
  leaks between ComfyUI executions running in the same process;
- the Okabe-Ito palette (safe for the common colour-vision deficiencies), with line styles or
  markers carrying a second dimension so nothing is told by colour alone;
- axes labelled with units and scale, a legend, and a title that states the parameters;
- sizes in pixels at a fixed dpi, fonts from the DejaVu family shipped with matplotlib, and PNGs
  written without time stamps or version strings: the same inputs give the same bytes.
"""

from .beliefs import (
    MAX_SAMPLE_PATHS,
    LLRRegime,
    RecursionPanel,
    SurvivalSeries,
    llr_paths_chart,
    llr_recursion_chart,
    survival_chart,
    threshold_schematic_chart,
)
from .cascades import (
    K_COLOURS,
    PARTICIPATION_KAPPA,
    CascadeCurve,
    ObjectiveCurve,
    ReportsCurve,
    cascade_probability_chart,
    platform_objective_chart,
    precascade_reports_chart,
)
from .from_results import (
    CHART_KINDS,
    ChartInputError,
    ChartInputs,
    chart_from,
)
from .privacy import (
    EpsSeries,
    SmoothRRIllustration,
    mistakes_chart,
    smooth_rr_chart,
    stopping_time_chart,
)
from .rendering import (
    DPI,
    LINESTYLES,
    MARKERS,
    MAX_SIZE,
    MIN_SIZE,
    OKABE_ITO,
    SERIES_COLOURS,
    THEMES,
    Chart,
    ChartStyle,
)

__all__ = [
    "CHART_KINDS",
    "CascadeCurve",
    "Chart",
    "ChartInputError",
    "ChartInputs",
    "ChartStyle",
    "DPI",
    "EpsSeries",
    "K_COLOURS",
    "LINESTYLES",
    "LLRRegime",
    "MARKERS",
    "MAX_SAMPLE_PATHS",
    "MAX_SIZE",
    "MIN_SIZE",
    "OKABE_ITO",
    "ObjectiveCurve",
    "PARTICIPATION_KAPPA",
    "RecursionPanel",
    "ReportsCurve",
    "SERIES_COLOURS",
    "SmoothRRIllustration",
    "SurvivalSeries",
    "THEMES",
    "cascade_probability_chart",
    "chart_from",
    "llr_paths_chart",
    "llr_recursion_chart",
    "mistakes_chart",
    "platform_objective_chart",
    "precascade_reports_chart",
    "smooth_rr_chart",
    "stopping_time_chart",
    "survival_chart",
    "threshold_schematic_chart",
]
