"""The event loop: K strategy configurations simulated in one pass over the market events.

Everything here is numba-compiled. The market (BBO, trades, L2) is shared by all K
configurations, so each event is read once and each configuration reacts to it; per
configuration there are timers (decisions every ``refresh`` seconds, order actions arriving
``latency`` later, equity samples) and the order/position state.

State lives in small float arrays indexed by the named column constants below (numba treats
module-level integers as compile-time constants), so helpers take a handful of arrays rather
than dozens of scalars.

Order-of-events rules (each is a documented modelling choice):

- a timer (decision, order arrival, sample) at time ``T`` runs before a market event at
  exchange time ``t`` only if ``T < t``: at equal times the market moves first, so an order
  arriving exactly at a trade's time does not take part in it;
- at one timer time: samples, then order arrivals, then the decision;
- the strategy knows its own fills at once (the private channel is the fastest), the BBO
  only from its known time (``Events.feed_t``);
- the inventory bound is applied when quoting (by ``quote_scalar``), so fills of orders
  already resting or in flight can overshoot it by up to a lot;
- fills come only from trades; the recorded market does not react to our orders.
"""

from __future__ import annotations

import functools
import hashlib
import math
from pathlib import Path

import numba
import numpy as np

from asmm.core import model
from asmm.core.model import quote_scalar


@functools.cache
def drop_stale_cache() -> None:
    """Numba's on-disk cache of this module is keyed on this file only; a cached kernel
    would keep an old :func:`asmm.core.model.quote_scalar` inlined after ``model.py`` changes.
    Keep a hash of both sources next to the cache and drop the cache when it differs.

    An explicit step, once per process, before the kernel is first called (importing a
    module writes nothing): :func:`asmm.sim.engine.run_backtest` takes it."""
    here = Path(__file__)
    cache = here.parent / "__pycache__"
    digest = hashlib.sha256(here.read_bytes() + Path(model.__file__).read_bytes()).hexdigest()
    stamp = cache / "kernel.sources.sha256"
    try:
        if stamp.read_text() == digest:
            return
    except OSError:
        pass
    try:
        for f in cache.glob("kernel.*.nb[ic]"):
            f.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:
        pass  # a read-only install: numba then caches elsewhere or not at all



# --- configuration columns (float array, one row per configuration)
P_MODEL, P_SIGMA, P_GAMMA, P_ABID, P_KBID, P_AASK, P_KASK = 0, 1, 2, 3, 4, 5, 6
P_HORIZON, P_SIZE, P_REFRESH, P_LATENCY, P_QFEE, P_MFEE, P_TFEE = 7, 8, 9, 10, 11, 12, 13
P_QMAX, P_MINSPREAD, P_MAXIMP, P_TICK, P_QUEUE, P_QPOW, P_EXEC = 14, 15, 16, 17, 18, 19, 20
P_TIMEDEP, P_FLATSIDE = 21, 22
N_PARAMS = 23

EXEC_TWO_SIDED, EXEC_FREQTRADE, EXEC_PAIR = 0, 1, 2
QUEUE_NONE, QUEUE_PROB = 0, 1

# --- per-configuration accounting and strategy state (float array)
A_POS, A_CASH, A_FEES, A_REAL, A_AVG = 0, 1, 2, 3, 4
A_NBID, A_NASK, A_VBID, A_VASK, A_CAPT = 5, 6, 7, 8, 9
A_IQ, A_IQ2, A_TBOUND, A_MAXQ, A_LASTT = 10, 11, 12, 13, 14
A_NEXTDEC, A_KBID, A_KASK, A_DECFILLS, A_DECFEED = 15, 16, 17, 18, 19
A_NFILLS, A_LASTENTRY, A_REJECT, A_QUOTES, A_PEAK, A_MAXDD = 20, 21, 22, 23, 24, 25
A_DECBID, A_DECASK, A_MAXLIVE = 26, 27, 28
N_ACC = 29

