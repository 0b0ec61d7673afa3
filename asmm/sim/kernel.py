"""The event loop: K strategy configurations simulated in one pass over the market events.

Everything here is numba-compiled. The market (BBO, trades, L2) is shared by all K
configurations, so each event is read once and each configuration reacts to it; per
configuration there are timers (decisions every ``refresh`` seconds, order actions arriving
``latency`` later, equity samples) and the order/position state. The state is named
records (:mod:`asmm.sim.records`); the exchange side is :mod:`asmm.sim.matching`, the
strategy's decision :mod:`asmm.sim.decision`.

Order-of-events rules (each is a documented modelling choice):

- a timer (decision, order arrival, sample) at time ``T`` runs before a market event at
  exchange time ``t`` only if ``T < t``: at equal times the market moves first, so an order
  arriving exactly at a trade's time does not take part in it;
- at one timer time: samples, then order arrivals, then the decision;
- the strategy knows its own fills at once (the private channel is the fastest), the BBO
  only from its known time (``Events.feed_t``);
- the inventory bound is applied when quoting (by ``quote_scalar``), so fills of orders
  already resting or in flight can overshoot it by up to a lot;
- fills follow the configuration's fill rule (:mod:`asmm.sim.matching`): trades, and under
  the exchange rule the book moving through an order, fill at the event's exchange time;
  Freqtrade's dry-run fills at the bot's loop (a decision time), checked before it decides;
- the recorded market does not react to our orders.
"""

from __future__ import annotations

import functools
import hashlib
import math
from pathlib import Path

import numba
import numpy as np

from asmm.core import model, policy, reference
from asmm.sim import decision, events, markouts, matching, records, rules
from asmm.sim.events import KIND_TRADE
from asmm.sim.records import (
    HOW_DRY_RUN_CROSS,
    QUEUE_PROB,
    RULE_DRY_RUN,
    RULE_EXCHANGE,
    RULE_TRADES,
)

# The kernel's compiled code inlines these modules (their functions and constants): numba
# keys each module's cache on its own file only, so a change to any must drop all caches.
_SOURCES = (records, matching, rules, decision, markouts, events, model, policy, reference)
_CACHED = ("kernel", "matching", "rules", "decision", "markouts")


@functools.cache
def drop_stale_cache() -> None:
    """Numba's on-disk cache of a module is keyed on that file only; a cached kernel would
    keep an old :func:`asmm.core.model.quote_scalar` (or policy, matching, ...) inlined
    after its source changes. Keep a hash of all the sources next to the cache and drop the
    cache when it differs.

    An explicit step, once per process, before the kernel is first called (importing a
    module writes nothing): :func:`asmm.sim.engine.run_grid` takes it."""
    here = Path(__file__)
    cache = here.parent / "__pycache__"
    sources = [here, *(Path(m.__file__) for m in _SOURCES)]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    stamp = cache / "kernel.sources.sha256"
    try:
        if stamp.read_text() == digest:
            return
    except OSError:
        pass
    try:
        for name in _CACHED:
            for f in cache.glob(f"{name}.*.nb[ic]"):
                f.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:
        pass  # a read-only install: numba then caches elsewhere or not at all


@numba.njit(cache=True)
def _sample(a, p, slots, m, out):
    """Write the SAMPLE record ``out``: equity marked to the exchange mid, our best quotes."""
    mid = 0.5 * (m.bid + m.ask)
    pos = a.pos
    out.equity = a.cash + (pos * mid if pos != 0.0 else 0.0)
    out.inventory = pos / p.order_size
    out.mid = mid
    out.bid = np.nan
    out.ask = np.nan
    for s in range(2):
        sl = slots[s]
        if sl.active:
            if sl.side > 0.0 and not out.bid >= sl.price:
                out.bid = sl.price
            if sl.side < 0.0 and not out.ask <= sl.price:
                out.ask = sl.price
    out.fees = a.fees
    if mid == mid:
        matching.track_drawdown(a, out.equity)


