"""Bybit v5 public WebSocket messages (USDT perpetuals) -> rows of the collector files.

Pure functions and one small class, no I/O: the collector's writer thread calls them
(:mod:`.decode`), the tests feed them frames shaped as Bybit documents them. Shapes (Bybit
v5 docs, "Orderbook" and "Trade" of the public WebSocket)::

    orderbook.{1|50}.SYMBOL  {"topic","type":"snapshot"|"delta","ts":ms,"cts":ms,
                              "data":{"s":SYMBOL,"b":[[px,sz],...],"a":[[px,sz],...],
                                      "u":update id,"seq":cross sequence}}
    publicTrade.SYMBOL       {"topic","type":"snapshot","ts":ms,
                              "data":[{"T":ms,"s":SYMBOL,"S":"Buy"|"Sell","v":sz,"p":px,
                                       "L":tick direction,"i":trade id,"BT":block trade},...]}

Units: prices (``p``, ``b[i][0]``, ``a[i][0]``) USDT per coin and sizes (``v``, ``b[i][1]``,
``a[i][1]``) coin, both decimal strings; ``ts`` (the time Bybit's market data service made
the message), ``cts`` (the matching engine's time) and ``T`` (the trade's time) epoch
milliseconds. A row's ``timestamp`` is the receive time in epoch seconds (the caller's),
``exchange_timestamp`` is ``ts`` for a book and ``T`` for a trade, in milliseconds as
everywhere in the collector format.

**The book.** ``b`` is bids best (highest) first, ``a`` asks best (lowest) first. A snapshot
is the whole book to the topic's depth and replaces what is kept; a delta lists changed
levels, a size ``"0"`` removing one. ``u`` counts a topic's messages: a delta must carry the
kept book's ``u`` + 1, otherwise one was missed and the book is wrong (:class:`OrderBook`
says so; the collector drops the topic's messages until a snapshot, resubscribes, and
records a gap). Bybit sends a snapshot again when its service restarts (``u`` = 1) or when
level 1 did not change for 3 s: any snapshot resets the book. ``orderbook.1`` is
snapshots only on Bybit's linear feed; it is kept by the same rules.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from asmm.core.errors import ProtocolError
from asmm.data import files
from asmm.venues.bybit.symbols import symbol_of
from asmm.venues.fields import json_object, positive_int, positive_number

BOOK_CHANNELS = ("orderbook.1", "orderbook.50")  # level 1 -> prices, 50 levels -> orderbooks
TRADES_CHANNEL = "publicTrade"
CHANNELS = (*BOOK_CHANNELS, TRADES_CHANNEL)
KIND_OF = {"orderbook.1": "prices", "orderbook.50": "orderbooks", "publicTrade": "trades"}
_TOPIC_RE = re.compile(r"^(orderbook\.(?:1|50)|publicTrade)\.([A-Z0-9]+)$")


def topics(coin: str) -> list[str]:
    """The topics the collector subscribes for a coin, book first."""
    sym = symbol_of(coin)
    return [f"{ch}.{sym}" for ch in CHANNELS]


def book_topics(coin: str) -> list[str]:
    """A coin's book topics (what a quiet or out-of-sync coin is resubscribed to)."""
    sym = symbol_of(coin)
    return [f"{ch}.{sym}" for ch in BOOK_CHANNELS]


def split_topic(topic: Any) -> tuple[str, str]:
    """``"orderbook.50.BTCUSDT"`` -> ``("orderbook.50", "BTCUSDT")``; ProtocolError for a
    topic the collector does not subscribe to."""
    m = _TOPIC_RE.match(topic) if isinstance(topic, str) else None
    if m is None:
        raise ProtocolError(f"not a collected topic: {str(topic)[:80]!r}")
    return m.group(1), m.group(2)


# One text frame decoded into a JSON object; ProtocolError otherwise.
parse_message = json_object


