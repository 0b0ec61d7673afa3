"""The Bybit collector: Bybit-shaped frames parsed, and the collector over a real WebSocket.

Parser tests use frames shaped as Bybit's v5 documentation shows them (orderbook snapshot
and delta, a publicTrade batch with a UUID trade id). The end-to-end tests run the real
collector (:class:`asmm.venues.bybit.collector.service.BybitCollector`) against a small
aiohttp server on 127.0.0.1 that speaks Bybit's public WebSocket (``/v5/public/linear``:
subscribe/unsubscribe answered per ``req_id``, ping -> pong, a snapshot when a book topic is
subscribed again): it stands in for the public internet only. Last, a synthetic day served
as Bybit frames is collected and calibrated: the parameter file uses Bybit's fees.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import WSMsgType, web
from test_collector_replay import running as run_collector
from test_collector_replay import serving as serve_routes
from test_collector_replay import wait_until

from asmm.core.errors import ProtocolError
from asmm.core.params import load_params
from asmm.data.readers import read_bbo, read_gaps, read_orderbooks, read_trades
from asmm.data.synth import SynthConfig, generate
from asmm.data.venue import read_venue
from asmm.venues.bybit.collector import parse
from asmm.venues.bybit.collector.decode import BybitDecoder
from asmm.venues.bybit.collector.feed import BybitSession
from asmm.venues.bybit.collector.service import BybitCollector
from asmm.venues.bybit.symbols import symbol_of
from asmm.venues.collector_common.config import CollectorConfig, from_env
from asmm.venues.collector_common.writer_thread import Gap

ASMM = str(Path(sys.executable).parent / "asmm")

# ------------------------------------------------------------------ Bybit's documented frames

# orderbook.50 snapshot and publicTrade as in Bybit's v5 docs ("Orderbook", "Trade").
DOC_SNAPSHOT = {
    "topic": "orderbook.50.BTCUSDT", "type": "snapshot", "ts": 1672304484978,
    "data": {"s": "BTCUSDT", "b": [["16493.50", "0.006"], ["16493.00", "0.100"]],
             "a": [["16611.00", "0.029"], ["16612.00", "0.213"]],
             "u": 18521288, "seq": 7961638724},
    "cts": 1672304484976}
DOC_DELTA = {
    "topic": "orderbook.50.BTCUSDT", "type": "delta", "ts": 1672304484998,
    "data": {"s": "BTCUSDT", "b": [["16493.50", "0"], ["16494.00", "1.250"]],
             "a": [["16611.00", "0.030"], ["16611.50", "0.5"]],
             "u": 18521289, "seq": 7961638800},
    "cts": 1672304484996}
DOC_TRADES = {
    "topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": 1672304486868,
    "data": [{"T": 1672304486865, "s": "BTCUSDT", "S": "Buy", "v": "0.001", "p": "16578.50",
              "L": "PlusTick", "i": "20f43950-d8dd-5b31-9112-a178eb6023af", "BT": False},
             {"T": 1672304486866, "s": "BTCUSDT", "S": "Sell", "v": "0.5", "p": "16578.00",
              "L": "MinusTick", "i": "7b4a2c1e-0c3e-5f6a-9d8b-1a2b3c4d5e6f", "BT": False},
             {"T": 1672304486866, "s": "BTCUSDT", "S": "Sell", "v": "25", "p": "16500.00",
              "L": "MinusTick", "i": "a1a2a3a4-b1b2-c1c2-d1d2-e1e2e3e4e5e6", "BT": True}]}


def book(depth, symbol, kind, ts, u, bids, asks) -> dict:
    """An ``orderbook.{depth}.{symbol}`` message as Bybit sends it (prices, sizes strings)."""
    return {"topic": f"orderbook.{depth}.{symbol}", "type": kind, "ts": ts,
            "data": {"s": symbol, "b": [[str(p), str(s)] for p, s in bids],
                     "a": [[str(p), str(s)] for p, s in asks], "u": u, "seq": u * 10},
            "cts": ts - 2}


def trades(symbol, ts, fills) -> dict:
    """``publicTrade.{symbol}`` of ``(price, size, "Buy"|"Sell", trade id)`` fills."""
    return {"topic": f"publicTrade.{symbol}", "type": "snapshot", "ts": ts,
            "data": [{"T": ts, "s": symbol, "S": side, "v": str(sz), "p": str(px),
                      "L": "PlusTick", "i": str(tid), "BT": False}
                     for px, sz, side, tid in fills]}


def dumps(msg: dict) -> str:
    return json.dumps(msg, separators=(",", ":"))


# ------------------------------------------------------------------ a. parser


def test_documented_snapshot_and_delta_keep_the_book():
    ob = parse.OrderBook()
    snap = parse.parse_book(DOC_SNAPSHOT)
    assert (snap.kind, snap.ts, snap.u, snap.seq) == ("snapshot", 1672304484978, 18521288,
                                                      7961638724)
    assert ob.apply(snap) == "ok"
    row = parse.orderbook_row(ob, 3, 1.5, snap.ts)
    # timestamp (receive, s), sequence (Bybit's u), exchange_timestamp (ts, ms), levels.
    assert row[:3] == (1.5, 18521288, 1672304484978)
    assert row[3:11] == (16493.5, 0.006, 16611.0, 0.029, 16493.0, 0.1, 16612.0, 0.213)
    assert row[11:] == (None, None, None, None)  # level 2 is beyond the book
    assert ob.apply(parse.parse_book(DOC_DELTA)) == "ok"
    bids, asks = ob.top(5)
    # 16493.50 removed (size "0"), 16494.00 added; 16611.00 changed, 16611.50 added.
    assert bids == [(16494.0, 1.25), (16493.0, 0.1)]
    assert asks == [(16611.0, 0.03), (16611.5, 0.5), (16612.0, 0.213)]
    assert parse.prices_rows(ob, 2.0, 7) == [(2.0, 16494.0, 1.25, "bid", 7),
                                             (2.0, 16611.0, 0.03, "ask", 7)]


def test_documented_trade_batch_gives_one_row_per_trade_block_trades_left_out():
    symbol, rows, block = parse.parse_trades(DOC_TRADES, 3.25)
    assert symbol == "BTCUSDT" and block == 1
    tid = int("20f43950d8dd5b319112a178eb6023af", 16) >> 65  # the UUID's top 63 bits
    assert rows[0] == (3.25, 16578.5, 0.001, "buy", tid, 1672304486865)
    assert rows[1][3] == "sell" and rows[1][5] == 1672304486866
    assert all(0 <= r[4] < 2**63 for r in rows)
    # The replay exchange sends the data's trade id as a decimal string: kept as it is.
    assert parse.trade_id("12345") == 12345
    assert parse.trade_id("not-a-uuid") == parse.trade_id("not-a-uuid")  # stable hash


def test_a_sequence_gap_and_a_delta_before_the_snapshot_are_refused():
    ob = parse.OrderBook()
    delta = parse.parse_book(DOC_DELTA)
    assert ob.apply(delta) == "no snapshot" and ob.u is None
    ob.apply(parse.parse_book(DOC_SNAPSHOT))
    skipped = json.loads(json.dumps(DOC_DELTA))
    skipped["data"]["u"] = 18521290  # 18521289 never came
    assert ob.apply(parse.parse_book(skipped)) == "gap"
    assert ob.u is None and ob.top(1) == ([], [])  # dropped until the next snapshot
    assert ob.apply(delta) == "no snapshot"
    # Bybit's restart: a snapshot with u = 1 replaces the book whatever came before.
    restart = json.loads(json.dumps(DOC_SNAPSHOT))
    restart["data"]["u"] = 1
    assert ob.apply(parse.parse_book(restart)) == "ok" and ob.u == 1


def _with(msg: dict, path: tuple, value) -> dict:
    m = json.loads(json.dumps(msg))
    d = m
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value
    return m


@pytest.mark.parametrize("msg", [
    _with(DOC_SNAPSHOT, ("type",), "partial"),
    _with(DOC_SNAPSHOT, ("data",), "x"),
    _with(DOC_SNAPSHOT, ("data", "s"), "ETHUSDT"),               # data of another symbol
    _with(DOC_SNAPSHOT, ("data", "b"), [["16493.50"]]),          # a level without a size
    _with(DOC_SNAPSHOT, ("data", "a"), [["nan", "1"]]),
    _with(DOC_SNAPSHOT, ("data", "a"), [["16611.00", "0"]]),     # size 0 in a snapshot
    _with(DOC_SNAPSHOT, ("data", "u"), "x"),
    _with(DOC_SNAPSHOT, ("ts",), None),
    _with(DOC_SNAPSHOT, ("topic",), "orderbook.7.BTCUSDT"),
], ids=["type", "data", "symbol", "level", "nan", "zero", "u", "ts", "topic"])
def test_malformed_book_messages_raise_protocol_error(msg):
    with pytest.raises(ProtocolError):
        parse.parse_book(msg)


@pytest.mark.parametrize("msg", [
    _with(DOC_TRADES, ("data",), {"T": 1}),
    _with(DOC_TRADES, ("data", 0, "S"), "B"),
    _with(DOC_TRADES, ("data", 0, "p"), "-1"),
    _with(DOC_TRADES, ("data", 1, "T"), "soon"),
    _with(DOC_TRADES, ("data", 1, "i"), None),
    _with(DOC_TRADES, ("data", 1, "s"), "ETHUSDT"),
], ids=["not-a-list", "side", "price", "time", "id", "symbol"])
def test_malformed_trade_messages_raise_and_return_no_row(msg):
    with pytest.raises(ProtocolError):
        parse.parse_trades(msg, 0.0)


def test_decoder_records_a_gap_and_asks_for_a_snapshot_once():
    gaps, asked = [], []

    def open_gap(start, reason, coins=None):
        gaps.append(Gap(start, reason, list(coins)))
        return gaps[-1]

    mono = [0.0]
    dec = BybitDecoder(2, open_gap, asked.append, retry_seconds=30.0, mono=lambda: mono[0])
    assert dec.rows("orderbook.50", 10.0, dumps(DOC_SNAPSHOT))[2][0][1] == 18521288
    skipped = _with(DOC_DELTA, ("data", "u"), 18521300)
    assert dec.rows("orderbook.50", 11.0, dumps(skipped)) == ("orderbooks", "BTC", [])
    assert asked == ["BTC"] and len(gaps) == 1 and dec.out_of_sync == 1
    assert gaps[0].start == 10.0 and gaps[0].end is None and gaps[0].coins == ["BTC"]
    assert "orderbook.50 sequence gap for BTC (u 18521288 then 18521300)" in gaps[0].reason
    mono[0] = 5.0  # a further delta soon after: not asked again
    assert dec.rows("orderbook.50", 12.0, dumps(skipped))[2] == []
    mono[0] = 31.0  # still no snapshot after retry_seconds: asked again, same gap
    dec.rows("orderbook.50", 13.0, dumps(skipped))
    assert asked == ["BTC", "BTC"] and len(gaps) == 1
    kind, coin, rows = dec.rows("orderbook.50", 14.0, dumps(DOC_SNAPSHOT))
    assert (kind, coin, len(rows)) == ("orderbooks", "BTC", 1) and gaps[0].end == 14.0
    _, _, tr = dec.rows("publicTrade", 15.0, dumps(DOC_TRADES))
    assert len(tr) == 2 and dec.block_trades == 1


def test_settings_for_bybit():
    cfg = from_env({"VENUE": "bybit", "SYMBOLS": "BTCUSDT,ETH", "ORDERBOOK_DEPTH": "50"})
    assert cfg.symbols == ("BTC", "ETH")  # files by coin, as on Hyperliquid
    assert cfg.bybit_stream_url == "wss://stream.bybit.com/v5/public/linear"
    cfg = from_env({"VENUE": "bybit", "BYBIT_API_URL": "http://127.0.0.1:8765"})
    assert cfg.bybit_stream_url == "ws://127.0.0.1:8765/v5/public/linear"
    cfg = from_env({"VENUE": "bybit", "BYBIT_API_URL": "http://x", "BYBIT_WS_URL": "ws://y/z"})
    assert cfg.bybit_stream_url == "ws://y/z"
    with pytest.raises(ValueError, match=r"ORDERBOOK_DEPTH must be 1\.\.20"):
        from_env({"ORDERBOOK_DEPTH": "50"})
    with pytest.raises(ValueError, match="BYBIT_WS_URL"):
        from_env({"VENUE": "bybit", "BYBIT_WS_URL": "https://x"})


def test_collect_help_names_the_bybit_settings():
    out = subprocess.run([ASMM, "collect", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for word in ("--venue", "BYBIT_WS_URL", "BYBIT_API_URL", "orderbook.50", "publicTrade"):
        assert word in out, word


# ------------------------------------------------------------------ b. a Bybit WS server


class BybitServer:
    """Bybit's public WebSocket on 127.0.0.1 (``/v5/public/linear``).

    Each connection, once the subscriptions of every topic of ``coins`` are answered, gets
    the frames of the next entry of ``scripts`` (then, with ``close`` true for that entry,
    the server closes it). A book topic subscribed again (after an unsubscribe) gets the
    frames ``resnapshot(topic, n)`` returns (n = how many times so far), as Bybit sends a
    snapshot on a new subscription. Symbols not in ``listed`` are refused. With
    ``stream(i)`` (returning a frame), after its script a connection gets ``stream(0)``,
    ``stream(1)``, ... every ``stream_every`` s until it closes: a market that keeps going.
    """

    def __init__(self, coins, scripts, *, close=(), listed=None, resnapshot=None,
                 stream=None, stream_every=0.02):
        self.topics = {t for c in coins for t in parse.topics(c)}
        self.scripts, self.close = list(scripts), list(close)
        self.listed = set(listed) if listed is not None else {symbol_of(c) for c in coins}
        self.resnapshot = resnapshot or (lambda topic, n: [])
        self.stream, self.stream_every = stream, stream_every
        self.streamed = 0
        self._tasks: list[asyncio.Future] = []
        self.connections = 0
        self.ops: list[tuple[int, str, str]] = []  # (connection, op, topic)
        self.sent_scripts = 0
        self._resubs: dict[str, int] = {}

    async def handler(self, request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        n = self.connections
        self.connections += 1
        confirmed, unsubscribed = set(), set()
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            req = json.loads(frame.data)
            op, rid = req.get("op"), req.get("req_id", "")
            if op == "ping":
                await ws.send_str(dumps({"success": True, "ret_msg": "pong", "conn_id": "c",
                                         "req_id": rid, "op": "ping"}))
                continue
            topic = req["args"][0]
            self.ops.append((n, op, topic))
            ok = topic.rsplit(".", 1)[1] in self.listed
            await ws.send_str(dumps({
                "success": ok, "conn_id": "c", "req_id": rid, "op": op,
                "ret_msg": "" if ok else f"error:handler not found,topic:{topic}"}))
            if op == "unsubscribe":
                unsubscribed.add(topic)
            elif op == "subscribe" and ok and topic in unsubscribed:
                unsubscribed.discard(topic)
                k = self._resubs[topic] = self._resubs.get(topic, 0) + 1
                for text in self.resnapshot(topic, k):
                    await ws.send_str(text)
            elif op == "subscribe" and ok:
                confirmed.add(topic)
                if confirmed == self.topics and n < len(self.scripts):
                    for text in self.scripts[n]:
                        await ws.send_str(text)
                    self.sent_scripts += 1
                    if n < len(self.close) and self.close[n]:
                        await ws.close()
                    elif self.stream is not None:
                        self._tasks.append(asyncio.ensure_future(self._stream(ws)))
        return ws

    async def _stream(self, ws) -> None:
        while not ws.closed:
            await asyncio.sleep(self.stream_every)  # the market's pace, on the server side
            if ws.closed:
                return
            await ws.send_str(self.stream(self.streamed))
            self.streamed += 1


def serving(server: BybitServer):
    """Run ``server`` on a free port of 127.0.0.1 in its own thread; yields its http URL."""
    return serve_routes([web.get("/v5/public/linear", server.handler)])


def config(out: Path, url: str, **kw) -> CollectorConfig:
    base = dict(venue="bybit", symbols=("BTC",), output_dir=out, orderbook_depth=3,
                bybit_api_url=url, flush_seconds=0.2, stale_seconds=5.0,
                status_seconds=3600.0, subscribe_timeout=5.0, backoff_min=0.05,
                backoff_max=0.2)
    base.update(kw)
    return CollectorConfig(**base).validate()


def running(cfg: CollectorConfig, rc: int = 0, **kw):
    """The Bybit collector of ``cfg`` running in a thread (stopped on leaving; exit ``rc``)."""
    return run_collector(cfg, rc, BybitCollector, **kw)


def csv_rows(out: Path, kind: str, coin: str = "BTC") -> list[list[str]]:
    rows = []
    for p in sorted(out.glob(f"{kind}_{coin}_*.csv")):
        with open(p, newline="") as f:
            rows += list(csv.reader(f))[1:]
    return rows


def expected_rows(frames: list[str], depth: int) -> dict[str, list[tuple]]:
    """The rows the frames make, without the receive time: the parser and book on their own
    (malformed frames and out-of-sync deltas make none)."""
    books: dict[str, parse.OrderBook] = {}
    broken: set[str] = set()  # topics out of sync: counted once each time they break
    out = {"prices": [], "trades": [], "orderbooks": [], "out_of_sync": 0}
    for text in frames:
        try:
            msg = parse.parse_message(text)
            ch, _ = parse.split_topic(msg.get("topic"))
            if ch == parse.TRADES_CHANNEL:
                out["trades"] += [r[1:] for r in parse.parse_trades(msg, 0.0)[1]]
                continue
            upd = parse.parse_book(msg)
        except ProtocolError:
            continue
        ob = books.setdefault(ch, parse.OrderBook())
        if ob.apply(upd) != "ok":
            out["out_of_sync"] += ch not in broken
            broken.add(ch)
            continue
        broken.discard(ch)
        if ch == "orderbook.1":
            out["prices"] += [r[1:] for r in parse.prices_rows(ob, 0.0, upd.ts)]
        else:
            out["orderbooks"].append(parse.orderbook_row(ob, depth, 0.0, upd.ts)[1:])
    return out


def as_values(row) -> tuple:
    """A CSV row's fields as the values a row was made of (numbers, sides, None)."""
    out = []
    for v in row:
        if v == "":
            out.append(None)
        elif v in ("bid", "ask", "buy", "sell"):
            out.append(v)
        else:
            out.append(float(v))
    return tuple(out)


