"""One UTC day reduced to sufficient statistics per UTC hour (:func:`day_stats`), and sigma,
A and k per side estimated from a window of such hours (:func:`estimate`).

Work goes day by day, so memory does not grow with the number of days: a day is read, reduced
by :mod:`asmm.calibrate.estimators` hour by hour (:class:`Block`) and dropped; windows pool
the blocks (their statistics add). Hours, not days, are the unit so that a collector
started this morning can be calibrated this afternoon, and short recordings (bursts) are
pooled with the time between them left out (:mod:`asmm.calibrate.windows`). An hour's
statistics lose only what straddles its edges: one sigma increment pair and the microprice
samples of its last horizon.
**Implausible quotes** (a mid far outside the trades around it: a fat finger, a jump that
reverts before anyone trades at it; :func:`asmm.calibrate.estimators.implausible_states`) are
left out like crossed ones and counted in the day's ``quality``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from asmm.calibrate import estimators as est
from asmm.calibrate import intensity
from asmm.calibrate import microprice as mp
from asmm.calibrate.config import CalibrationConfig
from asmm.core.errors import CalibrationError, DataError
from asmm.data.files import day_bounds
from asmm.data.grid import infer_tick
from asmm.data.readers import read_bbo, read_gaps, read_trades

HOUR = 3600.0


@dataclass
class Block:
    """One UTC hour of data reduced to what the estimators need.

    ``start`` (epoch s) the hour's start; ``first`` and ``end`` (epoch s) its first and last
    event; ``active`` (s) the time the collector was recording it (a book in force, usable
    or not, outside collector gaps and silences) — what windows count, so a stretch of bad
    quotes does not pull a window further back.
    ``last_mid`` (price) its last usable mid, NaN if none."""

    start: float
    first: float
    end: float
    active: float
    sigma: est.SigmaStats
    sides: dict[str, intensity.ReachStats]
    tick: float
    last_mid: float
    microprice: mp.MicropriceStats | None = None

    @property
    def day(self) -> date:
        return datetime.fromtimestamp(self.start, UTC).date()


@dataclass
class DayStats:
    """One UTC day reduced: its hours (:class:`Block`, those with events) and the day's
    totals, small whatever the day's size."""

    day: date
    sigma: est.SigmaStats
    sides: dict[str, intensity.ReachStats]
    tick: float
    last_mid: float       # the last usable mid of the day
    end: float            # epoch s of the last event
    quality: dict = field(default_factory=dict)
    microprice: mp.MicropriceStats | None = None
    blocks: list[Block] = field(default_factory=list)


def day_stats(data_dir: str | Path, coin: str, day: date, cfg: CalibrationConfig,
              gaps: np.ndarray | None = None) -> DayStats:
    """Read one day of BBO and trades and reduce it, hour by hour (see
    :mod:`asmm.calibrate.estimators`)."""
    lo, hi = day_bounds(day)
    if gaps is None:
        gaps = est.merge_intervals(read_gaps(data_dir, coin))
    bbo = read_bbo(data_dir, coin, lo, hi)
    trades = read_trades(data_dir, coin, lo, hi)
    valid = est.valid_states(bbo.bid, bbo.ask)
    mid = bbo.mid
    # Quotes the trades around them do not confirm are left out as crossed ones are: one
    # 10-second fat finger would otherwise multiply sigma and, through the spread it shows,
    # the depths of the sweeps that met it.
    scale = est.robust_sigma(bbo.t, mid, valid, lo, hi)
    odd = valid & est.implausible_states(bbo.t, mid, trades.t, trades.price, scale,
                                         cfg.quote_outlier_z, cfg.quote_outlier_floor)
    ok = valid & ~odd
    if not np.any(ok):
        raise DataError(f"{coin} {day}: no usable quotes (empty day, or every quote crossed)")
    tick = cfg.tick or infer_tick(np.concatenate([bbo.bid[ok], bbo.ask[ok]]))
    span_end = float(max(bbo.t[-1], trades.t[-1] if len(trades) else 0))
    first = float(min(bbo.t[0], trades.t[0] if len(trades) else np.inf))
    sweeps = intensity.group_sweeps(trades.t, trades.price, trades.side)
    blocks = []
    for h in np.arange(math.floor(first / 1000.0 / HOUR) * HOUR, span_end / 1000.0, HOUR):
        b = _block(float(h), bbo, ok, sweeps, tick, span_end, gaps, cfg)
        if b is not None:
            blocks.append(b)
    if not blocks:
        raise DataError(f"{coin} {day}: no usable quotes (empty day, or every quote crossed)")
    sig, sides, micro = blocks[0].sigma, dict(blocks[0].sides), blocks[0].microprice
    for b in blocks[1:]:
        sig = sig + b.sigma
        sides = {k: sides[k] + b.sides[k] for k in intensity.SIDES}
        micro = micro + b.microprice
    quality = {
        "prices_rows": bbo.quality.rows_read, "trades_rows": trades.quality.rows_read,
        "dropped": {**_prefixed("prices", bbo.quality.dropped),
                    **_prefixed("trades", trades.quality.dropped)},
        "notes": bbo.quality.notes + trades.quality.notes,
        "bbo_states": len(bbo), "unusable_bbo_states": int(np.count_nonzero(~valid)),
        "implausible_bbo_states": int(np.count_nonzero(odd)),
    }
    return DayStats(day, sig, sides, tick, float(mid[np.flatnonzero(ok)[-1]]),
                    span_end / 1000.0, quality, micro, blocks)