# --- per-slot state (float array, shape (K, 2, N_SLOT)); a slot holds at most one order
S_ACT, S_SIDE, S_PX, S_REM, S_FRONT, S_CUMTR, S_ROLE = 0, 1, 2, 3, 4, 5, 6
S_WSIDE, S_WPX, S_WROLE, S_PN, S_BPOS, S_PHASE = 7, 8, 9, 10, 11, 12
N_SLOT = 13
ROLE_QUOTE, ROLE_ENTRY, ROLE_EXIT = 0.0, 1.0, 2.0

# --- pending order actions, a FIFO ring per configuration, shape (K, cap, N_PEND)
R_T, R_SLOT, R_SIDE, R_PX, R_ROLE = 0, 1, 2, 3, 4
N_PEND = 5

# --- recorded fills, shape (K, cap, N_FILL)
F_T, F_SIDE, F_PX, F_QTY, F_FEE, F_POS, F_MID, F_CASH, F_REAL, F_AVG = range(10)
N_FILL = 10

# --- equity samples, shape (K, n_samples, N_SAMP)
M_EQUITY, M_POS, M_MID, M_BID, M_ASK, M_FEES = range(6)
N_SAMP = 6

# Prices are on the tick grid but arrive through float arithmetic: equal within 1e-9 relative.
_REL_EPS = 1e-9


@numba.njit(cache=True, inline="always")
def _same_px(a, b):
    return abs(a - b) <= _REL_EPS * abs(b)


@numba.njit(cache=True, inline="always")
def _queue_ahead(side, px, mkt, bptr, book_t, book_bid_px, book_bid_sz, book_ask_px,
                 book_ask_sz):
    """Volume ahead of a new order at ``px`` on ``side`` (+1 bid): the touch's size if it
    joins the touch, 0 if it improves on it, else the level's size in the last L2 snapshot
    (0 when no snapshot lists that price: an empty level)."""
    if side > 0:
        touch, touch_sz = mkt[0], mkt[2]
        if touch != touch:
            return 0.0
        if _same_px(px, touch):
            return touch_sz
        if px > touch:
            return 0.0
    else:
        touch, touch_sz = mkt[1], mkt[3]
        if touch != touch:
            return 0.0
        if _same_px(px, touch):
            return touch_sz
        if px < touch:
            return 0.0
    if bptr == 0:
        return 0.0
    j = bptr - 1
    for d in range(book_bid_px.shape[1]):
        lv = book_bid_px[j, d] if side > 0 else book_ask_px[j, d]
        if lv == lv and _same_px(px, lv):
            return book_bid_sz[j, d] if side > 0 else book_ask_sz[j, d]
    return 0.0


@numba.njit(cache=True)
def _settle_inventory(acc, c, t, qmax, size):
    """Integrate inventory (lots) over time up to ``t``: mean, variance, time at bound."""
    dt = t - acc[c, A_LASTT]
    if dt > 0.0:
        q = acc[c, A_POS] / size
        acc[c, A_IQ] += q * dt
        acc[c, A_IQ2] += q * q * dt
        if abs(q) >= qmax - 1e-9:
            acc[c, A_TBOUND] += dt
        acc[c, A_LASTT] = t