@numba.njit(cache=True, inline="always")
def _timers(c, t, inclusive, tape, par, clock, st):
    """Run configuration ``c``'s timers due before ``t`` (s; up to and including ``t`` if
    ``inclusive``) in time order: samples, then order arrivals, then decisions."""
    a, p, slots, ring = st.account[c], par[c], st.slots[c], st.ring[c]
    m = st.market[0]
    nsamp = st.samples.shape[1]
    while True:
        tn = a.next_decision
        what = 0
        if a.ring_len > 0 and ring[a.ring_head].t <= tn:
            tn = ring[a.ring_head].t
            what = 1
        if a.sample_next < nsamp:
            ts = clock.sample0 + a.sample_next * clock.sample_dt
            if ts <= tn:
                tn = ts
                what = 2
        if tn > t or (tn == t and not inclusive):
            return
        if what == 2:
            _sample(a, p, slots, m, st.samples[c, a.sample_next])
            a.sample_next += 1
        elif what == 1:
            s = matching.arrive(a, p, slots, ring, m, tape)
            if s >= 0:
                # Freqtrade checks a new dry-run order at once and charges an immediate
                # fill the taker fee (check_dry_limit_order_filled(immediate=True)).
                matching.fill(a, p, slots[s], slots[s].remaining, tn, 0.5 * (m.bid + m.ask),
                              HOW_DRY_RUN_CROSS, p.taker_fee, st.ledger, c)
        else:
            if tn > clock.end:
                a.next_decision = math.inf
                continue
            if p.fill_rule == RULE_DRY_RUN:
                matching.dry_run_check(a, p, slots, m, tn, st.ledger, c)
            decision.decide(a, p, slots, ring, tape, tn)
            ref = p.refresh
            nd = tn + ref
            if not p.time_dependent and a.feed_next < tape.feed_t.size:
                # Until the next BBO becomes known (or a fill or reject wakes it, see
                # matching.wake) a time-independent model would re-quote the same prices:
                # jump to the first refresh after that BBO. Same result, far fewer
                # iterations.
                nd = max(nd, math.ceil(tape.feed_t[a.feed_next] / ref) * ref)
            elif not p.time_dependent:
                nd = math.inf
            for s in range(2):
                # A bot that has not seen its fill yet decides once it has: Freqtrade's
                # loop is not on a grid, it runs when the last one's requests are done.
                if slots[s].blind_until > tn:
                    nd = min(nd, slots[s].blind_until)
            a.next_decision = nd


@numba.njit(cache=True)
def advance(tape, par, clock, st, i0, i1):
    """Simulate all ``K = par.shape[0]`` configurations over events ``[i0, i1)`` of
    ``tape`` (:class:`asmm.sim.records.Tape`), updating ``st``
    (:class:`asmm.sim.records.State`) in place. ``par``: (K,) PARAMS records; ``clock``:
    :class:`asmm.sim.records.Clock`."""
    K = par.shape[0]
    m = st.market[0]
    nbook = tape.book_t.size
    nsamp = st.samples.shape[1]
    for i in range(i0, i1):
        t = tape.t[i]
        while m.book_next < nbook and tape.book_t[m.book_next] <= t:
            for c in range(K):
                if par[c].queue == QUEUE_PROB:
                    matching.on_book(st.slots[c], tape, m.book_next)
            m.book_next += 1
        for c in range(K):
            # The cheap test first: most events find no timer due.
            a = st.account[c]
            due = a.next_decision
            if a.ring_len > 0:
                due = min(due, st.ring[c, a.ring_head].t)
            if a.sample_next < nsamp:
                due = min(due, clock.sample0 + a.sample_next * clock.sample_dt)
            if due < t:
                _timers(c, t, False, tape, par, clock, st)
        if tape.kind[i] == KIND_TRADE:
            mid = 0.5 * (m.bid + m.ask)
            if mid != mid:
                mid = tape.price[i]
            for c in range(K):
                # Dry-run never fills from trades.
                if par[c].fill_rule != RULE_DRY_RUN and matching.meets(
                        st.slots, c, tape.side[i], tape.price[i]):
                    matching.on_trade(st.account[c], par[c], st.slots[c], tape.side[i],
                                      tape.price[i], tape.size[i], t, mid, st.ledger, c)
        else:
            for c in range(K):
                if par[c].queue == QUEUE_PROB:
                    matching.on_bbo_queue(st.slots[c], m, tape, i, par[c].queue_power)
            mid = 0.5 * (m.bid + m.ask)
            m.bid, m.ask = tape.bid[i], tape.ask[i]
            m.bid_size, m.ask_size = tape.bid_size[i], tape.ask_size[i]
            for c in range(K):
                rule = par[c].fill_rule
                if rule != RULE_TRADES and matching.reached(st.slots, c, m):
                    if rule == RULE_EXCHANGE:
                        matching.on_bbo_through(st.account[c], par[c], st.slots[c], m, t,
                                                mid, st.ledger, c)
                    else:
                        # Dry-run fills at the bot's loop, which Freqtrade runs every
                        # refresh while this loop skips those that change nothing: the
                        # first one at or after the cross must run.
                        matching.wake_by(st.account[c], t, par[c].refresh)


@numba.njit(cache=True)
def finish(tape, par, clock, st):
    """Run the timers left up to ``clock.end`` (samples) and close the inventory integrals."""
    for c in range(par.shape[0]):
        _timers(c, clock.end, True, tape, par, clock, st)
        p = par[c]
        matching.settle_inventory(st.account[c], clock.end, p.max_inventory, p.order_size)