def _block(h: float, bbo, ok: np.ndarray, sweeps: intensity.Sweeps, tick: float,
           span_end_ms: float, gaps: np.ndarray, cfg: CalibrationConfig) -> Block | None:
    """The hour from ``h`` (epoch s) of a day's arrays; None when no event falls in it.

    The arrays are sliced from the state in force at ``h`` to the hour's end (the
    microprice's to a horizon past it); time before ``h`` is kept out of the exposure as a
    gap would be."""
    t = bbo.t
    end = h + HOUR
    j0, i1 = np.searchsorted(t, [h * 1000.0, end * 1000.0], side="left")
    s0, s1 = np.searchsorted(sweeps.t, [h * 1000.0, end * 1000.0], side="left")
    if i1 <= j0 and s1 <= s0:
        return None
    i0 = max(int(np.searchsorted(t, h * 1000.0, side="right")) - 1, 0)
    sl = slice(i0, max(int(i1), i0 + 1))
    before = np.array([[min(t[i0] / 1000.0, h) - 1.0, h]])
    hgaps = est.merge_intervals(np.concatenate([gaps.reshape(-1, 2), before]))
    block_end_ms = min(span_end_ms, end * 1000.0)
    tt, okk, bid, ask = t[sl], ok[sl], bbo.bid[sl], bbo.ask[sl]
    # Not past the recording's last event: a book held after it is no data, not a still mid.
    sig = est.sigma_stats(tt, bbo.mid[sl], okk, h, block_end_ms / 1000.0, cfg.sigma_dt, gaps,
                          cfg.max_silence)
    exposure = intensity.exposure_seconds(tt, okk, block_end_ms, hgaps, cfg.max_silence)
    spreads = intensity.spread_exposure(tt, bid, ask, okk, tick, block_end_ms, hgaps,
                                        cfg.max_silence)
    sw = intensity.Sweeps(*(getattr(sweeps, f)[s0:s1]
                            for f in ("t", "side", "deepest", "fills")))
    sides = intensity.reach_stats(sw, tt, bid, ask, okk, tick, gaps, exposure,
                                  cfg.max_silence, spreads)
    m1 = int(np.searchsorted(t, (end + cfg.microprice_horizon) * 1000.0, side="right"))
    ms = slice(i0, max(m1, i0 + 1))
    micro = mp.microprice_stats(t[ms], bbo.bid[ms], bbo.ask[ms], bbo.bid_size[ms],
                                bbo.ask_size[ms], ok[ms], tick,
                                horizon=cfg.microprice_horizon,
                                buckets=cfg.microprice_buckets, start=h, end=end)
    usable = np.flatnonzero(okk)
    last_mid = float(bbo.mid[sl][usable[-1]]) if usable.size else math.nan
    firsts = [float(t[j0])] if i1 > j0 else []
    lasts = [float(t[i1 - 1])] if i1 > j0 else []
    if s1 > s0:
        firsts.append(float(sweeps.t[s0]))
        lasts.append(float(sweeps.t[s1 - 1]))
    recorded = intensity.exposure_seconds(tt, np.ones(tt.size, bool), block_end_ms, hgaps,
                                          cfg.max_silence)
    return Block(h, min(firsts) / 1000.0, max(lasts) / 1000.0, recorded, sig, sides, tick,
                 last_mid, micro)


def _prefixed(kind: str, dropped: dict) -> dict:
    return {(r if r.startswith(f"{kind}:") else f"{kind}: {r}"): n for r, n in dropped.items()}


