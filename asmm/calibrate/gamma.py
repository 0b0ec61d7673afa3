"""gamma: its scale and grid, the objective a backtest is scored by, the walk-forward search
over the grid (:func:`walk_forward`) and the rule used without one (:func:`fallback_gamma`).

Walk-forward: for each test stretch (:class:`asmm.calibrate.windows.Piece`: hours of one UTC
day), sigma, A and k are estimated on the ``window`` hours before it and the stretch is
backtested tick by tick (:mod:`asmm.sim`) for every gamma of a log-spaced grid, as the bot
trades (``execution``). Each run is scored by :func:`objective`; the gamma with the best mean
score over the stretches wins. A stretch whose estimate or backtest fails (an empty or
one-sided day before it) is skipped and named in the warnings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from asmm.calibrate.config import CalibrationConfig, Progress
from asmm.calibrate.days import Estimate, estimate, jsonable
from asmm.calibrate.windows import Piece
from asmm.core.errors import CalibrationError, DataError
from asmm.core.model import glft_omega


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


# A backtest hook: (test stretch start, end (epoch s), estimate from the hours before,
# gammas) -> per gamma a dict with "hourly_pnl" (price per UTC hour) and
# "hourly_mean_abs_q" (lots) arrays plus any summary numbers worth recording.
Backtester = Callable[[float, float, Estimate, np.ndarray], list[dict]]


def hourly_mean_abs(t: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Mean of ``|q|`` per UTC hour over samples at times ``t`` (epoch s); NaN skipped."""
    ok = np.isfinite(q)
    hour = np.floor(t[ok] / 3600.0).astype(np.int64)
    if hour.size == 0:
        return np.zeros(0)
    _, inv, counts = np.unique(hour, return_inverse=True, return_counts=True)
    return np.bincount(inv, weights=np.abs(q[ok])) / counts


def backtest_config(cfg: CalibrationConfig, e: Estimate, gamma: float):
    """The backtest of the bot at ``gamma`` with estimate ``e``: one definition for the
    gamma search and the verdict."""
    from asmm import sim

    return sim.BacktestConfig(
        model=cfg.model, sigma=e.sigma.sigma, gamma=float(gamma),
        A_bid=e.bid.A, k_bid=e.bid.k, A_ask=e.ask.A, k_ask=e.ask.k, tick=e.tick,
        maker_fee=cfg.maker_fee, taker_fee=cfg.taker_fee, order_size=cfg.order_size,
        max_inventory=cfg.max_inventory, horizon=cfg.as_horizon, execution=cfg.execution,
        fill_reaction_ms=cfg.fill_reaction_ms, requote_gap_ms=cfg.requote_gap_ms)


def backtest_with_asmm(data_dir: str | Path, cfg: CalibrationConfig,
                       progress: Progress | None = None) -> Backtester:
    """The walk-forward hook over :mod:`asmm.sim`: one pass over the test day's events
    simulates the whole gamma grid (``run_grid``)."""

    def run(lo: float, hi: float, e: Estimate, gammas: np.ndarray) -> list[dict]:
        from asmm import sim as bt

        events = bt.load_events(data_dir, cfg.coin, lo, hi)
        base = backtest_config(cfg, e, gammas[0])
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


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def walk_forward(data_dir, cfg, pieces: list[Piece], unusable: dict[date, str],
                 progress) -> dict:
    """Backtest each test stretch on the grid; a stretch whose estimate or backtest fails is
    skipped with its reason (``value`` is None when every one was).

    ``pieces`` are the stretches with the hours each is estimated on, ``unusable`` the days
    that could not be read and why; the result is ``diagnostics.gamma``.
    """
    run = backtest_with_asmm(data_dir, cfg, progress)
    grid = None
    rows, per_piece, warnings = [], [], []
    for piece in pieces:
        lo, hi = piece.span
        day = piece.test[0].day
        entry = {"test_day": day.isoformat(), "test_window": [_iso(lo), _iso(hi)],
                 "test_hours": sum(b.active for b in piece.test) / 3600.0,
                 "estimated_on": sorted({b.day.isoformat() for b in piece.window})}
        per_piece.append(entry)
        try:
            if not piece.window:
                raise CalibrationError("no hours of data before it to estimate on")
            first = piece.window[0].day
            bad = [f"{d}: {why}" for d, why in unusable.items() if first <= d <= day]
            if bad:
                raise CalibrationError("; ".join(bad))
            e = estimate(piece.window, cfg.min_sweeps)
            entry["estimated_window"] = [_iso(e.start), _iso(e.end)]
            if grid is None:
                # One grid for every stretch, set by the earliest estimate (never by the
                # latest hours, whose data the final parameters come from).
                grid = gamma_grid(e, cfg)
                progress.start("gamma grid", len(grid) * len(pieces))
            summaries = run(lo, hi, e, grid)
        except (CalibrationError, DataError, ValueError) as err:
            entry["skipped"] = str(err)
            warnings.append(f"walk-forward test {entry['test_window'][0]} .. "
                            f"{entry['test_window'][1]} skipped: {err}")
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
            "runs": [{k: jsonable(v) for k, v in s.items()
                      if k not in ("hourly_pnl", "hourly_mean_abs_q")} for s in summaries],
            "scores": jsonable(scores),
        })
    if not rows:
        return {"value": None, "warnings": warnings, "tests": per_piece}
    mean = np.mean(rows, axis=0)
    if not np.any(np.isfinite(mean)):
        # Not a dead end: the fallback rule sets gamma, and the verdict says what it earns.
        return {"value": None, "warnings": warnings, "tests": per_piece, "grid": grid.tolist(),
                "reason": f"no gamma on the grid traded at least {cfg.min_fills_per_hour} "
                          "fills per hour in the walk-forward backtest"}
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
            "grid": grid.tolist(), "mean_score": jsonable(mean), "best_index": best,
            "execution": str(cfg.execution), "warnings": warnings, "tests": per_piece}
