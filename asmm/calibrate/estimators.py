"""Estimators of sigma, and the helpers every estimator shares: pure functions over arrays,
no I/O.

Units (docs/design.md): prices in quote currency, exchange times in epoch milliseconds
(int64) as :mod:`asmm.data.readers` delivers them, durations in seconds, ``sigma`` in
price/sqrt(s).

Everything works on *sufficient statistics* that add up across days (:class:`SigmaStats`;
:class:`asmm.calibrate.intensity.ReachStats` for A and k), so a calibration reads one day
at a time and its memory does not grow with the number of days. Collector gaps are
intervals (:func:`merge_intervals`); a usable book state is one that is not crossed
(:func:`valid_states`); quotes far from the trades around them are left out
(:func:`implausible_states`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from asmm.core.errors import EstimationError

# --------------------------------------------------------------------------- intervals


def merge_intervals(intervals: np.ndarray) -> np.ndarray:
    """Union of ``[start, end)`` intervals, shape (n, 2) -> (m, 2), sorted and disjoint."""
    iv = np.asarray(intervals, dtype=np.float64).reshape(-1, 2)
    iv = iv[iv[:, 1] > iv[:, 0]]
    if iv.shape[0] == 0:
        return iv
    iv = iv[np.argsort(iv[:, 0], kind="stable")]
    ends = np.maximum.accumulate(iv[:, 1])
    new = np.ones(iv.shape[0], dtype=bool)
    new[1:] = iv[1:, 0] > ends[:-1]
    starts = iv[new, 0]
    group = np.cumsum(new) - 1
    out_end = np.zeros(starts.size)
    np.maximum.at(out_end, group, ends)
    return np.stack([starts, out_end], axis=1)


def overlap_seconds(lo: np.ndarray, hi: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """Seconds of each interval ``[lo_i, hi_i)`` covered by the disjoint sorted ``gaps``."""
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    out = np.zeros(lo.shape)
    for s, e in gaps:
        out += np.clip(np.minimum(hi, e) - np.maximum(lo, s), 0.0, None)
    return out


def in_intervals(t: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """Which times (s) fall in one of the disjoint sorted ``[start, end)`` ``gaps``."""
    t = np.asarray(t, dtype=np.float64)
    if gaps.shape[0] == 0:
        return np.zeros(t.shape, dtype=bool)
    i = np.searchsorted(gaps[:, 0], t, side="right") - 1
    return (i >= 0) & (t < gaps[np.maximum(i, 0), 1])


# --------------------------------------------------------------------------- book states


def valid_states(bid: np.ndarray, ask: np.ndarray) -> np.ndarray:
    """BBO states an estimator may use: finite, positive, neither crossed nor locked."""
    return np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > bid)


# --------------------------------------------------------------------------- outliers


def robust_sigma(t_ms: np.ndarray, mid: np.ndarray, ok: np.ndarray, start: float, end: float,
                 dt: float = 60.0) -> float:
    """A scale of the mid's moves that a few bad quotes cannot move, price/sqrt(s).

    The interquartile range of the mid's increments on a ``dt``-second grid (``start`` to
    ``end``, epoch s; states as in :func:`sigma_stats`), over 1.349 (the IQR of a unit
    normal) and ``sqrt(dt)``. A burst of bad quotes shorter than ``dt`` touches two of the
    day's 1,440 increments and leaves the quartiles where they were. 0 without states, with
    fewer than two usable increments, or when the mid sits still through most of them.
    """
    if t_ms.size == 0:
        return 0.0
    g = start + dt * np.arange(int(np.floor((end - start) / dt)) + 1)
    s = np.searchsorted(t_ms, g * 1000.0, side="right") - 1
    good = (s >= 0) & ok[np.maximum(s, 0)]
    r = np.diff(mid[np.maximum(s, 0)])[good[1:] & good[:-1]]
    if r.size < 2:
        return 0.0
    q25, q75 = np.percentile(r, [25, 75])
    return float((q75 - q25) / 1.349 / math.sqrt(dt))


def implausible_states(t_ms: np.ndarray, mid: np.ndarray, trade_t_ms: np.ndarray,
                       trade_price: np.ndarray, scale: float, z: float,
                       floor: float) -> np.ndarray:
    """BBO states whose mid lies implausibly far from the trades around it (bool, shape (n,)).

    ``t_ms``/``mid``: the states (time-ordered); ``trade_t_ms``/``trade_price``: every trade,
    both sides, time-ordered. The trades around state ``i`` are the last one at or before it
    and the first one after it (one at the edges of the tape). The state is implausible when
    its mid lies outside the range of those two prices by more than

        floor * price  +  z * scale * sqrt(seconds between those two trades)

    ``scale`` in price/sqrt(s) (:func:`robust_sigma`), ``floor`` a fraction of the price.

    Why this rule: trades are executions, so the prints before and after a quote bracket
    where the market really was. A genuine move, however fast, is confirmed by the trades
    after it; a fat-fingered or mis-scaled quote, or a jump that reverts before anyone
    trades at it, is not. The allowance grows like a diffusion over the unconfirmed time
    (a quiet stretch without trades may drift), and ``z`` of 20 robust sigmas is far beyond
    what a Brownian path strays from its endpoints (probability ``exp(-2 z^2)``), so only
    quotes no market would have shown are caught. The mid rather than each side: a genuine
    wide book stays centred on the trades, while one absurd side (ask 10x the price) still
    moves the mid by half of it.
    """
    out = np.zeros(t_ms.size, dtype=bool)
    m = trade_t_ms.size
    if m == 0 or t_ms.size == 0:
        return out
    j = np.searchsorted(trade_t_ms, t_ms, side="right")  # the first trade after each state
    before, after = np.maximum(j - 1, 0), np.minimum(j, m - 1)
    pb, pa = trade_price[before], trade_price[after]
    lo, hi = np.minimum(pb, pa), np.maximum(pb, pa)
    gap = (np.maximum(trade_t_ms[after], t_ms) - np.minimum(trade_t_ms[before], t_ms)) / 1000.0
    allowance = floor * lo + z * scale * np.sqrt(gap)
    return np.maximum(lo - mid, mid - hi) > allowance


# --------------------------------------------------------------------------- sigma


@dataclass(frozen=True)
class SigmaStats:
    """Sums over mid increments on a regular grid of ``dt`` seconds (price units)."""

    dt: float
    n: int = 0
    sum_sq: float = 0.0
    sum_4: float = 0.0
    sum_lag1: float = 0.0  # sum of r_i r_{i+1} over adjacent valid pairs, a noise indicator
    n_lag1: int = 0
    # Over the same pairs, c_i = r_i^2 + 2 r_i r_{i+1} (the noise-corrected square) and c_i^2.
    sum_c: float = 0.0
    sum_c2: float = 0.0

    def __add__(self, other: SigmaStats) -> SigmaStats:
        if other.dt != self.dt:
            raise ValueError("cannot add sigma statistics on different grids")
        return SigmaStats(self.dt, self.n + other.n, self.sum_sq + other.sum_sq,
                          self.sum_4 + other.sum_4, self.sum_lag1 + other.sum_lag1,
                          self.n_lag1 + other.n_lag1, self.sum_c + other.sum_c,
                          self.sum_c2 + other.sum_c2)


def sigma_stats(t_ms: np.ndarray, mid: np.ndarray, ok: np.ndarray, start: float, end: float,
                dt: float, gaps: np.ndarray, max_silence: float = np.inf) -> SigmaStats:
    """Mid increments on the grid ``start, start + dt, ...`` (< ``end``), epoch seconds.

    The mid at a grid time is the last BBO state at or before it (``t_ms``, ``mid``,
    ``ok`` = usable state; arrays of one length, ordered by time). An increment is left out
    when either end has no usable state (none yet, crossed or locked), when it touches a
    collector gap (disjoint sorted ``gaps``, seconds), or when the state at its end is older
    than ``max_silence`` seconds (an unrecorded outage looks like a frozen book).
    """
    n_grid = int(np.floor((end - start) / dt + 1e-9)) + 1
    g = start + dt * np.arange(n_grid)
    g = g[g <= end]
    s = np.searchsorted(t_ms, g * 1000.0, side="right") - 1
    has = s >= 0
    si = np.maximum(s, 0)
    good = has & ok[si] & (g * 1000.0 - t_ms[si] <= max_silence * 1000.0)
    m = mid[si]
    r = np.diff(m)
    keep = good[1:] & good[:-1]
    if gaps.shape[0]:
        keep &= overlap_seconds(g[:-1], g[1:], gaps) == 0.0
        keep &= ~in_intervals(g[1:], gaps) & ~in_intervals(g[:-1], gaps)
    rk = np.where(keep, r, 0.0)
    pair = keep[1:] & keep[:-1]
    c = np.where(pair, rk[:-1] * rk[:-1] + 2.0 * rk[:-1] * rk[1:], 0.0)
    return SigmaStats(dt, int(np.count_nonzero(keep)), float(np.sum(rk * rk)),
                      float(np.sum(rk ** 4)), float(np.sum(rk[1:] * rk[:-1] * pair)),
                      int(np.count_nonzero(pair)), float(np.sum(c)), float(np.sum(c * c)))


@dataclass(frozen=True)
class SigmaEstimate:
    sigma: float     # price / sqrt(s), the estimate used
    se: float        # standard error of sigma
    n: int           # increments used
    lag1_corr: float  # first-order autocorrelation of increments (noise if clearly < 0)
    dt: float        # s, the grid
    sigma_raw: float = math.nan   # plain realised variance, before any noise correction
    se_raw: float = math.nan
    noise_corrected: bool = False  # sigma is the autocovariance-corrected one (whose error is
                                   # about sqrt(3) times the plain one's: the price of the fix)


# A lag-1 autocorrelation below -Z / sqrt(n) is "significantly negative" (one-sided 2.5 %):
# under no noise, the sample autocorrelation of n increments has sd 1 / sqrt(n).
NOISE_Z = 2.0


def _sigma_from(sum_x: float, sum_x2: float, n: int, dt: float) -> tuple[float, float]:
    """sigma and its standard error from ``n`` per-increment variance terms ``x`` (their sum
    and sum of squares): ``sigma^2 = mean(x) / dt``, the error by the sample variance of
    ``x`` (robust to fat tails) and the delta method ``se(sigma) = se(sigma^2) / 2 sigma``."""
    mean = sum_x / n
    var_x = max(sum_x2 / n - mean * mean, 0.0)
    sigma = math.sqrt(mean / dt)
    return sigma, math.sqrt(var_x / n) / dt / (2 * sigma)


def estimate_sigma(st: SigmaStats, noise_z: float = NOISE_Z) -> SigmaEstimate:
    """Realised variance per second and its standard error, corrected for microstructure
    noise when the data show it.

    Plain: ``sum r^2 / (n dt)``. Rounding the mid to the tick, and the bid-ask bounce, add an
    independent error ``e_t`` to each observed mid, so ``E[r^2] = sigma^2 dt + 2 var(e)``
    and ``cov(r_t, r_{t+1}) = -var(e)``: the autocovariance-corrected
    ``sum (r_i^2 + 2 r_i r_{i+1}) / (n dt)`` removes the bias (Zhou 1996). It is used when
    the lag-1 autocorrelation is significantly negative (below ``-noise_z / sqrt(n)``); at
    sigma 3 $/sqrt(s) with a 1 $ tick the plain one is about 0.9 % high. Both are reported.
    """
    if st.n < 2:
        raise EstimationError("no usable mid increments (empty day, all gaps or crossed quotes)")
    if st.sum_sq <= 0:
        raise EstimationError(f"the mid never moved over {st.n} increments; sigma would be 0")
    raw, raw_se = _sigma_from(st.sum_sq, st.sum_4, st.n, st.dt)
    mean2 = st.sum_sq / st.n
    lag1 = (st.sum_lag1 / st.n_lag1) / mean2 if st.n_lag1 else float("nan")
    noisy = st.n_lag1 > 1 and lag1 < -noise_z / math.sqrt(st.n_lag1) and st.sum_c > 0
    if noisy:
        sigma, se = _sigma_from(st.sum_c, st.sum_c2, st.n_lag1, st.dt)
        return SigmaEstimate(sigma, se, st.n, lag1, st.dt, raw, raw_se, True)
    return SigmaEstimate(raw, raw_se, st.n, lag1, st.dt, raw, raw_se, False)
