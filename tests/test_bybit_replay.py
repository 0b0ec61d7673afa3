"""The Bybit replay exchange (``asmm replay --venue bybit``) as a subprocess, driven by the
real clients: ccxt's ``bybit`` (REST), ccxt.pro and a plain WebSocket client. Every
expectation is computed from the collector files (``asmm.data.readers``), not from the
server's own code. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

import ccxt
import numpy as np
import pytest
import websocket

from asmm.data.readers import read_bbo, read_orderbooks, read_trades
from asmm.data.synth import SynthConfig, generate

SYMBOL = "BTC/USDT:USDT"
HISTORY_S = 3600  # data seconds already past when streaming starts
FUNDING_HOURLY = 0.0001  # --funding-rate: per hour
FUNDING_MIN = 15  # --funding-interval: minutes


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """One quiet synthetic day (~20k events) and its data as the collector wrote it."""
    out = tmp_path_factory.mktemp("bybit_market")
    generate(SynthConfig(days=1, seed=5, bbo_rate=0.2, A_bid=0.05, A_ask=0.05,
                         l2_interval=30.0, start=date(2025, 9, 1)), out)
    bbo, tr, ob = read_bbo(out, "BTC"), read_trades(out, "BTC"), read_orderbooks(out, "BTC")
    ok = ~bbo.crossed
    t0 = int(min(bbo.t[0], tr.t[0], ob.t[0]))
    return {"dir": out, "bbo": bbo, "ok": ok, "tr": tr, "ob": ob, "t0": t0,
            "anchor": t0 + HISTORY_S * 1000}


def ccxt_client(url: str) -> ccxt.bybit:
    return ccxt.bybit({"options": {"defaultType": "swap"},
                       "urls": {"api": {k: url for k in
                                        ("spot", "futures", "v2", "public", "private")}}})


def start_frozen(replay_exchange, market, *args):
    """Unpaced, published times = data times, the first hour already past, streaming held
    until a WebSocket subscribes: the state every REST answer reflects is the data's just
    before the anchor."""
    return replay_exchange(market["dir"], "--venue", "bybit", "--start-at", "data",
                           "--history", str(HISTORY_S), *args, speed="max")


def touch_before(market, t_ms: float) -> tuple[float, float, float, float]:
    """The last uncrossed BBO state strictly before ``t_ms``: (bid, bid size, ask, ask size)."""
    b, ok = market["bbo"], market["ok"]
    i = int(np.searchsorted(b.t[ok], t_ms, side="left")) - 1
    return (b.bid[ok][i], b.bid_size[ok][i], b.ask[ok][i], b.ask_size[ok][i])


def test_ccxt_markets_book_candles_ticker_and_funding_match_the_data(market, replay_exchange):
    rp = start_frozen(replay_exchange, market, "--tick", "0.5", "--qty-step", "0.01",
                      "--funding-rate", str(FUNDING_HOURLY), "--funding-interval",
                      str(FUNDING_MIN))
    ex = ccxt_client(rp.url)
    markets = ex.load_markets()
    assert list(markets) == [SYMBOL]
    m = markets[SYMBOL]
    assert m["swap"] and m["linear"] and m["settle"] == "USDT" and m["id"] == "BTCUSDT"
    assert (m["precision"]["amount"], m["precision"]["price"]) == (0.01, 0.5)
    assert m["limits"]["amount"]["min"] == 0.01

    anchor = market["anchor"]
    bid, bsz, ask, asz = touch_before(market, anchor)
    book = ex.fetch_order_book(SYMBOL, 25)
    assert book["bids"][0] == [bid, bsz] and book["asks"][0] == [ask, asz]
    assert all(b[0] < bid for b in book["bids"][1:]) and all(a[0] > ask for a in book["asks"][1:])
    top = ex.fetch_order_book(SYMBOL, 1)
    assert (top["bids"], top["asks"]) == ([[bid, bsz]], [[ask, asz]])

    # Candles of the trades published so far (those before the anchor), minute by minute;
    # a minute without trades is flat at the previous close with no volume.
    tr = market["tr"]
    sel = tr.t < anchor
    t, px, sz = tr.t[sel], tr.price[sel], tr.size[sel]
    since = (anchor // 60_000 - 30) * 60_000
    ohlcv = ex.fetch_ohlcv(SYMBOL, "1m", since=since, limit=200)
    assert [c[0] for c in ohlcv] == list(range(since, anchor, 60_000))
    prev = float(px[t < since][-1])
    for start, o, h, low, c, v in ohlcv:
        k = (t >= start) & (t < start + 60_000)
        if k.any():
            want = (px[k][0], px[k].max(), px[k].min(), px[k][-1])
            prev = float(px[k][-1])
        else:
            want = (prev,) * 4
        assert (o, h, low, c) == want
        assert v == pytest.approx(sz[k].sum(), rel=1e-9, abs=1e-12)
    # Without `since`: the latest candles, the last one the current minute.
    latest = ex.fetch_ohlcv(SYMBOL, "1m", limit=5)
    assert [c[0] for c in latest] == [c[0] for c in ohlcv[-5:]] and latest == ohlcv[-5:]

    ticker = ex.fetch_ticker(SYMBOL)
    assert (ticker["bid"], ticker["ask"]) == (bid, ask)
    assert ticker["last"] == px[-1]
    day = t >= anchor - 86_400_000
    assert ticker["baseVolume"] == pytest.approx(sz[day].sum(), rel=1e-9)

    rates = ex.fetch_funding_rate_history(SYMBOL, since=market["t0"] - 86_400_000)
    iv = FUNDING_MIN * 60_000
    first = -(-market["t0"] // iv) * iv
    assert [r["timestamp"] for r in rates] == list(range(first, anchor, iv))
    assert [r["fundingRate"] for r in rates] == pytest.approx(
        [FUNDING_HOURLY * FUNDING_MIN / 60] * len(rates))

    tiers = ex.fetch_leverage_tiers([SYMBOL])[SYMBOL]
    assert tiers[0]["maintenanceMarginRate"] == 0.005 and tiers[0]["maxLeverage"] == 40

    # The server's clock is the published time of the state (unpaced).
    assert ex.fetch_time() < anchor


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_refusals_are_bybit_shaped_and_unknown_paths_logged(market, replay_exchange):
    rp = start_frozen(replay_exchange, market)
    code, body = get_json(rp.url + "/v5/market/orderbook?category=linear&symbol=ETHUSDT")
    assert code == 200 and body["retCode"] == 10001 and "symbol" in body["retMsg"]
    assert set(body) == {"retCode", "retMsg", "result", "retExtInfo", "time"}
    code, body = get_json(rp.url + "/v5/market/kline?category=linear&symbol=BTCUSDT&interval=7")
    assert body["retCode"] == 10001 and "interval" in body["retMsg"]
    code, body = get_json(rp.url + "/v5/market/no-such-thing?category=linear")
    assert code == 404 and body["retCode"] != 0
    rp.wait_for(lambda r: "/v5/market/no-such-thing" in r.log(), timeout=10)
    # ccxt turns a refusal into its exception, not into an empty answer.
    ex = ccxt_client(rp.url)
    ex.load_markets()
    with pytest.raises(ccxt.BadRequest):
        ex.public_get_v5_market_orderbook({"category": "linear", "symbol": "XUSDT"})


class Feed:
    """A plain WebSocket client on /v5/public/linear, reading in a thread of its own."""

    def __init__(self, url: str, topics: list[str]):
        self.ws = websocket.create_connection(url, timeout=30)
        self.ws.send(json.dumps({"op": "subscribe", "req_id": "t1", "args": topics}))
        self.msgs: list[dict] = []

    def read_until(self, done, timeout: float = 60.0) -> list[dict]:
        """Read messages until ``done(msgs)`` or the connection closes; deadline-bounded."""
        deadline = time.monotonic() + timeout
        while not done(self.msgs):
            assert time.monotonic() < deadline, f"only {len(self.msgs)} messages"
            try:
                text = self.ws.recv()
            except websocket.WebSocketConnectionClosedException:
                break
            if not text:
                break
            self.msgs.append(json.loads(text))
        return self.msgs

    def topic(self, name: str) -> list[dict]:
        return [m for m in self.msgs if m.get("topic") == name]


def expected_book(market, t_ms: int, depth: int = 50) -> tuple[dict, dict]:
    """The book after every event at or before ``t_ms``: the latest BBO, behind it the
    latest L2 snapshot's levels strictly behind that BBO ({px: size} a side)."""
    bid, bsz, ask, asz = touch_before(market, t_ms + 1)
    ob = market["ob"]
    j = int(np.searchsorted(ob.t, t_ms, side="right")) - 1
    bids, asks = {bid: bsz}, {ask: asz}
    if j >= 0:
        for px, s in zip(ob.bid_px[j], ob.bid_sz[j], strict=True):
            if np.isfinite(px) and px < bid and len(bids) < depth:
                bids[float(px)] = float(s)
        for px, s in zip(ob.ask_px[j], ob.ask_sz[j], strict=True):
            if np.isfinite(px) and px > ask and len(asks) < depth:
                asks[float(px)] = float(s)
    return bids, asks


