"""The replay exchange over HTTP and WebSocket (aiohttp): a thin adapter over
:class:`asmm.venues.hyperliquid.replay.feed.Replay`.

Hyperliquid endpoints: ``POST /info`` and the WebSocket ``/ws``; with a paper exchange
(:class:`asmm.venues.hyperliquid.paper.service.Paper`), ``POST /exchange`` and the ``/info``
requests about a user too, our orders matched against every event before it is sent. Test
endpoints (not
Hyperliquid's), under ``/_replay/``:

- ``GET /_replay/sent``: messages sent so far per channel (``bbo``, ``trades``, ``l2Book``,
  ``candle``, ``malformed``, ``subscriptionResponse``, ``pong``, ``error``), ``fills`` (trade
  rows inside the trades messages), connections (open, total, dropped by faults) and, per
  connection, its subscriptions and data messages sent.
- ``GET /_replay/clock``: published time now, position, loop, whether streaming started or
  finished.
- ``POST /_replay/drop``: close every WebSocket now (``{"closed": n}``).
- ``POST /_replay/stall?seconds=S``: send nothing on the open WebSockets for S seconds.

With a record file, every WebSocket frame sent is one JSON line:
``{"conn":ID,"channel":CH,"msg":MESSAGE}`` (``"malformed":true`` added for injected ones) or
``{"conn":ID,"text":TEXT}`` for the connection greeting. The file is flushed whenever the
stream waits, on every ``/_replay/`` request and at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from pathlib import Path

from aiohttp import WSMsgType, web

from asmm.venues.hyperliquid import protocol as hp
from asmm.venues.hyperliquid.replay.faults import CoinSilence, Faults, corrupt
from asmm.venues.hyperliquid.replay.feed import Exchange, InfoError, Replay
from asmm.venues.hyperliquid.replay.market import CHANNEL

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 2.0  # seconds to wait for a client's close frame
YIELD_EVERY = 256  # unpaced: let HTTP requests and client frames in every this many events


class Connection:
    """One client WebSocket: its subscriptions (keyed like the SDK's identifiers) and the
    fault-injection counters."""

    def __init__(self, cid: int, ws: web.WebSocketResponse):
        self.id, self.ws = cid, ws
        self.subs: dict[str, dict] = {}
        self.data_sent = 0
        self.stalled_until = 0.0
        self.closing = False

    def wants(self, key: str) -> bool:
        return key in self.subs and not self.closing and time.monotonic() >= self.stalled_until


# The paper exchange's user channels: subscription type -> the channel its messages carry.
USER_CHANNELS = {"orderUpdates": "orderUpdates", "userFills": "userFills",
                 "userEvents": "user"}


def _sub_key(sub: dict) -> str:
    """``type:coin`` (``candle:coin:interval``), matched against each event's channel;
    ``type:user`` for the user channels."""
    if sub["type"] == "candle":
        return f"candle:{sub['coin']}:{sub['interval']}"
    if sub["type"] in USER_CHANNELS:
        return f"{sub['type']}:{sub['user'].lower()}"
    return f"{sub['type']}:{sub['coin']}"


class ReplayServer:
    """Serve an :class:`Exchange` on ``host:port`` (0 = a free port; see :attr:`port`).

    ``wait_subscriptions``: streaming starts once that many data subscriptions are open
    (0 = at once); unpaced, streaming also pauses whenever fewer are open, so nothing is
    raced through unseen.
    """

    def __init__(self, exchange: Exchange, faults: Faults | None = None,
                 record: str | Path | None = None, wait_subscriptions: int = 0,
                 host: str = "127.0.0.1", port: int = 0, paper=None):
        self.exchange = exchange
        self.paper = paper
        if paper is not None:
            paper.engine.listeners.append(self._on_user_event)
        self.faults = faults or Faults()
        self._silence = CoinSilence(self.faults)
        self.wait_subscriptions = int(wait_subscriptions)
        self.host, self.port = host, int(port)
        self.conns: dict[int, Connection] = {}
        self.next_id = 1
        self.counts: Counter[str] = Counter()
        self.fills = 0
        self.drops = 0
        self._record_path = Path(record) if record else None
        self._record = None
        self._subs_changed = asyncio.Event()
        self._closing: set[asyncio.Task] = set()  # close handshakes in flight (kept referenced)
        self._pushes: set[asyncio.Task] = set()  # user-channel messages being sent
        self._pump_task: asyncio.Task | None = None
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.add_routes([
            web.post("/info", self._info),
            web.post("/exchange", self._exchange),
            web.get("/ws", self._ws),
            web.get("/_replay/sent", self._sent),
            web.get("/_replay/clock", self._clock),
            web.post("/_replay/drop", self._drop),
            web.post("/_replay/stall", self._stall),
        ])

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> int:
        """Bind, start streaming, return the port."""
        if self._record_path is not None:
            # "x": a previous recording is evidence for some test or user; never clobber it.
            self._record = open(self._record_path, "x", encoding="utf-8")
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._pump_task = asyncio.create_task(self._pump())
        return self.port

    async def stop(self) -> None:
        if self._pump_task:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        await asyncio.gather(*(c.ws.close(code=1001, message=b"server shutdown")
                               for c in list(self.conns.values())), return_exceptions=True)
        await asyncio.gather(*self._closing, return_exceptions=True)
        if self._runner:
            await self._runner.cleanup()
        if self._record:
            self._record.close()
            self._record = None

    # ------------------------------------------------------------------ streaming

    def _n_subscriptions(self) -> int:
        """Open market-data subscriptions (a user channel streams nothing of the market)."""
        return sum(1 for c in self.conns.values() if not c.closing for sub in c.subs.values()
                   if sub["type"] not in USER_CHANNELS)

    async def _enough_subscribers(self) -> None:
        while self._n_subscriptions() < self.wait_subscriptions:
            self._flush()
            self._subs_changed.clear()
            await self._subs_changed.wait()

    async def _pump(self) -> None:
        ex = self.exchange
        await self._enough_subscribers()
        ex.start(time.time())
        log.info("streaming %s from published time %d", ", ".join(ex.coins),
                 ex.clock.pub0)
        n = 0
        while (r := ex.next_replay()) is not None:
            pos = r.pos
            if ex.paced:
                delay = ex.clock.wall_at(r.pub_time(pos)) - time.time()
                if delay > 0:
                    self._flush()
                    # Pacing the replay clock, not synchronising anything.
                    await asyncio.sleep(delay)
            elif self.wait_subscriptions:
                await self._enough_subscribers()
            await self._emit(r, pos)
            r.advance()
            n += 1
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        self._flush()
        log.info("replay finished after %d events", n)

    async def _emit(self, r: Replay, pos: int) -> None:
        if self.paper is not None:
            # Our orders meet the event before any client hears of it: a fill is never
            # later than the trade that made it.
            self.paper.on_event(r, pos)
        coin = r.market.coin
        kind_channel = f"{CHANNEL[int(r.market.ev_kind[pos])]}:{coin}"
        targets = [c for c in list(self.conns.values())
                   if c.wants(kind_channel) and self._silence.lets(c.id, coin)]
        if targets:  # build the message only when someone gets it (unpaced speed)
            channel, text, n_fills = r.event_text(pos)
            for c in targets:
                await self._send_data(c, channel, text, n_fills)
                self._silence.sent(c.id, coin)
        if r.is_trades(pos):
            prefix = f"candle:{coin}:"
            keys = {k for c in self.conns.values() for k in c.subs if k.startswith(prefix)}
            for key in sorted(keys):
                cmsg = r.candle_message(pos, key[len(prefix):])
                text = hp.dumps(cmsg)
                for c in [c for c in list(self.conns.values())
                          if c.wants(key) and self._silence.lets(c.id, coin)]:
                    await self._send_data(c, "candle", text, 0)

    async def _send_data(self, c: Connection, channel: str, text: str, n_fills: int) -> None:
        if not await self._send(c, text):
            return
        self.counts[channel] += 1
        self.fills += n_fills
        self._rec(c, channel, text)
        c.data_sent += 1
        f = self.faults
        if not f.any:
            return
        if f.malformed_every and c.data_sent % f.malformed_every == 0:
            bad = hp.dumps(corrupt(channel, json.loads(text)))
            if await self._send(c, bad):
                self.counts["malformed"] += 1
                self._rec(c, channel, bad, malformed=True)
        if f.stall_every and c.data_sent % f.stall_every == 0:
            c.stalled_until = time.monotonic() + f.stall_seconds
        if f.drop_after and c.data_sent >= f.drop_after:
            self.drops += 1
            await self._close(c)

    async def _send(self, c: Connection, text: str) -> bool:
        if c.closing or c.ws.closed:
            return False
        try:
            await c.ws.send_str(text)
        except (ConnectionError, RuntimeError) as e:
            log.info("connection %d gone while sending: %s", c.id, e)
            c.closing = True
            return False
        return True

    async def _close(self, c: Connection) -> None:
        c.closing = True
        self._subs_changed.set()
        # Closing waits for the client's close frame; the stream must not wait with it.
        task = asyncio.get_running_loop().create_task(
            c.ws.close(code=1001, message=b"replay drop"))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # ------------------------------------------------------------------ recording

    def _rec(self, c: Connection, channel: str | None, text: str, malformed: bool = False):
        if self._record is None:
            return
        if channel is None:
            self._record.write(f'{{"conn":{c.id},"text":{json.dumps(text)}}}\n')
        elif malformed:
            self._record.write(f'{{"conn":{c.id},"channel":"{channel}","malformed":true,'
                               f'"msg":{text}}}\n')
        else:
            self._record.write(f'{{"conn":{c.id},"channel":"{channel}","msg":{text}}}\n')

    def _flush(self) -> None:
        if self._record is not None:
            self._record.flush()

    # ------------------------------------------------------------------ handlers

    async def _info(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response(hp.info_error("request body is not JSON"), status=400,
                                     dumps=hp.dumps)
        try:
            if self.paper is not None and isinstance(body, dict) and self.paper.serves(body):
                answer = self.paper.api.info(body)
            else:
                answer = self.exchange.info(body, time.time())
        except InfoError as e:
            return web.json_response(hp.info_error(str(e)), status=400, dumps=hp.dumps)
        return web.json_response(answer, dumps=hp.dumps)

    def _on_user_event(self, address: str, kind: str, data: dict) -> None:
        """The paper engine's order update or fill, to the user channels that want it
        (called inside the server's loop: by a request handler or the market pump)."""
        if kind == "order":
            out = [("orderUpdates", {"channel": "orderUpdates", "data": [data]})]
        else:
            out = [("userFills", {"channel": "userFills",
                                  "data": {"user": address, "fills": [data]}}),
                   ("userEvents", {"channel": "user", "data": {"fills": [data]}})]
        for sub_type, msg in out:
            targets = [c for c in self.conns.values() if c.wants(f"{sub_type}:{address}")]
            if targets:
                text = hp.dumps(msg)
                for c in targets:
                    task = asyncio.get_running_loop().create_task(
                        self._send_data(c, USER_CHANNELS[sub_type], text, 0))
                    self._pushes.add(task)  # kept referenced until sent
                    task.add_done_callback(self._pushes.discard)

    async def _exchange(self, request: web.Request) -> web.Response:
        if self.paper is None:
            return web.json_response({"status": "err", "response": "this replay exchange "
                                      "serves no paper exchange"}, dumps=hp.dumps)
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"status": "err", "response": "request body is not "
                                      "JSON"}, status=400, dumps=hp.dumps)
        return web.json_response(self.paper.api.exchange(body), dumps=hp.dumps)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        # A client that never answers the close frame holds shutdown for at most this long.
        ws = web.WebSocketResponse(autoping=True, timeout=CLOSE_TIMEOUT)
        await ws.prepare(request)
        c = Connection(self.next_id, ws)
        self.next_id += 1
        self.conns[c.id] = c
        log.info("websocket %d connected from %s", c.id, request.remote)
        try:
            if await self._send(c, hp.CONNECTED_TEXT):
                self._rec(c, None, hp.CONNECTED_TEXT)
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    await self._on_client(c, frame.data)
        finally:
            c.closing = True
            self.conns.pop(c.id, None)
            self._subs_changed.set()
            log.info("websocket %d closed after %d data messages", c.id, c.data_sent)
        return ws

    async def _reply(self, c: Connection, channel: str, msg: dict) -> None:
        text = hp.dumps(msg)
        if await self._send(c, text):
            self.counts[channel] += 1
            self._rec(c, channel, text)

    async def _on_client(self, c: Connection, text: str) -> None:
        try:
            req = json.loads(text)
            method = req.get("method")
        except (ValueError, AttributeError):
            await self._reply(c, "error", hp.ws_error(f"Invalid message: {text[:100]}"))
            return
        if method == "ping":
            await self._reply(c, "pong", hp.pong())
            return
        if method not in ("subscribe", "unsubscribe"):
            await self._reply(c, "error", hp.ws_error(f"Unknown method: {text[:100]}"))
            return
        sub = req.get("subscription")
        problem = self._check_subscription(sub)
        if problem:
            await self._reply(c, "error", hp.ws_error(f"Invalid subscription {text}: {problem}"))
            return
        key = _sub_key(sub)
        # Answer first, then start the data: a client sees the confirmation before any row.
        await self._reply(c, "subscriptionResponse", hp.subscription_response(sub, method))
        if method == "subscribe":
            c.subs[key] = sub
            if sub["type"] == "userFills":
                # As Hyperliquid: the recent fills first, flagged as a snapshot.
                user = sub["user"].lower()
                fills = self.paper.api.info({"type": "userFills", "user": user})
                await self._reply(c, "userFills", {"channel": "userFills", "data": {
                    "isSnapshot": True, "user": user, "fills": fills}})
        else:
            c.subs.pop(key, None)
        self._subs_changed.set()

    def _check_subscription(self, sub) -> str | None:
        if not isinstance(sub, dict):
            return "subscription must be an object"
        kind = sub.get("type")
        if kind in USER_CHANNELS:
            if self.paper is None:
                return "user channels need the paper exchange"
            user = sub.get("user")
            if not (isinstance(user, str) and user.startswith("0x") and len(user) == 42):
                return f"user {user!r} is not an address"
            return None
        if kind not in hp.DATA_CHANNELS:
            return f"type {kind!r} not served (one of {', '.join(hp.DATA_CHANNELS)})"
        if sub.get("coin") not in self.exchange.replays:
            return f"coin {sub.get('coin')!r} not served ({', '.join(self.exchange.coins)})"
        if kind == "candle" and sub.get("interval") not in hp.INTERVAL_MS:
            return f"interval {sub.get('interval')!r} not one of {', '.join(hp.INTERVAL_MS)}"
        return None

    async def _sent(self, request: web.Request) -> web.Response:
        self._flush()
        return web.json_response({
            "messages": {k: int(self.counts.get(k, 0)) for k in (
                *hp.DATA_CHANNELS, "malformed", "subscriptionResponse", "pong", "error")},
            "fills": self.fills,
            "connections": len(self.conns),
            "connections_total": self.next_id - 1,
            "dropped_by_fault": self.drops,
            "per_connection": [{"id": c.id, "subscriptions": list(c.subs.values()),
                                "data_sent": c.data_sent} for c in self.conns.values()],
        })

    async def _clock(self, request: web.Request) -> web.Response:
        self._flush()
        ex = self.exchange

        def coin_state(r: Replay) -> dict:
            p, loop = r.state_pos()
            return {"position": p, "loop": loop, "events": r.market.n_events,
                    "finished": r.finished, "sent_any": r.sent_any}

        # Top-level position/loop/events are the first coin's (the single-coin case).
        return web.json_response({
            "now_ms": ex.now_ms(time.time()), **coin_state(ex.first),
            "started": ex.started, "finished": ex.finished, "speed": ex.cfg.speed,
            "shift_ms": ex.clock.shift_ms, "coin": ex.first.market.coin,
            "coins": {c: coin_state(r) for c, r in ex.replays.items()},
        })

    async def _drop(self, request: web.Request) -> web.Response:
        conns = [c for c in self.conns.values() if not c.closing]
        for c in conns:
            await self._close(c)
        self._flush()
        return web.json_response({"closed": len(conns)})

    async def _stall(self, request: web.Request) -> web.Response:
        try:
            seconds = float(request.query.get("seconds", ""))
        except ValueError:
            return web.json_response(hp.info_error("seconds must be a number"), status=400)
        until = time.monotonic() + seconds
        for c in self.conns.values():
            c.stalled_until = until
        return web.json_response({"stalled": len(self.conns), "seconds": seconds})


async def serve_forever(server: ReplayServer, stop: asyncio.Event, on_ready) -> None:
    """Start ``server``, call ``on_ready(port)``, run until ``stop`` is set, shut down."""
    port = await server.start()
    try:
        on_ready(port)
        await stop.wait()
    finally:
        await server.stop()