def assert_files_hold(out: Path, frames: list[str], depth: int) -> dict:
    exp = expected_rows(frames, depth)
    for kind in ("prices", "trades", "orderbooks"):
        got = [as_values(r[1:]) for r in csv_rows(out, kind)]
        assert got == [tuple(None if v is None else (v if isinstance(v, str) else float(v))
                             for v in r) for r in exp[kind]], kind
    return exp


BID0, ASK0 = [(100.0, 1.0), (99.5, 2.0), (99.0, 3.0)], [(100.5, 1.5), (101.0, 2.5), (101.5, 4.0)]
T0 = 1_756_684_800_000


def first_connection() -> list[str]:
    """A snapshot and a delta of each book, a trade batch, three malformed frames, then a
    delta that skips u 102 (the book is out of sync until the next snapshot) and one more."""
    return [
        dumps(book(1, "BTCUSDT", "snapshot", T0, 1, BID0[:1], ASK0[:1])),
        dumps(book(50, "BTCUSDT", "snapshot", T0 + 1, 100, BID0, ASK0)),
        dumps(book(50, "BTCUSDT", "delta", T0 + 2, 101, [(100.0, 0), (99.8, 0.7)],
                   [(100.5, 1.1)])),
        dumps(trades("BTCUSDT", T0 + 3, [(100.5, 0.2, "Buy", 7), (100.5, 0.1, "Buy", 8)])),
        "not json {",
        dumps({"topic": "orderbook.50.BTCUSDT", "type": "delta", "ts": T0 + 4, "data": "x"}),
        '{"hello": "world"}',
        dumps(book(50, "BTCUSDT", "delta", T0 + 5, 103, [(99.9, 1.0)], [])),
        dumps(book(50, "BTCUSDT", "delta", T0 + 6, 104, [(99.7, 1.0)], [])),
    ]


