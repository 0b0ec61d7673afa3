"""The Bybit replay exchange over HTTP and WebSocket (aiohttp): a thin adapter over
:class:`asmm.venues.bybit.replay.feed.BybitFeed`.

Bybit endpoints: ``GET /v5/market/...`` (public REST, the answers in
:meth:`BybitFeed.rest`) and the public linear WebSocket ``/v5/public/linear``. A path not
served answers HTTP 404 with a Bybit envelope (``retCode`` 10404) and logs one line. The
stream loop, fault injection, the record file and the test endpoints under ``/_replay/``
(``sent``, ``clock``, ``drop``, ``stall``) are
:class:`asmm.venues.replay_common.StreamServer`'s.

Subscriptions are Bybit topics (``orderbook.1.BTCUSDT``, ``orderbook.50.BTCUSDT``,
``publicTrade.BTCUSDT``, ``tickers.BTCUSDT``, ``kline.1.BTCUSDT``). As on Bybit, an
orderbook or tickers subscription gets the current state at once (once anything was
published); an orderbook topic deeper than 1 then gets deltas against what *that
connection* last got, so a connection that was stalled still rebuilds the right book.

An orderbook topic's update id ``u`` numbers the topic's messages, as Bybit's does: it
advances by one for each message the topic publishes — on ``orderbook.1`` every BBO
state, deeper only when an event changed the levels the topic serves (a book event
behind the 50th level is no ``orderbook.50`` message and no ``u``). A connection that got
every message sees consecutive ``u``; one that missed some (stalled, silenced) sees it
jump, which on Bybit means a lost message. A topic's first snapshot has ``u`` 1; a new
subscriber's snapshot carries the topic's current ``u``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import WSMsgType, web

from asmm.venues.bybit import protocol as bp
from asmm.venues.bybit.replay.feed import BybitFeed, RequestError
from asmm.venues.hyperliquid.replay.faults import BAD_NUMBER, Faults
from asmm.venues.hyperliquid.replay.feed import Replay
from asmm.venues.replay_common.stream import Connection, StreamServer

log = logging.getLogger(__name__)

WS_PATH = "/v5/public/linear"
# Channel names counted by GET /_replay/sent.
CHANNELS = ("orderbook", "publicTrade", "tickers", "kline")


@dataclass
class TopicBook:
    """What one orderbook topic last published: the book after event ``at`` = ``(loop,
    position)``, ``bids``/``asks`` ``[(px USDT, size coin), ...]`` best first and the same
    as ``{px: size}`` (``held``), and the update id ``u`` of that message."""

    at: tuple[int, int]
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    held: tuple[dict, dict]
    u: int


class BybitReplayServer(StreamServer):
    """Serve a :class:`BybitFeed` as Bybit on ``host:port`` (0 = a free port)."""

    REPORTED_CHANNELS = (*CHANNELS, "malformed", "subscribe", "pong", "error")

    def __init__(self, feed: BybitFeed, faults: Faults | None = None,
                 record: str | Path | None = None, wait_subscriptions: int = 0,
                 host: str = "127.0.0.1", port: int = 0):
        super().__init__(feed.exchange, faults, record, wait_subscriptions, host, port)
        self.feed = feed
        # (connection id, orderbook topic) -> the book that connection holds: {px: sz} a side.
        self._books: dict[tuple[int, str], tuple[dict, dict]] = {}
        # orderbook topic -> what it last published (kept while nobody subscribes, so its
        # u never goes back).
        self._published: dict[str, TopicBook] = {}
        self.app.add_routes([
            web.get(WS_PATH, self._ws),
            web.route("*", "/{path:.*}", self._rest),
        ])

    # ------------------------------------------------------------------ streaming

    def _malformed(self, channel: str, text: str) -> str:
        bad = json.loads(text)
        data = bad["data"]
        if channel == "orderbook":
            data["b"] = BAD_NUMBER
        elif channel in ("publicTrade", "kline"):
            data[0]["p" if channel == "publicTrade" else "open"] = BAD_NUMBER
        elif channel == "tickers":
            data["bid1Price"] = BAD_NUMBER
        else:
            raise ValueError(f"no malformed form for channel {channel!r}")
        return bp.dumps(bad)

    def _error_body(self, message: str) -> dict:
        return bp.error(bp.BAD_PARAM, message, int(time.time() * 1000))

    async def _emit(self, r: Replay, pos: int) -> None:
        coin = r.market.coin
        symbol = bp.symbol_of(coin)
        for kind in self.feed.topics_of(r, pos):
            if kind == "publicTrade":
                targets = self._targets(f"publicTrade.{symbol}", coin)
                if targets:
                    msg, n = self.feed.trades_message(r, pos)
                    text = bp.dumps(msg)
                    for c in targets:
                        await self._send_coin(c, coin, "publicTrade", text, n)
            elif kind == "kline":
                for topic in self._topics("kline.", symbol):
                    text = bp.dumps(self.feed.kline_message(r, pos, topic.split(".")[1]))
                    for c in self._targets(topic, coin):
                        await self._send_coin(c, coin, "kline", text, 0)
            elif kind == "tickers":
                targets = self._targets(f"tickers.{symbol}", coin)
                if targets:
                    text = bp.dumps(self.feed.ticker_message(r, pos))
                    for c in targets:
                        await self._send_coin(c, coin, "tickers", text, 0)
            else:
                await self._emit_books(r, pos, kind == "orderbook.1")

    async def _send_coin(self, c: Connection, coin: str, channel: str, text: str,
                         n_fills: int) -> None:
        """One data message of ``coin``, unless the silence fault withholds it; each one
        sent counts towards that fault's N-th message."""
        if not self._silence.lets(c.id, coin):
            return
        sent = c.data_sent
        await self._send_data(c, channel, text, n_fills)
        if c.data_sent > sent:
            self._silence.sent(c.id, coin)

    def _topics(self, prefix: str, symbol: str) -> list[str]:
        """Subscribed topics ``prefix*.symbol`` over all connections."""
        return sorted({k for c in self.conns.values() for k in c.subs
                       if k.startswith(prefix) and k.endswith("." + symbol)})

    async def _emit_books(self, r: Replay, pos: int, top_only: bool) -> None:
        coin = r.market.coin
        for topic in self._topics("orderbook.", bp.symbol_of(coin)):
            depth = int(topic.split(".")[1])
            if (depth == 1) != top_only:
                continue
            # The topic advances for every subscriber, also a stalled or silenced one: that
            # one's next message then shows the u it missed.
            book, new = self._publish(r, topic, depth, pos, r.loop, every_event=depth == 1)
            if not new:
                continue
            for c in self._targets(topic, coin):
                await self._send_book(c, topic, depth, r.pub_time(pos), book)

    def _publish(self, r: Replay, topic: str, depth: int, pos: int, loop: int,
                 every_event: bool) -> tuple[TopicBook, bool]:
        """Orderbook topic ``topic``'s book after event ``pos`` of pass ``loop``, and
        whether that is a new message on the topic (its ``u`` advanced by one): always
        with ``every_event`` (``orderbook.1``), else only when the ``depth`` levels
        changed. A topic already past that event (a subscription answered while the event
        was being sent) stays as it is."""
        cur = self._published.get(topic)
        if cur is not None and cur.at >= (loop, pos):
            return cur, False
        bids, asks = self.feed.book_at(r, pos, depth)
        held = (dict(bids), dict(asks))
        if cur is not None and not every_event and cur.held == held:
            cur.at = (loop, pos)
            return cur, False
        book = TopicBook((loop, pos), bids, asks, held, 1 if cur is None else cur.u + 1)
        self._published[topic] = book
        return book, True

    async def _send_book(self, c: Connection, topic: str, depth: int, ts: int,
                         book: TopicBook) -> None:
        """A snapshot (depth 1, or the connection's first) or the delta against the book the
        connection holds, with the topic's ``u``; nothing when the connection holds that
        book already."""
        symbol = topic.rsplit(".", 1)[1]
        held = self._books.get((c.id, topic))
        if depth == 1 or held is None:
            msg = bp.book_message(depth, symbol, "snapshot", ts, book.bids, book.asks,
                                  book.u, book.u)
        else:
            db, da = _delta(held[0], book.held[0]), _delta(held[1], book.held[1])
            if not db and not da:
                return
            msg = bp.book_message(depth, symbol, "delta", ts, db, da, book.u, book.u)
        coin = bp.coin_of(symbol)
        if not self._silence.lets(c.id, coin):
            return  # withheld: the connection's book stays what it last got
        if depth > 1:
            self._books[(c.id, topic)] = book.held
        await self._send_coin(c, coin, "orderbook", bp.dumps(msg), 0)

    # ------------------------------------------------------------------ handlers

    async def _rest(self, request: web.Request) -> web.Response:
        now = self.feed.now_ms(time.time())
        path = request.path
        if request.method != "GET" or not path.startswith("/v5/"):
            log.warning("bybit replay: %s %s is not served", request.method, request.path_qs)
            return web.json_response(bp.error(bp.NOT_FOUND, f"{request.method} {path} is not "
                                              "served by this replay", now), status=404)
        try:
            result = self.feed.rest(path[len("/v5/"):], dict(request.query), time.time())
        except RequestError as e:
            if e.code == bp.NOT_FOUND:
                log.warning("bybit replay: GET %s is not served", request.path_qs)
            return web.json_response(bp.error(e.code, str(e), now),
                                     status=404 if e.code == bp.NOT_FOUND else 200,
                                     dumps=bp.dumps)
        return web.json_response(bp.envelope(result, now), dumps=bp.dumps)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        c = await self._accept(request)
        try:
            async for frame in c.ws:
                if frame.type == WSMsgType.TEXT:
                    await self._on_client(c, frame.data)
        finally:
            self._release(c)
            for key in [k for k in self._books if k[0] == c.id]:
                del self._books[key]
        return c.ws

    async def _answer(self, c: Connection, channel: str, msg: dict) -> None:
        await self._reply(c, channel, bp.dumps(msg))

    async def _on_client(self, c: Connection, text: str) -> None:
        conn_id = f"replay-{c.id}"
        try:
            req = json.loads(text)
            op, req_id = req.get("op"), str(req.get("req_id", ""))
        except (ValueError, AttributeError):
            await self._answer(c, "error", bp.op_response("", "", conn_id, False,
                                                          f"error:invalid message {text[:100]}"))
            return
        if op == "ping":
            await self._answer(c, "pong", bp.pong(req_id, conn_id))
            return
        if op not in ("subscribe", "unsubscribe"):
            await self._answer(c, "error", bp.op_response(str(op), req_id, conn_id, False,
                                                          f"error:unknown op {op!r}"))
            return
        topics = req.get("args")
        bad = [t for t in topics if self._check_topic(t)] if isinstance(topics, list) else [
            topics]
        if bad:
            await self._answer(c, "error", bp.op_response(
                op, req_id, conn_id, False, f"error:handler not found,topic:{bad[0]}"))
            return
        # Answer first, then the data: a client sees the confirmation before any row.
        await self._answer(c, "subscribe", bp.op_response(op, req_id, conn_id))
        for topic in topics:
            if op == "subscribe":
                c.subs[topic] = {"topic": topic}
                await self._initial(c, topic)
            else:
                c.subs.pop(topic, None)
                self._books.pop((c.id, topic), None)
        self._subs_changed.set()

    async def _initial(self, c: Connection, topic: str) -> None:
        """The snapshot Bybit sends on subscribing to a book or ticker topic."""
        kind, symbol = topic.split(".", 1)[0], topic.rsplit(".", 1)[1]
        r = self.feed.symbols[symbol]
        if kind not in ("orderbook", "tickers") or not r.sent_any:
            return
        if not self._silence.lets(c.id, r.market.coin):
            return
        p, loop = r.state_pos()
        ts = self.feed.now_ms(time.time())
        if kind == "tickers":
            msg = bp.ticker_message(symbol, ts, self.feed.ticker(r, p, True, ts),
                                    self.feed.update_id(r, p, loop, 1))
            await self._send_coin(c, r.market.coin, "tickers", bp.dumps(msg), 0)
            return
        depth = int(topic.split(".")[1])
        # The book the topic stands at, with its current u: not a message of the topic
        # (only this connection gets it), so u advances only if events went by unpublished.
        book, _ = self._publish(r, topic, depth, p, loop, every_event=False)
        self._books.pop((c.id, topic), None)
        await self._send_book(c, topic, depth, ts, book)

    def _check_topic(self, topic) -> str | None:
        """Why ``topic`` is not served (None when it is)."""
        parts = topic.split(".") if isinstance(topic, str) else []
        if len(parts) not in (2, 3) or parts[-1] not in self.feed.symbols:
            return "unknown topic or symbol"
        if parts[0] in ("publicTrade", "tickers") and len(parts) == 2:
            return None
        if parts[0] == "orderbook" and len(parts) == 3 and parts[1].isdigit() \
                and int(parts[1]) in bp.BOOK_DEPTHS:
            return None
        if parts[0] == "kline" and len(parts) == 3 and parts[1] in bp.INTERVAL_MS:
            return None
        return "unknown topic"


def _delta(held: dict, new: dict) -> list[tuple[float, float]]:
    """Levels that changed from ``held`` to ``new`` ({px: sz}); removed levels with size 0."""
    out = [(px, sz) for px, sz in new.items() if held.get(px) != sz]
    out += [(px, 0.0) for px in held if px not in new]
    return out
