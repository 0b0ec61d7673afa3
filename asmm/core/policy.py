"""The execution policy of a Freqtrade bot, compiled once: the backtester's kernel inlines
these functions and the strategy calls them through :mod:`asmm.freqtrade.policy`, which
translates its enums and datetimes into the codes below. One implementation, so the bot
and its backtest cannot drift apart.

Codes (all floats or bools, what a numba kernel holds):

- a **side** is ``SIDE_LONG`` (+1: buys to enter, the bid) or ``SIDE_SHORT`` (-1: sells to
  enter, the ask); ``SIDE_NONE`` (0) where there is none yet (no entry filled);
- a **flat-side rule** is a side (always enter that way) or ``FLAT_ALTERNATE`` (0).

Units follow docs/design.md: time in seconds (epoch for instants), inventory in lots.
"""

from __future__ import annotations

import math

import numba

from asmm.core.enums import FlatSide, Side

SIDE_LONG, SIDE_SHORT, SIDE_NONE = 1.0, -1.0, 0.0
FLAT_ALTERNATE = 0.0
SIDE_CODE = {Side.LONG: SIDE_LONG, Side.SHORT: SIDE_SHORT}
FLAT_SIDE_CODE = {FlatSide.ALTERNATE: FLAT_ALTERNATE, FlatSide.LONG: SIDE_LONG,
                  FlatSide.SHORT: SIDE_SHORT}

# A zero tau would collapse the A–S inventory term exactly at the session boundary.
TAU_FLOOR = 1e-3


@numba.njit(cache=True)
def flat_side(rule, last_entry):
    """The side (+1 long, -1 short) a flat ping-pong bot quotes.

    ``rule``: a flat-side rule code; ``last_entry``: the side of the last filled entry, or
    ``SIDE_NONE``. Alternating (rule 0) enters opposite to the last entry, long first:
    each round trip earns the spread whichever way it goes, and alternating keeps the
    exposure to the drift zero on average where a fixed side would be a directional bet.
    """
    if rule != FLAT_ALTERNATE:
        return rule
    return SIDE_SHORT if last_entry > 0.0 else SIDE_LONG


@numba.njit(cache=True)
def pricing_q(one_of_pair, own_q, net_q, is_entry):
    """The inventory (lots) an order is priced for.

    One bot: its own, which is the net. A bot of a long/short pair: an exit prices with the
    pair's net inventory ``net_q``; an entry rests on the same side as the other bot's exit,
    so it prices with its own bot's ``own_q`` (the net once that exit has filled). Priced
    alike, both would rest at one price and one sweep would fill two lots.
    """
    if one_of_pair and is_entry:
        return own_q
    return net_q


@numba.njit(cache=True)
def tau_seconds(t, horizon):
    """Seconds from epoch time ``t`` to the next multiple of ``horizon`` (s, > 0): sessions
    tile time from 00:00 UTC, so 86400 ends them at the end of the UTC day. At least
    ``TAU_FLOOR``. ``floor`` rather than ``%``: a compiled fmod of an epoch time is slow."""
    left = horizon - (t - math.floor(t / horizon) * horizon)
    return max(left, TAU_FLOOR)
