"""Estimators of A and k per side from the sweeps of the tape: pure functions over arrays,
no I/O.

Units (docs/design.md): prices and depths in quote currency, exchange times in epoch
milliseconds (int64), durations in seconds, ``A`` in 1/s, ``k`` in 1/price.

The intensity model (the one :mod:`asmm.data.synth` simulates, and the one the quote models
assume): per side, market orders arrive as a Poisson process of rate ``A``; each reaches a
depth ``delta ~ Exponential(k)`` beyond the mid it saw, so orders reaching depth ``>= delta``
arrive at ``A exp(-k delta)``. What the tape shows of an order is its *sweep* (fills with one
exchange time and aggressor side) and the deepest price it printed, on the tick grid. With
``u`` the distance from the mid to the touch and ``tau`` the tick, the deepest level ``j``
(0 = the touch) of a sweep has

    P(j = 0)  = 1 - exp(-k (u + tau))          (includes orders shorter than the touch,
                                                 which still print at the touch)
    P(j >= J) = exp(-k (u + J tau)),  J >= 1.

The likelihood of the marked Poisson process factors into ``A^N exp(-A T)`` (counts) and the
product of the level probabilities (marks), so the maximum-likelihood ``A`` is ``N / T`` and
``k`` maximises the interval-censored exponential likelihood above, which is concave in
``k`` (a unique root of the score).

That likelihood holds on a tape printed by that one convention (the last print rounded
down, no extra touch-only share); :func:`estimate_k` and :func:`fill_rate_curve` leave the
touch out and hold on any.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from asmm.calibrate.estimators import in_intervals, overlap_seconds
from asmm.core.errors import EstimationError

SIDES = ("bid", "ask")


# --------------------------------------------------------------------------- sweeps


@dataclass(frozen=True)
class Sweeps:
    """Aggressive orders as seen on the tape, one row per (exchange time, side).

    ``t`` (ms), ``side`` (+1 buy aggressor = ask side, -1 sell aggressor = bid side),
    ``deepest`` price reached (highest for buys, lowest for sells), ``fills``.
    """

    t: np.ndarray
    side: np.ndarray
    deepest: np.ndarray
    fills: np.ndarray


def group_sweeps(t_ms: np.ndarray, price: np.ndarray, side: np.ndarray) -> Sweeps:
    """Fills with one exchange time and side form one sweep. Input ordered by time."""
    t_ms = np.asarray(t_ms)
    if t_ms.size == 0:
        e = np.zeros(0)
        return Sweeps(e.astype(np.int64), e.astype(np.int8), e, e.astype(np.int64))
    order = np.lexsort((side, t_ms))
    t, p, s = t_ms[order], price[order], side[order]
    start = np.ones(t.size, dtype=bool)
    start[1:] = (t[1:] != t[:-1]) | (s[1:] != s[:-1])
    idx = np.flatnonzero(start)
    # Depth is measured outward: the highest buy price, the lowest sell price.
    outward = np.where(s > 0, p, -p)
    deepest_out = np.maximum.reduceat(outward, idx)
    ss = s[idx]
    return Sweeps(t[idx], ss, np.where(ss > 0, deepest_out, -deepest_out),
                  np.diff(np.append(idx, t.size)))


@dataclass(frozen=True)
class ReachStats:
    """Sufficient statistics of one side's sweeps for (A, k).

    ``hist`` rows are (spread in ticks, deepest level j, count); ``exposure`` seconds of
    usable book; ``inside`` sweeps whose deepest print was inside the recorded touch
    (counted at the touch; a book change within the block the tape cannot show).
    """

    tick: float
    hist: np.ndarray
    exposure: float = 0.0
    fills: int = 0
    inside: int = 0
    dropped: int = 0  # sweeps with no usable book before them (crossed, gap, none yet)
    spreads: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (ticks, seconds)

    @property
    def n(self) -> int:
        return int(self.hist[:, 2].sum()) if self.hist.size else 0

    def __add__(self, other: ReachStats) -> ReachStats:
        if not math.isclose(self.tick, other.tick, rel_tol=1e-9):
            raise EstimationError(f"the tick changed between days ({self.tick} vs {other.tick});"
                                  " calibrate over a window with one tick")
        return ReachStats(self.tick, _merge_hist(np.concatenate([self.hist, other.hist])),
                          self.exposure + other.exposure, self.fills + other.fills,
                          self.inside + other.inside, self.dropped + other.dropped,
                          _merge_seconds(np.concatenate([self.spreads, other.spreads])))


def _merge_seconds(rows: np.ndarray) -> np.ndarray:
    """Rows (spread ticks, seconds) summed per spread."""
    rows = rows.reshape(-1, 2)
    if rows.shape[0] == 0:
        return rows
    spread = rows[:, 0].astype(np.int64)
    secs = np.bincount(spread, weights=rows[:, 1])
    have = np.flatnonzero(secs > 0)
    return np.column_stack([have, secs[have]]).astype(np.float64)


def _merge_hist(rows: np.ndarray) -> np.ndarray:
    rows = rows.reshape(-1, 3).astype(np.int64)
    if rows.shape[0] == 0:
        return rows
    # One int64 key per (spread, level), both >= 0 and far below 2**31: a 1-d unique is
    # several times faster than unique(axis=0).
    keys, inv = np.unique((rows[:, 0] << 32) | rows[:, 1], return_inverse=True)
    counts = np.bincount(inv.ravel(), weights=rows[:, 2]).astype(np.int64)
    return np.column_stack([keys >> 32, keys & 0xFFFFFFFF, counts])


def exposure_seconds(t_ms: np.ndarray, ok: np.ndarray, span_end_ms: float,
                     gaps: np.ndarray, max_silence: float = np.inf) -> float:
    """Seconds during which a usable BBO state was in force, outside ``gaps``.

    State ``i`` is in force on ``[t_i, t_{i+1})``; the last one until ``span_end_ms``. A
    state in force longer than ``max_silence`` counts only that long (see
    :func:`sigma_stats`).
    """
    if t_ms.size == 0:
        return 0.0
    lo = t_ms / 1000.0
    hi = np.append(t_ms[1:], max(span_end_ms, t_ms[-1])) / 1000.0
    hi = np.minimum(hi, lo + max_silence)
    dur = hi - lo
    if gaps.shape[0]:
        dur = dur - overlap_seconds(lo, hi, gaps)
    return float(np.sum(dur[ok]))


def spread_exposure(t_ms: np.ndarray, bid: np.ndarray, ask: np.ndarray, ok: np.ndarray,
                    tick: float, span_end_ms: float, gaps: np.ndarray,
                    max_silence: float = np.inf) -> np.ndarray:
    """Seconds of usable book per spread: rows (spread in ticks, seconds), as
    :func:`exposure_seconds` counts them. The fill rate of a quote ``J`` levels past the
    touch depends on how far the touch is from the mid, so the rate's fit needs this mix."""
    if t_ms.size == 0:
        return np.zeros((0, 2))
    lo = t_ms / 1000.0
    hi = np.minimum(np.append(t_ms[1:], max(span_end_ms, t_ms[-1])) / 1000.0, lo + max_silence)
    dur = hi - lo
    if gaps.shape[0]:
        dur = dur - overlap_seconds(lo, hi, gaps)
    spread = np.rint((ask[ok] - bid[ok]) / tick).astype(np.int64)
    secs = np.bincount(spread, weights=dur[ok])
    have = np.flatnonzero(secs > 0)
    return np.column_stack([have, secs[have]]).astype(np.float64)


