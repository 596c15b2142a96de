"""Published numbers the lab is held to (docs/dpsl-model.md §6): the paper's tables, as data.

`reproduce` prints them beside ours; the tests hold the closed forms in `theory` to them. One copy,
so a correction to the spec is made in one place.
"""

from __future__ import annotations

import math

# §6.1, binary signals: by p, (eps_3 .. eps_7, P(correct cascade) at the top of the k-segment for
# k = 3 .. 6, the non-private P(correct cascade)).
BREAKPOINTS = {
    0.55: ([1.1020, 0.6954, 0.5125, 0.4068, 0.3376], [0.5747, 0.5665, 0.5624, 0.5599], 0.5990),
    0.70: ([1.1576, 0.7325, 0.5404, 0.4291, 0.3562], [0.7809, 0.7558, 0.7425, 0.7343], 0.8448),
    0.90: ([1.4663, 0.9403, 0.6968, 0.5544, 0.4607], [0.9643, 0.9493, 0.9397, 0.9332], 0.9878),
}

# §6.1 spot values: (p, eps, cascade threshold k, P(correct cascade)).
CASCADE_SPOTS = [
    (0.7, 0.5, 5, 0.7277),
    (0.7, 1, 3, 0.7544),
    (0.7, 1.5, 2, 0.7387),
    (0.7, 2, 2, 0.7788),
    (0.7, 3, 2, 0.8201),
    (0.7, 5, 2, 0.8415),
    (0.9, 0.5, 6, 0.9154),
    (0.9, 1, 3, 0.9112),
    (0.9, 1.5, 2, 0.9039),
    (0.9, 3, 2, 0.9750),
    (0.55, 1, 3, 0.5689),
    (0.55, 1.5, 2, 0.5633),
    (0.55, 3, 2, 0.5898),
]

# §6.2, binary signals: expected pre-cascade reports E[tau] by p, at EXPECTED_REPORTS_EPS, and the
# non-private value.
EXPECTED_REPORTS_EPS = (0.25, 0.5, 1, 1.5, 2, 3)
EXPECTED_REPORTS = {
    0.7: ([76.0, 23.24, 8.26, 3.76, 3.66, 3.54], 3.448),
    0.9: ([100.5, 25.44, 6.67, 3.18, 2.92, 2.62], 2.439),
    0.55: ([80.7, 24.88, 8.95, 3.98, 3.98, 3.97], 3.960),
}

# §6.5: (l_50, l_100, l_200) of the all-positive-reports recursion from l_1 = 6, A = 1/(1+e^eps), by
# sigma and eps (None: non-private); and l_200 of its approximation at eps = 1.
APPENDIX_RECURSION = {
    1.0: {
        0.1: (10.55, 14.05, 19.29),
        0.5: (9.39, 11.16, 13.29),
        1.0: (7.77, 8.66, 9.72),
        None: (6.71, 7.07, 7.48),
    },
    math.sqrt(2): {
        0.1: (8.90, 11.06, 14.20),
        0.5: (6.98, 7.64, 8.53),
        1.0: (6.19, 6.36, 6.62),
        None: (6.01, 6.02, 6.04),
    },
}
APPENDIX_APPROXIMATION = {1.0: 9.645, math.sqrt(2): 6.615}
