"""Markouts: where the mid went after each fill — adverse selection, measured.

A maker is filled most often just before the market moves against it (the order that hit
it knew something); spread captured at the fill can be more than lost by the next seconds.
The markout of a fill at horizon ``h`` is the mid ``h`` seconds later against the fill
price, signed so that a negative number is the market moving against us:

    markout_h = side * (mid(t + h) - price) / price * 1e4     (bp)

with ``side`` +1 for a buy, -1 for a sell. One function serves the backtester and the PnL
report of live or paper fills, so both measure the same thing.
"""

from __future__ import annotations

import numpy as np

HORIZONS = (1.0, 10.0, 60.0)  # seconds: the JSON keys markout_1s_bp, markout_10s_bp, ...


def markouts(fill_t: np.ndarray, fill_price: np.ndarray, fill_side: np.ndarray,
             mid_t: np.ndarray, mid: np.ndarray, horizons=HORIZONS) -> np.ndarray:
    """Markouts in bp, shape ``(n_fills, len(horizons))``.

    ``fill_t`` and ``mid_t`` in epoch seconds (exchange time), ``horizons`` in seconds;
    ``mid`` is the mid in force from each ``mid_t`` on (ordered by time). A horizon past the
    last mid is NaN: the data does not say.
    """
    fill_t = np.asarray(fill_t, dtype=np.float64)
    price = np.asarray(fill_price, dtype=np.float64)
    side = np.asarray(fill_side, dtype=np.float64)
    out = np.full((fill_t.size, len(horizons)), np.nan)
    if fill_t.size == 0 or mid_t.size == 0:
        return out
    for j, h in enumerate(horizons):
        at = fill_t + h
        i = np.searchsorted(mid_t, at, side="right") - 1
        known = (i >= 0) & (at <= mid_t[-1])
        later = mid[np.maximum(i, 0)]
        out[:, j] = np.where(known, side * (later - price) / price * 1e4, np.nan)
    return out


def mean_markouts(m: np.ndarray, horizons=HORIZONS) -> dict[str, float | None]:
    """``{"markout_1s_bp": mean, ...}`` over the fills whose horizon the data covers
    (None when none does)."""
    out = {}
    for j, h in enumerate(horizons):
        col = m[:, j] if m.ndim == 2 and m.shape[0] else np.zeros(0)
        col = col[np.isfinite(col)]
        out[f"markout_{h:g}s_bp"] = float(col.mean()) if col.size else None
    return out