@dataclass(frozen=True)
class FillRateCurve:
    """The rate at which sweeps reach each level, observed and fitted (1/s).

    Convention (written in the parameter file): a quote resting ``J`` levels past the touch
    is filled by the sweeps whose deepest print reached level ``J``; it sits
    ``delta_J = half-spread + J tick`` from the mid. ``A`` is the fitted curve's intercept,
    ``rate(delta) = A exp(-k delta)``, fitted through the levels past the touch; the touch's
    own rate (``observed[0]``) is reported beside it, since on real tapes most sweeps stop
    there whatever the law says.
    """

    A: float
    A_se: float
    levels: np.ndarray    # J = 0, 1, ...
    observed: np.ndarray  # R_J / T, 1/s
    fitted: np.ndarray    # A exp(-k delta_J) at the exposure's mean half-spread, 1/s


def fill_rate_curve(reach: np.ndarray, spreads: np.ndarray, k: KEstimate, tick: float
                    ) -> FillRateCurve:
    """``A`` from the reach counts ``R`` (:func:`reach_counts`), the seconds per spread
    (:func:`spread_exposure`) and ``k``: the expected count at level ``J0`` is
    ``A sum_s T_s exp(-k (u_s + J0 tick))`` (``u_s`` half of spread ``s``), so
    ``A = R_J0 / that sum``. Its error adds the count's (Poisson, ``1 / sqrt(R_J0)``
    relative) and k's through ``exp(k delta)`` (``delta se(k)`` relative, ``delta`` the mean
    distance of level ``J0``)."""
    T = float(spreads[:, 1].sum()) if spreads.size else 0.0
    if T <= 0:
        raise EstimationError("no usable time with a valid book")
    u = 0.5 * spreads[:, 0] * tick
    J0 = k.start_level
    weight = float(np.sum(spreads[:, 1] * np.exp(-k.k * (u + J0 * tick))))
    A = k.n / weight
    levels = np.arange(reach.size)
    u_mean = float(np.sum(spreads[:, 1] * u) / T)
    A_se = A * math.hypot(1.0 / math.sqrt(k.n), (u_mean + J0 * tick) * k.se)
    return FillRateCurve(A, A_se, levels, reach / T, A * np.exp(-k.k * (u_mean + levels * tick)))


