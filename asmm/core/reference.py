"""The price quotes centre on: the mid, or the microprice (Stoikov 2018) — the mid plus the
expected move of the book's imbalance bucket, as the calibrator estimated it
(:mod:`asmm.calibrate.microprice`). Prices in quote currency, sizes in coin.

:func:`adjustment` is the one implementation: numba-compiled, so the backtest kernel
(:mod:`asmm.sim.decision`) and the Freqtrade strategy (through :func:`microprice`) move
their quotes by the same amount for the same book.
"""

from __future__ import annotations

import numba
import numpy as np


def imbalance(bid_size: np.ndarray, ask_size: np.ndarray) -> np.ndarray:
    """``bid_size / (bid_size + ask_size)`` in [0, 1]; NaN where both are zero."""
    total = bid_size + ask_size
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, bid_size / total, np.nan)


def bucket_of(imb: np.ndarray, buckets: int) -> np.ndarray:
    """Bucket index 0 .. buckets-1 of each imbalance (1.0 falls in the last bucket)."""
    return np.minimum((np.asarray(imb) * buckets).astype(np.int64), buckets - 1)


@numba.njit(cache=True)
def adjustment(bid_size, ask_size, adj, buckets):
    """The microprice's move from the mid (price): ``adj[b]`` for the bucket ``b`` of
    ``buckets`` equal buckets of [0, 1] the imbalance ``bid_size / (bid_size + ask_size)``
    falls in (1.0 in the last, as :func:`bucket_of`); 0 when the sizes say nothing (both
    zero, negative or not finite) or there is no table (``buckets`` 0)."""
    total = bid_size + ask_size
    if buckets <= 0 or not (bid_size >= 0.0 and ask_size >= 0.0 and total > 0.0) \
            or total == np.inf:
        return 0.0
    b = int(bid_size / total * buckets)
    return adj[min(b, buckets - 1)]


def microprice(mid: float, bid_size: float, ask_size: float, table) -> float:
    """The reference price: ``mid`` plus the :func:`adjustment` of the book's imbalance
    (``table``: the parameter file's ``microprice`` block, or an estimate with an
    ``adjustment`` array)."""
    adj = table["adjustment"] if isinstance(table, dict) else table.adjustment
    adj = np.asarray(adj, dtype=np.float64)
    return mid + float(adjustment(float(bid_size), float(ask_size), adj, adj.size))
