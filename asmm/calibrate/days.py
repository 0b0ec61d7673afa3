"""One UTC day reduced to sufficient statistics (:func:`day_stats`), and sigma, A and k per
side estimated from a window of such days (:func:`estimate`).

Work goes day by day, so memory does not grow with the number of days: a day is read, reduced
by :mod:`asmm.calibrate.estimators` and dropped; windows pool the reductions.
**Implausible quotes** (a mid far outside the trades around it: a fat finger, a jump that
reverts before anyone trades at it; :func:`asmm.calibrate.estimators.implausible_states`) are
left out like crossed ones and counted in the day's ``quality``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
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


@dataclass
class DayStats:
    """One UTC day reduced to what the estimators need (small, whatever the day's size)."""

    day: date
    sigma: est.SigmaStats
    sides: dict[str, intensity.ReachStats]
    tick: float
    last_mid: float       # the last usable mid of the day
    end: float            # epoch s of the last event
    quality: dict = field(default_factory=dict)
    microprice: mp.MicropriceStats | None = None


def day_stats(data_dir: str | Path, coin: str, day: date, cfg: CalibrationConfig,
              gaps: np.ndarray | None = None) -> DayStats:
    """Read one day of BBO and trades and reduce it (see :mod:`asmm.calibrate.estimators`)."""
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
    sig = est.sigma_stats(bbo.t, mid, ok, lo, hi, cfg.sigma_dt, gaps, cfg.max_silence)
    span_end = float(max(bbo.t[-1], trades.t[-1] if len(trades) else 0))
    exposure = intensity.exposure_seconds(bbo.t, ok, span_end, gaps, cfg.max_silence)
    spreads = intensity.spread_exposure(bbo.t, bbo.bid, bbo.ask, ok, tick, span_end, gaps,
                                        cfg.max_silence)
    sweeps = intensity.group_sweeps(trades.t, trades.price, trades.side)
    sides = intensity.reach_stats(sweeps, bbo.t, bbo.bid, bbo.ask, ok, tick, gaps, exposure,
                                  cfg.max_silence, spreads)
    micro = mp.microprice_stats(bbo.t, bbo.bid, bbo.ask, bbo.bid_size, bbo.ask_size, ok, tick,
                                horizon=cfg.microprice_horizon,
                                buckets=cfg.microprice_buckets)
    quality = {
        "prices_rows": bbo.quality.rows_read, "trades_rows": trades.quality.rows_read,
        "dropped": {**_prefixed("prices", bbo.quality.dropped),
                    **_prefixed("trades", trades.quality.dropped)},
        "notes": bbo.quality.notes + trades.quality.notes,
        "bbo_states": len(bbo), "unusable_bbo_states": int(np.count_nonzero(~valid)),
        "implausible_bbo_states": int(np.count_nonzero(odd)),
    }
    return DayStats(day, sig, sides, tick, float(mid[np.flatnonzero(ok)[-1]]),
                    span_end / 1000.0, quality, micro)


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
    """sigma, A and k per side from a window of days, with their errors."""

    days: tuple[date, ...]
    sigma: est.SigmaEstimate
    bid: intensity.SideEstimate
    ask: intensity.SideEstimate
    mid: float       # the last usable mid of the window
    tick: float
    end: float       # epoch s of the window's last event
    microprice: mp.Microprice | None = None  # None: too few samples (said in microprice_note)
    microprice_note: str = ""

    def diagnostics(self) -> dict:
        return {
            "days": [d.isoformat() for d in self.days],
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


def estimate(stats: Sequence[DayStats], min_sweeps: int = 100) -> Estimate:
    """Pool the days' statistics and estimate; :class:`CalibrationError` names what failed."""
    if not stats:
        raise CalibrationError("no days to estimate from")
    days = tuple(s.day for s in stats)
    label = f"{days[0]}..{days[-1]}" if len(days) > 1 else str(days[0])
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
    return Estimate(days, sigma, fitted["bid"], fitted["ask"], stats[-1].last_mid,
                    stats[-1].tick, stats[-1].end, micro, note)


def jsonable(v):
    """JSON-ready: numpy scalars and arrays as Python, NaN and inf as null."""
    if isinstance(v, np.ndarray):
        return [jsonable(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
