"""Market-making logic for the Freqtrade strategy: pure functions and small state objects.

The strategy file (``user_data/strategies/avellaneda.py``) is an adapter: it reads
Freqtrade's objects (trades, order book, config) and calls the functions here, which hold
every rule. Quotes come only from :func:`asmm.core.model.quotes`; parameters only through
:class:`asmm.core.params.ParamsCache`.

Freqtrade allows one trade per pair per bot and one open order per trade, so one bot cannot
rest a bid and an ask at once. Two ways to run within that rule:

- ``pingpong`` (one bot): flat, it quotes one side chosen by :func:`flat_side`; in a
  position it quotes the exit on the reducing side at the model's price for its inventory.
- ``long`` / ``short`` (a pair of bots on two accounts): each bot trades one direction only
  and both price with the *net* inventory of the pair, shared through small per-bot state
  files (:func:`write_bot_state`, :func:`read_net_inventory`). Flat, the long bot rests the
  model's bid and the short bot the model's ask, so a bid and an ask rest at once.

Units follow docs/design.md: prices in USDC, time in seconds, inventory ``q`` in lots (position
size ÷ ``lot_size``, signed, short negative).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from asmm.core.errors import ConfigError, SharedStateError
from asmm.core.io import atomic_write_json
from asmm.core.model import quotes
from asmm.core.params import Params, ParamsCache, iso_utc

log = logging.getLogger(__name__)

MODES = ("pingpong", "long", "short")
FLAT_SIDE_RULES = ("alternate", "long", "short")
LONG, SHORT = "long", "short"

# Exit tags the strategy uses; the replay tests and the README refer to them by name.
EXIT_QUOTE = "mm_exit"
EXIT_KILL = "kill_switch"
EXIT_LIQUIDATION = "liquidation_guard"

# Pair-lock reason that arms the kill switch from the REST API (POST /api/v1/locks).
KILL_LOCK_REASON = "kill"


@dataclass(frozen=True)
class MMConfig:
    """The ``"asmm"`` block of a Freqtrade config. Every field has a safe default.

    Prices in USDC, times in seconds, fractions as fractions (0.05 = 5 %).
    """

    params_file: str = "scripts/avellaneda_parameters_BTC.json"
    mode: str = "pingpong"                  # pingpong | long | short
    flat_side_rule: str = "alternate"       # pingpong only: which side to quote when flat
    lot_size: float = 0.001                 # coin per order; q = position / lot_size
    horizon_seconds: float = 86400.0        # A–S session length, aligned to 00:00 UTC
    min_spread_ticks: float = 1.0           # floor on the quoted spread
    max_improve_ticks: float = 0.0          # never better the touch by more than this
    maker_fee: float | None = None          # None: the exchange's market["maker"]
    tick: float | None = None               # None: the exchange's price precision
    kill_switch_file: str = "user_data/KILL"
    kill_timeout_seconds: float = 300.0     # then exit at market
    max_drawdown: float = 0.10              # of the starting balance; trips the kill switch
    liquidation_buffer: float = 0.05        # exit when price is within this of liquidation
    leverage: float = 1.0
    max_leverage: float = 3.0
    adx_filter: bool = False
    adx_timeframe: str = "5m"
    adx_period: int = 14
    shared_state_dir: str | None = None     # pair mode: folder of per-bot state files
    bot_id: str = "bot"
    state_max_age_seconds: float = 60.0     # the other bot's state older than this: no entries
    max_mid_distance: float = 0.05          # file's mid this far (fraction) from the live mid:
                                            # no entries
    max_data_age_seconds: float = 129600.0  # file's data window ended longer ago: no entries
                                            # (36 h, the calibrator's default validity)

    @classmethod
    def from_dict(cls, doc: dict | None) -> MMConfig:
        """Validate the config block; unknown keys are an error (a typo must not pass)."""
        doc = dict(doc or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ConfigError(f"unknown asmm config keys {unknown}; known: {sorted(known)}")
        try:
            cfg = cls(**doc)
        except TypeError as e:
            raise ConfigError(f"asmm config: {e}") from None
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"asmm.mode = {self.mode!r}; choose one of {MODES}")
        if self.flat_side_rule not in FLAT_SIDE_RULES:
            raise ConfigError(
                f"asmm.flat_side_rule = {self.flat_side_rule!r}; choose one of {FLAT_SIDE_RULES}")
        positive = ("lot_size", "horizon_seconds", "kill_timeout_seconds", "max_drawdown",
                    "liquidation_buffer", "leverage", "max_leverage", "state_max_age_seconds",
                    "max_mid_distance", "max_data_age_seconds")
        for name in positive:
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"asmm.{name} = {v!r} must be a finite number > 0")
        for name in ("min_spread_ticks", "max_improve_ticks"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or v < 0:
                raise ConfigError(f"asmm.{name} = {v!r} must be >= 0")
        if not 1.0 <= self.leverage <= self.max_leverage:
            raise ConfigError(f"asmm.leverage = {self.leverage} must lie in "
                              f"[1, max_leverage = {self.max_leverage}]")
        if self.mode != "pingpong" and not self.shared_state_dir:
            raise ConfigError(f"asmm.mode = {self.mode!r} (a pair of bots) needs "
                              "asmm.shared_state_dir so both bots see the net inventory")
        if self.adx_period < 2:
            raise ConfigError(f"asmm.adx_period = {self.adx_period} must be >= 2")


# --------------------------------------------------------------------------- inventory

def inventory_lots(amount: float, is_short: bool, lot_size: float) -> float:
    """Signed inventory in lots: ``+amount/lot_size`` long, negative short."""
    q = float(amount) / lot_size
    return -q if is_short else q


def write_bot_state(folder: str | os.PathLike, bot_id: str, pair: str, q_lots: float,
                    now: datetime) -> Path:
    """Publish this bot's inventory (lots) for its partner; atomic, one file per bot.

    One file per bot means no two processes ever write the same file, so no lock is needed.
    """
    path = Path(folder) / f"{bot_id}.json"
    atomic_write_json(path, {"bot_id": bot_id, "pair": pair, "q_lots": float(q_lots),
                             "updated_at": iso_utc(now)})
    return path


def read_net_inventory(folder: str | os.PathLike, pair: str, now: datetime,
                       max_age_seconds: float, expect_bots: int = 2) -> float:
    """Net inventory (lots) of all bots publishing ``pair`` in ``folder``.

    Raises :class:`SharedStateError` when fewer than ``expect_bots`` fresh states exist:
    quoting on a guessed inventory is what the guard exists to prevent.
    """
    total, seen = 0.0, []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            doc = json.loads(path.read_text())
            if doc["pair"] != pair:
                continue
            updated = datetime.fromisoformat(str(doc["updated_at"]).replace("Z", "+00:00"))
            q = float(doc["q_lots"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SharedStateError(f"unreadable shared state {path}: {e}") from None
        age = (now - updated).total_seconds()
        if age > max_age_seconds:
            raise SharedStateError(
                f"shared state {path.name} is {age:.0f} s old (> {max_age_seconds:.0f} s): "
                "is the partner bot running?")
        total += q
        seen.append(path.stem)
    if len(seen) < expect_bots:
        raise SharedStateError(f"shared state for {pair} in {folder} from {seen or 'no bot'}; "
                               f"expected {expect_bots} bots")
    return total


def coin_of_pair(pair: str) -> str:
    """The base coin of a ccxt symbol: ``BTC`` for ``BTC/USDC:USDC``."""
    return pair.split("/", 1)[0]


def usable_params(cache: ParamsCache, cfg: MMConfig, *, pair: str, mid: float,
                  now: datetime) -> Params:
    """The parameters to quote ``pair`` with at ``now``, or a :class:`ParamsError` saying why
    not: the file must be valid, fresh (also by the age of its data, ``cache.max_data_age``),
    for this coin, and near the live ``mid`` (USDC; NaN when unknown, e.g. in backtesting).
    """
    params = cache.get(now)
    params.check_market(coin_of_pair(pair), mid, cfg.max_mid_distance)
    return params


def params_cache(cfg: MMConfig) -> ParamsCache:
    """The cache the strategy reads ``cfg.params_file`` through, with the data-age limit."""
    return ParamsCache(cfg.params_file, timedelta(seconds=cfg.max_data_age_seconds))


def stake_for_lot(lot_size: float, rate: float, leverage: float) -> float:
    """Margin (USDC) that buys one lot (coin) at ``rate`` with ``leverage``: Freqtrade sizes
    positions by stake, ``amount = stake * leverage / rate``."""
    return lot_size * rate / leverage


def touch(bids: list, asks: list) -> tuple[float, float, float]:
    """``(mid, best_bid, best_ask)`` from ccxt order-book sides (``[[price, size], ...]``)."""
    bid, ask = float(bids[0][0]), float(asks[0][0])
    return 0.5 * (bid + ask), bid, ask


# --------------------------------------------------------------------------- sides

def flat_side(rule: str, last_entry_side: str | None) -> str:
    """Which side a flat ping-pong bot quotes.

    ``alternate`` (default): the opposite of the last filled entry. Each round trip earns the
    spread whichever way it goes; alternating keeps the bot's exposure to the drift zero on
    average and makes it collect from both sides' order flow, where a fixed side would be a
    directional bet (a long-only bot is long the market half its time). ``long``/``short``
    fix the side (for a deliberate bias, or for testing).
    """
    if rule == "long":
        return LONG
    if rule == "short":
        return SHORT
    return SHORT if last_entry_side == LONG else LONG


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
    if mode == LONG:
        long_, short = np.ones(n, dtype=np.int8), np.zeros(n, dtype=np.int8)
    elif mode == SHORT:
        long_, short = np.zeros(n, dtype=np.int8), np.ones(n, dtype=np.int8)
    else:
        long_ = (np.arange(n) % 2 == 0).astype(np.int8)
        if n:
            long_[-1] = 1 if desired_side == LONG else 0
        short = (1 - long_).astype(np.int8)
    if adx is not None and adx_threshold is not None:
        calm = ~(np.asarray(adx, dtype=float) > adx_threshold)
        long_, short = long_ * calm, short * calm
    return long_, short


# --------------------------------------------------------------------------- quotes

def tau_seconds(now: datetime, horizon_seconds: float) -> float:
    """Seconds to the end of the current session; sessions tile time from 00:00 UTC.

    With the default 86400 the A–S horizon is the end of the UTC day. Never 0 (a zero
    horizon would collapse the inventory term exactly at the boundary).
    """
    ts = now.timestamp()
    left = horizon_seconds - (ts % horizon_seconds)
    return max(left, 1e-3)


@dataclass(frozen=True)
class Quote:
    """One quote computation with its inputs, so a log line can be replayed exactly."""

    bid: float
    ask: float
    mid: float
    q: float
    tau: float
    gamma: float
    tick: float
    best_bid: float
    best_ask: float
    maker_fee: float
    max_inventory: float

    def log_fields(self) -> str:
        # repr() of a float round-trips exactly, so a test can recompute the quote bit for bit.
        return (f"bid={self.bid!r} ask={self.ask!r} mid={self.mid!r} q={self.q!r} "
                f"tau={self.tau!r} gamma={self.gamma!r} tick={self.tick!r} "
                f"best_bid={self.best_bid!r} best_ask={self.best_ask!r} "
                f"maker_fee={self.maker_fee!r} max_inventory={self.max_inventory!r}")


def model_quote(params: Params, cfg: MMConfig, *, mid: float, q: float, now: datetime,
                tick: float, maker_fee: float, gamma_multiplier: float = 1.0,
                max_inventory: float = 1.0, best_bid: float = math.nan,
                best_ask: float = math.nan) -> Quote:
    """The model's bid and ask for inventory ``q`` (lots) at ``now``; NaN on a blocked side.

    ``gamma = params.gamma * gamma_multiplier`` (1/USDC per lot). ``best_bid``/``best_ask``
    NaN when no book is known (backtesting), which disables the touch clamps.
    """
    gamma = params.gamma * gamma_multiplier
    tau = tau_seconds(now, cfg.horizon_seconds)
    qt = quotes(params.model, mid, q, sigma=params.sigma, gamma=gamma,
                A_bid=params.bid.A, k_bid=params.bid.k, A_ask=params.ask.A, k_ask=params.ask.k,
                tau=tau, maker_fee=maker_fee, tick=tick, max_inventory=max_inventory,
                min_spread=cfg.min_spread_ticks * tick, best_bid=best_bid, best_ask=best_ask,
                max_improve_ticks=cfg.max_improve_ticks)
    return Quote(float(qt.bid), float(qt.ask), float(mid), float(q), tau, gamma, tick,
                 float(best_bid), float(best_ask), float(maker_fee), float(max_inventory))


def entry_price(quote: Quote, side: str) -> float:
    """A long enters on the bid, a short on the ask (NaN: side blocked by the bound)."""
    return quote.bid if side == LONG else quote.ask


def exit_price(quote: Quote, is_short: bool) -> float:
    """A long exits on the ask, a short on the bid: the reducing side."""
    return quote.bid if is_short else quote.ask


def market_exit_price(is_short: bool, best_bid: float, best_ask: float) -> float:
    """A marketable limit at the opposite touch: fills now, and Freqtrade's dry-run fills it
    at this price (a limit crossing by > 1 % would become a market order)."""
    return best_ask if is_short else best_bid


def choose_exit_price(quote: Quote | None, is_short: bool, *, kill: str, near_liquidation: bool,
                      best_bid: float, best_ask: float, fallback: float
                      ) -> tuple[float, Quote | None, str]:
    """Exit price and why: ``liquidation``/``market`` (marketable, at the opposite touch),
    ``model`` (the model's reducing-side quote), or ``passive`` (no usable parameters: rest at
    our own touch so the position still gets worked down).

    ``fallback`` (the candle price in backtesting) stands in for an unknown touch.
    """
    def pick(x: float) -> float:
        return x if math.isfinite(x) else fallback

    if near_liquidation:
        return pick(market_exit_price(is_short, best_bid, best_ask)), quote, "liquidation"
    if kill == "market":
        return pick(market_exit_price(is_short, best_bid, best_ask)), quote, "market"
    if quote is not None:
        price = exit_price(quote, is_short)
        if math.isfinite(price):
            return price, quote, "model"
    return pick(best_bid if is_short else best_ask), quote, "passive"


def pricing_q(mode: str, own_q: float, net_q: float, is_entry: bool) -> float:
    """The inventory (lots) an order is priced for.

    One bot (``pingpong``): its own, which is the net. A pair: an exit prices with the pair's
    net inventory. An entry always rests on the same side as the other bot's exit (the short
    bot sells to enter while the long bot sells to exit), so it prices with its own bot's
    inventory: the net once that exit has filled. Priced alike, both orders would rest at
    one price, one sweep would fill two lots, and the pair would swing from +1 to -1 lot at
    the inner quote instead of laddering its second lot one inventory step deeper — as
    GLFT prices each lot (measured with ``asmm backtest --execution freqtrade-pair``).
    """
    if mode == "pingpong" or not is_entry:
        return net_q
    return own_q


def needs_requote(current: float, new: float, tick: float, threshold_ticks: float) -> bool:
    """Re-quote only when the price moved by at least ``threshold_ticks`` ticks.

    A cancel/replace loses the order's place in the queue, so small moves are not worth it.
    """
    if not math.isfinite(new):
        return False
    if not math.isfinite(current):
        return True
    return abs(new - current) >= max(threshold_ticks, 0.0) * tick - 1e-9 * max(tick, 1.0)


def tick_from_precision(precision_price: float | None, fallback: float | None) -> float:
    """Price tick from ccxt's ``market["precision"]["price"]`` (TICK_SIZE mode)."""
    if fallback is not None:
        return float(fallback)
    if precision_price is None or not precision_price > 0:
        raise ConfigError("the exchange reports no price tick for this market; "
                          "set asmm.tick in the config")
    return float(precision_price)


