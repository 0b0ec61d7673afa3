"""The calibrator: collector data -> sigma, A and k per side, gamma by walk-forward backtest.

Work goes day by day (:func:`day_stats` reads one UTC day and reduces it to sufficient
statistics, :mod:`asmm.calibrate.estimators`), so memory does not grow with the number of days.

- **sigma, A, k** come from the last ``window_days`` days with data (pooled statistics).
- **gamma**, walk-forward: for each of the last ``walk_forward_days`` days N that have a day
  before them, sigma, A and k are estimated on the ``window_days`` days ending at N-1 and
  day N is backtested tick by tick for every gamma of a log-spaced grid. Each run is scored
  by :func:`objective`; the gamma with the best mean score over the test days wins. The
  grid's results go into ``diagnostics.gamma``. A test day whose estimate or backtest
  fails (an empty or one-sided day before it) is skipped and named in the warnings.
- **One day of data** (no day N-1 to estimate on), or every test day skipped: gamma falls
  back to :func:`fallback_gamma` and the file says so (``diagnostics.gamma.method`` and
  ``diagnostics.warnings``).
- **Implausible quotes** (a mid far outside the trades around it: a fat finger, a jump that
  reverts before anyone trades at it; :func:`asmm.calibrate.estimators.implausible_states`) are left
  out like crossed ones and counted in ``diagnostics.data_quality``.
- **Freshness follows the data**: ``valid_until`` is ``validity`` after the end of the data
  window (never after ``computed_at + validity``), so a stopped collector cannot keep a
  sidecar writing fresh-looking files. Data older than the validity is refused: the file
  would be expired when written. Recorded days replayed as live (the demo, ``asmm replay
  --start-at now``) count from ``computed_at`` instead, by asking (``valid_from="now"``).

A run either writes a complete, validated parameter file atomically (:mod:`asmm.core.params`)
or raises :class:`CalibrationError` and writes nothing, so the last good file stays. Every
number written is finite: a NaN or inf anywhere is a :class:`CalibrationError` naming it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from asmm.calibrate import estimators as est
from asmm.core.errors import CalibrationError, DataError
from asmm.core.fees import MAKER_FEE
from asmm.core.model import glft_omega, quote_ladder
from asmm.core.params import Params, ParamsError, SideIntensity, iso_utc, write_params
from asmm.data.files import day_bounds
from asmm.data.grid import infer_tick
from asmm.data.readers import iter_days, read_bbo, read_gaps, read_trades

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = "HL_data_collector/HL_data"


@dataclass(frozen=True)
class CalibrationConfig:
    """Every choice of a calibration run. Units: docs/design.md (seconds, price, lots)."""

    coin: str = "BTC"
    model: str = "glft"                 # quote model the file is for: glft | as
    sigma_dt: float = 1.0               # s, grid of the mid for sigma
    tick: float | None = None           # price grid; None: inferred from the quotes
    window_days: int = 1                # days pooled for sigma, A, k
    walk_forward_days: int = 1          # test days of the gamma search (each needs a day before)
    gamma_points: int = 32
    gamma_min: float | None = None      # 1/price; None: gamma_min_rel * gamma_scale()
    gamma_max: float | None = None      # 1/price; None: gamma_max_rel * gamma_scale()
    gamma_min_rel: float = 1e-3
    gamma_max_rel: float = 10.0
    risk_aversion: float = 0.5          # variance penalty of the objective, see objective()
    min_fills_per_hour: float = 1.0     # a gamma whose backtest trades less is not eligible
    inventory_penalty: float = 0.0      # price per lot^2 per hour, see objective()
    maker_fee: float = MAKER_FEE        # fraction of notional
    order_size: float = 0.001           # coin per lot
    max_inventory: float = 5.0          # lots
    as_horizon: float = 86400.0         # s, A-S session length for backtests (model "as")
    min_sweeps: int = 100               # per side and window; fewer cannot support (A, k)
    max_silence: float = 300.0          # s; a book frozen longer is treated as an outage
    quote_outlier_z: float = 20.0       # robust sigmas, see estimators.implausible_states
    quote_outlier_floor: float = 1e-3   # fraction of the price, ditto
    validity: timedelta = timedelta(hours=36)
    valid_from: str = "data"            # validity counts from: the data's end | "now"

    def __post_init__(self):
        if self.model not in ("glft", "as"):
            raise ValueError(f"model must be 'glft' or 'as', got {self.model!r}")
        for name in ("sigma_dt", "max_inventory", "order_size", "max_silence"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        for name in ("window_days", "gamma_points"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.walk_forward_days < 0:
            raise ValueError("walk_forward_days must be >= 0")
        if self.validity <= timedelta(0):
            raise ValueError("validity must be positive")
        if self.valid_from not in ("data", "now"):
            raise ValueError(f"valid_from must be 'data' or 'now', got {self.valid_from!r}")
        if not (self.quote_outlier_z > 0 and self.quote_outlier_floor >= 0):
            raise ValueError("quote_outlier_z must be > 0 and quote_outlier_floor >= 0")


# --------------------------------------------------------------------------- one day


@dataclass
class DayStats:
    """One UTC day reduced to what the estimators need (small, whatever the day's size)."""

    day: date
    sigma: est.SigmaStats
    sides: dict[str, est.ReachStats]
    tick: float
    last_mid: float       # the last usable mid of the day
    end: float            # epoch s of the last event
    quality: dict = field(default_factory=dict)


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
    exposure = est.exposure_seconds(bbo.t, ok, span_end, gaps, cfg.max_silence)
    sweeps = est.group_sweeps(trades.t, trades.price, trades.side)
    sides = est.reach_stats(sweeps, bbo.t, bbo.bid, bbo.ask, ok, tick, gaps, exposure,
                            cfg.max_silence)
    quality = {
        "prices_rows": bbo.quality.rows_read, "trades_rows": trades.quality.rows_read,
        "dropped": {**_prefixed("prices", bbo.quality.dropped),
                    **_prefixed("trades", trades.quality.dropped)},
        "notes": bbo.quality.notes + trades.quality.notes,
        "bbo_states": len(bbo), "unusable_bbo_states": int(np.count_nonzero(~valid)),
        "implausible_bbo_states": int(np.count_nonzero(odd)),
    }
    return DayStats(day, sig, sides, tick, float(mid[np.flatnonzero(ok)[-1]]),
                    span_end / 1000.0, quality)


def _prefixed(kind: str, dropped: dict) -> dict:
    return {(r if r.startswith(f"{kind}:") else f"{kind}: {r}"): n for r, n in dropped.items()}


# --------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class Estimate:
    """sigma, A and k per side from a window of days, with their errors."""

    days: tuple[date, ...]
    sigma: est.SigmaEstimate
    bid: est.SideEstimate
    ask: est.SideEstimate
    mid: float       # the last usable mid of the window
    tick: float
    end: float       # epoch s of the window's last event

    def diagnostics(self) -> dict:
        return {
            "days": [d.isoformat() for d in self.days],
            "tick": self.tick,
            "sigma": {"value": self.sigma.sigma, "se": self.sigma.se,
                      "increments": self.sigma.n, "grid_s": self.sigma.dt,
                      # NaN only without two adjacent increments: undefined, so null.
                      "lag1_autocorrelation": _jsonable(self.sigma.lag1_corr)},
            "bid": self.bid.as_dict(), "ask": self.ask.as_dict(),
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
            sides = {k: sides[k] + s.sides[k] for k in est.SIDES}
    except est.EstimationError as e:
        raise CalibrationError(f"pooling {label}: {e}") from None
    try:
        sigma = est.estimate_sigma(sig)
    except est.EstimationError as e:
        raise CalibrationError(f"sigma on {label}: {e}") from None
    fitted = {}
    for side in est.SIDES:
        try:
            fitted[side] = est.estimate_side(sides[side], min_sweeps)
        except est.EstimationError as e:
            who = "sell orders hitting bids" if side == "bid" else "buy orders lifting asks"
            raise CalibrationError(f"{side} side ({who}) on {label}: {e}") from None
    return Estimate(days, sigma, fitted["bid"], fitted["ask"], stats[-1].last_mid,
                    stats[-1].tick, stats[-1].end)


# --------------------------------------------------------------------------- gamma


def gamma_scale(e: Estimate, model: str, horizon: float) -> float:
    """The gamma at which inventory starts to matter, 1/price; the grid is relative to it.

    GLFT quotes depend on gamma through gamma/k and sigma^2 gamma/(k A), so the scale is
    k. In A-S the inventory skew per lot is gamma sigma^2 tau against a spread of about 2/k,
    so the scale is 1/(k sigma^2 T): at gamma = scale one lot shifts the reservation price by
    1/k at the start of the session.
    """
    k = 0.5 * (e.bid.k + e.ask.k)
    if model == "as":
        return 1.0 / (k * e.sigma.sigma ** 2 * horizon)
    return k


def gamma_grid(e: Estimate, cfg: CalibrationConfig) -> np.ndarray:
    """``cfg.gamma_points`` log-spaced values in 1/price: ``[gamma_min, gamma_max]`` when
    given, else ``[gamma_min_rel, gamma_max_rel] x`` :func:`gamma_scale`, which suits
    every coin and both models."""
    scale = gamma_scale(e, cfg.model, cfg.as_horizon)
    lo = cfg.gamma_min if cfg.gamma_min is not None else cfg.gamma_min_rel * scale
    hi = cfg.gamma_max if cfg.gamma_max is not None else cfg.gamma_max_rel * scale
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise CalibrationError(f"bad gamma range [{lo}, {hi}]")
    return np.geomspace(lo, hi, cfg.gamma_points)


def objective(hourly_pnl: np.ndarray, hourly_mean_abs_q: np.ndarray,
              risk_aversion: float, inventory_penalty: float) -> float:
    """Risk-adjusted score of one backtest; higher is better. Price units per hour.

    ``mean(h) - risk_aversion * std(h) - inventory_penalty * mean(qbar^2)`` where ``h`` is
    the PnL (marked to mid, after fees) of each hour and ``qbar`` the mean |inventory| (lots)
    of each hour. The standard deviation rather than the variance keeps both terms in
    price/hour, so ``risk_aversion`` is unit-free: 0.5 prefers a run earning 1 with hourly
    noise 2 to one earning 2 with noise 4.5.
    """
    h = np.asarray(hourly_pnl, dtype=np.float64)
    if h.size == 0:
        return float("-inf")
    qbar = np.asarray(hourly_mean_abs_q, dtype=np.float64)
    spread = float(np.std(h, ddof=1)) if h.size > 1 else 0.0
    inv = float(np.mean(qbar * qbar)) if qbar.size else 0.0
    return float(np.mean(h) - risk_aversion * spread - inventory_penalty * inv)


def fallback_gamma(e: Estimate, grid: np.ndarray, max_inventory: float, model: str = "glft",
                   horizon: float = 86400.0) -> float:
    """Gamma without a backtest (one day of data): the grid point at which a full inventory
    of ``max_inventory`` lots skews the quotes by one zero-inventory spread, on the mean of
    the two sides' (A, k):

    - GLFT: ``Q omega(gamma) = 2 delta*(0)``, ``delta*(0) = (1/gamma) ln(1 + gamma/k) + omega/2``;
    - A-S, mid-session (``tau = T/2``): ``Q gamma sigma^2 tau`` = the spread at q = 0,
      ``gamma sigma^2 tau + (2/gamma) ln(1 + gamma/k)``.

    Smaller gamma barely reacts to inventory before the hard bound Q stops it; larger gamma
    skews so hard that a few fills push one side out of the market. The rule makes the
    inventory bound and the skew agree; it is a heuristic, which the file states.
    """
    A = 0.5 * (e.bid.A + e.ask.A)
    k = 0.5 * (e.bid.k + e.ask.k)
    s = e.sigma.sigma
    if model == "as":
        skew = grid * s * s * horizon / 2
        spread = skew + 2 * np.log1p(grid / k) / grid
    else:
        skew = np.array([glft_omega(s, g, A, k) for g in grid])
        spread = 2 * np.log1p(grid / k) / grid + skew
    return float(grid[np.argmin(np.abs(np.log(max_inventory * skew / spread)))])


# A backtest hook: (test day, estimate from the days before, gammas) -> per gamma a dict
# with "hourly_pnl" (price per UTC hour) and "hourly_mean_abs_q" (lots) arrays plus any
# summary numbers worth recording.
Backtester = Callable[[date, Estimate, np.ndarray], list[dict]]


def hourly_mean_abs(t: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Mean of ``|q|`` per UTC hour over samples at times ``t`` (epoch s); NaN skipped."""
    ok = np.isfinite(q)
    hour = np.floor(t[ok] / 3600.0).astype(np.int64)
    if hour.size == 0:
        return np.zeros(0)
    _, inv, counts = np.unique(hour, return_inverse=True, return_counts=True)
    return np.bincount(inv, weights=np.abs(q[ok])) / counts


def backtest_with_asmm(data_dir: str | Path, cfg: CalibrationConfig,
                       progress: Progress | None = None) -> Backtester:
    """The walk-forward hook over :mod:`asmm.sim`: one pass over the test day's events
    simulates the whole gamma grid (``run_grid``)."""

    def run(day: date, e: Estimate, gammas: np.ndarray) -> list[dict]:
        from asmm import sim as bt

        lo, hi = day_bounds(day)
        events = bt.load_events(data_dir, cfg.coin, lo, hi)
        base = bt.BacktestConfig(
            model=cfg.model, sigma=e.sigma.sigma, gamma=float(gammas[0]),
            A_bid=e.bid.A, k_bid=e.bid.k, A_ask=e.ask.A, k_ask=e.ask.k, tick=e.tick,
            maker_fee=cfg.maker_fee, order_size=cfg.order_size,
            max_inventory=cfg.max_inventory, horizon=cfg.as_horizon)
        done = [0]

        def step(i, n):
            # run_grid reports events done; the bar counts gamma runs (all advance together).
            target = round(i / n * len(gammas))
            if progress and target > done[0]:
                progress.advance("gamma grid", target - done[0])
                done[0] = target

        results = bt.run_grid(events, [base.with_(gamma=float(g)) for g in gammas],
                              progress=step)
        out = []
        for r in results:
            s = r.summary()
            s["hourly_pnl"] = r.hourly_pnl().to_numpy()
            s["hourly_mean_abs_q"] = hourly_mean_abs(r.samples["t"], r.samples["inventory"])
            out.append(s)
        return out

    return run


# --------------------------------------------------------------------------- the run


class Progress:
    """What a run reports as it goes; the CLI draws bars, the library stays quiet."""

    def start(self, what: str, total: int) -> None:
        """A stage begins: ``what`` is "days" or "gamma grid"."""

    def advance(self, what: str, n: int = 1) -> None:
        """``n`` units of ``what`` are done."""


@dataclass
class Result:
    params: Params
    estimate: Estimate
    gamma: dict
    warnings: list[str]


def calibrate(data_dir: str | Path, cfg: CalibrationConfig, *, now: datetime | None = None,
              progress: Progress | None = None) -> Result:
    """Estimate everything and return the validated :class:`Params` (nothing written).

    Raises :class:`CalibrationError` when the data cannot support an estimate.
    """
    progress = progress or Progress()
    now = now or datetime.now(UTC)
    try:
        days = [d for d, _, _ in iter_days(data_dir, cfg.coin)]
        if not days:
            raise CalibrationError(f"no days of {cfg.coin} data in {data_dir}")
        gaps = est.merge_intervals(read_gaps(data_dir, cfg.coin))
    except DataError as e:
        raise CalibrationError(str(e)) from None
    final_days = days[-cfg.window_days:]
    tests = days[1:][-cfg.walk_forward_days:] if cfg.walk_forward_days else []
    windows = {t: [d for d in days if d < t][-cfg.window_days:] for t in tests}
    # The final window first: if it cannot be estimated nothing else is worth reading.
    needed = final_days + sorted(set().union(*windows.values()) - set(final_days))
    stats: dict[date, DayStats] = {}
    unusable: dict[date, str] = {}
    progress.start("days", len(needed))
    for d in needed:
        try:
            stats[d] = day_stats(data_dir, cfg.coin, d, cfg, gaps)
        except (DataError, est.EstimationError) as e:
            if d in final_days:
                raise CalibrationError(str(e)) from None
            unusable[d] = str(e)  # only the gamma search needed it; it skips that test day
        progress.advance("days")

    data_end = datetime.fromtimestamp(stats[final_days[-1]].end, UTC)
    valid_until = validity_end(now, data_end, cfg)
    final = estimate([stats[d] for d in final_days], cfg.min_sweeps)
    warnings = _freshness_warnings(now, data_end, valid_until, cfg)
    gamma_diag = None
    if tests:
        gamma_diag = _walk_forward(data_dir, cfg, tests, windows, stats, unusable, progress)
        warnings.extend(gamma_diag["warnings"])
        if gamma_diag["value"] is None:
            why = "no test day could be backtested: " + "; ".join(
                f"{d['test_day']}: {d['skipped']}" for d in gamma_diag["test_days"])
            gamma_diag = None
    else:
        why = "only one day of data" if len(days) == 1 else "walk-forward disabled"
    if gamma_diag is None:
        grid = gamma_grid(final, cfg)
        g = fallback_gamma(final, grid, cfg.max_inventory, cfg.model, cfg.as_horizon)
        warnings.append(f"gamma not backtested ({why}); fallback rule: a full inventory "
                        f"Q = {cfg.max_inventory} lots skews the quotes by one spread")
        gamma_diag = {"method": "fallback rule (not backtested)", "reason": why,
                      "value": g, "grid": grid.tolist()}
    for s in (final.bid, final.ask):
        if s.inside > 0.01 * s.sweeps:
            warnings.append(f"{s.inside} of {s.sweeps} sweeps printed inside the recorded "
                            "touch (counted at the touch)")
    for d in final_days:
        if n := stats[d].quality["implausible_bbo_states"]:
            warnings.append(f"{d}: {n} BBO states left out as implausible (mid far outside "
                            "the trades around them)")

    quality = {d.isoformat(): stats[d].quality if d in stats else {"unusable": unusable[d]}
               for d in sorted(needed)}
    diagnostics = {
        "estimation": final.diagnostics(),
        "gamma": gamma_diag,
        "config": _config_dict(cfg),
        "data_quality": quality,
        "warnings": warnings,
    }
    start = datetime.fromtimestamp(day_bounds(final_days[0])[0], UTC)
    end = datetime.fromtimestamp(final.end, UTC)
    try:
        params = Params(
            coin=cfg.coin, model=cfg.model, computed_at=now, valid_until=valid_until,
            data_window=(start, end), mid_price=final.mid, sigma=final.sigma.sigma,
            gamma=float(gamma_diag["value"]),
            bid=SideIntensity(final.bid.A, final.bid.k),
            ask=SideIntensity(final.ask.A, final.ask.k), diagnostics=diagnostics)
    except ParamsError as e:  # an estimate came out non-finite or non-positive
        raise CalibrationError(f"the estimates do not form a valid parameter file: {e}") from e
    where = not_json_number(params.to_dict())
    if where:
        raise CalibrationError(f"{cfg.coin}: {where} in what would be written (every "
                               "number in the file must be finite)")
    for w in warnings:
        log.warning("%s: %s", cfg.coin, w)
    return Result(params, final, gamma_diag, warnings)


def validity_end(now: datetime, data_end: datetime, cfg: CalibrationConfig) -> datetime:
    """``valid_until``: ``cfg.validity`` after the data window ends (or after ``now``, if
    that is earlier: a clock behind the exchange's), or after ``now`` when
    ``cfg.valid_from == "now"``.

    Raises :class:`CalibrationError` when it would not be after ``now``: the newest data is
    older than the validity (a collector that stopped), so the file would be expired.
    """
    if cfg.valid_from == "now":
        return now + cfg.validity
    until = min(data_end, now) + cfg.validity
    if until <= now:
        raise CalibrationError(
            f"{cfg.coin}: the newest data ends at {iso_utc(data_end)}, "
            f"{_hours(now - data_end)} before now, longer ago than the validity "
            f"({_hours(cfg.validity)}): a file from it would be expired when written. Is the "
            "collector running? (Recorded days replayed as live: --valid-from now)")
    return until


def _freshness_warnings(now: datetime, data_end: datetime, valid_until: datetime,
                        cfg: CalibrationConfig) -> list[str]:
    if cfg.valid_from == "now":
        return [f"valid_until counts from computed_at, not from the data's end "
                f"({iso_utc(data_end)}): right for recorded data replayed as live only"]
    if (now - data_end).total_seconds() > cfg.max_silence:
        return [f"the newest data ends at {iso_utc(data_end)}, {_hours(now - data_end)} "
                f"ago: is the collector running? This file is valid until "
                f"{iso_utc(valid_until)} only"]
    return []


def _hours(d: timedelta) -> str:
    h = d.total_seconds() / 3600
    return f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} days"


def not_json_number(doc, where: str = "") -> str | None:
    """Where ``doc`` holds something :func:`json.dump` would refuse or write as a non-number
    (NaN, inf, a numpy array), as ``"diagnostics.estimation.ask.k_se is nan"``; None if
    nowhere."""
    if isinstance(doc, dict):
        items = ((f"{where}.{k}" if where else str(k), v) for k, v in doc.items())
    elif isinstance(doc, list | tuple):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(doc))
    elif isinstance(doc, float) and not math.isfinite(doc):
        return f"{where} is {doc}"
    elif doc is None or isinstance(doc, str | int | float):
        return None
    else:
        return f"{where} is a {type(doc).__name__}, not a JSON value"
    for path, v in items:
        if found := not_json_number(v, path):
            return found
    return None


def _walk_forward(data_dir, cfg, tests, windows, stats, unusable, progress) -> dict:
    """Backtest each test day on the grid; a test day whose estimate or backtest fails is
    skipped with its reason (``value`` is None when every one was)."""
    run = backtest_with_asmm(data_dir, cfg, progress)
    grid = None
    rows, per_day, warnings = [], [], []
    for t in tests:
        entry = {"test_day": t.isoformat(), "estimated_on": [d.isoformat() for d in windows[t]]}
        per_day.append(entry)
        try:
            bad = [f"{d}: {unusable[d]}" for d in windows[t] if d in unusable]
            if bad:
                raise CalibrationError("; ".join(bad))
            e = estimate([stats[d] for d in windows[t]], cfg.min_sweeps)
            if grid is None:
                # One grid for every test day, set by the earliest estimate (never by the
                # latest day, whose data the final parameters come from).
                grid = gamma_grid(e, cfg)
                progress.start("gamma grid", len(grid) * len(tests))
            summaries = run(t, e, grid)
        except (CalibrationError, DataError, ValueError) as err:
            entry["skipped"] = str(err)
            warnings.append(f"walk-forward test day {t} skipped: {err}")
            continue
        scores = np.empty(grid.size)
        for j, s in enumerate(summaries):
            # Quoting so wide that nothing fills scores 0 and would beat every losing
            # market maker: such a run is not eligible.
            fills = s.get("fills_bid", 0) + s.get("fills_ask", 0)
            hours = s.get("hours") or len(s["hourly_pnl"])
            scores[j] = (objective(s["hourly_pnl"], s["hourly_mean_abs_q"],
                                   cfg.risk_aversion, cfg.inventory_penalty)
                         if fills >= cfg.min_fills_per_hour * hours else -np.inf)
        rows.append(scores)
        entry.update({
            "sigma": e.sigma.sigma, "bid": {"A": e.bid.A, "k": e.bid.k},
            "ask": {"A": e.ask.A, "k": e.ask.k},
            "runs": [{k: _jsonable(v) for k, v in s.items()
                      if k not in ("hourly_pnl", "hourly_mean_abs_q")} for s in summaries],
            "scores": _jsonable(scores),
        })
    if not rows:
        return {"value": None, "warnings": warnings, "test_days": per_day}
    mean = np.mean(rows, axis=0)
    if not np.any(np.isfinite(mean)):
        raise CalibrationError(
            f"no gamma on the grid traded at least {cfg.min_fills_per_hour} fills per hour "
            "in the backtest; widen the gamma range or check the data")
    best = int(np.argmax(np.where(np.isfinite(mean), mean, -np.inf)))
    if mean[best] < 0:
        warnings.append(f"the best gamma loses money in the walk-forward backtest (score "
                        f"{mean[best]:.4g} per hour); check fees and the market before quoting")
    return {"method": "walk-forward backtest", "value": float(grid[best]),
            "objective": "mean(hourly PnL) - risk_aversion * std(hourly PnL) "
                         "- inventory_penalty * mean(hourly mean |q|^2), price per hour; "
                         "runs under min_fills_per_hour are not eligible (null)",
            "risk_aversion": cfg.risk_aversion, "inventory_penalty": cfg.inventory_penalty,
            "min_fills_per_hour": cfg.min_fills_per_hour,
            "grid": grid.tolist(), "mean_score": _jsonable(mean), "best_index": best,
            "warnings": warnings, "test_days": per_day}


def _jsonable(v):
    """JSON-ready: numpy scalars and arrays as Python, NaN and inf as null."""
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _config_dict(cfg: CalibrationConfig) -> dict:
    d = {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}
    d["validity"] = cfg.validity.total_seconds()
    return d


def write_result(path: str | Path, result: Result) -> None:
    """Atomic write (a reader sees the old file or the new one, never a mix)."""
    write_params(path, result.params)


def summary_rows(result: Result) -> tuple[list[tuple[str, str, str]], list[dict]]:
    """(parameter rows, quote ladder at q = -2..2) for the closing table."""
    e, p = result.estimate, result.params
    pct = e.sigma.sigma * math.sqrt(86400.0) / e.mid * 100
    rows = [
        ("sigma", f"{e.sigma.sigma:.4g} ± {e.sigma.se:.2g} USDC/√s",
         f"{pct:.2f} %/day, {e.sigma.n:,} increments"),
    ]
    for name, s in (("bid", e.bid), ("ask", e.ask)):
        rows.append((f"A {name}", f"{s.A:.4g} ± {s.A_se:.2g} /s",
                     f"{s.sweeps:,} sweeps in {s.exposure / 3600:.1f} h"))
        rows.append((f"k {name}", f"{s.k:.4g} ± {s.k_se:.2g} /USDC",
                     f"{s.beyond_touch:,} past the touch"))
    rows.append(("gamma", f"{p.gamma:.4g} /USDC", result.gamma["method"]))
    ladder = quote_ladder(p.model, e.mid, sigma=p.sigma, gamma=p.gamma, A_bid=p.bid.A,
                          k_bid=p.bid.k, A_ask=p.ask.A, k_ask=p.ask.k, tick=e.tick,
                          tau=float(p.diagnostics["config"]["as_horizon"]),
                          maker_fee=float(p.diagnostics["config"]["maker_fee"]))
    return rows, ladder


def run_every(job: Callable[[], None], every: float, stop: threading.Event,
              max_runs: int | None = None) -> tuple[int, int]:
    """The sidecar loop: ``job()`` now and then every ``every`` seconds until ``stop`` is set.

    A failing run is logged and the loop goes on (the job writes only on success, so the
    last good file stays). Returns ``(successes, failures)``; ``max_runs`` bounds the loop
    for tests.
    """
    ok = failed = 0
    while not stop.is_set() and (max_runs is None or ok + failed < max_runs):
        started = time.monotonic()
        try:
            job()
            ok += 1
        except (CalibrationError, OSError) as e:
            failed += 1
            log.error("calibration run failed: %s; keeping the last good file, next try in "
                      "%.0f s", e, every)
        except Exception as e:
            # A bug, not bad data: one line says so and the sidecar goes on; the traceback,
            # worth its lines in a bug report, comes with -vv.
            failed += 1
            log.error("calibration run failed on an internal error (%s: %s; -vv shows the "
                      "traceback); keeping the last good file, next try in %.0f s",
                      type(e).__name__, e, every)
            log.debug("traceback of the failed run", exc_info=True)
        if max_runs is not None and ok + failed >= max_runs:
            break
        stop.wait(max(0.0, every - (time.monotonic() - started)))
    return ok, failed


def resolve_data_dir(arg: str | None) -> Path:
    """``--data-dir``, else ``$HL_DATA_LOC``, else ``HL_data_collector/HL_data``."""
    return Path(arg or os.environ.get("HL_DATA_LOC") or DEFAULT_DATA_DIR)


