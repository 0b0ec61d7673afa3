"""The replay exchange as a subprocess, driven by the real clients: the Hyperliquid SDK, ccxt,
a plain WebSocket client (fault injection) and Freqtrade. Nothing leaves 127.0.0.1."""

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

import ccxt
import numpy as np
import pytest
import websocket
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError

from asmm.data.readers import read_bbo, read_trades
from asmm.data.synth import SynthConfig, generate
from asmm.venues.hyperliquid import protocol as hp
from asmm.venues.hyperliquid.replay import load_market

SYMBOL = "BTC/USDC:USDC"
ASMM = str(Path(sys.executable).parent / "asmm")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One quiet synthetic day (~20k events): small enough to replay completely."""
    out = tmp_path_factory.mktemp("tiny_market_srv")
    generate(SynthConfig(days=1, seed=3, bbo_rate=0.2, A_bid=0.02, A_ask=0.02,
                         l2_interval=60.0, start=date(2025, 9, 1)), out)
    return out


def read_record(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def ccxt_client(url: str) -> ccxt.hyperliquid:
    return ccxt.hyperliquid({
        "urls": {"api": {"public": url, "private": url}},
        "options": {"fetchMarkets": {"types": ["swap"]}, "hip3TokensByName": {},
                    "cachedCurrenciesById": {}},
        "has": {"fetchCurrencies": False},
    })


def test_sdk_gets_exactly_what_was_sent_and_sees_a_drop(tiny, tmp_path, replay_exchange):
    record = tmp_path / "sent.jsonl"
    rp = replay_exchange(tiny, "--record", str(record), "--wait-subscriptions", "3",
                         "--start-at", "data", speed="max")
    info = Info(base_url=rp.url, skip_ws=False)
    got: dict[str, list] = {"bbo": [], "trades": [], "l2Book": []}
    lock = threading.Lock()

    def on(ch):
        def cb(msg):
            with lock:
                got[ch].append(msg)
        return cb

    for ch in got:
        info.subscribe({"type": ch, "coin": "BTC"}, on(ch))
    rp.wait_for(lambda r: r.clock()["finished"], timeout=120)
    sent = rp.sent()["messages"]
    # The SDK's thread may still be reading the tail of the stream.
    rp.wait_for(lambda r: all(len(got[ch]) >= sent[ch] for ch in got), timeout=60)
    with lock:
        assert {ch: len(v) for ch, v in got.items()} == {ch: sent[ch] for ch in got}

    # Every data message, in order, is the one recorded as sent.
    rec = read_record(record)
    for ch in got:
        assert [r["msg"] for r in rec if r.get("channel") == ch] == got[ch]
    assert rec[0] == {"conn": 1, "text": hp.CONNECTED_TEXT}

    # And the messages carry the whole data set: parsed rows == rows on disk.
    bbo_rows = [row for m in got["bbo"] for row in hp.parse_bbo(m, received=0.0)]
    trade_rows = [row for m in got["trades"] for row in hp.parse_trades(m, received=0.0)]
    bbo, tr = read_bbo(tiny, "BTC"), read_trades(tiny, "BTC")
    assert len(bbo_rows) == 2 * len(bbo)
    assert [r[1] for r in bbo_rows[0::2]] == bbo.bid.tolist()
    assert [r[1] for r in bbo_rows[1::2]] == bbo.ask.tolist()
    assert [r[4] for r in bbo_rows[0::2]] == bbo.t.tolist()
    assert [(r[1], r[2], r[4], r[5]) for r in trade_rows] == list(zip(
        tr.price.tolist(), tr.size.tolist(), tr.trade_id.tolist(), tr.t.tolist(), strict=True))
    assert [r[3] for r in trade_rows] == ["buy" if s > 0 else "sell" for s in tr.side]
    assert rp.sent()["fills"] == len(tr)

    # A server-side drop ends the SDK's websocket thread (it does not reconnect).
    assert info.ws_manager.is_alive()
    assert rp.drop() == 1
    rp.wait_for(lambda r: not info.ws_manager.is_alive(), timeout=30)
    info.disconnect_websocket()


def test_sdk_sees_http_400_json_for_unknown_info_type(tiny, replay_exchange):
    rp = replay_exchange(tiny, speed=1.0)
    info = Info(base_url=rp.url, skip_ws=True)
    assert info.meta()["universe"][0]["szDecimals"] == 5
    with pytest.raises(ClientError) as e:
        info.post("/info", {"type": "noSuchType"})
    assert e.value.status_code == 400 and e.value.error_code == 400
    assert "noSuchType" in e.value.error_message
    req = urllib.request.Request(rp.url + "/info", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e2:
        urllib.request.urlopen(req, timeout=10)
    assert e2.value.code == 400 and "not JSON" in json.loads(e2.value.read())["msg"]


def test_ccxt_markets_book_and_candles_match_the_data(tiny, replay_exchange):
    # Unpaced with no subscriber to wait for: the replay runs straight to its last event,
    # so the state every answer reflects is known exactly.
    rp = replay_exchange(tiny, "--start-at", "data", "--wait-subscriptions", "0", speed="max")
    rp.wait_for(lambda r: r.clock()["finished"], timeout=60)
    market = load_market(tiny, "BTC")
    last = market.n_events - 1

    ex = ccxt_client(rp.url)
    markets = ex.load_markets()
    assert list(markets) == [SYMBOL]
    m = markets[SYMBOL]
    assert m["precision"]["price"] == 1.0 and m["precision"]["amount"] == 1e-05
    assert m["swap"] and m["limits"]["leverage"]["max"] == 40

    book = ex.fetch_order_book(SYMBOL)
    bids, asks = market.book(last)
    assert book["bids"] == [[px, sz] for px, sz, _ in bids]
    assert book["asks"] == [[px, sz] for px, sz, _ in asks]

    tr = read_trades(tiny, "BTC")
    day0 = int(tr.t[0] // 3_600_000 * 3_600_000)
    ohlcv = ex.fetch_ohlcv(SYMBOL, "1h", since=day0, limit=100)
    assert len(ohlcv) == 24
    for t, o, h, low, c, v in ohlcv:
        sel = (tr.t >= t) & (tr.t < t + 3_600_000)
        px = tr.price[sel]
        assert (o, h, low, c) == (px[0], px.max(), px.min(), px[-1])
        assert v == pytest.approx(tr.size[sel].sum(), rel=1e-9)

    ticker = ex.fetch_ticker(SYMBOL)
    assert (ticker["bid"], ticker["ask"]) == (bids[0][0], asks[0][0])


def test_paced_clock_and_book_follow_the_replay(tiny, replay_exchange):
    rp = replay_exchange(tiny, "--start-at", "now", speed=1.0)
    t0 = time.time()
    status = rp.info({"type": "exchangeStatus"})
    t1 = time.time()
    # --start-at now, speed 1: the published clock is wall time (rounded to the ms).
    assert t0 * 1000 - 2 <= status["time"] <= t1 * 1000 + 2

    market = load_market(tiny, "BTC")
    p0 = rp.clock()["position"]
    book = rp.info({"type": "l2Book", "coin": "BTC"})
    p1 = rp.clock()["position"]
    got = ([(float(x["px"]), float(x["sz"]), x["n"]) for x in book["levels"][0]],
           [(float(x["px"]), float(x["sz"]), x["n"]) for x in book["levels"][1]])
    assert any(got == market.book(p) for p in range(p0, p1 + 1))


def test_ws_faults_drop_and_malformed(tiny, tmp_path, replay_exchange):
    record = tmp_path / "sent.jsonl"
    rp = replay_exchange(tiny, "--drop-after", "50", "--malformed-every", "10",
                         "--record", str(record), speed="max")
    ws = websocket.create_connection(rp.ws_url, timeout=30)
    assert ws.recv() == hp.CONNECTED_TEXT
    ws.send(json.dumps({"method": "subscribe", "subscription": {"type": "bbo", "coin": "BTC"}}))
    frames = []
    while True:
        try:
            frames.append(ws.recv())
        except websocket.WebSocketConnectionClosedException:
            break
        if not frames[-1]:  # close frame
            break
    msgs = [json.loads(f) for f in frames if f]
    assert msgs[0]["channel"] == "subscriptionResponse"
    data = msgs[1:]
    good, bad = [], []
    for m in data:
        try:
            good.append(hp.parse_bbo(m, received=0.0))
        except hp.ProtocolError:
            bad.append(m)
    assert len(good) == 50 and len(bad) == 5
    # Each malformed message comes right after every 10th data message.
    assert [i for i, m in enumerate(data) if m in bad] == [10, 21, 32, 43, 54]
    sent = rp.wait_for(lambda r: r.sent() if r.sent()["connections"] == 0 else None)
    assert sent["messages"]["bbo"] == 50 and sent["messages"]["malformed"] == 5
    assert sent["dropped_by_fault"] == 1
    # After SIGTERM the record holds every frame sent, the injected ones marked.
    assert rp.stop() == 0
    rec = read_record(record)
    assert [r["msg"] for r in rec if "msg" in r] == msgs
    assert sum(bool(r.get("malformed")) for r in rec) == 5


def test_ws_stall_then_resume(tiny, replay_exchange):
    rp = replay_exchange(tiny, "--stall-every", "20", "--stall-seconds", "5", speed=1000)
    ws = websocket.create_connection(rp.ws_url, timeout=30)
    ws.recv()
    ws.send(json.dumps({"method": "subscribe", "subscription": {"type": "bbo", "coin": "BTC"}}))
    assert json.loads(ws.recv())["channel"] == "subscriptionResponse"
    first = [json.loads(ws.recv()) for _ in range(20)]
    p = rp.clock()["position"]

    def conn_sent(r):
        return r.sent()["per_connection"][0]["data_sent"]

    # While 100 more events (about 80 of them BBOs) are published, the stalled socket gets
    # none: the 5 s stall spans ~450 ms of nominal replay at 1000x, ample on a slow machine.
    rp.wait_for(lambda r: r.clock()["position"] >= p + 100, timeout=30)
    assert conn_sent(rp) == 20
    rp.wait_for(lambda r: conn_sent(r) > 20, timeout=30)
    nxt = json.loads(ws.recv())
    assert nxt["channel"] == "bbo" and nxt["data"]["time"] > first[-1]["data"]["time"]
    ws.close()


def test_ws_subscription_errors_and_ping(tiny, replay_exchange):
    rp = replay_exchange(tiny, speed=1.0)
    ws = websocket.create_connection(rp.ws_url, timeout=30)
    ws.recv()
    ws.send(json.dumps({"method": "ping"}))
    assert json.loads(ws.recv()) == {"channel": "pong"}
    ws.send(json.dumps({"method": "subscribe", "subscription": {"type": "bbo", "coin": "ETH"}}))
    err = json.loads(ws.recv())
    assert err["channel"] == "error" and "ETH" in err["data"]
    ws.send("not json")
    assert json.loads(ws.recv())["channel"] == "error"
    ws.close()


def run_cli(*args, timeout=60):
    return subprocess.run([ASMM, "replay", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_bad_input_is_a_clear_error(tiny, tmp_path):
    r = run_cli("--data-dir", str(tmp_path / "nowhere"), "--port", "0")
    assert r.returncode == 2 and "does not exist" in r.stderr and r.stdout == ""
    r = run_cli("--data-dir", str(tmp_path), "--port", "0")
    assert r.returncode == 2 and "no prices files for BTC" in r.stderr
    r = run_cli("--data-dir", str(tiny), "--speed", "-3")
    assert r.returncode == 2 and "speed" in r.stderr
    kept = tmp_path / "old.jsonl"
    kept.write_text("precious\n")
    r = run_cli("--data-dir", str(tiny), "--port", "0", "--record", str(kept))
    assert r.returncode == 2 and "exists" in r.stderr
    assert kept.read_text() == "precious\n"
    r = run_cli("--data-dir", str(tiny), "--stall-every", "5")
    assert r.returncode == 2 and "stall_seconds" in r.stderr
    r = run_cli("--data-dir", str(tiny), "--port", "0", "--history", "200000")
    assert r.returncode == 2 and "longer than the data" in r.stderr


def freqtrade_env(tmp_path: Path, url: str) -> tuple[list[str], dict]:
    """Freqtrade pointed at the replay by configuration only: the shipped replay config plus
    an override of the URLs (the port is free-picked)."""
    override = tmp_path / "replay-url.json"
    override.write_text(json.dumps(
        {"exchange": {"ccxt_config": {"urls": {"api": {"public": url, "private": url}}}}}))
    args = ["--config", str(REPO / "user_data/config.replay.json"), "--config", str(override),
            "--userdir", str(tmp_path / "ud")]
    env = dict(os.environ, FREQTRADE__API_SERVER__USERNAME="replayuser",
               FREQTRADE__API_SERVER__PASSWORD="replaypass",
               FREQTRADE__API_SERVER__JWT_SECRET_KEY="x" * 32)
    (tmp_path / "ud").mkdir()
    return args, env


def test_freqtrade_downloads_candles_from_the_replay(tiny, tmp_path, replay_exchange):
    rp = replay_exchange(tiny, "--start-at", "data", "--wait-subscriptions", "0", speed="max")
    rp.wait_for(lambda r: r.clock()["finished"], timeout=60)
    args, env = freqtrade_env(tmp_path, rp.url)
    ft = str(Path(sys.executable).parent / "freqtrade")
    r = subprocess.run([ft, "list-markets", *args, "--print-json"], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [SYMBOL]

    datadir = tmp_path / "data"
    r = subprocess.run([ft, "download-data", *args, "--datadir", str(datadir),
                        "--timerange", "20250901-20250902", "--timeframes", "1m",
                        "--trading-mode", "futures", "--pairs", SYMBOL],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    import pandas as pd

    df = pd.read_feather(datadir / "futures" / "BTC_USDC_USDC-1m-futures.feather")
    # The replay clock stands at the day's last event, inside 23:59. The replay config keeps
    # Freqtrade's still-open last candle (ohlcv_partial_candle: false, so the strategy
    # re-quotes every loop), so all 1440 minutes of the day arrive.
    assert len(df) == 1440 and df["date"].iloc[0].isoformat() == "2025-09-01T00:00:00+00:00"
    tr = read_trades(tiny, "BTC")
    t_ms = df["date"].astype("int64").to_numpy() // 10**6
    minute = (tr.t // 60_000) * 60_000
    has = np.isin(t_ms, minute)
    for t, c, v in zip(t_ms[has], df["close"].to_numpy()[has], df["volume"].to_numpy()[has],
                       strict=True):
        sel = minute == t
        assert c == tr.price[sel][-1]
        assert v == pytest.approx(tr.size[sel].sum(), rel=1e-9)


def test_ccxt_pro_watches_candles_over_the_websocket(tiny, replay_exchange):
    import asyncio

    import ccxt.pro

    rp = replay_exchange(tiny, "--start-at", "data", speed=2000)

    async def watch():
        ex = ccxt.pro.hyperliquid({
            "urls": {"api": {"public": rp.url, "private": rp.url, "ws": {"public": rp.ws_url}}},
            "options": {"fetchMarkets": {"types": ["swap"]}, "hip3TokensByName": {},
                        "cachedCurrenciesById": {}},
            "has": {"fetchCurrencies": False},
        })
        try:
            candles = []
            while len(candles) < 2:  # ccxt keeps one entry per candle open time
                candles = await asyncio.wait_for(ex.watch_ohlcv(SYMBOL, "1m"), timeout=30)
            return candles
        finally:
            await ex.close()

    candles = asyncio.run(watch())
    assert rp.sent()["messages"]["candle"] >= 2
    tr = read_trades(tiny, "BTC")
    # A closed candle from the stream equals the trades of its minute.
    t, o, h, low, c, v = candles[-2]
    sel = (tr.t >= t) & (tr.t < t + 60_000)
    px = tr.price[sel]
    assert (o, h, low, c) == (px[0], px.max(), px.min(), px[-1])
    assert v == pytest.approx(tr.size[sel].sum(), rel=1e-9)


def test_two_coins_over_one_websocket(tiny, tmp_path, replay_exchange):
    both = tmp_path / "both"
    generate(SynthConfig(coin="ETH", days=1, seed=4, mid=4000.0, sigma=0.3, bbo_rate=0.1,
                         A_bid=0.01, A_ask=0.01, l2_interval=120.0, start=date(2025, 9, 1)),
             both)
    for f in tiny.glob("*_BTC_*.csv"):
        (both / f.name).write_bytes(f.read_bytes())
    rp = replay_exchange(both, "--wait-subscriptions", "2", coin="BTC,ETH", speed="max")
    assert [u["name"] for u in rp.info({"type": "meta"})["universe"]] == ["BTC", "ETH"]
    ws = websocket.create_connection(rp.ws_url, timeout=30)
    ws.recv()
    for coin in ("BTC", "ETH"):
        ws.send(json.dumps({"method": "subscribe",
                            "subscription": {"type": "trades", "coin": coin}}))
    expected = {c: len(read_trades(both, c)) for c in ("BTC", "ETH")}
    fills = {"BTC": 0, "ETH": 0}
    last_t = 0
    while sum(fills.values()) < sum(expected.values()):
        m = json.loads(ws.recv())
        if m["channel"] != "trades":
            continue
        rows = hp.parse_trades(m, received=0.0)
        fills[m["data"][0]["coin"]] += len(rows)
        assert rows[0][5] >= last_t  # both coins on one clock, in time order
        last_t = rows[0][5]
    ws.close()
    assert fills == expected
    rp.wait_for(lambda r: r.clock()["finished"], timeout=30)
    assert set(rp.clock()["coins"]) == {"BTC", "ETH"}