def test_websocket_trades_and_books_are_the_data(market, replay_exchange):
    rp = start_frozen(replay_exchange, market)
    topics = ["orderbook.1.BTCUSDT", "orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"]
    feed = Feed(rp.ws_url, topics)
    msgs = feed.read_until(lambda ms: sum(len(m["data"]) for m in ms
                                          if m.get("topic") == topics[2]) >= 300)
    ack = msgs[0]
    assert ack["op"] == "subscribe" and ack["success"] is True and ack["req_id"] == "t1"
    feed.ws.send(json.dumps({"op": "ping", "req_id": "p"}))
    feed.read_until(lambda ms: ms[-1].get("op") == "ping")
    assert feed.msgs[-1]["ret_msg"] == "pong" and feed.msgs[-1]["req_id"] == "p"
    feed.ws.close()

    anchor = market["anchor"]
    # Trades: every fill from the anchor on, in order, one message per exchange time.
    tr = market["tr"]
    rows = [(r["T"], float(r["p"]), float(r["v"]), r["S"], r["i"])
            for m in feed.topic(topics[2]) for r in m["data"]]
    lo = int(np.searchsorted(tr.t, anchor, side="left"))
    want = [(int(tr.t[i]), float(tr.price[i]), float(tr.size[i]),
             "Buy" if tr.side[i] > 0 else "Sell", str(int(tr.trade_id[i])))
            for i in range(lo, lo + len(rows))]
    assert rows == want
    assert all(m["ts"] == m["data"][0]["T"] for m in feed.topic(topics[2]))

    # orderbook.1: the state at subscription, then every BBO state from the anchor on.
    b, ok = market["bbo"], market["ok"]
    tops = [(float(m["data"]["b"][0][0]), float(m["data"]["b"][0][1]),
             float(m["data"]["a"][0][0]), float(m["data"]["a"][0][1]))
            for m in feed.topic(topics[0])]
    assert {m["type"] for m in feed.topic(topics[0])} == {"snapshot"}
    assert tops[0] == touch_before(market, anchor)
    k = int(np.searchsorted(b.t[ok], anchor, side="left"))
    want_tops = list(zip(b.bid[ok][k:], b.bid_size[ok][k:], b.ask[ok][k:],
                         b.ask_size[ok][k:], strict=True))[:len(tops) - 1]
    assert tops[1:] == [tuple(float(x) for x in w) for w in want_tops]

    # orderbook.50: a snapshot, then deltas; rebuilt, the book is the data's whenever the
    # message time moves on (all events of the earlier time are in).
    deep = feed.topic(topics[1])
    assert deep[0]["type"] == "snapshot" and {m["type"] for m in deep[1:]} == {"delta"}
    # u numbers each topic's messages, as on Bybit: a client that missed none sees every u
    # from the topic's first snapshot (u 1) on, one after the other — a skipped u would
    # mean a lost message and make a Bybit client resync.
    for name in topics[:2]:
        us = [m["data"]["u"] for m in feed.topic(name)]
        assert us == list(range(1, len(us) + 1)), name
    bids, asks, checked = {}, {}, 0
    for i, m in enumerate(deep):
        for side, levels in ((bids, m["data"]["b"]), (asks, m["data"]["a"])):
            if m["type"] == "snapshot":
                side.clear()
            for px, s in levels:
                if float(s) == 0:
                    del side[float(px)]
                else:
                    side[float(px)] = float(s)
        if i + 1 < len(deep) and deep[i + 1]["ts"] > m["ts"] and i > 0:
            assert (bids, asks) == expected_book(market, m["ts"]), m
            checked += 1
    assert checked > 50


