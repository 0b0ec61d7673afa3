"""The microprice (Stoikov 2018): the mid adjusted by what the book's imbalance says of the
next moves — a reference price that knows about adverse selection.

A bid that holds most of the touch's volume is more likely to be the side left standing, so
the mid tends to move up: quoting around the mid then sells too cheap and buys too dear,
exactly the fills a market maker regrets. From the recorded book, per bucket of the
imbalance ``I = bid_size / (bid_size + ask_size)`` at a one-tick spread, the mean change of
the mid over the next ``horizon`` seconds estimates ``G(I)``; the microprice is
``mid + G(I)``. Buckets are symmetrised (``G(I) = -G(1 - I)``, as Stoikov does by adding
the mirrored book): the book has no preferred side, and the pooled estimate halves the noise.

Units: prices and adjustments in quote currency, times in epoch milliseconds (input) and
seconds (horizon), sizes in coin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asmm.core.errors import EstimationError
from asmm.core.reference import bucket_of, imbalance


@dataclass(frozen=True)
class Microprice:
    """``adjustment[b]`` (price) is added to the mid when the imbalance falls in bucket
    ``b`` of ``buckets`` equal buckets of [0, 1]; ``se`` its standard error; ``n`` the
    samples behind it (each mirrored sample counts in two buckets)."""

    horizon: float          # s
    buckets: int
    adjustment: np.ndarray  # price, per bucket
    se: np.ndarray
    n: np.ndarray

    def as_dict(self) -> dict:
        return {"horizon_seconds": self.horizon, "buckets": self.buckets,
                "adjustment": [float(x) for x in self.adjustment],
                "se": [float(x) for x in self.se], "n": [int(x) for x in self.n],
                "spread_ticks": 1}


@dataclass(frozen=True)
class MicropriceStats:
    """Per imbalance bucket (mirrored samples included): count, sum and sum of squares of
    the mid's change over the horizon (price). Adds across days."""

    horizon: float
    sample_every: float
    n: np.ndarray
    s1: np.ndarray
    s2: np.ndarray

    def __add__(self, other: MicropriceStats) -> MicropriceStats:
        return MicropriceStats(self.horizon, self.sample_every, self.n + other.n,
                               self.s1 + other.s1, self.s2 + other.s2)


def microprice_stats(t_ms: np.ndarray, bid: np.ndarray, ask: np.ndarray,
                     bid_size: np.ndarray, ask_size: np.ndarray, ok: np.ndarray, tick: float,
                     *, horizon: float = 10.0, sample_every: float = 1.0,
                     buckets: int = 10, start: float | None = None,
                     end: float | None = None) -> MicropriceStats:
    """The sums behind :func:`estimate_microprice` for one stretch of BBO states (arrays of
    one length, ordered by ``t_ms``; ``ok`` the usable ones).

    The book is sampled every ``sample_every`` seconds (the state in force then) from
    ``start`` to before ``end`` (epoch s; default the first and last state), so adjacent
    stretches sample disjoint times; a sample counts when its state is usable with a
    one-tick spread and the state ``horizon`` seconds later is usable too (the arrays must
    reach that far).
    """
    empty = np.zeros(buckets)
    first = t_ms[0] if start is None else max(start * 1000.0, t_ms[0]) if t_ms.size else 0.0
    last = t_ms[-1] - horizon * 1000.0 if t_ms.size else 0.0
    if end is not None:
        last = min(last, end * 1000.0)
    if t_ms.size < 2 or last <= first:
        return MicropriceStats(horizon, sample_every, empty.astype(np.int64), empty, empty)
    grid = np.arange(first, last, sample_every * 1000.0)
    now = np.searchsorted(t_ms, grid, side="right") - 1
    later = np.searchsorted(t_ms, grid + horizon * 1000.0, side="right") - 1
    one_tick = np.abs((ask[now] - bid[now]) - tick) <= 1e-9 * max(tick, 1.0)
    imb = imbalance(bid_size[now], ask_size[now])
    use = ok[now] & ok[later] & one_tick & np.isfinite(imb)
    mid = 0.5 * (bid + ask)
    dm = (mid[later] - mid[now])[use]
    b = bucket_of(imb[use], buckets)
    # Mirror: the book seen from the other side has imbalance 1 - I and the opposite move.
    b_all = np.concatenate([b, buckets - 1 - b])
    dm_all = np.concatenate([dm, -dm])
    return MicropriceStats(horizon, sample_every, np.bincount(b_all, minlength=buckets),
                           np.bincount(b_all, weights=dm_all, minlength=buckets),
                           np.bincount(b_all, weights=dm_all * dm_all, minlength=buckets))


def estimate_from(st: MicropriceStats, min_samples: int = 30) -> Microprice:
    """Bucket means and errors. Samples ``horizon`` apart overlap when ``sample_every <
    horizon``, so a bucket's error uses the number of non-overlapping windows,
    ``n * sample_every / horizon``, not ``n``. Raises :class:`EstimationError` when a bucket
    has fewer than ``min_samples`` samples."""
    n = st.n
    if n.min() < min_samples:
        raise EstimationError(f"the microprice needs {min_samples} samples per imbalance "
                              f"bucket; the fewest has {int(n.min())}: use more data")
    mean = st.s1 / n
    var = np.maximum(st.s2 / n - mean * mean, 0.0)
    effective = np.maximum(n * min(st.sample_every / st.horizon, 1.0), 1.0)
    return Microprice(st.horizon, n.size, mean, np.sqrt(var / effective), n)


def estimate_microprice(t_ms: np.ndarray, bid: np.ndarray, ask: np.ndarray,
                        bid_size: np.ndarray, ask_size: np.ndarray, ok: np.ndarray,
                        tick: float, *, horizon: float = 10.0, sample_every: float = 1.0,
                        buckets: int = 10, min_samples: int = 30) -> Microprice:
    """``G`` per imbalance bucket from one stretch of BBO states: :func:`microprice_stats`
    then :func:`estimate_from`."""
    if t_ms.size < 2:
        raise EstimationError("too few book states for the microprice")
    return estimate_from(microprice_stats(t_ms, bid, ask, bid_size, ask_size, ok, tick,
                                          horizon=horizon, sample_every=sample_every,
                                          buckets=buckets), min_samples)
