"""The collector against the real replay exchange over a real WebSocket on 127.0.0.1.

The replay records every frame it sends (``--record``); each test compares that record with
the rows on disk: same count and same values per channel, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from aiohttp import web

from asmm.data.readers import read_bbo, read_gaps, read_orderbooks, read_trades
from asmm.data.synth import SynthConfig, generate
from asmm.venues.hyperliquid import protocol as hlproto
from asmm.venues.hyperliquid.collector.config import CollectorConfig
from asmm.venues.hyperliquid.collector.health import read_heartbeat
from asmm.venues.hyperliquid.collector.service import Collector

BIN = Path(sys.executable).parent
DEPTH = 10
# One synthetic day of a quiet market: ~4.3k bbo, ~3.6k trades messages, 1.4k books, so a
# whole day streams unpaced in a few seconds.
TINY = SynthConfig(days=1, seed=3, bbo_rate=0.05, A_bid=0.02, A_ask=0.02, l2_interval=60.0,
                   depth=DEPTH, start=date(2025, 9, 1))
# Paced runs: the 86,400 s day in about 4.3 s of wall time.
FAST = 20_000


def wait_until(pred, timeout: float, what: str):
    """Poll ``pred`` until true or fail after ``timeout`` s (a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def tiny_market(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny_market")
    generate(TINY, out)
    return out


class Replay:
    """The shared ``replay_exchange`` process plus the record file it writes."""

    def __init__(self, rp, record: Path):
        self.rp, self.url, self.record = rp, rp.url, record

    def sent(self) -> dict:
        return self.rp.sent()

    def finished(self) -> bool:
        return self.rp.clock()["finished"]


@pytest.fixture
def replay(replay_exchange, tiny_market, tmp_path):
    """``replay(speed, *flags)``: the tiny market from its recorded times, recording."""
    n = [0]

    def start(speed, *flags: str) -> Replay:
        n[0] += 1
        record = tmp_path / f"record{n[0]}.jsonl"
        rp = replay_exchange(tiny_market, "--start-at", "data", "--record", str(record),
                             *flags, speed=speed)
        return Replay(rp, record)

    return start


@pytest.fixture(params=["aiohttp", "sdk"])
def transport(request) -> str:
    """Both websocket transports (WS_CLIENT) for the tests of what a feed can do."""
    return request.param


def config(out: Path, url: str, **kw) -> CollectorConfig:
    base = dict(symbols=("BTC",), output_dir=out, orderbook_depth=DEPTH, api_url=url,
                flush_seconds=0.2, stale_seconds=5.0, status_seconds=3600.0,
                subscribe_timeout=5.0, backoff_min=0.05, backoff_max=0.2)
    base.update(kw)
    return CollectorConfig(**base)


@contextlib.contextmanager
def running(cfg: CollectorConfig, rc: int = 0, collector=Collector, **kw):
    """A ``collector`` (class; any venue's) of ``cfg`` running in a thread of its own;
    ``kw`` go to its constructor. Stopped on leaving, which checks that it stopped and
    returned exit code ``rc``."""
    c = collector(cfg, **kw)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("rc", c.run()), daemon=True)
    t.start()
    try:
        yield c
    finally:
        c.stop()
        t.join(timeout=30)
    assert not t.is_alive(), "collector did not stop"
    assert result["rc"] == rc, c.fatal


@contextlib.contextmanager
def serving(routes: list):
    """An exchange played by aiohttp ``routes`` on a free port of 127.0.0.1, in a thread and
    event loop of its own; yields its base URL (``http://127.0.0.1:PORT``), stopped on
    leaving."""
    ready, state = threading.Event(), {}

    async def main():
        app = web.Application()
        app.add_routes(routes)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        state["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        state["stop"] = asyncio.Event()
        ready.set()
        await state["stop"].wait()
        await runner.cleanup()

    loop = asyncio.new_event_loop()
    t = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    t.start()
    assert ready.wait(10)
    try:
        yield state["url"]
    finally:
        loop.call_soon_threadsafe(state["stop"].set)
        t.join(10)


# ------------------------------------------------------------------ expected vs on disk


def recorded(rec: Path) -> dict[str, list]:
    """Rows the replay's record says were sent, per kind, without the receive time."""
    out = {"prices": [], "trades": [], "orderbooks": [], "malformed": 0}
    for line in rec.read_text().splitlines():
        e = json.loads(line)
        if "channel" not in e:
            continue
        if e.get("malformed"):
            out["malformed"] += 1
        elif e["channel"] == "bbo":
            out["prices"] += [r[1:] for r in hlproto.parse_bbo(e["msg"], 0.0)]
        elif e["channel"] == "trades":
            out["trades"] += [r[1:] for r in hlproto.parse_trades(e["msg"], 0.0)]
        elif e["channel"] == "l2Book":
            out["orderbooks"].append(hlproto.parse_l2book(e["msg"], DEPTH, 0.0)[2:])
    return out


def on_disk(out: Path, kind: str) -> tuple[list, list[float]]:
    """Rows of every day file of ``kind`` (in day order) without the receive time (and,
    for books, the collector's sequence), plus the receive times."""
    rows, stamps = [], []
    for p in sorted(out.glob(f"{kind}_BTC_*.csv")):
        t = pacsv.read_csv(p, convert_options=pacsv.ConvertOptions(
            column_types={"side": pa.string()}))
        cols = [c.to_pylist() for c in t.columns]
        skip = 2 if kind == "orderbooks" else 1
        stamps += cols[0]
        rows += list(zip(*cols[skip:], strict=True))
    return rows, stamps


def assert_every_sent_message_is_a_row(out: Path, r: Replay) -> dict:
    r.sent()  # the replay flushes its record file on every /_replay/ request
    exp = recorded(r.record)
    for kind in ("prices", "trades", "orderbooks"):
        got, _ = on_disk(out, kind)
        assert len(got) == len(exp[kind]), kind
        assert got == exp[kind], f"{kind}: values differ from what the replay sent"
    return exp


def done_receiving(r: Replay, c: Collector) -> bool:
    """The replay finished, the collector received all it sent (injected malformed messages
    arrive on data channels too) and the writer took everything off the queue."""
    sent = r.sent()["messages"]
    n_sent = sum(sent[ch] for ch in ("bbo", "trades", "l2Book", "malformed"))
    return r.finished() and sum(c.stats.messages.values()) == n_sent and c.queue.empty()


# ------------------------------------------------------------------ tests


def test_every_message_sent_is_a_row_with_its_values(replay, tmp_path, transport):
    r = replay("max", "--wait-subscriptions", "3")
    out = tmp_path / "out"
    with running(config(out, r.url, ws_client=transport)) as c:
        wait_until(lambda: done_receiving(r, c), 60, "the whole day to arrive")
    exp = assert_every_sent_message_is_a_row(out, r)
    sent = r.sent()
    assert len(exp["prices"]) > 4000 and sent["fills"] == len(exp["trades"])
    assert sent["messages"]["l2Book"] == len(exp["orderbooks"]) > 1000
    assert c.stats.reconnects == 0 and c.stats.malformed == 0 and c.stats.dropped == 0
    assert not (out / "gaps_BTC.csv").exists()
    # The library readers take the files as they are: nothing dropped.
    for read in (read_bbo, read_trades, read_orderbooks):
        assert read(out, "BTC").quality.dropped == {}

    # A second run on the same folder records the time the collector was down as a gap.
    last = read_heartbeat(out / ".heartbeat.json")["last_data"]
    with running(config(out, r.url)) as c2:
        wait_until(c2.connected.is_set, 30, "the second run to subscribe")
    gaps = read_gaps(out, "BTC")
    assert gaps.shape == (1, 2) and gaps[0, 0] == pytest.approx(last, abs=1e-6)
    assert "collector restart" in (out / "gaps_BTC.csv").read_text()


def test_drop_mid_stream_reconnects_resubscribes_and_records_gaps(replay, tmp_path, transport):
    r = replay("max", "--wait-subscriptions", "3", "--drop-after", "2500")
    out = tmp_path / "out"
    with running(config(out, r.url, ws_client=transport)) as c:
        wait_until(lambda: done_receiving(r, c), 60, "the whole day through the drops")
    sent = r.sent()
    drops = sent["dropped_by_fault"]
    assert drops >= 3 and c.stats.reconnects == drops
    assert_every_sent_message_is_a_row(out, r)  # rows continued on each connection
    gaps = read_gaps(out, "BTC")
    assert len(gaps) == drops and (gaps[:, 1] > gaps[:, 0]).all()
    assert "connection closed" in (out / "gaps_BTC.csv").read_text()
    _, stamps = on_disk(out, "prices")
    assert max(stamps) > gaps[-1, 1]  # data after the last gap
    # Every new connection subscribed again to all three channels (and was confirmed).
    assert sent["connections_total"] == drops + 1
    assert sent["messages"]["subscriptionResponse"] == 3 * (drops + 1)


def test_stalled_feed_is_stale_and_replaced(replay, tmp_path, transport):
    # The socket stays open but data stops (pings still answered): only staleness shows it.
    r = replay(FAST, "--wait-subscriptions", "3", "--stall-every", "1500", "--stall-seconds", "60")
    out = tmp_path / "out"
    with running(config(out, r.url, stale_seconds=0.5, ws_client=transport)) as c:
        wait_until(lambda: c.stats.gaps >= 1 and c.connected.is_set(), 30,
                   "a stale-feed reconnect")
        n = c.stats.messages["bbo"]
        wait_until(lambda: c.stats.messages["bbo"] > n, 30, "data on the new connection")
    text = (out / "gaps_BTC.csv").read_text()
    assert "no data for" in text
    gaps = read_gaps(out, "BTC")
    _, stamps = on_disk(out, "prices")
    assert max(stamps) > gaps[0, 1]


def test_malformed_messages_are_counted_skipped_and_survived(replay, tmp_path, transport,
                                                             caplog):
    caplog.set_level("INFO", logger="asmm.venues")
    r = replay("max", "--wait-subscriptions", "3", "--malformed-every", "400")
    out = tmp_path / "out"
    with running(config(out, r.url, ws_client=transport, status_seconds=0.5)) as c:
        wait_until(lambda: done_receiving(r, c), 60, "the whole day with bad messages")
        wait_until(lambda: c.stats.malformed == r.sent()["messages"]["malformed"], 10,
                   "every malformed message to be counted")
        wait_until(lambda: any("| queue " in m for m in caplog.messages), 10, "a status line")
    exp = assert_every_sent_message_is_a_row(out, r)
    assert exp["malformed"] >= 20 and c.stats.malformed == exp["malformed"]
    assert c.stats.reconnects == 0
    # Status lines while streaming: rates per channel, queue depth, the malformed so far.
    status = [m for m in caplog.messages if "| queue " in m]
    assert status and all(f"{ch} " in status[0] for ch in ("bbo", "trades", "l2Book"))
    counts = [int(m.split("| malformed ")[1].split()[0]) for m in status]
    assert 0 < max(counts) <= exp["malformed"]


def test_utc_midnight_rollover_starts_new_files(replay, tmp_path):
    midnight = (int(time.time() // 86400) + 1) * 86400.0
    # The collector's clock stands at 1 s before midnight until it has subscribed, then runs:
    # the stream (4.3 s, starting at the subscriptions) is cut by midnight whatever the
    # machine's speed.
    anchor = [float("inf")]

    def clock():
        return midnight - 1.0 + max(0.0, time.time() - anchor[0])

    r = replay(FAST, "--wait-subscriptions", "3")
    out = tmp_path / "out"
    with running(config(out, r.url), clock=clock) as c:
        wait_until(c.connected.is_set, 30, "subscriptions")
        anchor[0] = time.time()
        wait_until(lambda: done_receiving(r, c), 60, "the day to be replayed")
    days = [datetime.fromtimestamp(t, UTC).date().isoformat() for t in (midnight - 1, midnight)]
    for kind in ("prices", "trades"):
        before = pacsv.read_csv(out / f"{kind}_BTC_{days[0]}.csv").column("timestamp")
        after = pacsv.read_csv(out / f"{kind}_BTC_{days[1]}.csv").column("timestamp")
        assert len(before) > 0 and len(after) > 0
        assert max(before.to_pylist()) < midnight <= min(after.to_pylist())
    assert_every_sent_message_is_a_row(out, r)


def _collect_cli(out: Path, url: str, *flags: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "asmm"), "collect", "--api-url", url, "--output-dir", str(out),
         "--orderbook-depth", str(DEPTH), "--backoff-min", "0.05", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigterm_writes_every_buffered_row(replay, tmp_path):
    r = replay("max", "--wait-subscriptions", "3")
    out = tmp_path / "out"
    proc = _collect_cli(out, r.url, "--flush-seconds", "3600", "--stale-seconds", "3600")
    try:
        def all_received():
            hb = read_heartbeat(out / ".heartbeat.json")
            sent = r.sent()["messages"]
            return r.finished() and hb and hb["queue"] == 0 and all(
                hb["messages"].get(ch) == sent[ch] for ch in ("bbo", "trades", "l2Book"))

        wait_until(all_received, 60, "the collector to receive the whole day")
        # Everything is still in the collector's buffers: the files hold only their header.
        for kind in ("prices", "trades", "orderbooks"):
            assert len((out / next(iter(out.glob(f"{kind}_*.csv"))).name)
                       .read_text().splitlines()) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_every_sent_message_is_a_row(out, r)


def test_kill_9_leaves_files_that_parse(replay, tmp_path):
    r = replay(FAST, "--wait-subscriptions", "3")  # the stream starts when the collector is in
    out = tmp_path / "out"
    proc = _collect_cli(out, r.url, "--flush-seconds", "0.05")
    try:
        wait_until(lambda: (read_heartbeat(out / ".heartbeat.json") or {}).get(
            "rows", {}).get("prices", 0) > 1000, 30, "rows being written")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    files = sorted(out.glob("*_BTC_*.csv"))
    assert len(files) == 3
    for p in files:
        assert p.read_bytes().endswith(b"\n"), p.name
    for read in (read_bbo, read_trades, read_orderbooks):
        data = read(out, "BTC")
        assert len(data) > 0 and data.quality.dropped == {}


def test_unknown_coin_is_a_clear_error(replay, tmp_path):
    r = replay("max")
    proc = _collect_cli(tmp_path / "out", r.url, "--symbols", "BTC,NOPE")
    assert proc.wait(timeout=60) == 2
    assert "NOPE" in proc.stderr.read()


def test_unreachable_exchange_is_retried_until_stopped(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        with running(config(tmp_path / "out", url)) as c:
            wait_until(lambda: c.connect_failures >= 3, 30,
                       "three failed connection attempts")
    assert not c.connected.is_set() and not list((tmp_path / "out").glob("*_BTC_*.csv"))
