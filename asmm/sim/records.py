"""What the backtest kernel reads and writes, by name: one record type per thing it holds,
each field with its unit and meaning.

The records are numpy structured dtypes (numba record arrays, as hftbacktest's
``hftbacktest.types`` does): the kernel reads ``account.pos``, not column 0 of a float
array, so reordering a record cannot silently swap two quantities. Aligned, so each field
is one aligned load, as fast as the plain float arrays it replaces.

Units (docs/design.md): prices in quote currency, sizes in coin, time in seconds (epoch for
instants), inventory in lots (position / order size), fees as fractions of notional.
Sides are +1 (a bid, buying) and -1 (an ask, selling).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from asmm.core.params_blocks import MAX_MICROPRICE_BUCKETS
from asmm.core.policy import SIDE_NONE

# Execution modes (asmm.core.enums.Execution) and queue models (Queue) as the kernel codes.
EXEC_TWO_SIDED, EXEC_FREQTRADE, EXEC_PAIR = 0, 1, 2
QUEUE_NONE, QUEUE_PROB = 0, 1
# What an order is for: both quotes of two-sided execution, or a bot's entry then its exit.
ROLE_QUOTE, ROLE_ENTRY, ROLE_EXIT = 0, 1, 2
# Fill rules (asmm.core.enums.FillRule) as the kernel codes them.
RULE_EXCHANGE, RULE_TRADES, RULE_DRY_RUN = 0, 1, 2
# How a fill came about (FILL.how): a trade reached the order, the opposite best price
# reached it (the book moved through it), or Freqtrade's dry-run found the book crossing it.
HOW_TRADE, HOW_BOOK_THROUGH, HOW_DRY_RUN_CROSS = 0, 1, 2
HOW_NAMES = ("trade", "book-through", "dry-run-cross")  # by code


PARAMS = np.dtype([
    # One strategy configuration: what asmm.sim.engine.BacktestConfig asks for.
    ("model", "i8"),               # code: asmm.core.model.MODEL_AS | MODEL_GLFT
    ("time_dependent", "?"),       # tau matters (A–S): re-quote at every refresh
    ("sigma", "f8"),               # price / sqrt(s): volatility of the mid
    ("gamma", "f8"),               # 1 / price: risk aversion
    ("A_bid", "f8"),               # 1/s: fill intensity at zero depth, bid side
    ("k_bid", "f8"),               # 1 / price: decay of the intensity with depth, bid side
    ("A_ask", "f8"),               # 1/s, ask side
    ("k_ask", "f8"),               # 1 / price, ask side
    ("horizon", "f8"),             # s: tau runs down to the next multiple in epoch time
    ("quote_fee", "f8"),           # fraction of notional added to each quoted depth
    ("tick", "f8"),                # price grid; 0: no rounding
    ("max_inventory", "f8"),       # lots: the bound Q applied when quoting
    ("min_spread", "f8"),          # price: a narrower quote is widened about its centre
    ("max_improve_ticks", "f8"),   # ticks a quote may improve on the touch (inf: any)
    ("order_size", "f8"),          # coin: one lot, the size of every order
    ("refresh", "f8"),             # s: decisions on multiples of it (epoch time)
    ("latency", "f8"),             # s: from a decision to its order action at the exchange
    ("reaction", "f8"),            # s: freqtrade modes: a bot decides no sooner after its fill
    ("requote_gap", "f8"),         # s: freqtrade modes: a re-priced order's replacement
                                   #    arrives this long after its cancel
    ("maker_fee", "f8"),           # fraction of notional charged on every resting fill
    ("taker_fee", "f8"),           # fraction of notional: a dry-run order crossing on arrival
    ("fill_rule", "i8"),           # code: RULE_EXCHANGE | RULE_TRADES | RULE_DRY_RUN
    ("execution", "i8"),           # code: EXEC_TWO_SIDED | EXEC_FREQTRADE | EXEC_PAIR
    ("flat_side", "f8"),           # asmm.core.policy flat-side rule: side, or 0 alternate
    ("queue", "i8"),               # code: QUEUE_NONE (fill on touch) | QUEUE_PROB
    ("queue_power", "f8"),         # exponent n of the cancellation split front^n/(f^n+b^n)
    ("micro_buckets", "i8"),       # imbalance buckets of the microprice table; 0: quote the mid
    ("micro_adj", "f8", (MAX_MICROPRICE_BUCKETS,)),  # price: the mid's move per bucket
], align=True)

ACCOUNT = np.dtype([
    # One configuration's accounting, statistics and strategy state, updated in place.
    ("pos", "f8"),                 # coin, signed: the position
    ("cash", "f8"),                # quote: cash flow of all fills, fees included
    ("fees", "f8"),                # quote: maker fees paid (negative: rebates earned)
    ("realised", "f8"),            # quote: PnL of closed lots against the average cost
    ("avg_cost", "f8"),            # price: average entry of the open position (0 flat)
    ("n_bid", "i8"),               # fills of our bids (partial fills count)
    ("n_ask", "i8"),               # fills of our asks
    ("n_book_through", "i8"),      # fills of either side with how HOW_BOOK_THROUGH
    ("n_dry_run_cross", "i8"),     # fills of either side with how HOW_DRY_RUN_CROSS
    ("orders", "i8"),              # orders that started resting (the last order's id)
    ("vol_bid", "f8"),             # coin bought
    ("vol_ask", "f8"),             # coin sold
    ("captured_bp", "f8"),         # bp: sum over fills of the distance to the mid, signed
    ("inv_int", "f8"),             # lot·s: integral of the inventory over time
    ("inv_int2", "f8"),            # lot²·s: integral of its square
    ("t_bound", "f8"),             # s: time with |inventory| at the bound
    ("max_abs_q", "f8"),           # lots: largest |inventory| after a fill
    ("settled_t", "f8"),           # s: time the integrals run to
    ("peak", "f8"),                # quote: highest equity marked to the mid so far
    ("max_drawdown", "f8"),        # quote: largest fall from the peak
    ("rejects", "i8"),             # post-only orders rejected for crossing the book
    ("quote_updates", "i8"),       # decisions that computed quotes
    ("max_live", "i8"),            # most orders resting at once
    ("next_decision", "f8"),       # s: local time of the next decision (inf: none)
    ("known_bid", "f8"),           # price: the BBO the strategy knows (NaN: none yet)
    ("known_ask", "f8"),           # price
    ("known_bid_size", "f8"),      # coin at the known best bid (the microprice's imbalance)
    ("known_ask_size", "f8"),      # coin at the known best ask
    ("quoted_bid", "f8"),          # price: the known BBO the last quotes were computed on
    ("quoted_ask", "f8"),          # price
    ("quoted_ref", "f8"),          # price: the reference (mid or microprice) quoted around
    ("fills_seen", "i8"),          # fills at the last decision; -1: re-quote next time
    ("last_entry", "f8"),          # side of the last filled entry (0: none yet)
    ("ring_head", "i8"),           # index of the oldest pending action in the ring
    ("ring_len", "i8"),            # pending actions in flight
    ("feed_next", "i8"),           # index of the first BBO the strategy does not know yet
    ("sample_next", "i8"),         # index of the next equity sample
    ("n_recorded", "i8"),          # fills written to the fill records
], align=True)

SLOT = np.dtype([
    # One of a configuration's two order slots: each holds at most one resting order.
    # Two-sided: slot 0 the bid, slot 1 the ask; freqtrade: slot 0 the bot; pair: slot 0
    # the long-only bot, slot 1 the short-only bot.
    ("active", "?"),               # an order rests at the exchange
    ("side", "f8"),                # +1 bid, -1 ask
    ("price", "f8"),               # price
    ("remaining", "f8"),           # coin still to fill
    ("ahead", "f8"),               # coin queued ahead of the order (QUEUE_PROB)
    ("traded", "f8"),              # coin traded at its price since the last BBO change
    ("role", "i8"),                # ROLE_* of the resting order
    ("order", "i8"),               # id of the resting order: ACCOUNT.orders when it arrived
    ("pending", "i8"),             # actions for this slot still in flight
    ("want_side", "f8"),           # the last action sent: side,
    ("want_price", "f8"),          # price (NaN: cancel),
    ("want_role", "i8"),           # and role
    ("bot_pos", "f8"),             # coin, signed: this bot's position (freqtrade modes)
    ("phase", "i8"),               # ROLE_ENTRY | ROLE_EXIT: what the bot does next
    ("blind_until", "f8"),         # s: the bot has not seen its last fill before this
], align=True)

ACTION = np.dtype([
    # An order action on its way to the exchange (a FIFO ring per configuration).
    ("t", "f8"),                   # s: arrival at the exchange
    ("slot", "i8"),                # the slot it replaces the order of
    ("side", "f8"),                # +1 bid, -1 ask
    ("price", "f8"),               # price; NaN cancels
    ("role", "i8"),                # ROLE_*
], align=True)

FILL = np.dtype([
    # A fill of one of our orders, with the account right after it.
    ("t", "f8"),                   # s: exchange time of the trade
    ("side", "f8"),                # +1 our bid filled, -1 our ask
    ("price", "f8"),               # price: our order's, never the trade's
    ("qty", "f8"),                 # coin
    ("fee", "f8"),                 # quote
    ("position", "f8"),            # coin, signed
    ("mid", "f8"),                 # price: exchange mid (the trade's price if unknown)
    ("cash", "f8"),                # quote
    ("realised", "f8"),            # quote, before fees
    ("avg_cost", "f8"),            # price
    ("how", "i8"),                 # HOW_TRADE | HOW_BOOK_THROUGH | HOW_DRY_RUN_CROSS
    ("order", "i8"),               # id of the order filled (SLOT.order)
], align=True)

MARKOUT = np.dtype([
    # Markouts (asmm.sim.markouts) of one kind of fill at one horizon, summed in the kernel
    # so that a grid run without fill records still reports them.
    ("sum_bp", "f8"),              # bp: sum over fills of side * (mid(t + h) - price) / price
    ("n", "i8"),                   # fills whose horizon the data covers
], align=True)

SAMPLE = np.dtype([
    # The account on a regular time grid (NaN where the market was not known yet).
    ("equity", "f8"),              # quote: cash + position marked to the exchange mid
    ("inventory", "f8"),           # lots
    ("mid", "f8"),                 # price: exchange mid
    ("bid", "f8"),                 # price: our best resting bid (NaN: none)
    ("ask", "f8"),                 # price: our best resting ask (NaN: none)
    ("fees", "f8"),                # quote: paid so far
], align=True)

MARKET = np.dtype([
    # The exchange's truth, shared by all configurations (one record).
    ("bid", "f8"),                 # price: best bid
    ("ask", "f8"),                 # price: best ask
    ("bid_size", "f8"),            # coin at the best bid
    ("ask_size", "f8"),            # coin at the best ask
    ("book_next", "i8"),           # index of the first L2 snapshot not yet applied
], align=True)


class Tape(NamedTuple):
    """The market events the kernel replays: the arrays of :class:`asmm.sim.events.Events`
    (see there for units), by the same names."""

    t: np.ndarray
    kind: np.ndarray
    side: np.ndarray
    price: np.ndarray
    size: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    feed_t: np.ndarray
    feed_bid: np.ndarray
    feed_ask: np.ndarray
    feed_bid_size: np.ndarray
    feed_ask_size: np.ndarray
    book_t: np.ndarray
    book_bid_px: np.ndarray
    book_bid_sz: np.ndarray
    book_ask_px: np.ndarray
    book_ask_sz: np.ndarray


class Clock(NamedTuple):
    """The run's timetable (epoch s)."""

    sample0: float    # first equity sample
    sample_dt: float  # between samples
    end: float        # no decision after it