def resnapshot(topic: str, n: int) -> list[str]:
    """Bybit's answer to a book topic subscribed again: a snapshot (then a delta)."""
    if topic.startswith("orderbook.1."):
        return [dumps(book(1, "BTCUSDT", "snapshot", T0 + 10 * n, 2, [(99.9, 1.0)],
                           [(100.5, 1.1)]))]
    return [dumps(book(50, "BTCUSDT", "snapshot", T0 + 10 * n + 1, 200, [(99.9, 1.0)],
                       [(100.5, 1.1), (101.0, 2.5)])),
            dumps(book(50, "BTCUSDT", "delta", T0 + 10 * n + 2, 201, [(99.9, 0)],
                       [(100.4, 0.3)]))]


def test_sequence_gap_resubscribes_records_a_gap_and_loses_nothing(tmp_path):
    frames = first_connection()
    server = BybitServer(["BTC"], [frames], resnapshot=resnapshot)
    out = tmp_path / "out"
    with serving(server) as url, running(config(out, url)) as c:
        wait_until(lambda: c.stats.gaps == 1, 20, "the sequence gap recorded")
        wait_until(lambda: len(csv_rows(out, "orderbooks")) == 4, 20, "the resynced book")
    assert c.stats.malformed == 3 and c.stats.reconnects == 0 and c.decoder.out_of_sync == 1
    # The resubscription: both book topics, unsubscribed and subscribed again, on the same
    # connection; trades were not touched.
    again = [(op, t) for n, op, t in server.ops[3:]]
    assert sorted(again) == sorted([("unsubscribe", "orderbook.1.BTCUSDT"),
                                    ("unsubscribe", "orderbook.50.BTCUSDT"),
                                    ("subscribe", "orderbook.1.BTCUSDT"),
                                    ("subscribe", "orderbook.50.BTCUSDT")])
    served = frames + resnapshot("orderbook.1.BTCUSDT", 1) + resnapshot("orderbook.50.X", 1)
    assert_files_hold(out, served, 3)
    books = csv_rows(out, "orderbooks")
    assert [int(r[1]) for r in books] == [100, 101, 200, 201]  # sequence = Bybit's u
    assert [int(r[2]) for r in books] == [T0 + 1, T0 + 2, T0 + 11, T0 + 12]  # ts, ms
    gaps = read_gaps(out, "BTC")
    assert gaps.shape == (1, 2)
    # From the last delta applied to the snapshot that ended it, both receive times.
    assert gaps[0, 0] == pytest.approx(float(books[1][0]), abs=1e-6)
    assert gaps[0, 1] == pytest.approx(float(books[2][0]), abs=1e-6)
    text = (out / "gaps_BTC.csv").read_text()
    assert "orderbook.50 sequence gap for BTC (u 101 then 103); resubscribed" in text
    assert read_venue(out) == "bybit"
    assert json.loads((out / "venue.json").read_text())["symbols"] == {"BTC": "BTCUSDT"}
    # The library readers take the files as they are.
    for read in (read_bbo, read_trades, read_orderbooks):
        assert read(out, "BTC").quality.dropped == {}