def reach_stats(sw: Sweeps, t_ms: np.ndarray, bid: np.ndarray, ask: np.ndarray,
                ok: np.ndarray, tick: float, gaps: np.ndarray, exposure: float,
                max_silence: float = np.inf, spreads: np.ndarray | None = None
                ) -> dict[str, ReachStats]:
    """Per side, the deepest level each sweep reached beyond the touch it met.

    The book a sweep met is the last BBO state *strictly before* its exchange time (at equal
    time the trades come first, :mod:`asmm.data.readers`). Sweeps whose state is unusable
    (none yet, crossed or locked, older than ``max_silence``, or inside a gap) are counted
    in ``dropped`` and left out of both the count and the exposure. ``spreads``
    (:func:`spread_exposure`) is the same for both sides and kept with each.
    """
    i = np.searchsorted(t_ms, sw.t, side="left") - 1
    has = i >= 0
    ii = np.maximum(i, 0)
    use = has & ok[ii] & (sw.t - t_ms[ii] <= max_silence * 1000.0)
    if gaps.shape[0]:
        use &= ~in_intervals(sw.t / 1000.0, gaps)
    out = {}
    for name, sgn in (("bid", -1), ("ask", 1)):
        mine = sw.side == sgn
        sel = mine & use
        b, a, deep = bid[ii[sel]], ask[ii[sel]], sw.deepest[sel]
        touch = a if sgn > 0 else b
        j = np.rint(sgn * (deep - touch) / tick).astype(np.int64)
        inside = int(np.count_nonzero(j < 0))
        spread = np.rint((a - b) / tick).astype(np.int64)
        hist = _merge_hist(np.column_stack([spread, np.maximum(j, 0), np.ones_like(j)]))
        out[name] = ReachStats(tick, hist, exposure, int(sw.fills[sel].sum()), inside,
                               int(np.count_nonzero(mine & ~use)),
                               np.zeros((0, 2)) if spreads is None else spreads)
    return out


@dataclass(frozen=True)
class SideEstimate:
    A: float        # 1/s
    A_se: float
    k: float        # 1/price
    k_se: float
    sweeps: int
    beyond_touch: int  # sweeps that reached at least one level past the touch
    exposure: float    # seconds
    fills: int
    inside: int
    dropped: int
    # The grid estimate's checks and views (estimate_side_on_grid); NaN / empty otherwise.
    k_level2: float = math.nan      # k from level 2 on: a robustness check
    k_level2_se: float = math.nan
    k_full_tape: float = math.nan   # the full-tape likelihood's k (one tape convention)
    touch_rate: float = math.nan    # sweeps per second at the touch (R_0 / T)
    observed_rate: tuple[float, ...] = ()  # R_J / T, J = 0, 1, ..., 1/s
    fitted_rate: tuple[float, ...] = ()    # A exp(-k delta_J) at the mean half-spread

    def as_dict(self) -> dict:
        """For the file's diagnostics: the checks that could not be computed are null; a NaN
        anywhere else stays, so the calibrator refuses to write it."""
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
        for k in ("k_level2", "k_level2_se", "k_full_tape"):
            if not math.isfinite(out[k]):
                out[k] = None
        return out