class Ledger(NamedTuple):
    """Where fills are booked: the fill records and markout sums of the ``K``
    configurations, and the mid they are marked against.

    A tuple of its own, so that the functions that book a fill take six arrays: numba
    counts a reference to every array of each tuple an inlined function takes, each time
    it runs, and passing the whole tape and state there made the backtest 40 % slower.
    """

    fills: np.ndarray      # (K, fill_cap) FILL
    marks: np.ndarray      # (K, 3 hows, 2 sides: bid then ask, n_horizons) MARKOUT
    cursor: np.ndarray     # (n_horizons,) int64: where in mid_t each horizon last looked
    mid_t: np.ndarray      # s: exchange time of each BBO state (Events.mids)
    mid: np.ndarray        # price: the exchange mid from that time on
    horizons: np.ndarray   # s: the markout horizons (asmm.sim.markouts.HORIZONS)


class State(NamedTuple):
    """Everything a run updates in place, so a long run can be advanced in chunks.

    ``K`` configurations: ``account`` (K,) ACCOUNT; ``slots`` (K, 2) SLOT; ``ring``
    (K, ring_cap) ACTION; ``samples`` (K, n_samples) SAMPLE; ``market`` (1,) MARKET;
    ``ledger`` the fills and their markouts (:class:`Ledger`).
    """

    account: np.ndarray
    slots: np.ndarray
    ring: np.ndarray
    samples: np.ndarray
    market: np.ndarray
    ledger: Ledger