def test_a_dropped_connection_resubscribes_to_a_fresh_snapshot(market, replay_exchange):
    rp = start_frozen(replay_exchange, market, "--drop-after", "40")
    topics = ["orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"]
    first = Feed(rp.ws_url, topics)
    first.read_until(lambda ms: False, timeout=60)  # until the server closes it
    data = [m for m in first.msgs if "topic" in m]
    assert len(data) == 40
    rp.wait_for(lambda r: r.sent()["dropped_by_fault"] == 1)
    second = Feed(rp.ws_url, topics)
    second.read_until(lambda ms: any(m.get("topic") == topics[0] for m in ms))
    book = second.topic(topics[0])[0]
    # A new connection starts from a whole book, never a delta against the old one's, with
    # the topic's u: on from what the first connection got, never back.
    assert book["type"] == "snapshot"
    us = [m["data"]["u"] for m in first.topic(topics[0])]
    assert us == list(range(1, len(us) + 1)) and book["data"]["u"] >= us[-1]
    assert rp.sent()["connections_total"] == 2
    second.ws.close()


def test_ccxt_pro_watches_book_trades_and_candles(market, replay_exchange):
    import ccxt.pro

    rp = replay_exchange(market["dir"], "--venue", "bybit", "--start-at", "data",
                         "--history", str(HISTORY_S), speed=500)

    async def watch():
        urls = {k: rp.url for k in ("spot", "futures", "v2", "public", "private")}
        urls["ws"] = {"public": {k: rp.ws_url for k in ("spot", "linear", "inverse", "option")}}
        ex = ccxt.pro.bybit({"options": {"defaultType": "swap"}, "urls": {"api": urls}})
        try:
            await ex.load_markets()
            book = await asyncio.wait_for(ex.watch_order_book(SYMBOL, 50), timeout=30)
            trades = await asyncio.wait_for(ex.watch_trades(SYMBOL), timeout=30)
            candles = await asyncio.wait_for(ex.watch_ohlcv(SYMBOL, "1m"), timeout=30)
            ticker = await asyncio.wait_for(ex.watch_ticker(SYMBOL), timeout=30)
            return book, trades, candles, ticker
        finally:
            await ex.close()

    book, trades, candles, ticker = asyncio.run(watch())
    assert book["bids"][0][0] < book["asks"][0][0]
    assert trades and all(t["side"] in ("buy", "sell") for t in trades)
    assert candles[-1][0] % 60_000 == 0 and candles[-1][5] > 0
    assert ticker["bid"] < ticker["ask"]


