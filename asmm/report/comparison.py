"""Does paper trading match the backtest? Live figures of a bot beside what the tick-level
backtester (:mod:`asmm.sim`) expected over the same window, with the same lot, fee rate,
parameter file, loop and fill rule.

Like with like: a Freqtrade dry-run bot's fills are Freqtrade's own simulation (an order
fills when the book crosses it, checked once a loop), so it is compared with the
backtester's ``freqtrade-dry-run`` rule; a live bot's fills are the exchange's, compared
with the ``exchange`` rule. Comparing a dry-run bot with the exchange rule would blame the
strategy for the difference between two fill simulations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from asmm.core.enums import FillRule
from asmm.core.errors import PnLError
from asmm.core.settings import (
    FREQTRADE_DRY_RUN_FILL_REACTION_MS,
    FREQTRADE_DRY_RUN_REQUOTE_GAP_MS,
    FREQTRADE_FILL_REACTION_MS,
    FREQTRADE_REQUOTE_GAP_MS,
)
from asmm.report.ledger import BotBook, PnLSummary

if TYPE_CHECKING:
    from asmm.report.markouts import FillMarkouts


@dataclass(frozen=True)
class BotSettings:
    """What the backtester must copy from the bot to simulate it.

    ``loop_seconds``: Freqtrade's ``internals.process_throttle_secs`` (the strategy re-quotes,
    and Freqtrade checks a dry-run order, once a loop); ``min_spread_ticks``,
    ``max_improve_ticks``: the strategy's ``asmm`` settings of those names; ``maker_fee``: the
    fee the strategy quotes with when its ``asmm.maker_fee`` overrides the exchange's (None:
    the fee the fills paid); ``reference``: its ``asmm.reference`` (mid | microprice)."""

    loop_seconds: float
    min_spread_ticks: float
    max_improve_ticks: float
    maker_fee: float | None = None
    reference: str = "mid"


@dataclass(frozen=True)
class Comparison:
    """Live figures next to what the tick-level backtester expected over the same window.

    ``rows``: (figure, live, backtest) with the same units on both sides (NaN: that side
    does not say); ``window``: (start, end) in the live clock, epoch s; ``shift``: seconds
    added to live times to reach the data's times (non-zero only for a replay that moved the
    data to 'now'); ``fill_rule`` the backtester's, ``fill_rule_why`` why that one;
    ``cadence`` the Freqtrade cadence it simulated (:func:`cadence_for`, ms)."""

    window: tuple[float, float]
    shift: float
    execution: str
    fill_rule: str
    fill_rule_why: str
    loop_seconds: float
    rows: tuple[tuple[str, float, float], ...]
    backtest: dict
    cadence: dict


def fill_rule_for(books: Sequence[BotBook]) -> tuple[FillRule, str]:
    """The backtester's fill rule that simulates these bots' fills, and why.

    Raises :class:`PnLError` when the books do not say whether they are dry-run or live
    (or disagree): the caller must name the rule."""
    kinds = {b.dry_run for b in books}
    why = "; ".join(f"{b.name}: {b.dry_run_why}" for b in books)
    if kinds == {True}:
        return FillRule.FREQTRADE_DRY_RUN, (
            f"a Freqtrade dry-run, whose fills are Freqtrade's own (the book crossing the "
            f"order at a loop) — {why}")
    if kinds == {False}:
        return FillRule.EXCHANGE, (
            f"live on an exchange, whose fills are trades past the queue or the book moving "
            f"through the order — {why}")
    raise PnLError(f"cannot tell whether the bots are dry-run or live ({why}); name the "
                   "backtester's fill rule (--fill-rule)")


def cadence_for(fill_rule: FillRule | str) -> dict:
    """The backtester's Freqtrade cadence (``fill_reaction_ms``, ``requote_gap_ms``) for a
    bot whose fills follow ``fill_rule``, as measured (:mod:`asmm.core.settings`): a live
    bot's on the paper exchange, whose every order, cancel and wallet sync is a request to
    the exchange; a dry-run's (``freqtrade-dry-run``), quicker, whose orders and cancels are
    Freqtrade's own but whose prices still wait for an order-book read; none for the
    ``trades`` rule, which no bot follows."""
    rule = FillRule(fill_rule)
    if rule == FillRule.EXCHANGE:
        return {"fill_reaction_ms": FREQTRADE_FILL_REACTION_MS,
                "requote_gap_ms": FREQTRADE_REQUOTE_GAP_MS}
    if rule == FillRule.FREQTRADE_DRY_RUN:
        return {"fill_reaction_ms": FREQTRADE_DRY_RUN_FILL_REACTION_MS,
                "requote_gap_ms": FREQTRADE_DRY_RUN_REQUOTE_GAP_MS}
    return {"fill_reaction_ms": 0.0, "requote_gap_ms": 0.0}


def compare_with_backtest(summary: PnLSummary, data_dir: str | Path, coin: str,
                          params_file: str | Path, bot: BotSettings, *,
                          fill_rule: FillRule | str, fill_rule_why: str = "",
                          shift: float = 0.0, execution: str = "freqtrade",
                          marked: FillMarkouts | None = None) -> Comparison:
    """Run the tick-level backtester on the collector's data for the live window
    ``[bot start (else first fill), end]`` with the live order size and fee rate, the bot's
    loop and quoting settings ``bot``, the parameter file the bot quoted from and
    ``fill_rule``, and line its figures up with the live ones (with ``marked``, the live
    fills' markouts, beside the backtest's).

    Raises :class:`PnLError` when the data or the parameter file cannot be used."""
    # Imported here: the backtester pulls in numba, which a report without --params never
    # needs.
    from asmm.core.errors import DataError
    from asmm.core.params import ParamsError, load_params
    from asmm.sim import BacktestConfig, infer_tick, load_events, run_backtest
    from asmm.sim.markouts import HORIZONS

    start, end = summary.started, float(summary.curves.time[-1])
    try:
        params = load_params(params_file, check_fresh=False)
        events = load_events(data_dir, coin, start + shift, end + shift)
        tick = infer_tick(events)
        cadence = cadence_for(fill_rule)
        cfg = BacktestConfig.from_params(
            params, order_size=summary.lot, execution=execution, fill_rule=fill_rule,
            maker_fee=summary.fee_rate if bot.maker_fee is None else bot.maker_fee,
            refresh_seconds=bot.loop_seconds, tick=tick,
            min_spread=bot.min_spread_ticks * tick, max_improve_ticks=bot.max_improve_ticks,
            reference=bot.reference, **cadence)
        bt = run_backtest(events, cfg).summary()
        if not bt["events"]:
            raise ValueError(f"no market data in {data_dir} for the window")
    except (DataError, ParamsError, ValueError, FileNotFoundError) as e:
        raise PnLError(f"cannot backtest the live window for the comparison: {e}") from e
    lot = summary.lot
    # Freqtrade fills a dry-run order only when the book crosses it, never from a trade. A
    # live bot's records do not say what filled each order.
    if fill_rule == FillRule.FREQTRADE_DRY_RUN:
        by_trade, by_book = 0.0, float(summary.fills)
    else:
        by_trade = by_book = math.nan
    rows = [
        ("fills, our bid (buys)", float(summary.fills_buy), float(bt["fills_bid"])),
        ("fills, our ask (sells)", float(summary.fills_sell), float(bt["fills_ask"])),
        ("fills by a trade", by_trade, float(bt["fills_trade"])),
        ("fills by the book reaching our price", by_book,
         float(bt["fills_book_through"] + bt["fills_dry_run_cross"])),
        ("volume (base)", summary.volume, bt["volume_bid"] + bt["volume_ask"]),
        ("fees (USDC)", summary.fees, bt["fees"]),
        ("PnL after fees, marked (USDC)", summary.total, bt["pnl"]),
        ("max drawdown (USDC)", summary.max_drawdown, bt["max_drawdown"]),
        ("inventory max |q| (lots)", summary.inventory_max / lot, bt["inventory_max_abs"]),
        ("inventory at the end (lots)", summary.inventory_now / lot, bt["inventory_final"]),
    ]
    for sign, side, label in ((1, "bid", "buys"), (-1, "ask", "sells")):
        means = marked.means(sign) if marked is not None else {}
        for h in HORIZONS:
            key = f"markout_{h:g}s_bp"
            rows.append((f"markout {h:g} s, {label} (bp)", _num(means.get(key)),
                         _num(bt[f"{key}_{side}"])))
    return Comparison((start, end), shift, execution, FillRule(fill_rule), fill_rule_why,
                      bot.loop_seconds, tuple(rows), bt, cadence)


def _num(v: float | None) -> float:
    return math.nan if v is None else float(v)
