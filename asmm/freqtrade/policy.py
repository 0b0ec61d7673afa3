"""The bot's execution policy: which side a flat bot quotes, what inventory an order is priced
for, the A–S horizon, when a resting order is worth re-quoting, lots and stakes.

Freqtrade allows one trade per pair per bot and one open order per trade, so one bot cannot
rest a bid and an ask at once. Two ways to run within that rule:

- ``pingpong`` (one bot): flat, it quotes one side chosen by :func:`flat_side`; in a
  position it quotes the exit on the reducing side at the model's price for its inventory.
- ``long`` / ``short`` (a pair of bots on two accounts): each bot trades one direction only
  and prices with the pair's inventory (:func:`pricing_q`), shared through small per-bot
  state files (:mod:`asmm.freqtrade.shared_state`). Flat, the long bot rests the model's
  bid and the short bot the model's ask, so a bid and an ask rest at once.

Units follow docs/design.md: prices in USDC, time in seconds, inventory ``q`` in lots
(position size ÷ ``lot_size``, signed, short negative).
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from asmm.core import policy as compiled
from asmm.core.enums import Mode, Side


def inventory_lots(amount: float, is_short: bool, lot_size: float) -> float:
    """Signed inventory in lots: ``+amount/lot_size`` long, negative short."""
    q = float(amount) / lot_size
    return -q if is_short else q


def stake_for_lot(lot_size: float, rate: float, leverage: float) -> float:
    """Margin (USDC) that buys one lot (coin) at ``rate`` with ``leverage``: Freqtrade sizes
    positions by stake, ``amount = stake * leverage / rate``."""
    return lot_size * rate / leverage


def flat_side(rule: str, last_entry_side: str | None) -> str:
    """Which side a flat ping-pong bot quotes (:func:`asmm.core.policy.flat_side`, which the
    backtester runs too).

    ``alternate`` (default, and any other rule): the opposite of the last filled entry,
    long first. Each round trip earns the spread whichever way it goes; alternating keeps
    the bot's exposure to the drift zero on average and makes it collect from both sides'
    order flow, where a fixed side would be a directional bet (a long-only bot is long the
    market half its time). ``long``/``short`` fix the side (for a deliberate bias, or for
    testing).
    """
    side = compiled.flat_side(compiled.FLAT_SIDE_CODE.get(rule, compiled.FLAT_ALTERNATE),
                              compiled.SIDE_CODE.get(last_entry_side, compiled.SIDE_NONE))
    return Side.LONG if side == compiled.SIDE_LONG else Side.SHORT


def entry_signals(n: int, mode: str, desired_side: str, adx: np.ndarray | None = None,
                  adx_threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``enter_long`` and ``enter_short`` columns (0/1) for ``n`` candles.

    Pair bots signal their own direction on every candle. A ping-pong bot must offer one
    side per candle (Freqtrade ignores a candle with both): history alternates by candle
    parity — the only stateless choice in vectorised backtesting, where
    ``confirm_trade_entry`` then admits the side :func:`flat_side` wants — and the latest
    candle, the one live trading reads, carries ``desired_side`` itself. With ``adx`` (one
    value per candle) and a threshold, candles whose ADX exceeds it signal nothing (NaN, too
    little history, counts as calm).
    """
    if mode == Side.LONG:
        long_, short = np.ones(n, dtype=np.int8), np.zeros(n, dtype=np.int8)
    elif mode == Side.SHORT:
        long_, short = np.zeros(n, dtype=np.int8), np.ones(n, dtype=np.int8)
    else:
        long_ = (np.arange(n) % 2 == 0).astype(np.int8)
        if n:
            long_[-1] = 1 if desired_side == Side.LONG else 0
        short = (1 - long_).astype(np.int8)
    if adx is not None and adx_threshold is not None:
        calm = ~(np.asarray(adx, dtype=float) > adx_threshold)
        long_, short = long_ * calm, short * calm
    return long_, short


def tau_seconds(now: datetime, horizon_seconds: float) -> float:
    """Seconds to the end of the current session; sessions tile time from 00:00 UTC
    (:func:`asmm.core.policy.tau_seconds`, which the backtester runs too).

    With the default 86400 the A–S horizon is the end of the UTC day. Never below 1 ms (a
    zero horizon would collapse the inventory term exactly at the boundary).
    """
    return compiled.tau_seconds(now.timestamp(), float(horizon_seconds))


def pricing_q(mode: str, own_q: float, net_q: float, is_entry: bool) -> float:
    """The inventory (lots) an order is priced for (:func:`asmm.core.policy.pricing_q`,
    which the backtester runs too).

    One bot (``pingpong``): its own, which is the net. A pair: an exit prices with the pair's
    net inventory. An entry always rests on the same side as the other bot's exit (the short
    bot sells to enter while the long bot sells to exit), so it prices with its own bot's
    inventory: the net once that exit has filled. Priced alike, both orders would rest at
    one price, one sweep would fill two lots, and the pair would swing from +1 to -1 lot at
    the inner quote instead of laddering its second lot one inventory step deeper — as
    GLFT prices each lot (measured with ``asmm backtest --execution freqtrade-pair``).
    """
    return compiled.pricing_q(mode != Mode.PINGPONG, float(own_q), float(net_q),
                              bool(is_entry))


# Freqtrade passes its time in force to ccxt as ``timeInForce``. ccxt's unified name for
# post-only is "PO" (Bybit, Binance, ...), but its Hyperliquid client capitalises the word it
# is given into Hyperliquid's own, which for post-only is "Alo" (add liquidity only).
POST_ONLY_TIME_IN_FORCE = {"hyperliquid": "ALO"}


def time_in_force(exchange: str, post_only: bool) -> str:
    """The time in force (Freqtrade's ``order_time_in_force`` value) of an order that must
    only rest: the exchange's post-only name, or ``GTC`` when ``post_only`` is off.

    Post-only matters because an order is priced from a book that has aged by the time the
    order arrives: a GTC order whose price the touch has meanwhile crossed fills at once as a
    taker, paying the taker fee, on the side the market just moved against. Post-only, the
    exchange refuses it instead and the next loop re-prices.
    """
    if not post_only:
        return "GTC"
    return POST_ONLY_TIME_IN_FORCE.get(exchange.lower(), "PO")


# The leverage an exchange accepts is a whole number on Hyperliquid and a multiple of its
# instruments' leverageStep, 0.01, on Bybit. Elsewhere whole numbers, which every venue takes.
LEVERAGE_STEP = {"bybit": 0.01}


def leverage_step(exchange: str) -> float:
    """The step (x) the leverage of ``exchange`` (Freqtrade's exchange name) is rounded
    down to."""
    return LEVERAGE_STEP.get(exchange.lower(), 1.0)


def needs_requote(current: float, new: float, tick: float, threshold_ticks: float) -> bool:
    """Re-quote only when the price moved by at least ``threshold_ticks`` ticks.

    A cancel/replace loses the order's place in the queue, so small moves are not worth it.
    """
    if not math.isfinite(new):
        return False
    if not math.isfinite(current):
        return True
    return abs(new - current) >= max(threshold_ticks, 0.0) * tick - 1e-9 * max(tick, 1.0)