@dataclass
class BookUpdate:
    """One orderbook message, checked: ``kind`` snapshot|delta, ``ts`` ms, ``u`` update id,
    ``seq`` cross sequence (None when absent), levels as (price USDT, size coin)."""

    channel: str
    symbol: str
    kind: str
    ts: int
    u: int
    seq: int | None
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


_INF = float("inf")


def _levels(side: Any, what: str, zero_ok: bool) -> list[tuple[float, float]]:
    """``[[price, size], ...]`` (decimal strings) -> ``[(price, size), ...]``; ProtocolError
    naming the first bad level. The common case (every level two good strings) is checked
    in one pass; anything else goes through the level-by-level check for its message."""
    if isinstance(side, list):
        try:
            out = [(float(px), float(sz)) for px, sz in side
                   if type(px) is str and type(sz) is str]
        except (TypeError, ValueError):
            out = None
        lo = 0.0 if zero_ok else 5e-324  # the least size allowed: 0, or above 0
        if out is not None and len(out) == len(side) and all(
                0.0 < px < _INF and lo <= sz < _INF for px, sz in out):
            return out
    return _levels_checked(side, what, zero_ok)


def _levels_checked(side: Any, what: str, zero_ok: bool) -> list[tuple[float, float]]:
    if not isinstance(side, list):
        raise ProtocolError(f"{what} must be a list of [price, size], got {str(side)[:80]}")
    out = []
    for i, lv in enumerate(side):
        if not isinstance(lv, list) or len(lv) < 2:
            raise ProtocolError(f"{what}[{i}] is not [price, size]: {lv!r}")
        out.append((positive_number(lv[0], f"{what}[{i}] price"),
                    positive_number(lv[1], f"{what}[{i}] size", zero_ok)))
    return out


def parse_book(msg: dict) -> BookUpdate:
    """Check an ``orderbook.N.SYMBOL`` message whole (nothing is half-parsed)."""
    channel, symbol = split_topic(msg.get("topic"))
    if channel not in BOOK_CHANNELS:
        raise ProtocolError(f"{msg.get('topic')!r} is not an orderbook topic")
    kind = msg.get("type")
    if kind not in ("snapshot", "delta"):
        raise ProtocolError(f"orderbook type must be snapshot or delta, got {kind!r}")
    d = msg.get("data")
    if not isinstance(d, dict):
        raise ProtocolError(f"orderbook data must be an object, got {str(d)[:80]}")
    if d.get("s") != symbol:
        raise ProtocolError(f"orderbook data for {d.get('s')!r} on topic {msg.get('topic')}")
    seq = d.get("seq")
    return BookUpdate(channel, symbol, kind, positive_int(msg.get("ts"), "orderbook ts"),
                      positive_int(d.get("u"), "orderbook u"),
                      None if seq is None else positive_int(seq, "orderbook seq"),
                      _levels(d.get("b"), "orderbook b", kind == "delta"),
                      _levels(d.get("a"), "orderbook a", kind == "delta"))


