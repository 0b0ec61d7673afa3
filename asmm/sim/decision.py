"""The strategy's decision at each refresh: the quotes of :func:`asmm.core.model.quote_scalar`
and the order actions the execution mode implies, under the bot's execution policy
(:mod:`asmm.core.policy`, the functions the Freqtrade strategy runs). numba-compiled; called
by the event loop in :mod:`asmm.sim.kernel`.

Arguments as in :mod:`asmm.sim.matching`: ``a`` ACCOUNT, ``p`` PARAMS, ``slots`` the two SLOT
records, ``ring`` the ACTION ring of one configuration (fields and units in
:mod:`asmm.sim.records`); ``T`` is the decision's local time (epoch s).

Modelling rules (documented simplifications):

- the strategy sees the BBO only from its known time (``Events.feed_t``) and does not
  re-quote on a crossed or unknown book;
- quotes centre on the mid, or with a microprice table on the mid plus the table's move
  for the known touch sizes' imbalance (:func:`asmm.core.reference.adjustment`, as the bot);
- the inventory bound is applied when quoting (by ``quote_scalar``), so fills of orders
  already resting or in flight can overshoot it by up to a lot;
- an action reaches the exchange ``latency`` after the decision that sent it;
- freqtrade modes, Freqtrade's cadence: a bot decides no sooner than ``reaction`` after
  its order filled (it has not seen the fill), and re-prices a resting order by a cancel
  whose replacement arrives ``requote_gap`` after it (the order is off the book meanwhile).
  The decision after a fill comes ``reaction`` after it exactly, off the refresh grid:
  Freqtrade's loop runs when the last one's requests are done. Both 0: an ideal bot,
  which sees a fill at its next refresh and replaces atomically.
"""

from __future__ import annotations

import math

import numba

from asmm.core.model import quote_scalar
from asmm.core.policy import flat_side, pricing_q, tau_seconds
from asmm.core.reference import adjustment
from asmm.sim.records import (
    EXEC_FREQTRADE,
    EXEC_TWO_SIDED,
    ROLE_ENTRY,
    ROLE_EXIT,
    ROLE_QUOTE,
)


@numba.njit(cache=True, inline="always")
def _quote(p, mid, q, tau, known_bid, known_ask):
    """(bid, ask) prices of configuration ``p`` at inventory ``q`` (lots), NaN: none."""
    return quote_scalar(p.model, mid, q, tau, p.sigma, p.gamma, p.A_bid, p.k_bid, p.A_ask,
                        p.k_ask, p.quote_fee, p.tick, p.max_inventory, p.min_spread,
                        known_bid, known_ask, p.max_improve_ticks)


@numba.njit(cache=True, inline="always")
def _send(a, ring, s, side, px, role, t):
    """Queue an action for slot ``s`` arriving at ``t`` (s), kept in arrival order."""
    cap = ring.size
    if a.ring_len == cap:
        # The engine sizes the ring for the actions a refresh can have in flight (latency,
        # re-pricing gap); reaching it is a bug, not a market event.
        raise RuntimeError("backtest kernel: pending-order ring full")
    if a.ring_len > 0:
        t = max(t, ring[(a.ring_head + a.ring_len - 1) % cap].t)
    act = ring[(a.ring_head + a.ring_len) % cap]
    act.t = t
    act.slot = s
    act.side = side
    act.price = px
    act.role = role
    a.ring_len += 1


@numba.njit(cache=True, inline="always")
def want(a, p, slots, ring, s, side, px, role, T):
    """Ask for slot ``s`` to hold (side, px, role) — NaN ``px`` for none — unless that is
    already resting or on its way; the action reaches the exchange after the latency (a
    re-pricing of a resting order in the freqtrade modes: a cancel then, the replacement
    ``requote_gap`` later)."""
    sl = slots[s]
    if sl.pending > 0:
        wpx = sl.want_price
        same = (sl.want_side == side and sl.want_role == role
                and ((px != px and wpx != wpx) or wpx == px))
    elif sl.active:
        same = sl.side == side and sl.price == px and sl.role == role
    else:
        same = px != px
    if same:
        return
    t = T + p.latency
    if p.requote_gap > 0.0 and p.execution != EXEC_TWO_SIDED and sl.active and px == px:
        _send(a, ring, s, sl.side, math.nan, sl.role, t)
        sl.pending += 1
        t += p.requote_gap
    _send(a, ring, s, side, px, role, t)
    sl.pending += 1
    sl.want_side, sl.want_price, sl.want_role = side, px, role


