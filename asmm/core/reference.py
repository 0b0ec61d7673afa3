"""The price quotes centre on: the mid, or the microprice (Stoikov 2018) — the mid plus the
expected move of the book's imbalance bucket, as the calibrator estimated it
(:mod:`asmm.calibrate.microprice`). Prices in quote currency, sizes in coin."""

from __future__ import annotations

import math

import numpy as np


def imbalance(bid_size: np.ndarray, ask_size: np.ndarray) -> np.ndarray:
    """``bid_size / (bid_size + ask_size)`` in [0, 1]; NaN where both are zero."""
    total = bid_size + ask_size
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, bid_size / total, np.nan)


def bucket_of(imb: np.ndarray, buckets: int) -> np.ndarray:
    """Bucket index 0 .. buckets-1 of each imbalance (1.0 falls in the last bucket)."""
    return np.minimum((np.asarray(imb) * buckets).astype(np.int64), buckets - 1)


def microprice(mid: float, bid_size: float, ask_size: float, table) -> float:
    """The reference price: ``mid`` plus the adjustment of the book's imbalance bucket
    (``table``: the parameter file's ``microprice`` block, or an estimate with an
    ``adjustment`` array). The mid itself when the sizes say nothing (both zero or not
    finite)."""
    adj = table["adjustment"] if isinstance(table, dict) else table.adjustment
    imb = imbalance(np.float64(bid_size), np.float64(ask_size))
    if not math.isfinite(float(imb)):
        return mid
    return mid + float(adj[int(bucket_of(imb, len(adj)))])