def test_dropped_connection_reconnects_and_records_a_gap(tmp_path):
    second = [dumps(book(1, "BTCUSDT", "snapshot", T0 + 100, 1, BID0[:1], ASK0[:1])),
              dumps(book(50, "BTCUSDT", "snapshot", T0 + 101, 500, BID0, ASK0)),
              dumps(trades("BTCUSDT", T0 + 102, [(100.0, 0.3, "Sell", 9)]))]
    first = first_connection()[:4]
    server = BybitServer(["BTC"], [first, second], close=[True])
    out = tmp_path / "out"
    with serving(server) as url, running(config(out, url)) as c:
        wait_until(lambda: server.sent_scripts == 2, 20, "the second connection's frames")
        wait_until(lambda: len(csv_rows(out, "trades")) == 3 and c.stats.gaps == 1, 20,
                   "every row and the gap")
    assert c.stats.reconnects == 1 and server.connections == 2
    assert [(n, op) for n, op, _ in server.ops].count((1, "subscribe")) == 3
    books = csv_rows(out, "orderbooks")
    assert [int(r[1]) for r in books] == [100, 101, 500]
    gaps = read_gaps(out, "BTC")
    assert gaps.shape == (1, 2)
    # From the coin's newest book message before the drop to the new subscriptions.
    assert gaps[0, 0] == pytest.approx(float(books[1][0]), abs=1e-6)
    assert gaps[0, 1] <= float(books[2][0])
    assert "connection closed" in (out / "gaps_BTC.csv").read_text()