def reach_counts(hist: np.ndarray) -> np.ndarray:
    """``R[J]``, J = 0, 1, ...: the sweeps whose deepest print reached level ``J`` past the
    touch or deeper (``R[0]`` is every sweep). ``hist`` rows: (spread ticks, deepest level
    j, count), as in :class:`ReachStats`."""
    if hist.size == 0:
        return np.zeros(1, dtype=np.int64)
    per_level = np.bincount(hist[:, 1], weights=hist[:, 2]).astype(np.int64)
    return per_level[::-1].cumsum()[::-1]


@dataclass(frozen=True)
class KEstimate:
    """``k`` (1/price) from how often a sweep goes one level deeper, past ``start_level``."""

    k: float
    se: float
    q: float          # P(reach level J + 1 | reached J) = exp(-k tick), pooled over J
    n: int            # sweeps that reached start_level (the information: n_1 for J0 = 1)
    start_level: int


def estimate_k(reach: np.ndarray, tick: float, start_level: int = 1) -> KEstimate:
    """Convention-free ``k`` from the reach counts ``R`` (:func:`reach_counts`).

    Under the exponential law, ``P(j >= J) = C exp(-k J tick)`` for every level ``J >= 1``,
    where the constant ``C`` absorbs everything a tape decides by convention: whether the
    last print rounds down or up to the grid, a share of sweeps that stop at the touch
    whatever their depth, a sub-tick offset of the reference mid. So
    ``P(j >= J+1 | j >= J) = q = exp(-k tick)`` whatever ``C``, and the touch (J = 0), which
    does not follow the law on real tapes, is left out. Given ``j >= J0``, ``j - J0`` is
    geometric with continuation probability ``q``; its maximum-likelihood estimate is

        q = sum_{J > J0} R_J / sum_{J >= J0} R_J,     k = -ln(q) / tick,

    with Fisher information ``n / (q (1 - q)^2)`` for ``n = R_J0`` sweeps, hence (delta
    method, ``dk/dq = -1 / (q tick)``) ``se(k) = (1 - q) / (tick sqrt(q n))``.

    Leaving the touch out costs precision, not accuracy. Per sweep past ``J0`` the
    information is ``tick^2 q / (1 - q)^2`` (98 % of the continuous law's ``1/k^2`` at
    ``k tick = 0.5``: the grid itself costs little), but the touch split (``j = 0`` against
    ``j >= 1``) that a full-tape likelihood also uses carries about as much again: with a
    one-tick spread at ``k tick = 0.5`` this estimate keeps about half the information. That
    information is only right on a tape that follows one convention; use more data instead.
    ``start_level > 1`` is a robustness check (levels near the touch may be shaped by it).
    """
    if start_level < 1:
        raise ValueError("start_level must be >= 1: the touch does not follow the law")
    n = int(reach[start_level]) if reach.size > start_level else 0
    if n == 0:
        raise EstimationError(f"no sweep reached level {start_level} past the touch, so k is "
                              "not identified; use more data")
    deeper = float(reach[start_level + 1:].sum())
    if deeper == 0:
        raise EstimationError(f"no sweep went past level {start_level}: k is not identified "
                              f"({n} sweeps reached it); use more data")
    q = deeper / (deeper + n)
    return KEstimate(-math.log(q) / tick, (1 - q) / (tick * math.sqrt(q * n)), q, n,
                     start_level)


def _score(k: float, u0: np.ndarray, c0: np.ndarray, u1: np.ndarray, c1: np.ndarray,
           tick: float) -> tuple[float, float]:
    """Score and observed information of the level log-likelihood at ``k``.

    ``u0``/``c0``: distance ``u + tick`` and counts of touch-only sweeps;
    ``u1``/``c1``: depth ``u + j tick`` and counts of sweeps with ``j >= 1``.
    """
    # Written in q = exp(-k u), 1 - q: the textbook form u / (e^(ku) - 1) is inf / inf once a
    # book is hundreds of ticks wide, where this one gives the limit, 0.
    q0, d0 = np.exp(-k * u0), -np.expm1(-k * u0)
    qt, dt = math.exp(-k * tick), -math.expm1(-k * tick)
    n1 = c1.sum()
    score = np.sum(c0 * u0 * q0 / d0) - np.sum(c1 * u1) + n1 * tick * qt / dt
    info = np.sum(c0 * u0 * u0 * q0 / (d0 * d0)) + n1 * tick * tick * qt / (dt * dt)
    return float(score), float(info)


