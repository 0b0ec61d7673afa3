"""What stops the bot opening positions, and how it says so: the kill switch, the drawdown
stop, the liquidation guard, leverage, the entry gate that logs each cause once, and the
fault record that turns any exception inside a strategy hook into "no entry"."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


# Pair-lock reason that arms the kill switch from the REST API (POST /api/v1/locks).
KILL_LOCK_REASON = "kill"


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


def clamp_leverage(wanted: float, max_allowed: float, exchange_max: float,
                   step: float = 1.0) -> float:
    """Leverage in ``[1, min(max_allowed, exchange_max)]``, rounded down to the exchange's
    ``step`` (1 on Hyperliquid, 0.01 on Bybit: :func:`asmm.freqtrade.policy.leverage_step`)."""
    top = max(1.0, min(max_allowed, exchange_max))
    # Whole steps with float noise forgiven (2.3 / 0.01 is 229.99999999999997), then
    # rounded to the step's decimals so 2.3 is not sent as 2.3000000000000003.
    steps = math.floor(min(wanted, top) / step + 1e-9)
    decimals = max(0, -math.floor(math.log10(step)))
    return max(1.0, round(steps * step, decimals))


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
