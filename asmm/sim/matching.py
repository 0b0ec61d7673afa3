"""The simulated exchange: order actions arriving, fills under the three fill rules, queue
position, and the booking of each fill. numba-compiled; called by the event loop in
:mod:`asmm.sim.kernel`. One order's rule, event by event, is :mod:`asmm.sim.rules`, which
the paper exchange applies too.

Each function works on one configuration, ``c``: ``a`` its ACCOUNT record, ``p`` its PARAMS
record, ``slots`` its two SLOT records, ``ring`` its ACTION records; ``m`` is the shared
MARKET record, ``tape`` the market events and ``led`` the :class:`~asmm.sim.records.Ledger`
that fills are booked in (:mod:`asmm.sim.records` lists the fields and their units).
Records are references: the functions update them in place. The per-event handlers
(``on_trade``, ``on_bbo_queue``, ``on_book``) are inlined into the loop: as calls (passing
the whole tape) the benchmark ran 3-6 % slower; ``on_bbo_through`` runs only when
``reached`` finds an order the book moved through, and is a call.

Fill rules (``PARAMS.fill_rule``, :class:`asmm.core.enums.FillRule`); every fill is at the
order's own price and records how it came about (``FILL.how``):

- ``RULE_EXCHANGE``: from trades as ``RULE_TRADES``, and, whole, when the opposite best price
  reaches the order's price (``reached``, ``on_bbo_through``): on an exchange it would have
  been traded with, since the book cannot rest crossed (hftbacktest's exchange models fill
  the same way);
- ``RULE_TRADES``: only from an aggressor trading through the order (certain) or at its price
  (after the volume queued ahead under ``QUEUE_PROB``), at most the trade's size, shared
  between the configuration's orders;
- ``RULE_DRY_RUN``: as Freqtrade's dry-run (freqtrade/exchange/exchange.py,
  ``create_dry_run_order``, ``check_dry_limit_order_filled``, ``_dry_is_price_crossed``): a
  limit buy fills, whole, when the best ask is at or below its price (a sell when the best
  bid is at or above it), checked when the order is placed (then at the taker fee, as
  Freqtrade charges an immediate fill) and at each loop of the bot (``dry_run_check``,
  called by the event loop at each decision); never from trades, no queue.

Modelling rules (documented simplifications):

- the recorded market does not react to our orders;
- orders are post-only (Hyperliquid ALO) under the exchange and trades rules: one that
  would cross the book on arrival is rejected, not turned into a taker fill; Freqtrade's
  dry-run has no post-only and fills it (a limit crossing by more than 1 %, which Freqtrade
  turns into a market order, is filled at its limit too: quotes from a BBO one latency old
  do not cross by 1 %);
- the strategy hears of its fills and rejects at once (the private channel is the fastest).
"""

from __future__ import annotations

import math

import numba

from asmm.sim.markouts import add_markouts
from asmm.sim.records import (
    EXEC_TWO_SIDED,
    HOW_BOOK_THROUGH,
    HOW_DRY_RUN_CROSS,
    HOW_TRADE,
    QUEUE_PROB,
    ROLE_ENTRY,
    ROLE_EXIT,
    RULE_DRY_RUN,
)
from asmm.sim.rules import crossed, queue_on_touch, same_px, touch_queue, trade_fill


@numba.njit(cache=True, inline="always")
def wake(a, t, refresh):
    """Make sure the strategy decides at the first refresh (s) strictly after ``t`` (s)."""
    nd = (math.floor(t / refresh) + 1.0) * refresh
    if nd < a.next_decision:
        a.next_decision = nd


@numba.njit(cache=True, inline="always")
def wake_by(a, t, refresh):
    """Make sure the strategy decides at the first refresh (s) at or after ``t`` (s): a
    decision at ``t`` itself runs after the market events at ``t`` (kernel order rules)."""
    nd = math.ceil(t / refresh) * refresh
    if nd < t:  # float rounding must not put the decision before the event
        nd += refresh
    if nd < a.next_decision:
        a.next_decision = nd