@numba.njit(cache=True)
def _fill(c, s, qty, t, mid, par, acc, slots, fills, nfill):
    """Book a fill of ``qty`` coin of slot ``s``'s order: cash, position, average cost,
    realised PnL, maker fee, statistics and (if there is room) the fill record."""
    side = slots[c, s, S_SIDE]
    px = slots[c, s, S_PX]
    size = par[c, P_SIZE]
    _settle_inventory(acc, c, t, par[c, P_QMAX], size)
    fee = par[c, P_MFEE] * px * qty
    pos0 = acc[c, A_POS]
    if pos0 == 0.0 or (pos0 > 0.0) == (side > 0.0):
        acc[c, A_AVG] = (acc[c, A_AVG] * abs(pos0) + px * qty) / (abs(pos0) + qty)
    else:
        closing = min(qty, abs(pos0))
        acc[c, A_REAL] += closing * (px - acc[c, A_AVG]) * (1.0 if pos0 > 0.0 else -1.0)
        if qty > abs(pos0):
            acc[c, A_AVG] = px
    pos = pos0 + side * qty
    # Lots are fractions of the order size; a float residue of a round trip is flat.
    if abs(pos) < 1e-9 * size:
        pos = 0.0
        acc[c, A_AVG] = 0.0
    acc[c, A_POS] = pos
    acc[c, A_CASH] -= side * qty * px + fee
    acc[c, A_FEES] += fee
    acc[c, A_NFILLS] += 1.0
    if side > 0.0:
        acc[c, A_NBID] += 1.0
        acc[c, A_VBID] += qty
        acc[c, A_CAPT] += (mid - px) / mid * 1e4
    else:
        acc[c, A_NASK] += 1.0
        acc[c, A_VASK] += qty
        acc[c, A_CAPT] += (px - mid) / mid * 1e4
    q = abs(pos) / size
    if q > acc[c, A_MAXQ]:
        acc[c, A_MAXQ] = q
    equity = acc[c, A_CASH] + pos * mid
    _track_drawdown(acc, c, equity)
    k = nfill[c]
    if k < fills.shape[1]:
        fills[c, k, F_T], fills[c, k, F_SIDE], fills[c, k, F_PX] = t, side, px
        fills[c, k, F_QTY], fills[c, k, F_FEE], fills[c, k, F_POS] = qty, fee, pos
        fills[c, k, F_MID], fills[c, k, F_CASH] = mid, acc[c, A_CASH]
        fills[c, k, F_REAL], fills[c, k, F_AVG] = acc[c, A_REAL], acc[c, A_AVG]
        nfill[c] = k + 1
    _wake(acc, c, t, par[c, P_REFRESH])
    # Order and bot bookkeeping.
    slots[c, s, S_REM] -= qty
    done = slots[c, s, S_REM] <= 1e-9 * size
    if done:
        slots[c, s, S_ACT] = 0.0
        slots[c, s, S_REM] = 0.0
    if par[c, P_EXEC] != EXEC_TWO_SIDED:
        slots[c, s, S_BPOS] += side * qty
        if abs(slots[c, s, S_BPOS]) < 1e-9 * size:
            slots[c, s, S_BPOS] = 0.0
        if slots[c, s, S_PHASE] == ROLE_ENTRY and done:
            slots[c, s, S_PHASE] = ROLE_EXIT
            acc[c, A_LASTENTRY] = side
        elif slots[c, s, S_PHASE] == ROLE_EXIT and slots[c, s, S_BPOS] == 0.0:
            slots[c, s, S_PHASE] = ROLE_ENTRY


@numba.njit(cache=True, inline="always")
def _wake(acc, c, t, ref):
    """Make sure configuration ``c`` decides at the first refresh strictly after ``t``."""
    nd = (math.floor(t / ref) + 1.0) * ref
    if nd < acc[c, A_NEXTDEC]:
        acc[c, A_NEXTDEC] = nd


@numba.njit(cache=True, inline="always")
def _track_drawdown(acc, c, equity):
    if equity > acc[c, A_PEAK]:
        acc[c, A_PEAK] = equity
    dd = acc[c, A_PEAK] - equity
    if dd > acc[c, A_MAXDD]:
        acc[c, A_MAXDD] = dd


@numba.njit(cache=True, inline="always")
def _want(c, s, side, px, role, T, par, slots, ring, rhead, rlen):
    """Ask for slot ``s`` to hold (side, px, role) — NaN ``px`` for none — unless that is
    already resting or on its way; the action reaches the exchange after the latency."""
    if slots[c, s, S_PN] > 0.0:
        wpx = slots[c, s, S_WPX]
        same = (slots[c, s, S_WSIDE] == side and slots[c, s, S_WROLE] == role
                and ((px != px and wpx != wpx) or wpx == px))
    elif slots[c, s, S_ACT] > 0.0:
        same = (slots[c, s, S_SIDE] == side and slots[c, s, S_PX] == px
                and slots[c, s, S_ROLE] == role)
    else:
        same = px != px
    if same:
        return
    cap = ring.shape[1]
    if rlen[c] == cap:
        # Decisions are a refresh apart and live one latency, so the engine sizes the ring
        # for 2 * (latency / refresh + 2) actions; reaching it is a bug, not a market event.
        raise RuntimeError("backtest kernel: pending-order ring full")
    k = (rhead[c] + rlen[c]) % cap
    ring[c, k, R_T] = T + par[c, P_LATENCY]
    ring[c, k, R_SLOT] = s
    ring[c, k, R_SIDE] = side
    ring[c, k, R_PX] = px
    ring[c, k, R_ROLE] = role
    rlen[c] += 1
    slots[c, s, S_PN] += 1.0
    slots[c, s, S_WSIDE], slots[c, s, S_WPX], slots[c, s, S_WROLE] = side, px, role


