"""The fill rule of one resting order, event by event: the one implementation that the
backtest kernel (:mod:`asmm.sim.matching`) and the paper exchange
(:mod:`asmm.venues.hyperliquid.paper`) both apply, so paper trading and the backtest can
differ only by latency and the bot's cadence, never by the rule.

Scalar, pure and numba-compiled (inlined into the kernel; callable from Python). Units:
prices in quote currency, sizes in coin; ``side`` +1 a bid (buy order), -1 an ask; a
trade's ``tside`` is its aggressor's, +1 a buy.

The rule (``FillRule.EXCHANGE``; hftbacktest's exchange models fill the same way):

- **trades**: an aggressor trading through the order's price fills it (certain); one
  trading at its price fills it only after the volume queued ahead of it has traded
  (with the queue model on); fills are capped by the trade's size;
- **the queue**: an order joining the touch has the touch's size ahead of it, one
  improving on it nothing, one behind it the level's size in the last L2 snapshot; a fall
  of the level's size that trades do not explain is a cancellation, from ahead of the
  order with probability ``front^n / (front^n + back^n)`` (hftbacktest's
  ``ProbQueueModel`` with ``PowerProbQueueFunc``);
- **the book moving through**: when the opposite best price reaches the order, it was
  traded with (a book cannot rest crossed): it fills whole (:func:`crossed`).
"""

from __future__ import annotations

import numba

# Prices are on the tick grid but arrive through float arithmetic: equal within 1e-9 relative.
_REL_EPS = 1e-9


@numba.njit(cache=True, inline="always")
def same_px(a, b):
    return abs(a - b) <= _REL_EPS * abs(b)


@numba.njit(cache=True, inline="always")
def crossed(side, px, bid, ask):
    """Whether the opposite best price reaches an order on ``side`` (+1 bid) at ``px``: the
    best ask at or below a bid, the best bid at or above an ask (False while unknown)."""
    if side > 0.0:
        return ask <= px or same_px(ask, px)
    return bid >= px or same_px(bid, px)


@numba.njit(cache=True, inline="always")
def touch_queue(side, px, bid, ask, bid_size, ask_size):
    """Volume (coin) ahead of a new order at ``px`` on ``side`` from the touch: the
    touch's size if it joins the touch, 0 if it improves on it or the touch is unknown;
    NaN if it rests behind the touch (then the level's size in the last L2 snapshot, or 0
    when no snapshot lists the price, is ahead of it)."""
    if side > 0:
        touch, touch_sz = bid, bid_size
    else:
        touch, touch_sz = ask, ask_size
    if touch != touch:
        return 0.0
    if same_px(px, touch):
        return touch_sz
    if (side > 0 and px > touch) or (side < 0 and px < touch):
        return 0.0
    return float("nan")


@numba.njit(cache=True, inline="always")
def trade_fill(side, px, remaining, ahead, traded, prob, tside, tpx, left):
    """A trade (aggressor ``tside``, price ``tpx``, ``left`` coin of it not yet matched)
    meets an order (``side``, ``px``, ``remaining`` coin, ``ahead`` coin queued ahead of
    it, ``traded`` coin traded at its price since the touch last changed; ``prob`` the
    queue model on). Returns ``(qty, ahead, traded)``: the coin it fills (0: none) and the
    order's queue after the trade."""
    if side != -tside:
        return 0.0, ahead, traded
    if same_px(tpx, px):
        avail = left
        if prob:
            traded += left
            if ahead >= left:
                return 0.0, ahead - left, traded
            avail = left - ahead
            ahead = 0.0
    elif (tside < 0 and tpx < px) or (tside > 0 and tpx > px):
        avail = left
    else:
        return 0.0, ahead, traded
    return min(avail, remaining), ahead, traded


@numba.njit(cache=True, inline="always")
def queue_on_touch(side, px, ahead, traded, old_px, old_sz, new_px, new_sz, power):
    """The touch on the order's side changes from (``old_px``, ``old_sz``) to (``new_px``,
    ``new_sz``). Returns the order's ``(ahead, traded)``: a fall in the size at its price
    that trades do not explain is a cancellation, from ahead of it with probability
    ``front^n / (front^n + back^n)``, ``n = power``; a level that emptied leaves nobody
    ahead."""
    better = px > new_px if side > 0.0 else px < new_px
    if better and not same_px(px, new_px):
        return 0.0, 0.0
    if same_px(px, new_px):
        if old_px == old_px and same_px(px, old_px):
            chg = old_sz - new_sz - traded
            if chg < 0.0:
                return min(ahead, new_sz), 0.0
            front = ahead
            back = max(old_sz - front, 0.0)
            fb, ff = back ** power, front ** power
            p_back = fb / (fb + ff) if fb + ff > 0.0 else 1.0
            est = front - (1.0 - p_back) * chg + min(back - p_back * chg, 0.0)
            return max(min(est, new_sz), 0.0), 0.0
        return min(ahead, new_sz), 0.0
    return ahead, traded