@numba.njit(cache=True, inline="always")
def track_drawdown(a, equity):
    """Update the peak and the largest fall from it with ``equity`` (quote)."""
    if equity > a.peak:
        a.peak = equity
    dd = a.peak - equity
    if dd > a.max_drawdown:
        a.max_drawdown = dd


@numba.njit(cache=True)
def settle_inventory(a, t, qmax, size):
    """Integrate the inventory (lots: position / ``size`` coin) over time up to ``t`` (s):
    its integral, the integral of its square, and the time at the bound ``qmax`` (lots)."""
    dt = t - a.settled_t
    if dt > 0.0:
        q = a.pos / size
        a.inv_int += q * dt
        a.inv_int2 += q * q * dt
        if abs(q) >= qmax - 1e-9:
            a.t_bound += dt
        a.settled_t = t


@numba.njit(cache=True, inline="always")
def queue_ahead(side, px, m, tape):
    """Volume (coin) ahead of a new order at ``px`` on ``side`` (+1 bid): the touch's
    (:func:`asmm.sim.rules.touch_queue`), else the level's size in the last L2 snapshot (0
    when no snapshot lists that price: an empty level)."""
    ahead = touch_queue(side, px, m.bid, m.ask, m.bid_size, m.ask_size)
    if ahead == ahead:
        return ahead
    if m.book_next == 0:
        return 0.0
    j = m.book_next - 1
    for d in range(tape.book_bid_px.shape[1]):
        lv = tape.book_bid_px[j, d] if side > 0 else tape.book_ask_px[j, d]
        if lv == lv and same_px(px, lv):
            return tape.book_bid_sz[j, d] if side > 0 else tape.book_ask_sz[j, d]
    return 0.0


@numba.njit(cache=True)
def fill(a, p, sl, qty, t, mid, how, fee_rate, led, c):
    """Book a fill of ``qty`` coin of slot ``sl``'s order at time ``t`` (s), the exchange mid
    being ``mid``, that came about ``how`` (HOW_*), at the fee ``fee_rate`` (fraction of
    notional): cash, position, average cost, realised PnL, fee, statistics, markouts, the
    fill record (while there is room), then the order and the bot's phase."""
    side = sl.side
    px = sl.price
    size = p.order_size
    settle_inventory(a, t, p.max_inventory, size)
    fee = fee_rate * px * qty
    pos0 = a.pos
    if pos0 == 0.0 or (pos0 > 0.0) == (side > 0.0):
        a.avg_cost = (a.avg_cost * abs(pos0) + px * qty) / (abs(pos0) + qty)
    else:
        closing = min(qty, abs(pos0))
        a.realised += closing * (px - a.avg_cost) * (1.0 if pos0 > 0.0 else -1.0)
        if qty > abs(pos0):
            a.avg_cost = px
    pos = pos0 + side * qty
    # Lots are fractions of the order size; a float residue of a round trip is flat.
    if abs(pos) < 1e-9 * size:
        pos = 0.0
        a.avg_cost = 0.0
    a.pos = pos
    a.cash -= side * qty * px + fee
    a.fees += fee
    if side > 0.0:
        a.n_bid += 1
        a.vol_bid += qty
        a.captured_bp += (mid - px) / mid * 1e4
    else:
        a.n_ask += 1
        a.vol_ask += qty
        a.captured_bp += (px - mid) / mid * 1e4
    if how == HOW_BOOK_THROUGH:
        a.n_book_through += 1
    elif how == HOW_DRY_RUN_CROSS:
        a.n_dry_run_cross += 1
    add_markouts(led.marks[c, how, 0 if side > 0.0 else 1], side, px, t, led.mid_t, led.mid,
                 led.horizons, led.cursor)
    q = abs(pos) / size
    if q > a.max_abs_q:
        a.max_abs_q = q
    track_drawdown(a, a.cash + pos * mid)
    k = a.n_recorded
    if k < led.fills.shape[1]:
        f = led.fills[c, k]
        f.t, f.side, f.price, f.qty, f.fee, f.position = t, side, px, qty, fee, pos
        f.mid, f.cash, f.realised, f.avg_cost = mid, a.cash, a.realised, a.avg_cost
        f.how, f.order = how, sl.order
        a.n_recorded = k + 1
    wake(a, t, p.refresh)
    if p.execution != EXEC_TWO_SIDED:
        sl.blind_until = t + p.reaction
    # Order and bot bookkeeping.
    sl.remaining -= qty
    done = sl.remaining <= 1e-9 * size
    if done:
        sl.active = False
        sl.remaining = 0.0
    if p.execution != EXEC_TWO_SIDED:
        sl.bot_pos += side * qty
        if abs(sl.bot_pos) < 1e-9 * size:
            sl.bot_pos = 0.0
        if sl.phase == ROLE_ENTRY and done:
            sl.phase = ROLE_EXIT
            a.last_entry = side
        elif sl.phase == ROLE_EXIT and sl.bot_pos == 0.0:
            sl.phase = ROLE_ENTRY