@numba.njit(cache=True, inline="always")
def _decide(c, T, par, acc, slots, ring, rhead, rlen, feed_t, feed_bid, feed_ask, fptr):
    """One refresh of configuration ``c`` at local time ``T``: read the BBO known by then,
    quote with :func:`asmm.core.model.quote_scalar`, and send the order changes the execution
    mode implies."""
    while fptr[c] < feed_t.size and feed_t[fptr[c]] <= T:
        acc[c, A_KBID] = feed_bid[fptr[c]]
        acc[c, A_KASK] = feed_ask[fptr[c]]
        fptr[c] += 1
    kb, ka = acc[c, A_KBID], acc[c, A_KASK]
    if not kb < ka:  # unknown (NaN) or crossed: keep what rests
        return
    # Without a new touch price or a fill a time-independent model quotes what it quoted
    # last time (the order statuses it would compare with change only on fills and rejects).
    if (par[c, P_TIMEDEP] == 0.0 and acc[c, A_DECFILLS] == acc[c, A_NFILLS]
            and acc[c, A_DECFEED] > 0.0 and kb == acc[c, A_DECBID] and ka == acc[c, A_DECASK]):
        return
    acc[c, A_DECFILLS] = acc[c, A_NFILLS]
    acc[c, A_DECFEED] = 1.0
    acc[c, A_DECBID] = kb
    acc[c, A_DECASK] = ka
    size = par[c, P_SIZE]
    mid = 0.5 * (kb + ka)
    q = acc[c, A_POS] / size
    horizon = par[c, P_HORIZON]
    # Seconds to the next multiple of the horizon in epoch time (A–S only; the others
    # ignore tau). floor rather than %: fmod of an epoch time is needlessly slow.
    tau = 0.0
    if par[c, P_TIMEDEP] != 0.0:
        tau = horizon - (T - math.floor(T / horizon) * horizon)
    bid, ask = quote_scalar(
        int(par[c, P_MODEL]), mid, q, tau, par[c, P_SIGMA], par[c, P_GAMMA], par[c, P_ABID],
        par[c, P_KBID], par[c, P_AASK], par[c, P_KASK], par[c, P_QFEE], par[c, P_TICK],
        par[c, P_QMAX], par[c, P_MINSPREAD], kb, ka, par[c, P_MAXIMP])
    acc[c, A_QUOTES] += 1.0
    mode = par[c, P_EXEC]
    if mode == EXEC_TWO_SIDED:
        _want(c, 0, 1.0, bid, ROLE_QUOTE, T, par, slots, ring, rhead, rlen)
        _want(c, 1, -1.0, ask, ROLE_QUOTE, T, par, slots, ring, rhead, rlen)
    elif mode == EXEC_FREQTRADE:
        s = 0
        bpos = slots[c, s, S_BPOS]
        if slots[c, s, S_PHASE] == ROLE_EXIT:
            side = -1.0 if bpos > 0.0 else 1.0
            _want(c, 0, side, ask if side < 0.0 else bid, ROLE_EXIT, T, par, slots, ring,
                  rhead, rlen)
        else:
            if bpos != 0.0:  # a partly filled entry keeps its direction
                side = 1.0 if bpos > 0.0 else -1.0
            elif par[c, P_FLATSIDE] != 0.0:
                side = par[c, P_FLATSIDE]
            else:
                # asmm.freqtrade.policy.flat_side("alternate"): the opposite of the last
                # filled entry, long first — what the Freqtrade strategy does.
                side = -1.0 if acc[c, A_LASTENTRY] > 0.0 else 1.0
            _want(c, 0, side, bid if side > 0.0 else ask, ROLE_ENTRY, T, par, slots, ring,
                  rhead, rlen)
    else:
        # Slot 0: the long-only bot; slot 1: the short-only bot
        # (asmm.freqtrade.policy.pricing_q). An exit prices with the pair's net q. An entry
        # rests on the same side as the other bot's exit, so it prices with its own bot's q:
        # the inventory once that exit has filled.
        # Priced alike, both would rest at one price and a single sweep would fill two lots.
        for s in range(2):
            long_bot = s == 0
            entry = slots[c, s, S_PHASE] == ROLE_ENTRY
            buy = long_bot == entry
            px = bid if buy else ask
            if entry:
                own = slots[c, s, S_BPOS] / size
                eb, ea = quote_scalar(
                    int(par[c, P_MODEL]), mid, own, tau, par[c, P_SIGMA], par[c, P_GAMMA],
                    par[c, P_ABID], par[c, P_KBID], par[c, P_AASK], par[c, P_KASK],
                    par[c, P_QFEE], par[c, P_TICK], par[c, P_QMAX], par[c, P_MINSPREAD], kb, ka,
                    par[c, P_MAXIMP])
                px = eb if buy else ea
            _want(c, s, 1.0 if buy else -1.0, px,
                  ROLE_ENTRY if entry else ROLE_EXIT, T, par, slots, ring, rhead, rlen)


