"""Names for the choices that cross module boundaries, instead of bare strings.

``StrEnum`` members compare equal to their strings, so configs, JSON files and command
lines keep their spelling (``"pingpong"``, ``"two-sided"``) while code names the choice.
"""

from __future__ import annotations

from enum import StrEnum


class Model(StrEnum):
    """Quote model: Avellaneda–Stoikov 2008 (finite horizon) or GLFT 2013 (infinite)."""

    AS = "as"
    GLFT = "glft"


class Side(StrEnum):
    """The direction of a bot's trade: a long enters on the bid, a short on the ask."""

    LONG = "long"
    SHORT = "short"


class Mode(StrEnum):
    """How the Freqtrade strategy runs: one ping-pong bot, or one bot of a pair."""

    PINGPONG = "pingpong"
    LONG = "long"
    SHORT = "short"


class FlatSide(StrEnum):
    """The side a flat ping-pong bot quotes: the opposite of its last entry, or fixed."""

    ALTERNATE = "alternate"
    LONG = "long"
    SHORT = "short"


class Execution(StrEnum):
    """What the backtester simulates: both quotes resting, one Freqtrade bot (one order at a
    time: an entry, then its exit), or the pair of bots."""

    TWO_SIDED = "two-sided"
    FREQTRADE = "freqtrade"
    FREQTRADE_PAIR = "freqtrade-pair"


def execution_of_mode(mode: str) -> Execution:
    """How a bot in ``mode`` (asmm.mode) trades, as the backtester simulates it: a ping-pong
    bot is one order at a time; a long or a short bot is one of a pair."""
    return Execution.FREQTRADE if Mode(mode) == Mode.PINGPONG else Execution.FREQTRADE_PAIR


class FillRule(StrEnum):
    """How a resting order fills, in the backtester (and, one implementation, the paper
    exchange): ``exchange`` from trades past the queue ahead and when the opposite best
    price reaches it (the book moved through it: someone traded with it); ``trades`` from
    trades only; ``freqtrade-dry-run`` as Freqtrade's dry-run: when the book crosses it,
    checked at the bot's loop cadence, never from trades."""

    EXCHANGE = "exchange"
    TRADES = "trades"
    FREQTRADE_DRY_RUN = "freqtrade-dry-run"


class Queue(StrEnum):
    """Queue position in the backtester: fill on touch, or wait for the volume ahead."""

    NONE = "none"
    PROB = "prob"


class Reference(StrEnum):
    """The price the quotes are centred on: the mid, or the microprice (the mid plus the
    book imbalance's expected move, from the parameter file)."""

    MID = "mid"
    MICROPRICE = "microprice"


class ExitReason(StrEnum):
    """Exit tags the strategy gives Freqtrade (its logs, the REST API and tests show them)."""

    QUOTE = "mm_exit"
    KILL = "kill_switch"
    LIQUIDATION = "liquidation_guard"


def execution_for(mode: Mode | str) -> Execution:
    """The backtester's execution that simulates the bot in ``mode``."""
    return Execution.FREQTRADE if Mode(mode) is Mode.PINGPONG else Execution.FREQTRADE_PAIR