@numba.njit(cache=True, inline="always")
def arrive(a, p, slots, ring, m, tape):
    """The oldest pending action reaches the exchange: the slot's order is replaced (or
    cancelled, or kept when the same order already rests), a crossing one rejected
    (post-only). Returns the slot of an order that crosses the book as it is placed under
    ``RULE_DRY_RUN``, which the caller fills at once; -1 otherwise."""
    k = a.ring_head
    a.ring_head = (k + 1) % ring.size
    a.ring_len -= 1
    act = ring[k]
    sl = slots[act.slot]
    side, px, role = act.side, act.price, act.role
    sl.pending -= 1
    size = p.order_size
    if p.execution == EXEC_TWO_SIDED:
        qty = size
    else:
        # Freqtrade cancels before it replaces; if the order filled meanwhile the bot has
        # moved to the next phase and this stale instruction is dropped.
        if role != sl.phase:
            return -1
        qty = size - abs(sl.bot_pos) if role == ROLE_ENTRY else abs(sl.bot_pos)
    if px != px or qty <= 1e-9 * size:
        sl.active = False
        return -1
    if sl.active and sl.side == side and sl.price == px:
        sl.role = role
        return -1
    # Post-only: the old order is cancelled either way.
    dry_run = p.fill_rule == RULE_DRY_RUN
    if not dry_run and crossed(side, px, m.bid, m.ask):
        sl.active = False
        a.rejects += 1
        a.fills_seen = -1  # re-quote at the next refresh even if nothing moved
        wake(a, act.t, p.refresh)
        return -1
    a.orders += 1
    sl.order = a.orders
    sl.active = True
    sl.side = side
    sl.price = px
    sl.remaining = qty
    sl.role = role
    sl.traded = 0.0
    sl.ahead = queue_ahead(side, px, m, tape) if p.queue == QUEUE_PROB else 0.0
    # Orders only ever start resting here, so this sees the most that ever rest at once.
    live = int(slots[0].active) + int(slots[1].active)
    if live > a.max_live:
        a.max_live = live
    return act.slot if dry_run and crossed(side, px, m.bid, m.ask) else -1


@numba.njit(cache=True, inline="always")
def meets(slots, c, tside, tpx):
    """Whether a trade (aggressor ``tside``, price ``tpx``) reaches a resting order of
    configuration ``c`` (``slots``: (K, 2) SLOT) at or through its price — whether
    ``on_trade`` has anything to do; asked first for the reason ``reached`` is."""
    for s in range(2):
        sl = slots[c, s]
        if sl.active and sl.side == -tside:
            px = sl.price
            if same_px(tpx, px) or (tside < 0 and tpx < px) or (tside > 0 and tpx > px):
                return True
    return False


