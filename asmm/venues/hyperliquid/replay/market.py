"""The replayed market: collector-format data as one event timeline, and the market state
(book, mid, candles, volume) after any position in it. Pure numpy; no I/O after loading.

Events are the WebSocket messages the replay exchange sends, in the order it sends them:
one ``trades`` event per distinct trade exchange time (a sweep, or a block's fills), one
``bbo`` event per BBO state, one ``l2Book`` event per L2 snapshot (or, when the data has no
orderbooks files, one per BBO state with the BBO as a one-level book). At equal exchange
time trades come first, then the BBO, then the snapshot (the :mod:`asmm.data.readers`
convention).

Times here are **data** times (exchange epoch ms as recorded). The replay clock publishes
them shifted by ``shift_ms + loop * span_ms`` (see
:class:`asmm.venues.hyperliquid.replay.feed.ReplayClock`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from asmm.core.errors import DataError
from asmm.data.files import list_files
from asmm.data.readers import read_bbo, read_orderbooks, read_trades

log = logging.getLogger(__name__)

TRADES, BBO, L2 = 0, 1, 2
CHANNEL = {TRADES: "trades", BBO: "bbo", L2: "l2Book"}
LOOP_PAUSE_MS = 1000  # quiet time between the end of the data and its next loop


@dataclass
class Market:
    """One coin's replayed market.

    Arrays (``n`` = number of events): ``ev_t`` data time (ms, int64, non-decreasing),
    ``ev_kind`` (TRADES/BBO/L2), ``ev_idx`` (index into the trade groups, BBO states or L2
    snapshots), and for every event the index of the last BBO state, L2 snapshot and the
    number of fills at or before it (``bbo_upto``, ``l2_upto``, ``fills_upto``).
    Trades: ``tr_t`` (ms), ``tr_px``, ``tr_sz``, ``tr_side`` (+1 buy aggressor, -1 sell),
    ``tr_id``; groups ``grp_lo``/``grp_hi`` (fill index range of each trades event).
    BBO: ``bbo_t``, ``bid``, ``ask``, ``bid_sz``, ``ask_sz``. L2: ``l2_t`` and (m, depth)
    arrays ``l2_bid_px``/``l2_bid_sz``/``l2_ask_px``/``l2_ask_sz`` (NaN = no level).
    """

    coin: str
    ev_t: np.ndarray
    ev_kind: np.ndarray
    ev_idx: np.ndarray
    bbo_upto: np.ndarray
    l2_upto: np.ndarray
    fills_upto: np.ndarray
    tr_t: np.ndarray
    tr_px: np.ndarray
    tr_sz: np.ndarray
    tr_side: np.ndarray
    tr_id: np.ndarray
    grp_lo: np.ndarray
    grp_hi: np.ndarray
    bbo_t: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_sz: np.ndarray
    ask_sz: np.ndarray
    l2_t: np.ndarray
    l2_bid_px: np.ndarray
    l2_bid_sz: np.ndarray
    l2_ask_px: np.ndarray
    l2_ask_sz: np.ndarray
    l2_from_bbo: bool

    @property
    def n_events(self) -> int:
        return int(self.ev_t.size)

    @property
    def span_ms(self) -> int:
        """Published-time advance from one loop of the data to the next."""
        return int(self.ev_t[-1] - self.ev_t[0]) + LOOP_PAUSE_MS

    @cached_property
    def tid_span(self) -> int:
        """Trade-id advance per loop, so ids never repeat across loops."""
        return int(self.tr_id.max() - self.tr_id.min() + 1) if self.tr_id.size else 0

    # ------------------------------------------------------------------ state at an event

    def top(self, pos: int) -> tuple[float, float, float, float]:
        """``(bid, bid_size, ask, ask_size)`` after event ``pos`` (before any BBO: the first)."""
        i = max(int(self.bbo_upto[pos]), 0)
        return float(self.bid[i]), float(self.bid_sz[i]), float(self.ask[i]), float(self.ask_sz[i])

    def mid(self, pos: int) -> float:
        bid, _, ask, _ = self.top(pos)
        return 0.5 * (bid + ask)

    def book(self, pos: int, depth: int = 20) -> tuple[list, list]:
        """Bids and asks ``[(px, sz, n), ...]`` best first after event ``pos``.

        Level 0 is the latest BBO (the freshest and most frequent state); deeper levels come
        from the latest L2 snapshot, keeping only its levels strictly behind that BBO, so the
        book is never crossed even when the snapshot is older than the BBO.
        """
        bid, bsz, ask, asz = self.top(pos)
        bids, asks = [(bid, bsz, 1)], [(ask, asz, 1)]
        j = int(self.l2_upto[pos]) if self.l2_t.size else -1
        if j < 0 and self.l2_t.size:
            j = 0
        if j >= 0 and not self.l2_from_bbo:
            for px, sz in zip(self.l2_bid_px[j], self.l2_bid_sz[j], strict=True):
                if np.isfinite(px) and px < bid and len(bids) < depth:
                    bids.append((float(px), float(sz), 1))
            for px, sz in zip(self.l2_ask_px[j], self.l2_ask_sz[j], strict=True):
                if np.isfinite(px) and px > ask and len(asks) < depth:
                    asks.append((float(px), float(sz), 1))
        return bids[:depth], asks[:depth]

    def l2_levels(self, j: int) -> tuple[list, list]:
        """Snapshot ``j`` as recorded: ``[(px, sz, n)]`` per side, missing levels left out."""
        def side(px, sz):
            # Lists first: iterating numpy rows element by element is the slow part.
            return [(p, s, 1) for p, s in zip(px.tolist(), sz.tolist(), strict=True)
                    if p == p and s == s]  # NaN != NaN: a missing level
        return (side(self.l2_bid_px[j], self.l2_bid_sz[j]),
                side(self.l2_ask_px[j], self.l2_ask_sz[j]))

    def fills(self, g: int) -> slice:
        return slice(int(self.grp_lo[g]), int(self.grp_hi[g]))

    def position_at(self, t_ms: float) -> int:
        """Index of the last event with data time <= ``t_ms`` (-1 before the first)."""
        return int(np.searchsorted(self.ev_t, t_ms, side="right")) - 1


def load_market(data_dir: str | Path, coin: str) -> Market:
    """Read a coin's collector data (either file layout, CSV or Parquet) into a Market.

    Raises :class:`DataError` with a clear message when the folder, the BBO or the trades
    are missing or empty; orderbooks files are optional.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data folder {data_dir} does not exist")
    bbo = read_bbo(data_dir, coin)
    tr = read_trades(data_dir, coin)
    if len(bbo) == 0:
        raise DataError(f"no usable BBO rows for {coin} in {data_dir}")
    if len(tr) == 0:
        raise DataError(f"no usable trades for {coin} in {data_dir}")
    ok = ~bbo.crossed
    if not ok.all():
        log.warning("%s: leaving out %d crossed/locked BBO states", coin, int((~ok).sum()))
    bbo_t, bid, ask = bbo.t[ok], bbo.bid[ok], bbo.ask[ok]
    bid_sz, ask_sz = bbo.bid_size[ok], bbo.ask_size[ok]
    if bbo_t.size == 0:
        raise DataError(f"every BBO state of {coin} in {data_dir} is crossed")

    if list_files(data_dir, "orderbooks", coin):
        ob = read_orderbooks(data_dir, coin)
        l2_t, l2 = ob.t, (ob.bid_px, ob.bid_sz, ob.ask_px, ob.ask_sz)
        from_bbo = False
    else:
        log.info("%s: no orderbooks files; l2Book messages carry the BBO as one level", coin)
        l2_t = bbo_t
        l2 = (bid[:, None], bid_sz[:, None], ask[:, None], ask_sz[:, None])
        from_bbo = True

    grp_lo = np.flatnonzero(np.r_[True, np.diff(tr.t) != 0])
    grp_hi = np.r_[grp_lo[1:], tr.t.size]
    grp_t = tr.t[grp_lo]

    ev_t = np.concatenate([grp_t, bbo_t, l2_t]).astype(np.int64)
    ev_kind = np.concatenate([np.full(grp_t.size, TRADES), np.full(bbo_t.size, BBO),
                              np.full(l2_t.size, L2)]).astype(np.int8)
    ev_idx = np.concatenate([np.arange(grp_t.size), np.arange(bbo_t.size),
                             np.arange(l2_t.size)]).astype(np.int64)
    order = np.lexsort((ev_kind, ev_t))
    ev_t, ev_kind, ev_idx = ev_t[order], ev_kind[order], ev_idx[order]

    def upto(kind: int) -> np.ndarray:
        return np.maximum.accumulate(np.where(ev_kind == kind, ev_idx, -1))

    fills_upto = np.where(ev_kind == TRADES, grp_hi[np.where(ev_kind == TRADES, ev_idx, 0)], 0)
    fills_upto = np.maximum.accumulate(fills_upto)
    return Market(coin, ev_t, ev_kind, ev_idx, upto(BBO), upto(L2), fills_upto,
                  tr.t, tr.price, tr.size, tr.side, tr.trade_id, grp_lo, grp_hi,
                  bbo_t, bid, ask, bid_sz, ask_sz, l2_t, *l2, from_bbo)