@numba.njit(cache=True, inline="always")
def _arrive(c, par, acc, slots, ring, rhead, rlen, mkt, bptr, book_t, book_bid_px,
            book_bid_sz, book_ask_px, book_ask_sz):
    """The oldest pending action of configuration ``c`` reaches the exchange."""
    k = rhead[c]
    rhead[c] = (k + 1) % ring.shape[1]
    rlen[c] -= 1
    s = int(ring[c, k, R_SLOT])
    t_arr, side = ring[c, k, R_T], ring[c, k, R_SIDE]
    px, role = ring[c, k, R_PX], ring[c, k, R_ROLE]
    slots[c, s, S_PN] -= 1.0
    size = par[c, P_SIZE]
    if par[c, P_EXEC] == EXEC_TWO_SIDED:
        qty = size
    else:
        # Freqtrade cancels before it replaces; if the order filled meanwhile the bot has
        # moved to the next phase and this stale instruction is dropped.
        if role != slots[c, s, S_PHASE]:
            return
        qty = size - abs(slots[c, s, S_BPOS]) if role == ROLE_ENTRY else abs(slots[c, s, S_BPOS])
    if px != px or qty <= 1e-9 * size:
        slots[c, s, S_ACT] = 0.0
        return
    if slots[c, s, S_ACT] > 0.0 and slots[c, s, S_SIDE] == side and slots[c, s, S_PX] == px:
        slots[c, s, S_ROLE] = role
        return
    # Post-only (Hyperliquid ALO): an order that would cross the book is rejected, not
    # turned into a taker fill. The old order is cancelled either way.
    if (side > 0.0 and px >= mkt[1]) or (side < 0.0 and px <= mkt[0]):
        slots[c, s, S_ACT] = 0.0
        acc[c, A_REJECT] += 1.0
        acc[c, A_DECFILLS] = -1.0  # re-quote at the next refresh even if nothing moved
        _wake(acc, c, t_arr, par[c, P_REFRESH])
        return
    slots[c, s, S_ACT] = 1.0
    slots[c, s, S_SIDE] = side
    slots[c, s, S_PX] = px
    slots[c, s, S_REM] = qty
    slots[c, s, S_ROLE] = role
    slots[c, s, S_CUMTR] = 0.0
    if par[c, P_QUEUE] == QUEUE_PROB:
        slots[c, s, S_FRONT] = _queue_ahead(side, px, mkt, bptr, book_t, book_bid_px,
                                            book_bid_sz, book_ask_px, book_ask_sz)
    else:
        slots[c, s, S_FRONT] = 0.0
    # Orders only ever start resting here, so this sees the most that ever rest at once.
    live = slots[c, 0, S_ACT] + slots[c, 1, S_ACT]
    if live > acc[c, A_MAXLIVE]:
        acc[c, A_MAXLIVE] = live