def test_malformed_and_silence_faults_on_bybit_topics(market, replay_exchange):
    # Every topic kind, malformed copies after every 7th data message: each is the same
    # topic with an impossible value, and the stream goes on.
    rp = start_frozen(replay_exchange, market, "--malformed-every", "7")
    topics = ["orderbook.1.BTCUSDT", "orderbook.50.BTCUSDT", "publicTrade.BTCUSDT",
              "tickers.BTCUSDT", "kline.1.BTCUSDT"]
    feed = Feed(rp.ws_url, topics)
    msgs = feed.read_until(lambda ms: {m.get("topic") for m in ms} >= set(topics)
                           and sum("not-a-number" in json.dumps(m) for m in ms) >= 20)
    bad = [m for m in msgs if "not-a-number" in json.dumps(m)]
    assert {m["topic"].split(".")[0] for m in bad} >= {"orderbook", "publicTrade"}
    data = [m for m in msgs if "topic" in m]
    assert len(data) >= 7 * len(bad)
    feed.ws.close()

    # One coin silenced for good after a connection's 10th message of it: nothing more.
    rp2 = replay_exchange(market["dir"], "--venue", "bybit", "--start-at", "data",
                          "--silence-coin", "BTC", "--silence-after", "10", speed="max")
    quiet = Feed(rp2.ws_url, topics[:3])
    rp2.wait_for(lambda r: r.clock()["finished"], timeout=120)
    rp2.wait_for(lambda r: r.sent()["per_connection"][0]["data_sent"] == 10)
    quiet.ws.close()


@pytest.mark.parametrize("args, says", [
    (["--ledger", "ledger.sqlite"], "paper exchange"),
    (["--tick", "0"], "tick must be > 0"),
    (["--qty-step", "-0.001"], "qty_step must be > 0"),
])
def test_cli_refuses_what_the_bybit_venue_cannot_serve(market, tmp_path, args, says):
    asmm = str(Path(sys.executable).parent / "asmm")
    out = subprocess.run([asmm, "replay", "--venue", "bybit", "--data-dir", str(market["dir"]),
                          "--port", "0", *args], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and says in out.stderr, out.stderr
    assert out.stdout == ""  # never the readiness line