# --------------------------------------------------------------------------- guards

def kill_phase(active_since: datetime | None, now: datetime, timeout_seconds: float) -> str:
    """``off``; ``work`` (exit at the model's price); ``market`` (after the timeout)."""
    if active_since is None:
        return "off"
    return "market" if (now - active_since).total_seconds() >= timeout_seconds else "work"


def near_liquidation(price: float, liquidation_price: float | None, is_short: bool,
                     buffer: float) -> bool:
    """True when ``price`` is within ``buffer`` (fraction of price) of liquidation."""
    if liquidation_price is None or not liquidation_price > 0 or not price > 0:
        return False
    distance = (liquidation_price - price) if is_short else (price - liquidation_price)
    return distance / price <= buffer


class DrawdownGuard:
    """Trips, and stays tripped, once equity falls ``max_drawdown`` below its running peak.

    ``max_drawdown`` is a fraction of the peak equity. Sticky on purpose: after a stop a
    person decides whether to restart, not the next bounce.
    """

    def __init__(self, max_drawdown: float):
        self.max_drawdown = max_drawdown
        self.peak = -math.inf
        self.tripped = False

    def update(self, equity: float) -> bool:
        if math.isfinite(equity):
            self.peak = max(self.peak, equity)
            if self.peak > 0 and (self.peak - equity) / self.peak >= self.max_drawdown:
                self.tripped = True
        return self.tripped


