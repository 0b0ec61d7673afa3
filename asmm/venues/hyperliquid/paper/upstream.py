"""``asmm paper --upstream URL``: paper trading on the live market.

The relay serves Hyperliquid's API on 127.0.0.1 and matches orders locally — it never
forwards an order:

- ``POST /exchange`` and the ``/info`` requests about a user: the paper exchange
  (:class:`~asmm.venues.hyperliquid.paper.api.PaperApi`), accounts in its ledger;
- every other ``/info`` request: passed through to the upstream as it is;
- ``/ws``: each client's WebSocket is piped to its own upstream WebSocket, frame for frame;
- the matching engine hears the market from one upstream WebSocket of its own, subscribed
  to ``bbo``, ``trades`` and ``l2Book`` of the served coins — the collector's
  subscriptions (:func:`asmm.venues.hyperliquid.collector.feed.subscriptions`) — and
  reconnects after a drop (1 s, doubling to 30 s). While it is down no event reaches the
  engine, so nothing fills; the log says so.

Time is the wall clock (epoch ms). Units: prices and money in USDC, sizes in coin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path

import aiohttp
from aiohttp import WSMsgType, web

from asmm.core.fees import fee_tier
from asmm.venues.hyperliquid import protocol as hp
from asmm.venues.hyperliquid.paper.api import USER_INFO, PaperApi
from asmm.venues.hyperliquid.paper.engine import CoinSpec, PaperEngine
from asmm.venues.hyperliquid.paper.ledger import Ledger

log = logging.getLogger(__name__)

FEED_CHANNELS = ("bbo", "trades", "l2Book")
RECONNECT_MIN, RECONNECT_MAX = 1.0, 30.0  # s
FUNDING_REFRESH = 600.0  # s between reads of the upstream's funding rates


def _ws_url(http_url: str) -> str:
    return http_url.replace("https://", "wss://").replace("http://", "ws://").rstrip("/") + "/ws"


class Relay:
    """The live market from ``upstream`` (an ``https://`` API root), orders matched here."""

    def __init__(self, upstream: str, coins: list[str], ledger: str | Path | None = None,
                 tier: str = "hyperliquid:0", starting_balance: float = 10_000.0,
                 accounts: set[str] | None = None, host: str = "127.0.0.1", port: int = 0,
                 signing_chain: str = "mainnet"):
        if ledger is None:
            log.warning("paper exchange: in-memory ledger; accounts, orders and fills are lost "
                        "when it stops (--ledger PATH keeps them)")
        self.upstream = upstream.rstrip("/")
        self.coins = coins
        self.ledger_path, self.tier = ledger, tier
        self.starting_balance, self.accounts = starting_balance, accounts
        self.host, self.port = host, int(port)
        self.signing_chain = signing_chain
        self.funding_rates: dict[str, float] = {}
        self.feed_connected = asyncio.Event()
        self.events = 0
        self.engine: PaperEngine | None = None
        self.api: PaperApi | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task] = []
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.add_routes([web.post("/info", self._info), web.post("/exchange", self._exchange),
                             web.get("/ws", self._ws)])

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> int:
        """Read the upstream's listing, start the feed, bind; return the port. Raises
        ``ValueError`` for a coin the upstream does not list."""
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        meta = await self._upstream_info({"type": "meta"})
        universe = [u["name"] for u in meta["universe"]]
        missing = [c for c in self.coins if c not in universe]
        if missing:
            await self._http.close()
            raise ValueError(f"the upstream does not list {missing}")
        specs = [CoinSpec(u["name"], i, int(u["szDecimals"]), int(u["maxLeverage"]))
                 for i, u in enumerate(meta["universe"]) if u["name"] in self.coins]
        self.engine = PaperEngine(Ledger(self.ledger_path), specs, fee_tier(self.tier),
                                  starting_balance=self.starting_balance,
                                  accounts=self.accounts,
                                  funding=lambda coin: self.funding_rates.get(coin, 0.0))
        self.api = PaperApi(self.engine, lambda: int(time.time() * 1000), self.signing_chain)
        self._tasks = [asyncio.create_task(self._feed()), asyncio.create_task(self._funding())]
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._runner:
            await self._runner.cleanup()
        if self._http:
            await self._http.close()
        if self.engine:
            self.engine.ledger.close()

    # ------------------------------------------------------------------ the market feed

    async def _feed(self) -> None:
        delay = RECONNECT_MIN
        while True:
            try:
                async with self._http.ws_connect(_ws_url(self.upstream), heartbeat=50) as ws:
                    for coin in self.coins:
                        for ch in FEED_CHANNELS:
                            await ws.send_json({"method": "subscribe",
                                                "subscription": {"type": ch, "coin": coin}})
                    self.feed_connected.set()
                    log.info("paper: market feed connected to %s", self.upstream)
                    delay = RECONNECT_MIN
                    async for frame in ws:
                        if frame.type == WSMsgType.TEXT:
                            self._on_market(frame.data)
                        elif frame.type in (WSMsgType.CLOSED, WSMsgType.ERROR):
                            break
            except (TimeoutError, aiohttp.ClientError, OSError) as e:
                log.warning("paper: market feed: %s", e)
            self.feed_connected.clear()
            log.warning("paper: market feed down; nothing fills until it is back (retry in "
                        "%.0f s)", delay)
            await asyncio.sleep(delay)  # backoff before reconnecting, not synchronisation
            delay = min(delay * 2, RECONNECT_MAX)

    def _on_market(self, text: str) -> None:
        try:
            msg = hp.parse_message(text)
            channel = msg["channel"]
            if channel == "bbo":
                d = msg["data"]
                (_, bid, bsz, _, t), (_, ask, asz, _, _) = hp.parse_bbo(msg)
                self.engine.on_bbo(d["coin"], bid, bsz, ask, asz, t)
            elif channel == "trades":
                rows = hp.parse_trades(msg)
                if rows:
                    coin = msg["data"][0]["coin"]
                    self.engine.on_trades(coin, [(px, sz, 1 if side == "buy" else -1)
                                                 for _, px, sz, side, _, _ in rows], rows[-1][5])
            elif channel == "l2Book":
                d = msg["data"]
                levels = d["levels"]
                self.engine.on_l2(d["coin"], tuple([(float(lv["px"]), float(lv["sz"]),
                                                     int(lv.get("n", 1))) for lv in side]
                                                   for side in levels))
            else:
                return
            self.events += 1
        except (hp.ProtocolError, KeyError, ValueError, TypeError) as e:
            # One bad frame is dropped, as the collector drops it; the next one counts.
            log.warning("paper: market feed: unusable message dropped (%s)", e)

    async def _funding(self) -> None:
        while True:
            try:
                meta, ctxs = await self._upstream_info({"type": "metaAndAssetCtxs"})
                for u, ctx in zip(meta["universe"], ctxs, strict=False):
                    if u["name"] in self.coins:
                        self.funding_rates[u["name"]] = float(ctx.get("funding", 0.0))
            except (TimeoutError, aiohttp.ClientError, OSError, KeyError, ValueError,
                    TypeError) as e:
                log.warning("paper: cannot read funding rates upstream: %s", e)
            await asyncio.sleep(FUNDING_REFRESH)  # a refresh period, not synchronisation

    # ------------------------------------------------------------------ HTTP and WS

    async def _upstream_info(self, body: dict):
        async with self._http.post(self.upstream + "/info", json=body) as r:
            r.raise_for_status()
            return await r.json(content_type=None)

    async def _info(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("type") in USER_INFO:
            return web.json_response(self.api.info(body), dumps=hp.dumps)
        try:
            async with self._http.post(self.upstream + "/info", data=raw,
                                       headers={"Content-Type": "application/json"}) as r:
                return web.Response(body=await r.read(), status=r.status,
                                    content_type="application/json")
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            return web.json_response(hp.info_error(f"upstream unreachable: {e}", 502),
                                     status=502, dumps=hp.dumps)

    async def _exchange(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"status": "err", "response": "request body is not "
                                      "JSON"}, status=400, dumps=hp.dumps)
        return web.json_response(self.api.exchange(body), dumps=hp.dumps)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        """Pipe the client's WebSocket to an upstream one, both ways, until either closes."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        try:
            async with self._http.ws_connect(_ws_url(self.upstream)) as up:
                async def pipe(src, dst):
                    async for frame in src:
                        if frame.type == WSMsgType.TEXT:
                            await dst.send_str(frame.data)

                tasks = {asyncio.create_task(pipe(up, ws)), asyncio.create_task(pipe(ws, up))}
                _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        except (aiohttp.ClientError, OSError) as e:
            log.warning("paper: client WebSocket relay: %s", e)
        await ws.close()
        return ws
