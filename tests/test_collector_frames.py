"""Frames the replay exchange never sends: undecodable text, JSON without a channel.

A small aiohttp server on 127.0.0.1 plays the exchange: ``/info`` answers the SDK's
``spotMeta`` and ``meta``; ``/ws`` confirms the subscriptions, then sends bad frames and
two good ``bbo`` messages, one spelt differently.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from aiohttp import web
from test_collector_replay import serving

from asmm.data.readers import read_bbo
from asmm.venues.hyperliquid import protocol as hlproto
from asmm.venues.hyperliquid.collector.config import CollectorConfig
from asmm.venues.hyperliquid.collector.service import Collector

BAD_FRAMES = ["not json {", '{"no": "channel"}', "[1, 2, 3]", '"just a string"']
GOOD = hlproto.bbo_msg("BTC", 1_756_684_800_000, (100.0, 1.0, 1), (101.0, 2.0, 1))
# Valid, but not spelt as Hyperliquid spells it ("channel" not first, spaces): the collector
# must not depend on the spelling its fast path looks for.
REORDERED = json.dumps({"data": hlproto.bbo_msg("BTC", 1_756_684_801_000, (99.0, 1.0, 1),
                                                (102.0, 3.0, 1))["data"], "channel": "bbo"})


@pytest.fixture
def odd_exchange():
    """URL of a server that sends ``BAD_FRAMES`` then one good bbo after subscriptions."""

    async def info(request):
        body = await request.json()
        if body["type"] == "spotMeta":
            return web.json_response(hlproto.spot_meta())
        return web.json_response(hlproto.meta([("BTC", 5, 40)]))

    async def ws_handler(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(hlproto.CONNECTED_TEXT)
        subs = 0
        async for frame in ws:
            req = frame.json()
            if req.get("method") != "subscribe":
                continue
            await ws.send_str(hlproto.dumps(hlproto.subscription_response(req["subscription"])))
            subs += 1
            if subs == 3:
                for text in BAD_FRAMES:
                    await ws.send_str(text)
                await ws.send_str(hlproto.dumps(GOOD))
                await ws.send_str(REORDERED)
        return ws

    with serving([web.post("/info", info), web.get("/ws", ws_handler)]) as url:
        yield url


@pytest.mark.parametrize("transport", ["aiohttp", "sdk"])
def test_undecodable_frames_are_counted_and_skipped(odd_exchange, tmp_path, transport):
    cfg = CollectorConfig(output_dir=tmp_path, orderbook_depth=5, api_url=odd_exchange,
                          flush_seconds=0.1, ws_client=transport, backoff_min=0.05)
    c = Collector(cfg)
    t = threading.Thread(target=c.run, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 30
        while c.stats.messages.get("bbo", 0) < 2 or c.stats.malformed < len(BAD_FRAMES):
            assert time.monotonic() < deadline, (c.stats, c.fatal)
            time.sleep(0.02)
        assert c.connected.is_set()  # the bad frames did not cost the connection
    finally:
        c.stop()
        t.join(30)
    assert c.stats.malformed == len(BAD_FRAMES) and c.stats.reconnects == 0
    bbo = read_bbo(tmp_path, "BTC")
    assert list(bbo.bid) == [100.0, 99.0] and list(bbo.ask_size) == [2.0, 3.0]