def estimate_side(st: ReachStats, min_sweeps: int = 100) -> SideEstimate:
    """Maximum-likelihood ``A`` and ``k`` of one side, with standard errors.

    ``A = N / T`` with ``se = sqrt(N) / T`` (Poisson). ``k`` is the root of the score of the
    tick-grid likelihood in the module docstring; ``se = 1 / sqrt(observed information)``.
    Raises :class:`EstimationError` with fewer than ``min_sweeps`` sweeps, no exposure, or
    no sweep beyond the touch (then the likelihood keeps rising as ``k`` grows).
    """
    n = st.n
    if n < max(min_sweeps, 1):
        raise EstimationError(f"{n} usable sweeps (need at least {min_sweeps})")
    if st.exposure <= 0:
        raise EstimationError("no usable time with a valid book")
    h = st.hist
    u = 0.5 * h[:, 0] * st.tick
    j = h[:, 1]
    c = h[:, 2].astype(np.float64)
    at_touch = j == 0
    u0, c0 = u[at_touch] + st.tick, c[at_touch]
    u1, c1 = u[~at_touch] + j[~at_touch] * st.tick, c[~at_touch]
    if c1.sum() == 0:
        raise EstimationError("no sweep reached past the touch, so k is not identified "
                              "(the likelihood keeps rising as k grows)")

    def f(k):
        return _score(k, u0, c0, u1, c1, st.tick)[0]

    # The score falls monotonically from +inf (k -> 0) to -sum c1 u1 < 0 (k -> inf):
    # bracket by doubling from the moment estimate 1 / mean depth.
    lo = hi = 1.0 / (np.sum(c * (u + j * st.tick)) / n)
    while f(lo) < 0:
        lo /= 2
    while f(hi) > 0:
        hi *= 2
    k = brentq(f, lo, hi, xtol=1e-14, rtol=1e-12) if lo < hi else lo
    info = _score(k, u0, c0, u1, c1, st.tick)[1]
    A = n / st.exposure
    return SideEstimate(A, math.sqrt(n) / st.exposure, float(k), 1.0 / math.sqrt(info), n,
                        int(c1.sum()), st.exposure, st.fills, st.inside, st.dropped)


def estimate_side_on_grid(st: ReachStats, min_sweeps: int = 100) -> SideEstimate:
    """``A`` and ``k`` of one side that hold whatever the tape's convention: ``k`` from how
    often a sweep goes one level deeper past the touch (:func:`estimate_k`), ``A`` the
    intercept of the fill-rate curve on the price grid (:func:`fill_rate_curve`).

    Beside them: ``k`` from level 2 on (a robustness check), the full-tape likelihood's
    ``k`` (:func:`estimate_side`, right only on a tape printed by its one convention; NaN
    where it is not identified), the touch's own rate and the observed and fitted curves.
    Raises :class:`EstimationError` with fewer than ``min_sweeps`` sweeps, no exposure, or
    no sweep going past the first level.
    """
    n = st.n
    if n < max(min_sweeps, 1):
        raise EstimationError(f"{n} usable sweeps (need at least {min_sweeps})")
    spreads = st.spreads if st.spreads.size else None
    if spreads is None or st.exposure <= 0:
        raise EstimationError("no usable time with a valid book")
    reach = reach_counts(st.hist)
    k1 = estimate_k(reach, st.tick)
    curve = fill_rate_curve(reach, spreads, k1, st.tick)
    try:
        k2 = estimate_k(reach, st.tick, start_level=2)
    except EstimationError:
        k2 = KEstimate(math.nan, math.nan, math.nan, 0, 2)
    try:
        full = estimate_side(st, min_sweeps).k
    except EstimationError:
        full = math.nan
    return SideEstimate(curve.A, curve.A_se, k1.k, k1.se, n, int(reach[1]) if reach.size > 1
                        else 0, st.exposure, st.fills, st.inside, st.dropped, k2.k, k2.se,
                        full, float(curve.observed[0]), tuple(float(x) for x in curve.observed),
                        tuple(float(x) for x in curve.fitted))