def test_one_quiet_coin_is_resubscribed_with_a_gap_of_its_own(tmp_path):
    """ETH's books stop after their first snapshots while BTC streams: ETH is judged quiet on
    its own, its two book topics are resubscribed on the same connection (Bybit answers with
    snapshots), and only ETH gets a gap; no reconnect."""
    first = [dumps(book(1, "ETHUSDT", "snapshot", T0, 1, [(10.0, 1.0)], [(10.1, 1.0)])),
             dumps(book(50, "ETHUSDT", "snapshot", T0, 1, [(10.0, 1.0)], [(10.1, 1.0)])),
             dumps(book(50, "BTCUSDT", "snapshot", T0, 1, BID0, ASK0))]

    def btc(i):  # BTC's level 1 keeps changing
        return dumps(book(1, "BTCUSDT", "snapshot", T0 + 10 + i, i + 1, [(100.0, 1 + i)],
                          [(100.5, 1.0)]))

    def eth_again(topic, n):
        if not topic.endswith("ETHUSDT"):
            return []
        depth = int(topic.split(".")[1])
        return [dumps(book(depth, "ETHUSDT", "snapshot", T0 + 5000, 100, [(10.2, 2.0)],
                           [(10.3, 2.0)]))]

    server = BybitServer(["BTC", "ETH"], [first], resnapshot=eth_again, stream=btc)
    out = tmp_path / "out"
    with serving(server) as url, running(config(out, url, symbols=("BTC", "ETH"),
                                                stale_seconds=1.0)) as c:
        wait_until(lambda: c.stats.gaps == 1, 30, "ETH's gap")
        wait_until(lambda: len(csv_rows(out, "orderbooks", "ETH")) == 2, 10, "ETH's new book")
    assert c.stats.reconnects == 0 and c.stats.stale == {"ETH": 1}
    assert c.stats.resubscriptions == {"ETH": 1}
    again = sorted((op, t) for _, op, t in server.ops[6:])
    assert again == sorted([(op, f"orderbook.{d}.ETHUSDT") for op in ("subscribe",
                                                                      "unsubscribe")
                            for d in (1, 50)])
    assert not (out / "gaps_BTC.csv").exists()
    text = (out / "gaps_ETH.csv").read_text()
    assert "no orderbook.1/orderbook.50 for ETH while the connection streamed" in text
    gaps = read_gaps(out, "ETH")
    eth_books = csv_rows(out, "orderbooks", "ETH")
    assert gaps.shape == (1, 2)
    assert gaps[0, 0] == pytest.approx(float(eth_books[0][0]), abs=1e-6)  # its last book
    assert gaps[0, 1] == pytest.approx(min(float(r[0]) for r in csv_rows(out, "prices", "ETH")
                                           [2:] + eth_books[1:]), abs=1e-6)
    assert len(csv_rows(out, "prices", "BTC")) > 0