@numba.njit(cache=True)
def _sample(c, j, par, acc, slots, mkt, samples):
    mid = 0.5 * (mkt[0] + mkt[1])
    pos = acc[c, A_POS]
    samples[c, j, M_EQUITY] = acc[c, A_CASH] + (pos * mid if pos != 0.0 else 0.0)
    samples[c, j, M_POS] = pos / par[c, P_SIZE]
    samples[c, j, M_MID] = mid
    samples[c, j, M_BID] = np.nan
    samples[c, j, M_ASK] = np.nan
    for s in range(2):
        if slots[c, s, S_ACT] > 0.0:
            if slots[c, s, S_SIDE] > 0.0 and not samples[c, j, M_BID] >= slots[c, s, S_PX]:
                samples[c, j, M_BID] = slots[c, s, S_PX]
            if slots[c, s, S_SIDE] < 0.0 and not samples[c, j, M_ASK] <= slots[c, s, S_PX]:
                samples[c, j, M_ASK] = slots[c, s, S_PX]
    samples[c, j, M_FEES] = acc[c, A_FEES]
    if mid == mid:
        _track_drawdown(acc, c, samples[c, j, M_EQUITY])


@numba.njit(cache=True, inline="always")
def _timers(c, t, inclusive, par, acc, slots, ring, rhead, rlen, feed_t, feed_bid, feed_ask,
            fptr, mkt, bptr, book_t, book_bid_px, book_bid_sz, book_ask_px, book_ask_sz,
            samp0, samp_dt, samples, sidx, t_end):
    """Run configuration ``c``'s timers due before ``t`` (up to and including ``t`` if
    ``inclusive``) in time order: samples, then order arrivals, then decisions."""
    nsamp = samples.shape[1]
    while True:
        tn = acc[c, A_NEXTDEC]
        what = 0
        if rlen[c] > 0 and ring[c, rhead[c], R_T] <= tn:
            tn = ring[c, rhead[c], R_T]
            what = 1
        if sidx[c] < nsamp:
            ts = samp0 + sidx[c] * samp_dt
            if ts <= tn:
                tn = ts
                what = 2
        if tn > t or (tn == t and not inclusive):
            return
        if what == 2:
            _sample(c, sidx[c], par, acc, slots, mkt, samples)
            sidx[c] += 1
        elif what == 1:
            _arrive(c, par, acc, slots, ring, rhead, rlen, mkt, bptr, book_t, book_bid_px,
                    book_bid_sz, book_ask_px, book_ask_sz)
        else:
            if tn > t_end:
                acc[c, A_NEXTDEC] = math.inf
                continue
            _decide(c, tn, par, acc, slots, ring, rhead, rlen, feed_t, feed_bid, feed_ask,
                    fptr)
            ref = par[c, P_REFRESH]
            nd = tn + ref
            if par[c, P_TIMEDEP] == 0.0 and fptr[c] < feed_t.size:
                # Until the next BBO becomes known (or a fill or reject wakes it, see
                # _wake) a time-independent model would re-quote the same prices: jump to
                # the first refresh after that BBO. Same result, far fewer iterations.
                nd = max(nd, math.ceil(feed_t[fptr[c]] / ref) * ref)
            elif par[c, P_TIMEDEP] == 0.0:
                nd = math.inf
            acc[c, A_NEXTDEC] = nd


@numba.njit(cache=True)
def _on_trade(c, tside, tpx, tsz, t, mid, par, acc, slots, fills, nfill):
    """Match one trade against configuration ``c``'s resting orders.

    A bid fills from a sell aggressor trading below it (certain) or at its price (after the
    volume ahead of it when ``queue = prob``); symmetrically the ask. Fills are capped by
    the trade's size, shared between the configuration's orders."""
    left = tsz
    prob = par[c, P_QUEUE] == QUEUE_PROB
    for s in range(2):
        if left <= 0.0:
            return
        if slots[c, s, S_ACT] == 0.0 or slots[c, s, S_SIDE] != -tside:
            continue
        px = slots[c, s, S_PX]
        if _same_px(tpx, px):
            avail = left
            if prob:
                slots[c, s, S_CUMTR] += left
                if slots[c, s, S_FRONT] >= left:
                    slots[c, s, S_FRONT] -= left
                    continue
                avail = left - slots[c, s, S_FRONT]
                slots[c, s, S_FRONT] = 0.0
        elif (tside < 0 and tpx < px) or (tside > 0 and tpx > px):
            avail = left
        else:
            continue
        qty = min(avail, slots[c, s, S_REM])
        left -= qty
        _fill(c, s, qty, t, mid, par, acc, slots, fills, nfill)


