"""Markouts: where the mid went after each fill — adverse selection, measured.

A maker is filled most often just before the market moves against it (the order that hit
it knew something); spread captured at the fill can be more than lost by the next seconds.
The markout of a fill at horizon ``h`` is the mid ``h`` seconds later against the fill
price, signed so that a negative number is the market moving against us:

    markout_h = side * (mid(t + h) - price) / price * 1e4     (bp)

with ``side`` +1 for a buy, -1 for a sell. One rule serves the backtester and the PnL
report of live or paper fills, so both measure the same thing: :func:`markouts` over arrays
of fills, and :func:`add_markouts`, its form for one fill, which the numba kernel calls as
each fill happens, so that a grid run keeps sums instead of every fill
(tests/test_backtest_rules.py checks that the two agree).
"""

from __future__ import annotations

import numba
import numpy as np

HORIZONS = (1.0, 10.0, 60.0)  # seconds: the JSON keys markout_1s_bp, markout_10s_bp, ...


def markout_bp(side, price, later_mid):
    """The markout (bp) of a fill on ``side`` at ``price`` against the mid ``later_mid``:
    scalars or arrays."""
    return side * (later_mid - price) / price * 1e4


_markout_bp = numba.njit(cache=True, inline="always")(markout_bp)


@numba.njit(cache=True)
def add_markouts(sums, side, price, t, mid_t, mid, horizons, cursor):
    """Add one fill's markouts to ``sums`` (``asmm.sim.records.MARKOUT`` records, one per
    horizon): the fill at ``t`` (s) on ``side`` at ``price``, against the step function
    ``mid_t``, ``mid`` (as :func:`markouts`). A horizon the data does not cover adds
    nothing. ``cursor`` (one index into ``mid_t`` per horizon) is where the last lookup
    ended: fills come in time order, so each lookup walks a few steps from there."""
    n = mid_t.size
    for j in range(horizons.size):
        at = t + horizons[j]
        if n == 0 or at < mid_t[0] or at > mid_t[n - 1]:
            continue
        i = cursor[j]
        while i + 1 < n and mid_t[i + 1] <= at:
            i += 1
        while mid_t[i] > at:  # stops at 0 at the latest: mid_t[0] <= at
            i -= 1
        cursor[j] = i
        v = _markout_bp(side, price, mid[i])
        if v == v:
            s = sums[j]
            s.sum_bp += v
            s.n += 1


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
        out[:, j] = np.where(known, markout_bp(side, price, later), np.nan)
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