def tape_of(events) -> Tape:
    """The kernel's view of an :class:`asmm.sim.events.Events`."""
    return Tape(*(getattr(events, name) for name in Tape._fields))


def new_state(par: np.ndarray, t_start: float, ring_cap: int, fill_cap: int,
              n_samples: int, mids: tuple[np.ndarray, np.ndarray],
              horizons: np.ndarray) -> State:
    """Fresh state for the configurations ``par`` ((K,) PARAMS) starting at ``t_start``
    (epoch s): flat, nothing resting, nothing known, the first decision at the first
    refresh from ``t_start``; room for ``fill_cap`` fill records each, markouts at
    ``horizons`` (s) against ``mids`` (:meth:`asmm.sim.events.Events.mids`)."""
    K = par.shape[0]
    account = np.zeros(K, ACCOUNT)
    ref = par["refresh"]
    account["next_decision"] = np.ceil(t_start / ref) * ref
    account["known_bid"] = account["known_ask"] = np.nan
    account["known_bid_size"] = account["known_ask_size"] = np.nan
    account["settled_t"] = t_start
    account["fills_seen"] = -1
    account["last_entry"] = SIDE_NONE
    slots = np.zeros((K, 2), SLOT)
    slots["phase"] = ROLE_ENTRY
    slots["want_price"] = np.nan
    ring = np.zeros((K, ring_cap), ACTION)
    samples = np.full((K, n_samples), np.nan, SAMPLE)
    market = np.zeros(1, MARKET)
    market[["bid", "ask", "bid_size", "ask_size"]] = np.nan
    n_h = horizons.size
    ledger = Ledger(np.zeros((K, fill_cap), FILL),
                    np.zeros((K, len(HOW_NAMES), 2, n_h), MARKOUT),
                    np.zeros(n_h, np.int64), *mids, horizons)
    return State(account, slots, ring, samples, market, ledger)