def test_a_symbol_bybit_does_not_list_is_refused(tmp_path):
    server = BybitServer(["NOPE"], [], listed={"BTCUSDT"})
    with serving(server) as url, running(config(tmp_path / "o", url, symbols=("NOPE",)),
                                         rc=2) as c:
        wait_until(lambda: c.fatal, 20, "the refusal")
    assert "NOPEUSDT" in c.fatal and "check SYMBOLS" in c.fatal


def test_a_folder_of_another_venue_is_refused(tmp_path):
    out = tmp_path / "hl"
    out.mkdir()
    (out / "prices_BTC_2025-09-01.csv").write_text("timestamp,price,size,side,"
                                                   "exchange_timestamp\n")
    c = BybitCollector(config(out, "http://127.0.0.1:9"))
    assert c.run() == 2
    assert not (out / "venue.json").exists()
    # Each venue's collector takes only its own venue's config.
    from asmm.venues.hyperliquid.collector.service import Collector
    with pytest.raises(ValueError, match="asmm collect --venue bybit"):
        Collector(config(out, "http://127.0.0.1:9"))
    with pytest.raises(ValueError, match="VENUE=bybit"):
        BybitCollector(CollectorConfig(output_dir=out))


# ------------------------------------------------------------------ c. collect, then calibrate

MARKET = SynthConfig(days=1, seed=5, bbo_rate=0.2, A_bid=0.05, A_ask=0.05, l2_interval=60.0,
                     depth=10)


def synth_as_bybit(folder: Path) -> list[tuple[int, str]]:
    """A synthetic day as Bybit frames in time order: each BBO an ``orderbook.1``
    snapshot, the first L2 book an ``orderbook.50`` snapshot and each later one a delta from
    the one before (removed levels size 0), trades ``publicTrade`` batches (ids as decimal
    strings, as the replay exchange sends them). ``(exchange ms, frame)`` pairs."""
    def rows(kind):
        with open(next(folder.glob(f"{kind}_BTC_*.csv")), newline="") as f:
            return list(csv.reader(f))[1:]

    events = []
    bbo = rows("prices")
    for u, (b, a) in enumerate(zip(bbo[::2], bbo[1::2], strict=True), start=1):
        assert (b[3], a[3]) == ("bid", "ask") and b[4] == a[4]
        events.append((int(b[4]), book(1, "BTCUSDT", "snapshot", int(b[4]), u,
                                       [(b[1], b[2])], [(a[1], a[2])])))
    prev = None
    for u, r in enumerate(rows("orderbooks"), start=1000):
        lv = r[3:]
        bids = {lv[i]: lv[i + 1] for i in range(0, len(lv), 4) if lv[i]}
        asks = {lv[i + 2]: lv[i + 3] for i in range(0, len(lv), 4) if lv[i + 2]}
        if prev is None:
            events.append((int(r[2]), book(50, "BTCUSDT", "snapshot", int(r[2]), u,
                                           bids.items(), asks.items())))
        else:
            db = [(p, s) for p, s in bids.items() if prev[0].get(p) != s]
            db += [(p, 0) for p in prev[0] if p not in bids]
            da = [(p, s) for p, s in asks.items() if prev[1].get(p) != s]
            da += [(p, 0) for p in prev[1] if p not in asks]
            events.append((int(r[2]), book(50, "BTCUSDT", "delta", int(r[2]), u, db, da)))
        prev = (bids, asks)
    batch: list = []
    for r in [*rows("trades"), None]:
        if batch and (r is None or r[5] != batch[0][5] or r[0] != batch[0][0]):
            events.append((int(batch[0][5]), trades("BTCUSDT", int(batch[0][5]), [
                (x[1], x[2], "Buy" if x[3] == "buy" else "Sell", x[4]) for x in batch])))
            batch = []
        if r is not None:
            batch.append(r)
    events.sort(key=lambda e: e[0])
    return [(t, dumps(m)) for t, m in events]