@numba.njit(cache=True)
def _on_bbo_queue(c, slots, old_b, old_a, old_bs, old_as, new_b, new_a, new_bs, new_as,
                  power):
    """Probabilistic queue update when the touch changes (the model of hftbacktest's
    ``ProbQueueModel`` with ``PowerProbQueueFunc``): a fall in the size at our price that
    trades do not explain is a cancellation, from ahead of us with probability
    ``front^n / (front^n + back^n)``."""
    for s in range(2):
        if slots[c, s, S_ACT] == 0.0:
            continue
        if slots[c, s, S_SIDE] > 0.0:
            px, old_px, old_sz, new_px, new_sz = slots[c, s, S_PX], old_b, old_bs, new_b, new_bs
            better = px > new_px
        else:
            px, old_px, old_sz, new_px, new_sz = slots[c, s, S_PX], old_a, old_as, new_a, new_as
            better = px < new_px
        if better and not _same_px(px, new_px):
            slots[c, s, S_FRONT] = 0.0  # the level emptied: nobody is ahead any more
            slots[c, s, S_CUMTR] = 0.0
        elif _same_px(px, new_px):
            if old_px == old_px and _same_px(px, old_px):
                chg = old_sz - new_sz - slots[c, s, S_CUMTR]
                if chg < 0.0:
                    slots[c, s, S_FRONT] = min(slots[c, s, S_FRONT], new_sz)
                else:
                    front = slots[c, s, S_FRONT]
                    back = max(old_sz - front, 0.0)
                    fb, ff = back ** power, front ** power
                    p_back = fb / (fb + ff) if fb + ff > 0.0 else 1.0
                    est = front - (1.0 - p_back) * chg + min(back - p_back * chg, 0.0)
                    slots[c, s, S_FRONT] = max(min(est, new_sz), 0.0)
            else:
                slots[c, s, S_FRONT] = min(slots[c, s, S_FRONT], new_sz)
            slots[c, s, S_CUMTR] = 0.0


@numba.njit(cache=True)
def _on_book(c, slots, j, book_bid_px, book_bid_sz, book_ask_px, book_ask_sz):
    """An L2 snapshot caps the volume ahead of orders resting behind the touch."""
    for s in range(2):
        if slots[c, s, S_ACT] == 0.0:
            continue
        bid_side = slots[c, s, S_SIDE] > 0.0
        for d in range(book_bid_px.shape[1]):
            lv = book_bid_px[j, d] if bid_side else book_ask_px[j, d]
            if lv == lv and _same_px(slots[c, s, S_PX], lv):
                sz = book_bid_sz[j, d] if bid_side else book_ask_sz[j, d]
                slots[c, s, S_FRONT] = min(slots[c, s, S_FRONT], sz)
                break


def new_state(par, t_start, ring_cap, fill_cap, n_samples):
    """Fresh simulation state for the configurations ``par`` (K, N_PARAMS), as a tuple
    ``(acc, slots, ring, rhead, rlen, fptr, sidx, nfill, fills, samples, mkt, cursor)``
    that :func:`advance` and :func:`finish` update in place (so a long run can be advanced
    in chunks, e.g. under a progress bar)."""
    K = par.shape[0]
    acc = np.zeros((K, N_ACC))
    ref = par[:, P_REFRESH]
    acc[:, A_NEXTDEC] = np.ceil(t_start / ref) * ref
    acc[:, A_KBID] = np.nan
    acc[:, A_KASK] = np.nan
    acc[:, A_LASTT] = t_start
    acc[:, A_DECFILLS] = -1.0
    slots = np.zeros((K, 2, N_SLOT))
    slots[:, :, S_PHASE] = ROLE_ENTRY
    slots[:, :, S_WPX] = np.nan
    ring = np.zeros((K, ring_cap, N_PEND))
    ints = [np.zeros(K, np.int64) for _ in range(5)]  # rhead, rlen, fptr, sidx, nfill
    fills = np.full((K, fill_cap, N_FILL), np.nan)
    samples = np.full((K, n_samples, N_SAMP), np.nan)
    mkt = np.full(4, np.nan)  # exchange truth: bid, ask, bid size, ask size
    cursor = np.zeros(1, np.int64)  # next L2 snapshot
    return (acc, slots, ring, *ints, fills, samples, mkt, cursor)


