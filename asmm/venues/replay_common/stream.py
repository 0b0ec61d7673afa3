"""The venue-independent half of a replay exchange's server (aiohttp): the stream loop that
sends a replayed market's events to the WebSocket connections that want them, paced by the
replay clock; fault injection per connection (:mod:`asmm.venues.replay_common.faults`);
the record file; and the test endpoints (not any exchange's), under ``/_replay/``:

- ``GET /_replay/sent``: messages sent so far per channel, ``fills`` (trade rows inside the
  trades messages), connections (open, total, dropped by faults) and, per connection, its
  subscriptions and data messages sent.
- ``GET /_replay/clock``: published time now, position, loop, whether streaming started or
  finished.
- ``POST /_replay/drop``: close every WebSocket now (``{"closed": n}``).
- ``POST /_replay/stall?seconds=S``: send nothing on the open WebSockets for S seconds.

With a record file, every WebSocket frame sent is one JSON line:
``{"conn":ID,"channel":CH,"msg":MESSAGE}`` (``"malformed":true`` added for injected ones) or
``{"conn":ID,"text":TEXT}`` for a connection greeting. The file is flushed whenever the
stream waits, on every ``/_replay/`` request and at shutdown.

A venue subclasses :class:`StreamServer`: its routes (added to :attr:`StreamServer.app`),
its WebSocket handler (calling :meth:`StreamServer._accept` / :meth:`StreamServer._release`),
:meth:`StreamServer._emit` (one event to the connections that want it) and
:meth:`StreamServer._malformed` (the malformed copy of a data message).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from pathlib import Path

from aiohttp import web

from asmm.venues.replay_common.faults import CoinSilence, Faults

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 2.0  # seconds to wait for a client's close frame
YIELD_EVERY = 256  # unpaced: let HTTP requests and client frames in every this many events


class Connection:
    """One client WebSocket: its subscriptions (keyed by the venue's subscription keys) and
    the fault-injection counters."""

    def __init__(self, cid: int, ws: web.WebSocketResponse):
        self.id, self.ws = cid, ws
        self.subs: dict[str, dict] = {}
        self.data_sent = 0
        self.stalled_until = 0.0
        self.closing = False

    def wants(self, key: str) -> bool:
        return key in self.subs and not self.closing and time.monotonic() >= self.stalled_until


class StreamServer:
    """Serve an exchange (:class:`asmm.venues.hyperliquid.replay.feed.Exchange`: the markets
    on one clock) on ``host:port`` (0 = a free port; see :attr:`port`).

    ``wait_subscriptions``: streaming starts once that many data subscriptions are open
    (0 = at once); unpaced, streaming also pauses whenever fewer are open, so nothing is
    raced through unseen.
    """

    # Channels whose message counts GET /_replay/sent reports.
    REPORTED_CHANNELS: tuple[str, ...] = ()

    def __init__(self, exchange, faults: Faults | None = None,
                 record: str | Path | None = None, wait_subscriptions: int = 0,
                 host: str = "127.0.0.1", port: int = 0):
        self.exchange = exchange
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
        self._pump_task: asyncio.Task | None = None
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.add_routes([
            web.get("/_replay/sent", self._sent),
            web.get("/_replay/clock", self._clock),
            web.post("/_replay/drop", self._drop),
            web.post("/_replay/stall", self._stall),
        ])

    # ------------------------------------------------------------------ venue hooks

    def _is_data_sub(self, sub: dict) -> bool:
        """Whether a subscription streams market data (counts for ``wait_subscriptions``)."""
        return True

    async def _emit(self, r, pos: int) -> None:
        """Send event ``pos`` of replay ``r`` to the connections that want it."""
        raise NotImplementedError

    def _malformed(self, channel: str, text: str) -> str:
        """A malformed copy of data message ``text`` (the ``malformed_every`` fault)."""
        raise NotImplementedError

    def _error_body(self, message: str) -> dict:
        """The body of a control endpoint's HTTP 400."""
        return {"error": message}

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
        """Open market-data subscriptions."""
        return sum(1 for c in self.conns.values() if not c.closing for sub in c.subs.values()
                   if self._is_data_sub(sub))

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

    def _targets(self, key: str, coin: str) -> list[Connection]:
        """Connections that want subscription ``key`` of ``coin`` now (faults applied)."""
        return [c for c in list(self.conns.values())
                if c.wants(key) and self._silence.lets(c.id, coin)]

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
            bad = self._malformed(channel, text)
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

    async def _reply(self, c: Connection, channel: str, text: str) -> None:
        """A control answer (subscription confirmation, pong, error): counted, recorded."""
        if await self._send(c, text):
            self.counts[channel] += 1
            self._rec(c, channel, text)

    # ------------------------------------------------------------------ connections

    async def _accept(self, request: web.Request) -> Connection:
        """Open a WebSocket for ``request`` and register its connection."""
        # A client that never answers the close frame holds shutdown for at most this long.
        ws = web.WebSocketResponse(autoping=True, timeout=CLOSE_TIMEOUT)
        await ws.prepare(request)
        c = Connection(self.next_id, ws)
        self.next_id += 1
        self.conns[c.id] = c
        log.info("websocket %d connected from %s", c.id, request.remote)
        return c

    def _release(self, c: Connection) -> None:
        """The connection ended (either side closed it)."""
        c.closing = True
        self.conns.pop(c.id, None)
        self._subs_changed.set()
        log.info("websocket %d closed after %d data messages", c.id, c.data_sent)

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

    # ------------------------------------------------------------------ test endpoints

    async def _sent(self, request: web.Request) -> web.Response:
        self._flush()
        return web.json_response({
            "messages": {k: int(self.counts.get(k, 0)) for k in self.REPORTED_CHANNELS},
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

        def coin_state(r) -> dict:
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
            return web.json_response(self._error_body("seconds must be a number"), status=400)
        until = time.monotonic() + seconds
        for c in self.conns.values():
            c.stalled_until = until
        return web.json_response({"stalled": len(self.conns), "seconds": seconds})


async def serve_forever(server: StreamServer, stop: asyncio.Event, on_ready) -> None:
    """Start ``server``, call ``on_ready(port)``, run until ``stop`` is set, shut down."""
    port = await server.start()
    try:
        on_ready(port)
        await stop.wait()
    finally:
        await server.stop()
