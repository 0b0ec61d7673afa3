"""The verdict: does the chosen gamma make money after fees, here, at the user's fee tier?

An unprofitable verdict is information, never a failure: on Hyperliquid BTC the spread is
one tick (about 0.1 bp) against a 1.5 bp tier-0 maker fee, and the tools must say so and
say what would change it — the break-even maker fee, the largest at which the chosen
gamma's backtest PnL is still >= 0 (a rebate tier when negative).

The chosen gamma is backtested on the test stretches (the walk-forward's, else the estimation
window itself, in sample) at a grid of maker fees in one pass per stretch
(:func:`asmm.sim.run_grid` simulates every fee at once), under the fill rule and execution
of the gamma search. PnL is marked to the mid, after fees, in USDC for the file's lot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from asmm.calibrate.config import CalibrationConfig
from asmm.calibrate.days import Estimate
from asmm.calibrate.gamma import backtest_config
from asmm.core.verdict_text import sentence  # noqa: F401 (run.py imports it from here)

# The break-even search range: -5 bp (beyond any rebate a venue pays) to +5 bp, 0.25 bp apart.
FEE_GRID = np.round(np.arange(-5.0, 5.0 + 1e-9, 0.25), 2) * 1e-4


def break_even(fees: np.ndarray, pnl_per_hour: np.ndarray, trades: np.ndarray
               ) -> float | None:
    """The fee (fraction) up to which the strategy still makes money: from the lowest fee
    up (``fees`` ascending, one PnL per fee), the last at which ``pnl_per_hour >= 0`` while
    it ``trades`` (enough fills to count), interpolated linearly to where the PnL crosses
    zero; None when it loses even at the lowest.

    The first crossing, not the highest fee with PnL >= 0: the fee widens the quotes, so a
    fee high enough quotes where nothing fills, and earns exactly 0 — not a market maker
    breaking even.
    """
    good = (pnl_per_hour >= 0) & trades
    if not good[0]:
        return None
    i = int(np.argmin(good)) - 1 if not good.all() else fees.size - 1
    if i + 1 >= fees.size:
        return float(fees[i])
    p0, p1 = pnl_per_hour[i], pnl_per_hour[i + 1]
    if not (trades[i + 1] and p1 < 0):
        return float(fees[i])  # it stopped trading rather than losing: no crossing to find
    return float(fees[i] + (fees[i + 1] - fees[i]) * p0 / (p0 - p1))


# A test stretch: its start and end (epoch s) and the estimate it is quoted with.
Test = tuple[float, float, Estimate]


def score_fees(data_dir: str | Path, cfg: CalibrationConfig, tests: Sequence[Test],
               gamma: float, fees: np.ndarray) -> dict:
    """Backtest ``gamma`` at each maker fee on each test stretch (its estimate beside it).
    Returns per fee: ``pnl_per_hour``, ``fills_per_hour``, ``markout_10s_bp`` (fill
    weighted), and ``hours`` in all."""
    from asmm import sim

    pnl = np.zeros(fees.size)
    fills = np.zeros(fees.size)
    mark = np.zeros(fees.size)
    marked = np.zeros(fees.size)
    hours = 0.0
    for lo, hi, e in tests:
        events = sim.load_events(data_dir, cfg.coin, lo, hi)
        base = backtest_config(cfg, e, gamma)
        runs = sim.run_grid(events, [base.with_(maker_fee=float(f)) for f in fees])
        for j, r in enumerate(runs):
            s = r.summary()
            n = s["fills_bid"] + s["fills_ask"]
            pnl[j] += s["pnl"]
            fills[j] += n
            if n and math.isfinite(s["markout_10s_bp"]):
                mark[j] += s["markout_10s_bp"] * n
                marked[j] += n
        hours += runs[0].summary()["hours"]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"pnl_per_hour": pnl / hours if hours else pnl * np.nan,
                "fills_per_hour": fills / hours if hours else fills * np.nan,
                "markout_10s_bp": np.where(marked > 0, mark / marked, np.nan),
                "hours": hours}


def verdict(data_dir: str | Path, cfg: CalibrationConfig, tests: Sequence[Test], gamma: float,
            gamma_source: str, in_sample: bool) -> dict:
    """The file's ``verdict`` (keys :data:`asmm.core.params_blocks.VERDICT_KEYS`) for
    ``gamma`` at ``cfg``'s fees."""
    fees = np.union1d(FEE_GRID, [cfg.maker_fee])
    scored = score_fees(data_dir, cfg, tests, gamma, fees)
    at = int(np.flatnonzero(fees == cfg.maker_fee)[0])
    pnl = float(scored["pnl_per_hour"][at])
    mark = float(scored["markout_10s_bp"][at])
    trades = scored["fills_per_hour"] >= cfg.min_fills_per_hour
    return {
        "execution": str(backtest_config(cfg, tests[0][2], gamma).execution),
        "maker_fee": cfg.maker_fee, "taker_fee": cfg.taker_fee,
        "gamma_source": gamma_source, "tested_hours": scored["hours"], "in_sample": in_sample,
        "expected_fills_per_hour": float(scored["fills_per_hour"][at]),
        "expected_pnl_per_hour": pnl,
        "markout_10s_bp": mark if math.isfinite(mark) else None,
        "profitable": bool(pnl > 0),
        "break_even_maker_fee": break_even(fees, scored["pnl_per_hour"], trades),
    }