def clamp_leverage(wanted: float, max_allowed: float, exchange_max: float) -> float:
    """Integer leverage (Hyperliquid) in ``[1, min(max_allowed, exchange_max)]``."""
    top = max(1.0, min(max_allowed, exchange_max))
    return float(max(1, min(int(wanted), int(top))))


def adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's Average Directional Index, 0–100, NaN until ``2 * period - 1`` bars exist.

    Inputs are 1-d float arrays of one length (one bar each); the output has that length.
    Wilder smoothing is ``x_t = x_{t-1} - x_{t-1} / period + v_t`` for the sums of true range
    and directional movement, the recursive mean for ADX itself.
    """
    high, low, close = (np.asarray(a, dtype=float) for a in (high, low, close))
    n = close.size
    out = np.full(n, np.nan)
    if n < 2 * period:
        return out
    up = np.diff(high)
    down = -np.diff(low)
    plus_dm = np.where((up > down) & (up > 0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0), down, 0.0)
    tr = np.maximum.reduce([high[1:] - low[1:], np.abs(high[1:] - close[:-1]),
                            np.abs(low[1:] - close[:-1])])
    # Seeded with period - 1 values then smoothed from the period-th on: TA-Lib's
    # initialisation, so values agree with the reference everyone charts.
    m = period - 1
    atr, pdm, mdm = tr[:m].sum(), plus_dm[:m].sum(), minus_dm[:m].sum()
    dx = np.empty(n - 1 - period + 1)
    for i in range(m, n - 1):
        atr += tr[i] - atr / period
        pdm += plus_dm[i] - pdm / period
        mdm += minus_dm[i] - mdm / period
        pdi = 100.0 * pdm / atr if atr > 0 else 0.0
        mdi = 100.0 * mdm / atr if atr > 0 else 0.0
        s = pdi + mdi
        dx[i - period + 1] = 100.0 * abs(pdi - mdi) / s if s > 0 else 0.0
    value = dx[:period].mean()
    out[2 * period - 1] = value
    for j in range(period, dx.size):
        value += (dx[j] - value) / period
        out[j + period] = value
    return out


def adx_on_timeframe(df: pd.DataFrame, timeframe: str, period: int) -> pd.Series:
    """ADX of the candles resampled to ``timeframe`` (e.g. ``5m``), aligned back to ``df``.

    ``df`` has Freqtrade's columns ``date, open, high, low, close``. A higher-timeframe bar
    is used only from its close on (no look-ahead): its value is shifted to the next bar's
    start before being forward-filled onto the base candles.
    """
    if df.empty:
        return pd.Series(np.nan, index=df.index)
    rule = pd.Timedelta(timeframe.replace("m", "min"))
    bars = (df.set_index("date")[["high", "low", "close"]]
            .resample(rule, label="left", closed="left")
            .agg({"high": "max", "low": "min", "close": "last"}).dropna())
    values = pd.Series(adx(bars["high"].to_numpy(), bars["low"].to_numpy(),
                           bars["close"].to_numpy(), period), index=bars.index + rule)
    base_step = df["date"].diff().median() if len(df) > 1 else pd.Timedelta(0)
    # A base candle is stamped at its open; it may use a bar closed by its own close.
    aligned = values.reindex(pd.DatetimeIndex(df["date"] + base_step), method="ffill")
    return pd.Series(aligned.to_numpy(), index=df.index)


# --------------------------------------------------------------------------- gate

class Block(NamedTuple):
    """Why entries are blocked: ``key`` names the guard (stable while it blocks; messages
    carry changing numbers such as ages and clocks), ``message`` is the line to log."""

    key: str
    message: str


@dataclass
class Gate:
    """Logs a block once when it starts (or the blocking guard changes) and once when it
    clears.

    The bot loops every few seconds; a guard that logs on every loop would bury the line
    that says why it stopped.
    """

    name: str
    key: str | None = None

    def set(self, block: Block | None, logger: logging.Logger = log) -> str | None:
        key = block.key if block else None
        if key != self.key:
            if block is None:
                logger.info("%s: entries allowed again", self.name)
            else:
                logger.warning("%s: no new entries: %s", self.name, block.message)
            self.key = key
        return block.message if block else None


def entry_block_reason(*, params_error: Exception | None, kill: str, drawdown_tripped: bool,
                       shared_state_error: str | None, adx_value: float | None,
                       adx_threshold: float | None) -> Block | None:
    """The first reason no new entry may open, or None. Exits are never blocked here."""
    if kill != "off":
        return Block("kill", "kill switch active")
    if drawdown_tripped:
        return Block("drawdown", "max-drawdown stop tripped")
    if params_error is not None:
        kind = getattr(params_error, "kind", None)
        return Block(f"params:{type(params_error).__name__}" + (f":{kind}" if kind else ""),
                     str(params_error))
    if shared_state_error:
        return Block("shared_state", shared_state_error)
    if adx_threshold is not None and adx_value is not None and math.isfinite(adx_value) \
            and adx_value > adx_threshold:
        return Block("adx", f"trending market: ADX {adx_value:.1f} > {adx_threshold:g}")
    return None


# --------------------------------------------------------------------------- faults

class Faults:
    """Exceptions raised inside the strategy's own hooks, turned into an entry block.

    A hook that raised has lost its decision; Freqtrade would put its own default in its
    place (enter, at the proposed rate). :func:`fail_closed` returns the hook's safe value
    instead and records the fault here; entries stay blocked for the loop of the fault and
    the next one, so every hook on the entry path of that loop agrees. Each cause (hook and
    exception type) is logged once per episode of faults, with the traceback at DEBUG.
    """

    def __init__(self, name: str, logger: logging.Logger = log):
        self.name = name
        self.logger = logger
        self.loop = 0
        self.last_fault_loop: int | None = None
        self.logged: set[tuple[str, str]] = set()

    def new_loop(self) -> None:
        """Call at the start of every bot loop (``bot_loop_start``)."""
        self.loop += 1
        if self.last_fault_loop is not None and self.loop - self.last_fault_loop == 2:
            self.logger.info("%s: a whole loop without a failing hook; entries no longer "
                             "blocked by faults", self.name)
            self.logged.clear()

    def record(self, hook: str, error: BaseException) -> None:
        key = (hook, type(error).__name__)
        if key not in self.logged:
            self.logged.add(key)
            self.logger.warning("%s: no new entries: %s raised %s: %s", self.name, hook,
                                type(error).__name__, error)
            self.logger.debug("%s: traceback of %s", self.name, hook, exc_info=error)
        self.last_fault_loop = self.loop

    @property
    def blocking(self) -> bool:
        return self.last_fault_loop is not None and self.loop - self.last_fault_loop <= 1


def fail_closed(safe: Any) -> Callable:
    """Decorator for a strategy hook: any exception in it records a fault on the strategy's
    ``faults`` (:class:`Faults`) and returns ``safe`` — or ``safe(*args, **kwargs)`` when it
    is callable, for a safe value that depends on the hook's arguments.

    ``safe`` is the value that opens nothing: no entry, no stake, cancel a resting entry,
    keep a resting exit. The exception never reaches Freqtrade, whose wrapper would decide
    with its own defaults.
    """
    def wrap(hook: Callable) -> Callable:
        @functools.wraps(hook)
        def run(self, *args, **kwargs):
            try:
                return hook(self, *args, **kwargs)
            except Exception as e:
                self.faults.record(hook.__name__, e)
                return safe(*args, **kwargs) if callable(safe) else safe
        return run
    return wrap


def indicators_failed(dataframe: pd.DataFrame, *_: Any) -> pd.DataFrame:
    """``populate_indicators``' safe value: the candles read as a trending market (ADX
    +inf), so the ADX filter, when on, offers no entry even in backtesting."""
    return dataframe.assign(adx=np.inf)


def no_entry_signals(dataframe: pd.DataFrame, *_: Any) -> pd.DataFrame:
    """``populate_entry_trend``'s safe value: the candles with no entry signal."""
    dataframe["enter_long"] = 0
    dataframe["enter_short"] = 0
    return dataframe


def entry_price_is_the_models(rate: float, quote: Quote | None, side: str) -> bool:
    """True when ``rate`` (the entry price Freqtrade is about to send) is the model's price
    for ``side`` to within half a tick — not Freqtrade's proposed rate, nor a clamped one."""
    if quote is None:
        return False
    price = entry_price(quote, side)
    return math.isfinite(price) and abs(rate - price) <= 0.5 * quote.tick