@numba.njit(cache=True, inline="always")
def on_trade(a, p, slots, tside, tpx, tsz, t, mid, led, c):
    """Match one trade (aggressor side ``tside`` +1 buy, price ``tpx``, ``tsz`` coin, time
    ``t`` s) against the configuration's resting orders (exchange and trades rules) by
    :func:`asmm.sim.rules.trade_fill`; the trade's size is shared between the orders."""
    left = tsz
    prob = p.queue == QUEUE_PROB
    for s in range(2):
        if left <= 0.0:
            return
        sl = slots[s]
        if not sl.active:
            continue
        qty, sl.ahead, sl.traded = trade_fill(sl.side, sl.price, sl.remaining, sl.ahead,
                                              sl.traded, prob, tside, tpx, left)
        if qty > 0.0:
            left -= qty
            fill(a, p, sl, qty, t, mid, HOW_TRADE, p.maker_fee, led, c)


@numba.njit(cache=True)
def on_bbo_through(a, p, slots, m, t, mid, led, c):
    """Exchange rule, after the touch moved to ``m`` at ``t`` (s): a resting order the
    opposite best price reached was traded with (the book cannot rest crossed), whole and
    at its price, whatever the queue; ``mid`` is the mid before the move, as a trade's fill
    is booked at the mid before the trade."""
    for s in range(2):
        sl = slots[s]
        if sl.active and crossed(sl.side, sl.price, m.bid, m.ask):
            fill(a, p, sl, sl.remaining, t, mid, HOW_BOOK_THROUGH, p.maker_fee, led, c)


@numba.njit(cache=True, inline="always")
def reached(slots, c, m):
    """Whether the touch ``m`` reaches a resting order of configuration ``c`` (``slots``:
    every configuration's SLOT records, (K, 2)). The event loop asks this at each BBO state
    before it takes the configuration's views (``slots[c]``, ``fills[c]``, ...), which cost
    far more than the test: taken at every event (BBO state, and trade for ``on_trade``),
    they made a run with 5 s re-quotes 3.5 times slower (benchmarks/README.md)."""
    for s in range(2):
        sl = slots[c, s]
        if sl.active and crossed(sl.side, sl.price, m.bid, m.ask):
            return True
    return False


@numba.njit(cache=True)
def dry_run_check(a, p, slots, m, T, led, c):
    """Dry-run rule, at the bot's loop at ``T`` (s): an open order the exchange's book
    crosses fills, whole, at its price and the maker fee (Freqtrade's
    ``check_dry_limit_order_filled`` from ``fetch_order``, called for each open order by
    ``manage_open_orders`` before the strategy re-prices)."""
    for s in range(2):
        sl = slots[s]
        if sl.active and crossed(sl.side, sl.price, m.bid, m.ask):
            fill(a, p, sl, sl.remaining, T, 0.5 * (m.bid + m.ask), HOW_DRY_RUN_CROSS,
                 p.maker_fee, led, c)


@numba.njit(cache=True, inline="always")
def on_bbo_queue(slots, m, tape, i, power):
    """Probabilistic queue update when the touch changes from ``m`` to BBO event ``i``
    (:func:`asmm.sim.rules.queue_on_touch`)."""
    for s in range(2):
        sl = slots[s]
        if not sl.active:
            continue
        if sl.side > 0.0:
            old_px, old_sz, new_px, new_sz = m.bid, m.bid_size, tape.bid[i], tape.bid_size[i]
        else:
            old_px, old_sz, new_px, new_sz = m.ask, m.ask_size, tape.ask[i], tape.ask_size[i]
        sl.ahead, sl.traded = queue_on_touch(sl.side, sl.price, sl.ahead, sl.traded, old_px,
                                             old_sz, new_px, new_sz, power)


@numba.njit(cache=True, inline="always")
def on_book(slots, tape, j):
    """L2 snapshot ``j`` caps the volume ahead of orders resting behind the touch."""
    for s in range(2):
        sl = slots[s]
        if not sl.active:
            continue
        bid_side = sl.side > 0.0
        for d in range(tape.book_bid_px.shape[1]):
            lv = tape.book_bid_px[j, d] if bid_side else tape.book_ask_px[j, d]
            if lv == lv and same_px(sl.price, lv):
                sz = tape.book_bid_sz[j, d] if bid_side else tape.book_ask_sz[j, d]
                sl.ahead = min(sl.ahead, sz)
                break
