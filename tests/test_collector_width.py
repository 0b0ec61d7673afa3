"""Several coins on one connection: one coin going quiet is judged on its own.

The replay exchange serves three coins on one clock and, with ``--silence-coin``, stops
sending one of them to the collector's connection while the others stream. The collector
must see that coin go quiet without reconnecting, resubscribe it, and record a gap in that
coin's ``gaps_<COIN>.csv`` only; every row the replay sent, of every coin, must be on disk.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from test_collector_replay import TINY, config, running, serving, wait_until

from asmm.data.readers import read_gaps
from asmm.data.synth import generate
from asmm.venues.hyperliquid import protocol as hlproto
from asmm.venues.hyperliquid.collector.health import check_heartbeat, read_heartbeat
from asmm.venues.hyperliquid.replay.faults import CoinSilence, Faults

COINS = ("BTC", "ETH", "SOL")
DEPTH = TINY.depth
# The tiny day (about 9.3k messages a coin) in 8.6 s of wall time: ~1,100 messages/s a coin.
PACE = 10_000
ASMM = str(Path(sys.executable).parent / "asmm")


@pytest.fixture(scope="module")
def three_coins(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("three_coins")
    for i, coin in enumerate(COINS):
        generate(replace(TINY, coin=coin, seed=TINY.seed + i), out)
    return out


def _start(replay_exchange, data: Path, tmp_path: Path, *flags: str):
    record = tmp_path / "record.jsonl"
    rp = replay_exchange(data, "--start-at", "data", "--record", str(record),
                         "--wait-subscriptions", str(3 * len(COINS)), *flags,
                         coin=",".join(COINS), speed=PACE)
    return rp, record


def _sent_by_coin(record: Path) -> dict[str, dict[str, list]]:
    """Rows the replay sent, per coin and kind, without the receive time, in send order."""
    out = {c: {"prices": [], "trades": [], "orderbooks": []} for c in COINS}
    for line in record.read_text().splitlines():
        e = json.loads(line)
        ch, msg = e.get("channel"), e.get("msg")
        if ch == "bbo":
            out[msg["data"]["coin"]]["prices"] += [r[1:] for r in hlproto.parse_bbo(msg, 0.0)]
        elif ch == "trades":
            out[msg["data"][0]["coin"]]["trades"] += [
                r[1:] for r in hlproto.parse_trades(msg, 0.0)]
        elif ch == "l2Book":
            out[msg["data"]["coin"]]["orderbooks"].append(
                hlproto.parse_l2book(msg, DEPTH, 0.0)[2:])
    return out


def _on_disk(out: Path, kind: str, coin: str) -> tuple[list, list[float]]:
    rows, stamps = [], []
    for p in sorted(out.glob(f"{kind}_{coin}_*.csv")):
        t = pacsv.read_csv(p, convert_options=pacsv.ConvertOptions(
            column_types={"side": pa.string()}))
        cols = [c.to_pylist() for c in t.columns]
        stamps += cols[0]
        rows += list(zip(*cols[2 if kind == "orderbooks" else 1:], strict=True))
    return rows, stamps


def _received_everything(rp, c) -> bool:
    sent = rp.sent()["messages"]
    return (rp.clock()["finished"] and c.queue.empty()
            and sum(c.stats.messages.values()) == sum(sent[ch] for ch in
                                                        ("bbo", "trades", "l2Book")))


def test_one_quiet_coin_gets_its_own_gap_and_no_reconnect(three_coins, tmp_path,
                                                          replay_exchange, caplog):
    caplog.set_level("INFO", logger="asmm.venues")
    # ETH's stream stops for 4 s after its 1,500th message (~1.4 s in); BTC and SOL go on.
    rp, record = _start(replay_exchange, three_coins, tmp_path, "--silence-coin", "ETH",
                        "--silence-after", "1500", "--silence-seconds", "4")
    out = tmp_path / "out"
    cfg = config(out, rp.url, symbols=COINS, stale_seconds=1.0, backoff_min=0.05,
                 backoff_max=0.2)
    with running(cfg) as c:
        wait_until(lambda: c.stats.quiet == ("ETH",), 30, "ETH to be judged quiet")
        hb = wait_until(lambda: (h := read_heartbeat(out / ".heartbeat.json"))
                        and h["coins"]["ETH"]["quiet"] and h, 10, "a heartbeat saying so")
        ok, why = check_heartbeat(out / ".heartbeat.json", time.time(), 120)
        assert ok and "quiet (resubscribing): ETH" in why, why  # no container restart
        wait_until(lambda: _received_everything(rp, c), 60, "the whole day of three coins")
    # No reconnect: the connection stayed, and the other coins lost nothing.
    assert c.stats.reconnects == 0 and rp.sent()["connections_total"] == 1
    assert not (out / "gaps_BTC.csv").exists() and not (out / "gaps_SOL.csv").exists()
    # Every row sent, of every coin, is on disk with its values, in order.
    sent = _sent_by_coin(record)
    for coin in COINS:
        for kind in ("prices", "trades", "orderbooks"):
            assert _on_disk(out, kind, coin)[0] == sent[coin][kind], (coin, kind)
    # One gap for ETH: from its last book row before the silence to its first one after.
    gaps = read_gaps(out, "ETH")
    assert len(gaps) == 1 and "no bbo/l2Book for ETH" in (out / "gaps_ETH.csv").read_text()
    (start, end), = gaps
    book = sorted(_on_disk(out, "prices", "ETH")[1] + _on_disk(out, "orderbooks", "ETH")[1])
    before = max(t for t in book if t <= end - 1.0)
    after = min(t for t in book if t > before)
    assert before - 1e-6 <= start <= before and after <= end <= after + 1e-6
    assert after - before > 3.0  # the silence (4 s, less what was sent before it)
    # Logged once with the coin; resubscribed with back-off while quiet; counted.
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
              and r.name.endswith(".quiet")]
    assert len(warned) == 1 and warned[0].startswith("ETH: no bbo/l2Book for"), warned
    n = c.stats.resubscriptions["ETH"]
    assert 2 <= n <= 4, n  # at ~1 s, then every 1 s + 0.05..0.2 s of back-off
    assert rp.sent()["messages"]["subscriptionResponse"] == 3 * len(COINS) + 4 * n
    hb = read_heartbeat(out / ".heartbeat.json")
    assert hb["coins"]["ETH"]["stale"] == 1 and not hb["coins"]["ETH"]["quiet"]
    assert hb["coins"]["BTC"]["stale"] == 0 and hb["coins"]["SOL"]["stale"] == 0


def test_a_coin_quiet_for_good_costs_no_reconnects_and_its_gap_ends_at_stop(
        three_coins, tmp_path, replay_exchange):
    rp, _ = _start(replay_exchange, three_coins, tmp_path, "--silence-coin", "SOL",
                   "--silence-after", "200")
    out = tmp_path / "out"
    cfg = config(out, rp.url, symbols=COINS, stale_seconds=0.5, backoff_min=0.05,
                 backoff_max=0.2)
    with running(cfg) as c:
        wait_until(lambda: c.stats.resubscriptions.get("SOL", 0) >= 5, 30,
                   "SOL to be resubscribed a few times")
        began = time.time()
        t_stop = time.time()
    assert c.stats.reconnects == 0 and c.stats.stale == {"SOL": 1}
    assert not (out / "gaps_BTC.csv").exists() and not (out / "gaps_ETH.csv").exists()
    (start, end), = read_gaps(out, "SOL")  # one gap, not one per resubscription
    assert end >= t_stop and start < began - 5 * 0.5
    assert "no bbo/l2Book for SOL" in (out / "gaps_SOL.csv").read_text()
    # The next run starts the other coins' restart gap where their rows were complete,
    # not where SOL's were.
    hb = read_heartbeat(out / ".heartbeat.json")
    assert hb["coins"]["BTC"]["complete_until"] > start


def test_a_whole_feed_stalling_is_the_connections_fault_not_each_coins(
        three_coins, tmp_path, replay_exchange):
    # Every coin stops at once (the socket stays open): one reconnect, a gap for every coin,
    # and no coin judged quiet on its own although each one's book went quiet first.
    rp, _ = _start(replay_exchange, three_coins, tmp_path, "--stall-every", "3000",
                   "--stall-seconds", "60")
    out = tmp_path / "out"
    cfg = config(out, rp.url, symbols=COINS, stale_seconds=1.0)
    with running(cfg) as c:
        wait_until(lambda: c.stats.reconnects >= 1 and c.connected.is_set(), 30,
                   "a stale-feed reconnect")
        n = sum(c.stats.messages.values())
        wait_until(lambda: sum(c.stats.messages.values()) > n, 30, "data on the new one")
    assert c.stats.stale == {} and c.stats.resubscriptions == {}
    for coin in COINS:
        assert "no data for" in (out / f"gaps_{coin}.csv").read_text()
        (start, end), *_ = read_gaps(out, coin)
        # Each coin's gap starts at its own newest book row before the stall.
        book = _on_disk(out, "prices", coin)[1] + _on_disk(out, "orderbooks", coin)[1]
        assert start == pytest.approx(max(t for t in book if t < end), abs=1e-6)


@pytest.fixture
def deaf_exchange():
    """An exchange that streams BTC and ETH bbo every 10 ms, stops ETH after 20 messages on
    its first connection and never confirms a subscription after the first six of a
    connection: a resubscription goes unanswered, as on a broken connection."""
    import asyncio

    from aiohttp import web

    state = {"connections": 0}

    async def info(request):
        body = await request.json()
        if body["type"] == "spotMeta":
            return web.json_response(hlproto.spot_meta())
        return web.json_response(hlproto.meta([("BTC", 5, 40), ("ETH", 4, 25)]))

    async def stream(ws, first: bool):
        n = 0
        while not ws.closed:
            n += 1
            t = int(time.time() * 1000)
            for coin in ("BTC", "ETH") if not first or n <= 20 else ("BTC",):
                await ws.send_str(hlproto.bbo_text(coin, t, (100.0 + n, 1.0, 1),
                                                   (101.0 + n, 1.0, 1)))
            await asyncio.sleep(0.01)  # the feed's pace

    async def ws_handler(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        state["connections"] += 1
        first, confirmed, task = state["connections"] == 1, 0, None
        async for frame in ws:
            req = frame.json()
            if req.get("method") != "subscribe" or confirmed == 6:
                continue  # unsubscribes, and every subscribe after the first six: no answer
            await ws.send_str(hlproto.dumps(hlproto.subscription_response(req["subscription"])))
            confirmed += 1
            if confirmed == 6:
                task = asyncio.create_task(stream(ws, first))
        if task is not None:
            task.cancel()
        return ws

    with serving([web.post("/info", info), web.get("/ws", ws_handler)]) as url:
        state["url"] = url
        yield state


def test_an_unconfirmed_resubscription_means_a_broken_connection(deaf_exchange, tmp_path):
    out = tmp_path / "out"
    cfg = config(out, deaf_exchange["url"], symbols=("BTC", "ETH"), stale_seconds=0.5,
                 subscribe_timeout=0.5)
    with running(cfg) as c:
        wait_until(lambda: c.stats.reconnects == 1 and c.stats.quiet == () and
                   c.stats.gaps == 2, 30, "a reconnect, ETH back and both gaps recorded")
    assert deaf_exchange["connections"] == 2 and c.stats.resubscriptions == {"ETH": 1}
    (b_start, b_end), = read_gaps(out, "BTC")
    assert "resubscription of ETH not confirmed within 0.5 s" in (
        out / "gaps_BTC.csv").read_text()
    # ETH's own gap covers it all, from its last row on the first connection to its first on
    # the second: no second, overlapping gap for it.
    (e_start, e_end), = read_gaps(out, "ETH")
    assert "no bbo/l2Book for ETH" in (out / "gaps_ETH.csv").read_text()
    assert e_start < b_start and e_end >= b_end
    eth = _on_disk(out, "prices", "ETH")[1]
    assert max(t for t in eth if t <= e_start + 1e-6) == pytest.approx(e_start, abs=1e-6)
    assert min(t for t in eth if t > e_start + 1e-6) == pytest.approx(e_end, abs=1e-6)


def test_coin_silence_fault_counts_per_connection():
    s = CoinSilence(Faults(silence_coin="ETH", silence_after=2, silence_seconds=0))
    assert s.lets(1, "ETH")
    s.sent(1, "ETH")
    s.sent(1, "BTC")
    assert s.lets(1, "ETH")
    s.sent(1, "ETH")  # the 2nd: quiet from now on, for this connection only
    assert not s.lets(1, "ETH") and s.lets(1, "BTC") and s.lets(2, "ETH")
    with pytest.raises(ValueError, match="go together"):
        Faults(silence_coin="ETH")


def test_silence_coin_not_served_is_a_clear_error(three_coins):
    p = subprocess.run([ASMM, "replay", "--data-dir", str(three_coins), "--coin", "BTC",
                        "--port", "0", "--silence-coin", "ETH", "--silence-after", "5"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--silence-coin ETH is not served" in p.stderr