def candles(tr_t: np.ndarray, tr_px: np.ndarray, tr_sz: np.ndarray, interval_ms: int,
            start_ms: int, end_ms: int, prev_close: float) -> list[tuple]:
    """OHLCV candles of trades, one per interval whose open time is in
    ``[floor(start_ms), end_ms]``, including intervals without trades.

    ``tr_t`` (ms, sorted) and ``tr_px``/``tr_sz`` are the trades with ``tr_t <= end_ms``;
    ``prev_close`` is the price before the first candle (last earlier trade, or the mid).
    An interval without trades is flat at the previous close with zero volume.
    Returns ``[(open_ms, o, h, l, c, volume, n_trades), ...]`` in time order.
    """
    first = (int(start_ms) // interval_ms) * interval_ms
    last = (int(end_ms) // interval_ms) * interval_ms
    if last < first:
        return []
    nb = (last - first) // interval_ms + 1
    lo = int(np.searchsorted(tr_t, first, side="left"))
    hi = int(np.searchsorted(tr_t, end_ms, side="right"))
    t, px, sz = tr_t[lo:hi], tr_px[lo:hi], tr_sz[lo:hi]
    b = (t - first) // interval_ms
    n = np.bincount(b, minlength=nb).astype(np.int64)
    o = np.full(nb, np.nan)
    h = np.full(nb, np.nan)
    low = np.full(nb, np.nan)
    c = np.full(nb, np.nan)
    v = np.bincount(b, weights=sz, minlength=nb)
    if t.size:
        starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
        ends = np.r_[starts[1:], t.size] - 1
        bins = b[starts]
        o[bins], c[bins] = px[starts], px[ends]
        h[bins] = np.maximum.reduceat(px, starts)
        low[bins] = np.minimum.reduceat(px, starts)
    # Flat candles at the previous close where nothing traded.
    filled = np.where(np.isnan(c), np.nan, c)
    idx = np.where(~np.isnan(filled), np.arange(nb), -1)
    np.maximum.accumulate(idx, out=idx)
    carry = np.where(idx >= 0, filled[np.maximum(idx, 0)], prev_close)
    prev = np.r_[prev_close, carry[:-1]]
    empty = n == 0
    o[empty] = h[empty] = low[empty] = c[empty] = prev[empty]
    times = first + np.arange(nb, dtype=np.int64) * interval_ms
    return list(zip(times.tolist(), o.tolist(), h.tolist(), low.tolist(), c.tolist(),
                    v.tolist(), n.tolist(), strict=True))