class ExchangeClockSession(BybitSession):
    """Stamps each frame with its exchange time (ts) as the receive time: a day served in
    seconds lands in its own day's files, as if it had been collected live."""

    _ts = re.compile(r'"ts":(\d+)')

    def __init__(self, *args, clock=None, **kw):
        self.now = 0.0
        super().__init__(*args, clock=lambda: self.now, **kw)

    def _on_frame(self, text):
        if m := self._ts.search(text):
            self.now = int(m.group(1)) / 1000 + 0.001
        super()._on_frame(text)


@pytest.fixture(scope="module")
def collected_day(tmp_path_factory):
    """A synthetic day served as Bybit frames, collected with ``asmm collect``'s collector
    (ORDERBOOK_DEPTH 10). ``(folder, the frames)``."""
    src = tmp_path_factory.mktemp("synth")
    generate(MARKET, src)
    events = synth_as_bybit(src)
    frames = [f for _, f in events]
    out = tmp_path_factory.mktemp("bybit") / "data"
    server = BybitServer(["BTC"], [frames])
    with serving(server) as url, running(config(out, url, orderbook_depth=10),
                                         session_factory=ExchangeClockSession) as c:
        wait_until(lambda: sum(c.stats.messages.values()) == len(frames) and c.queue.empty(),
                   120, "the whole day")
    assert c.stats.malformed == 0 and c.stats.gaps == 0 and c.decoder.out_of_sync == 0
    return out, frames, src


def test_a_collected_day_is_the_day_served(collected_day):
    out, frames, src = collected_day
    exp = assert_files_hold(out, frames, 10)
    assert len(exp["prices"]) > 30_000 and len(exp["orderbooks"]) == 1440
    # And the same rows as the synthetic files (the books rebuilt from the deltas).
    for kind, skip in (("prices", 1), ("trades", 1), ("orderbooks", 2)):
        with open(next(src.glob(f"{kind}_BTC_*.csv")), newline="") as f:
            want = [as_values(r[skip:]) for r in list(csv.reader(f))[1:]]
        assert [as_values(r[skip:]) for r in csv_rows(out, kind)] == want, kind