@dataclass
class OrderBook:
    """One topic's book, kept from a snapshot and the deltas after it.

    ``u`` is the update id of the newest message applied, None while there is no valid book
    (before the first snapshot, after a missed message).
    """

    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    u: int | None = None

    def apply(self, upd: BookUpdate) -> str:
        """Apply ``upd``; ``"ok"``, or why not: ``"no snapshot"`` (a delta before any
        snapshot) or ``"gap"`` (a delta whose ``u`` is not the kept one + 1: the book is
        dropped until the next snapshot)."""
        if upd.kind == "snapshot":
            self.bids = dict(upd.bids)
            self.asks = dict(upd.asks)
            self.u = upd.u
            return "ok"
        if self.u is None:
            return "no snapshot"
        if upd.u != self.u + 1:
            self.bids, self.asks, self.u = {}, {}, None
            return "gap"
        for side, levels in ((self.bids, upd.bids), (self.asks, upd.asks)):
            for px, sz in levels:
                if sz == 0:
                    side.pop(px, None)
                else:
                    side[px] = sz
        self.u = upd.u
        return "ok"

    def top(self, depth: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """The best ``depth`` levels a side: bids highest first, asks lowest first."""
        b, a = self.bids, self.asks
        if depth == 1:  # the BBO: max/min, no sort
            return ([(p := max(b), b[p])] if b else []), ([(q := min(a), a[q])] if a else [])
        # Sorting the (at most 50) prices in C is ~4x faster than heapq over the items.
        return ([(p, b[p]) for p in sorted(b, reverse=True)[:depth]],
                [(p, a[p]) for p in sorted(a)[:depth]])


def prices_rows(book: OrderBook, t: float, ts: int) -> list[tuple]:
    """``prices`` rows ``(timestamp, price, size, side, exchange_timestamp)`` of the best
    bid and ask (a side with no level gives no row)."""
    bids, asks = book.top(1)
    rows = [(t, px, sz, "bid", ts) for px, sz in bids]
    rows += [(t, px, sz, "ask", ts) for px, sz in asks]
    return rows


def orderbook_row(book: OrderBook, depth: int, t: float, ts: int) -> tuple:
    """One ``orderbooks`` row ``(timestamp, sequence, exchange_timestamp, bid_price_0,
    bid_size_0, ask_price_0, ask_size_0, ...)``: ``sequence`` is Bybit's ``u`` of the
    message, levels beyond the book are None (an empty CSV field)."""
    bids, asks = book.top(depth)
    return files.orderbook_row(t, book.u or 0, ts, bids, asks, depth)


def trade_id(value: Any) -> int:
    """Bybit's trade id ``i`` as the collector's integer ``trade_id`` (int64).

    A decimal string (what the replay exchange sends) is that number; a UUID (what Bybit
    sends) is its top 63 bits; any other text the top 63 bits of its SHA-256. The same id
    always gives the same number, and different UUIDs collide with negligible chance.
    """
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise ProtocolError(f"trade id is not a string: {value!r}")
    text = str(value)
    if text.isdigit() and int(text) < 2**63:
        return int(text)
    try:
        return uuid.UUID(text).int >> 65
    except ValueError:
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def parse_trades(msg: dict, received: float) -> tuple[str, list[tuple], int]:
    """A ``publicTrade.SYMBOL`` message -> ``(symbol, rows, block_trades)``: ``trades`` rows
    ``(timestamp, price, size, side, trade_id, exchange_timestamp)``, side the aggressor
    (``buy``/``sell``), in the message's order. Block trades (``BT`` true: negotiated off
    the book, never met a resting order) are not rows; their count is returned. Every
    trade is checked before any row is returned."""
    channel, symbol = split_topic(msg.get("topic"))
    if channel != TRADES_CHANNEL:
        raise ProtocolError(f"{msg.get('topic')!r} is not a publicTrade topic")
    d = msg.get("data")
    if not isinstance(d, list):
        raise ProtocolError(f"publicTrade data must be a list, got {type(d).__name__}")
    rows, block = [], 0
    for n, f in enumerate(d):
        if not isinstance(f, dict):
            raise ProtocolError(f"trade {n} is not an object: {f!r}")
        if f.get("s") != symbol:
            raise ProtocolError(f"trade {n} is for {f.get('s')!r} on topic {msg.get('topic')}")
        side = {"Buy": "buy", "Sell": "sell"}.get(f.get("S"))
        if side is None:
            raise ProtocolError(f"trade {n}: S must be 'Buy' or 'Sell', got {f.get('S')!r}")
        row = (float(received), positive_number(f.get("p"), f"trade {n} p"),
               positive_number(f.get("v"), f"trade {n} v"), side, trade_id(f.get("i")),
               positive_int(f.get("T"), f"trade {n} T"))
        if f.get("BT") is True:
            block += 1
        else:
            rows.append(row)
    return symbol, rows, block