# Written in every parameter file: what A and k mean on the price grid.
FILL_RATE_CONVENTION = (
    "A quote J >= 1 levels past the touch (delta_J = half-spread + J tick from the mid) fills "
    "at the rate of sweeps whose deepest print reached level J: A exp(-k delta_J). k from how "
    "often a sweep goes one level deeper (levels >= 1; the touch-only share and the rounding "
    "of the last print do not enter); A the intercept of that curve, fitted on levels >= 1. "
    "A quote at the touch fills at touch_rate, observed, not from the law.")


@dataclass(frozen=True)
class Estimate:
    """sigma, A and k per side from a window of hours, with their errors."""

    days: tuple[date, ...]  # the UTC days the window's hours fall on
    sigma: est.SigmaEstimate
    bid: intensity.SideEstimate
    ask: intensity.SideEstimate
    mid: float       # the last usable mid of the window
    tick: float
    end: float       # epoch s of the window's last event
    microprice: mp.Microprice | None = None  # None: too few samples (said in microprice_note)
    microprice_note: str = ""
    start: float = math.nan   # epoch s of the window's first event
    hours: float = math.nan   # hours recorded in the window (the time between left out)

    def diagnostics(self) -> dict:
        return {
            "days": [d.isoformat() for d in self.days],
            "window": [_iso(self.start), _iso(self.end)],
            "hours": self.hours,
            "tick": self.tick,
            "sigma": {"value": self.sigma.sigma, "se": self.sigma.se,
                      "increments": self.sigma.n, "grid_s": self.sigma.dt,
                      # NaN only without two adjacent increments: undefined, so null.
                      "lag1_autocorrelation": jsonable(self.sigma.lag1_corr),
                      "noise_corrected": self.sigma.noise_corrected,
                      "uncorrected": self.sigma.sigma_raw, "uncorrected_se": self.sigma.se_raw},
            "fill_rate_convention": FILL_RATE_CONVENTION,
            "bid": self.bid.as_dict(), "ask": self.ask.as_dict(),
            "microprice": (self.microprice.as_dict() if self.microprice is not None
                           else {"unavailable": self.microprice_note}),
        }


def _iso(t: float) -> str | None:
    return (datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
            if math.isfinite(t) else None)


def estimate(stats: Sequence[DayStats | Block], min_sweeps: int = 100) -> Estimate:
    """Pool the statistics of days or hours (in time order) and estimate;
    :class:`CalibrationError` names what failed."""
    if not stats:
        raise CalibrationError("no hours of data to estimate from")
    days = tuple(sorted({s.day for s in stats}))
    label = f"{days[0]}..{days[-1]}" if len(days) > 1 else str(days[0])
    if isinstance(stats[0], Block):
        start = stats[0].first
        hours = sum(s.active for s in stats) / HOUR
    else:
        start = day_bounds(stats[0].day)[0]
        hours = sum(b.active for s in stats for b in s.blocks) / HOUR
    sig = stats[0].sigma
    sides = dict(stats[0].sides)
    try:
        for s in stats[1:]:
            sig = sig + s.sigma
            sides = {k: sides[k] + s.sides[k] for k in intensity.SIDES}
    except est.EstimationError as e:
        raise CalibrationError(f"pooling {label}: {e}") from None
    try:
        sigma = est.estimate_sigma(sig)
    except est.EstimationError as e:
        raise CalibrationError(f"sigma on {label}: {e}") from None
    fitted = {}
    for side in intensity.SIDES:
        try:
            fitted[side] = intensity.estimate_side_on_grid(sides[side], min_sweeps)
        except est.EstimationError as e:
            who = "sell orders hitting bids" if side == "bid" else "buy orders lifting asks"
            raise CalibrationError(f"{side} side ({who}) on {label}: {e}") from None
    micro, note = None, ""
    if all(s.microprice is not None for s in stats):
        pooled = stats[0].microprice
        for s in stats[1:]:
            pooled = pooled + s.microprice
        try:
            micro = mp.estimate_from(pooled)
        except est.EstimationError as e:
            note = str(e)  # optional: the file then has no microprice, and says why
    mids = [s.last_mid for s in stats if math.isfinite(s.last_mid)]
    return Estimate(days, sigma, fitted["bid"], fitted["ask"], mids[-1] if mids else math.nan,
                    stats[-1].tick, stats[-1].end, micro, note, start, hours)


def jsonable(v):
    """JSON-ready: numpy scalars and arrays as Python, NaN and inf as null."""
    if isinstance(v, np.ndarray):
        return [jsonable(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