def _calibrate(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HL_DATA_LOC", "FORCE_COLOR")}
    return subprocess.run([ASMM, "calibrate", "BTC", "--data-dir", str(data), "--output",
                           str(out), "--valid-from", "now", *extra], capture_output=True,
                          text=True, env=env, timeout=900)


def test_calibrating_bybit_data_uses_bybit_fees(collected_day, tmp_path):
    data, _, _ = collected_day
    proc = _calibrate(data, tmp_path / "p.json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    p = load_params(tmp_path / "p.json")  # valid: load_params checks the file
    cfg = p.diagnostics["config"]
    assert (cfg["venue"], cfg["fee_tier"]) == ("bybit", "bybit:vip0")
    assert (cfg["maker_fee"], cfg["taker_fee"]) == (0.0002, 0.00055)
    # --fee-tier still wins; --venue must agree with the data's venue.json.
    proc = _calibrate(data, tmp_path / "q.json", "--fee-tier", "bybit:vip3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = load_params(tmp_path / "q.json").diagnostics["config"]
    assert (cfg["fee_tier"], cfg["maker_fee"]) == ("bybit:vip3", 0.00014)
    proc = _calibrate(data, tmp_path / "r.json", "--venue", "hyperliquid")
    assert proc.returncode == 2 and "collected from bybit" in proc.stderr
    assert not (tmp_path / "r.json").exists()


# ------------------------------------------------------------------ b'. the Bybit replay

REPLAY_MARKET = SynthConfig(days=1, seed=3, bbo_rate=0.05, A_bid=0.02, A_ask=0.02,
                            l2_interval=60.0, depth=10)


@pytest.fixture(scope="module")
def quiet_day(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("quiet_day")
    generate(REPLAY_MARKET, out)
    return out


def start_bybit_replay(replay_exchange, data: Path, record: Path, *flags: str):
    """``asmm replay --venue bybit`` unpaced from the data's times, recording what it sends,
    streaming once the collector's three topics are subscribed."""
    return replay_exchange(data, "--venue", "bybit", "--start-at", "data", "--record",
                           str(record), "--wait-subscriptions", "3", *flags, speed="max")


def replay_frames(record: Path) -> list[list[str]]:
    """The data frames the replay recorded as sent, per connection in order (malformed ones
    as sent)."""
    conns: dict[int, list[str]] = {}
    for line in record.read_text().splitlines():
        e = json.loads(line)
        if e.get("channel") in ("orderbook", "publicTrade"):
            conns.setdefault(e["conn"], []).append(dumps(e["msg"]))
    return [conns[k] for k in sorted(conns)]


def assert_replay_rows_on_disk(out: Path, record: Path, depth: int) -> dict:
    """Every row the replay's frames make is on disk with its values, in order; each
    connection's books kept on their own (a new connection starts with snapshots). Also
    ``out_of_sync``: how often a book topic's ``u`` did not follow on."""
    exp = {"prices": [], "trades": [], "orderbooks": [], "out_of_sync": 0}
    for frames in replay_frames(record):
        for kind, rows in expected_rows(frames, depth).items():
            exp[kind] += rows
    for kind in ("prices", "trades", "orderbooks"):
        got = [as_values(r[1:]) for r in csv_rows(out, kind)]
        assert len(got) == len(exp[kind]), kind
        assert got == [tuple(None if v is None else (v if isinstance(v, str) else float(v))
                             for v in r) for r in exp[kind]], kind
    return exp


def replay_done(rp, c) -> bool:
    sent = rp.sent()["messages"]
    n = sum(sent.get(ch, 0) for ch in ("orderbook", "publicTrade", "malformed"))
    return rp.clock()["finished"] and sum(c.stats.messages.values()) == n and c.queue.empty()


def test_against_the_bybit_replay_every_message_sent_is_a_row(replay_exchange, quiet_day,
                                                               tmp_path):
    rp = start_bybit_replay(replay_exchange, quiet_day, tmp_path / "rec.jsonl")
    out = tmp_path / "out"
    # BYBIT_API_URL pointed at the replay: the WebSocket is its /v5/public/linear.
    cfg = config(out, rp.url, orderbook_depth=10)
    assert cfg.bybit_stream_url == rp.ws_url
    with running(cfg) as c:
        wait_until(lambda: replay_done(rp, c), 120, "the whole day to arrive")
    exp = assert_replay_rows_on_disk(out, tmp_path / "rec.jsonl", 10)
    assert len(exp["prices"]) > 4000 and len(exp["trades"]) == rp.sent()["fills"]
    assert len(exp["orderbooks"]) > 1000
    assert c.stats.reconnects == 0 and c.stats.malformed == 0
    # Nothing was lost, so every delta carries the u after its topic's previous message
    # (Bybit's rule; a skipped u means a lost message): no resync, no gap of any kind.
    assert exp["out_of_sync"] == c.decoder.out_of_sync == c.stats.gaps == 0
    assert not (out / "gaps_BTC.csv").exists()
    for read in (read_bbo, read_trades, read_orderbooks):
        assert read(out, "BTC").quality.dropped == {}


def test_against_the_bybit_replay_drops_reconnect_and_record_gaps(replay_exchange, quiet_day,
                                                                   tmp_path):
    rp = start_bybit_replay(replay_exchange, quiet_day, tmp_path / "rec.jsonl",
                            "--drop-after", "2500", "--malformed-every", "1000")
    out = tmp_path / "out"
    with running(config(out, rp.url, orderbook_depth=10)) as c:
        wait_until(lambda: replay_done(rp, c), 120, "the whole day through the drops")
    sent = rp.sent()
    drops = sent["dropped_by_fault"]
    assert drops >= 3 and c.stats.reconnects == drops
    assert c.stats.malformed == sent["messages"]["malformed"] > 0
    exp = assert_replay_rows_on_disk(out, tmp_path / "rec.jsonl", 10)  # on every connection
    gaps = read_gaps(out, "BTC")
    # Each new connection starts from snapshots and the malformed copies change no book:
    # the only gaps are the drops.
    assert c.decoder.out_of_sync == exp["out_of_sync"] == 0
    assert len(gaps) == drops and (gaps[:, 1] > gaps[:, 0]).all()
    assert (out / "gaps_BTC.csv").read_text().count("connection closed") == drops
    assert sent["connections_total"] == drops + 1


def test_asmm_collect_venue_bybit_as_a_process(replay_exchange, quiet_day, tmp_path):
    """``asmm collect --venue bybit`` as a user runs it, pointed at the replay by
    ``BYBIT_API_URL``: rows arrive, SIGTERM writes them and exits 0."""
    import signal

    rp = replay_exchange(quiet_day, "--venue", "bybit", "--start-at", "data", speed=2000)
    out = tmp_path / "out"
    env = {**os.environ, "BYBIT_API_URL": rp.url, "FLUSH_SECONDS": "0.2"}
    proc = subprocess.Popen([ASMM, "collect", "--venue", "bybit", "--symbols", "BTCUSDT",
                             "--output-dir", str(out), "--orderbook-depth", "5"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(csv_rows(out, "orderbooks")) > 5 and csv_rows(out, "trades"),
                   60, "rows from the collector process")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    assert "all received rows written" in err
    assert json.loads((out / "venue.json").read_text())["source"] == rp.ws_url
    assert len(csv_rows(out, "orderbooks")[0]) == 3 + 4 * 5