@numba.njit(cache=True, inline="always")
def decide(a, p, slots, ring, tape, T):
    """One refresh at local time ``T``: read the BBO known by then, quote, and send the order
    changes the execution mode implies."""
    while a.feed_next < tape.feed_t.size and tape.feed_t[a.feed_next] <= T:
        a.known_bid = tape.feed_bid[a.feed_next]
        a.known_ask = tape.feed_ask[a.feed_next]
        a.known_bid_size = tape.feed_bid_size[a.feed_next]
        a.known_ask_size = tape.feed_ask_size[a.feed_next]
        a.feed_next += 1
    kb, ka = a.known_bid, a.known_ask
    if not kb < ka:  # unknown (NaN) or crossed: keep what rests
        return
    mid = 0.5 * (kb + ka) + adjustment(a.known_bid_size, a.known_ask_size, p.micro_adj,
                                       p.micro_buckets)
    # Without a new touch price, reference or fill a time-independent model quotes what it
    # quoted last time (the order statuses it would compare change only on fills and rejects).
    n_fills = a.n_bid + a.n_ask
    if (not p.time_dependent and a.fills_seen == n_fills and kb == a.quoted_bid
            and ka == a.quoted_ask and mid == a.quoted_ref):
        return
    a.fills_seen = n_fills
    a.quoted_bid = kb
    a.quoted_ask = ka
    a.quoted_ref = mid
    size = p.order_size
    q = a.pos / size
    tau = tau_seconds(T, p.horizon) if p.time_dependent else 0.0  # A–S only
    bid, ask = _quote(p, mid, q, tau, kb, ka)
    a.quote_updates += 1
    if p.execution == EXEC_TWO_SIDED:
        want(a, p, slots, ring, 0, 1.0, bid, ROLE_QUOTE, T)
        want(a, p, slots, ring, 1, -1.0, ask, ROLE_QUOTE, T)
    elif p.execution == EXEC_FREQTRADE:
        # One bot, one order: its own inventory is the net, so it prices at q.
        sl = slots[0]
        if T < sl.blind_until:
            a.fills_seen = -1  # it has not seen its fill yet: decide once it has
        elif sl.phase == ROLE_EXIT:
            side = -1.0 if sl.bot_pos > 0.0 else 1.0
            want(a, p, slots, ring, 0, side, ask if side < 0.0 else bid, ROLE_EXIT, T)
        else:
            if sl.bot_pos != 0.0:  # a partly filled entry keeps its direction
                side = 1.0 if sl.bot_pos > 0.0 else -1.0
            else:
                side = flat_side(p.flat_side, a.last_entry)
            want(a, p, slots, ring, 0, side, bid if side > 0.0 else ask, ROLE_ENTRY, T)
    else:
        # Slot 0: the long-only bot; slot 1: the short-only bot. An exit prices with the
        # pair's net q, an entry with its own bot's (pricing_q): the quotes at q are reused
        # unless that differs.
        for s in range(2):
            if T < slots[s].blind_until:
                a.fills_seen = -1
                continue
            entry = slots[s].phase == ROLE_ENTRY
            buy = (s == 0) == entry
            px = bid if buy else ask
            q_s = pricing_q(True, slots[s].bot_pos / size, q, entry)
            if q_s != q:
                own_bid, own_ask = _quote(p, mid, q_s, tau, kb, ka)
                px = own_bid if buy else own_ask
            want(a, p, slots, ring, s, 1.0 if buy else -1.0, px,
                 ROLE_ENTRY if entry else ROLE_EXIT, T)
