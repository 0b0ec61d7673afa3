"""The replay exchange over HTTP and WebSocket (aiohttp): a thin adapter over
:class:`asmm.venues.hyperliquid.replay.feed.Replay`.

Hyperliquid endpoints: ``POST /info`` and the WebSocket ``/ws``; with a paper exchange
(:class:`asmm.venues.hyperliquid.paper.service.Paper`), ``POST /exchange`` and the ``/info``
requests about a user too, our orders matched against every event before it is sent. The
stream loop, fault injection, the record file and the test endpoints under ``/_replay/``
(``sent``, ``clock``, ``drop``, ``stall``) are :class:`asmm.venues.replay_common.StreamServer`'s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

from aiohttp import WSMsgType, web

from asmm.venues.hyperliquid import protocol as hp
from asmm.venues.hyperliquid.replay.faults import Faults, corrupt
from asmm.venues.hyperliquid.replay.feed import Exchange, InfoError, Replay
from asmm.venues.hyperliquid.replay.market import CHANNEL
from asmm.venues.replay_common.stream import Connection, StreamServer, serve_forever

__all__ = ["Connection", "ReplayServer", "serve_forever"]

log = logging.getLogger(__name__)

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


class ReplayServer(StreamServer):
    """Serve an :class:`Exchange` as Hyperliquid on ``host:port`` (0 = a free port; see
    :attr:`port`).

    ``wait_subscriptions``: streaming starts once that many data subscriptions are open
    (0 = at once); unpaced, streaming also pauses whenever fewer are open, so nothing is
    raced through unseen.
    """

    REPORTED_CHANNELS = (*hp.DATA_CHANNELS, "malformed", "subscriptionResponse", "pong",
                         "error")

    def __init__(self, exchange: Exchange, faults: Faults | None = None,
                 record: str | Path | None = None, wait_subscriptions: int = 0,
                 host: str = "127.0.0.1", port: int = 0, paper=None):
        super().__init__(exchange, faults, record, wait_subscriptions, host, port)
        self.paper = paper
        if paper is not None:
            paper.engine.listeners.append(self._on_user_event)
        self._pushes: set[asyncio.Task] = set()  # user-channel messages being sent
        self.app.add_routes([
            web.post("/info", self._info),
            web.post("/exchange", self._exchange),
            web.get("/ws", self._ws),
        ])

    # ------------------------------------------------------------------ streaming

    def _is_data_sub(self, sub: dict) -> bool:
        # A user channel streams nothing of the market.
        return sub["type"] not in USER_CHANNELS

    def _malformed(self, channel: str, text: str) -> str:
        return hp.dumps(corrupt(channel, json.loads(text)))

    def _error_body(self, message: str) -> dict:
        return hp.info_error(message)

    async def _emit(self, r: Replay, pos: int) -> None:
        if self.paper is not None:
            # Our orders meet the event before any client hears of it: a fill is never
            # later than the trade that made it.
            self.paper.on_event(r, pos)
        coin = r.market.coin
        kind_channel = f"{CHANNEL[int(r.market.ev_kind[pos])]}:{coin}"
        targets = self._targets(kind_channel, coin)
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
                for c in self._targets(key, coin):
                    await self._send_data(c, "candle", text, 0)

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
        c = await self._accept(request)
        try:
            if await self._send(c, hp.CONNECTED_TEXT):
                self._rec(c, None, hp.CONNECTED_TEXT)
            async for frame in c.ws:
                if frame.type == WSMsgType.TEXT:
                    await self._on_client(c, frame.data)
        finally:
            self._release(c)
        return c.ws

    async def _reply(self, c: Connection, channel: str, msg: dict) -> None:
        await super()._reply(c, channel, hp.dumps(msg))

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