@numba.njit(cache=True)
def advance(ev_t, ev_kind, ev_side, ev_price, ev_size, ev_bid, ev_ask, ev_bid_sz, ev_ask_sz,
            feed_t, feed_bid, feed_ask, book_t, book_bid_px, book_bid_sz, book_ask_px,
            book_ask_sz, par, samp0, samp_dt, t_end, i0, i1,
            acc, slots, ring, rhead, rlen, fptr, sidx, nfill, fills, samples, mkt, cursor):
    """Simulate all ``K = par.shape[0]`` configurations over events ``[i0, i1)``."""
    K = par.shape[0]
    bptr = cursor[0]
    nbook = book_t.size
    nsamp = samples.shape[1]
    for i in range(i0, i1):
        t = ev_t[i]
        while bptr < nbook and book_t[bptr] <= t:
            for c in range(K):
                if par[c, P_QUEUE] == QUEUE_PROB:
                    _on_book(c, slots, bptr, book_bid_px, book_bid_sz, book_ask_px,
                             book_ask_sz)
            bptr += 1
        for c in range(K):
            # The cheap test first: most events find no timer due.
            due = acc[c, A_NEXTDEC]
            if rlen[c] > 0:
                due = min(due, ring[c, rhead[c], R_T])
            if sidx[c] < nsamp:
                due = min(due, samp0 + sidx[c] * samp_dt)
            if due < t:
                _timers(c, t, False, par, acc, slots, ring, rhead, rlen, feed_t, feed_bid,
                        feed_ask, fptr, mkt, bptr, book_t, book_bid_px, book_bid_sz,
                        book_ask_px, book_ask_sz, samp0, samp_dt, samples, sidx, t_end)
        if ev_kind[i] == 1:
            mid = 0.5 * (mkt[0] + mkt[1])
            if mid != mid:
                mid = ev_price[i]
            for c in range(K):
                _on_trade(c, ev_side[i], ev_price[i], ev_size[i], t, mid, par, acc, slots,
                          fills, nfill)
        else:
            for c in range(K):
                if par[c, P_QUEUE] == QUEUE_PROB:
                    _on_bbo_queue(c, slots, mkt[0], mkt[1], mkt[2], mkt[3], ev_bid[i],
                                  ev_ask[i], ev_bid_sz[i], ev_ask_sz[i], par[c, P_QPOW])
            mkt[0], mkt[1], mkt[2], mkt[3] = ev_bid[i], ev_ask[i], ev_bid_sz[i], ev_ask_sz[i]
    cursor[0] = bptr


@numba.njit(cache=True)
def finish(feed_t, feed_bid, feed_ask, book_t, book_bid_px, book_bid_sz, book_ask_px,
           book_ask_sz, par, samp0, samp_dt, t_end,
           acc, slots, ring, rhead, rlen, fptr, sidx, nfill, fills, samples, mkt, cursor):
    """Run the timers left up to ``t_end`` (samples) and close the inventory integrals."""
    for c in range(par.shape[0]):
        _timers(c, t_end, True, par, acc, slots, ring, rhead, rlen, feed_t, feed_bid,
                feed_ask, fptr, mkt, cursor[0], book_t, book_bid_px, book_bid_sz, book_ask_px,
                book_ask_sz, samp0, samp_dt, samples, sidx, t_end)
        _settle_inventory(acc, c, t_end, par[c, P_QMAX], par[c, P_SIZE])
