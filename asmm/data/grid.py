"""The price grid (tick) of recorded data, shared by the calibrator and the backtester."""

from __future__ import annotations

import numpy as np

from asmm.core.errors import DataError


def infer_tick(prices: np.ndarray) -> float:
    """The price grid: the most common gap between neighbouring distinct prices.

    The mode rather than the minimum, so a stray off-grid print does not halve the tick.
    Rounded to 10 significant digits to undo float noise (0.1 + 0.2).
    """
    p = np.unique(np.asarray(prices, dtype=np.float64))
    d = np.diff(p)
    d = d[d > 0]
    if d.size == 0:
        raise DataError("cannot infer the tick: fewer than two distinct prices")
    mag = 10.0 ** (np.floor(np.log10(d)) - 9)
    d = np.round(d / mag) * mag
    vals, counts = np.unique(d, return_counts=True)
    return float(vals[np.argmax(counts)])
