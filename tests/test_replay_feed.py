"""The replay exchange's logic without a network: timeline, book, candles, /info answers."""

from datetime import date
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from asmm.cli import main
from asmm.core.errors import DataError
from asmm.data.readers import read_bbo, read_trades
from asmm.data.synth import SynthConfig, generate
from asmm.venues.hyperliquid import protocol as hp
from asmm.venues.hyperliquid.replay import Exchange, InfoError, Replay, ReplayConfig, load_market
from asmm.venues.hyperliquid.replay.faults import Faults, corrupt
from asmm.venues.hyperliquid.replay.market import BBO, L2, TRADES, candles


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One quiet synthetic day: few enough events to replay completely in a test."""
    out = tmp_path_factory.mktemp("tiny_market")
    generate(SynthConfig(days=1, seed=3, bbo_rate=0.2, A_bid=0.02, A_ask=0.02,
                         l2_interval=60.0, start=date(2025, 9, 1)), out)
    return out


@pytest.fixture(scope="module")
def market(tiny):
    return load_market(tiny, "BTC")


def finished(*markets, **cfg) -> Exchange:
    """An exchange advanced through the whole data (unlooped): its state is the last event."""
    ex = Exchange(list(markets), ReplayConfig(speed=0, start_at="data", **cfg), wall=1e9)
    ex.start(1e9)
    while (r := ex.next_replay()) is not None:
        r.advance()
    return ex


def test_timeline_has_every_event_in_order(market, tiny):
    tr = read_trades(tiny, "BTC")
    bbo = read_bbo(tiny, "BTC")
    n_groups = np.unique(tr.t).size
    assert (market.ev_kind == TRADES).sum() == n_groups
    assert (market.ev_kind == BBO).sum() == len(bbo)
    assert np.all(np.diff(market.ev_t) >= 0)
    # At equal exchange time: trades, then BBO, then the L2 snapshot.
    same = np.diff(market.ev_t) == 0
    assert np.all(np.diff(market.ev_kind.astype(int))[same] >= 0)
    assert (market.ev_kind == L2).sum() > 0 and not market.l2_from_bbo
    assert market.fills_upto[-1] == len(tr)


def test_book_is_bbo_then_deeper_snapshot_levels_never_crossed(market):
    for p in range(0, market.n_events, max(market.n_events // 200, 1)):
        bids, asks = market.book(p)
        bid, bsz, ask, asz = market.top(p)
        assert bids[0][:2] == (bid, bsz) and asks[0][:2] == (ask, asz)
        bpx = [b[0] for b in bids]
        apx = [a[0] for a in asks]
        assert bpx == sorted(bpx, reverse=True) and len(set(bpx)) == len(bpx)
        assert apx == sorted(apx) and len(set(apx)) == len(apx)
        assert bpx[0] < apx[0]


def test_candles_by_hand():
    t = np.array([0, 10, 59_999, 130_000, 130_001], dtype=np.int64)
    px = np.array([10.0, 12.0, 9.0, 11.0, 13.0])
    sz = np.array([1.0, 1.0, 1.0, 0.5, 0.25])
    rows = candles(t, px, sz, 60_000, 0, 190_000, prev_close=8.0)
    assert rows == [
        (0, 10.0, 12.0, 9.0, 9.0, 3.0, 3),
        (60_000, 9.0, 9.0, 9.0, 9.0, 0.0, 0),  # nothing traded: flat at the previous close
        (120_000, 11.0, 13.0, 11.0, 13.0, 0.75, 2),
        (180_000, 13.0, 13.0, 13.0, 13.0, 0.0, 0),
    ]
    assert candles(t, px, sz, 60_000, 61_000, 61_500, 7.0) == [
        (60_000, 7.0, 7.0, 7.0, 7.0, 0.0, 0)]


def test_candle_snapshot_matches_pandas_resample_of_the_trades(market, tiny):
    r = finished(market)
    got = r.info({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "15m",
                                                    "startTime": 0}}, wall=0)
    tr = read_trades(tiny, "BTC")
    df = pd.DataFrame({"px": tr.price, "sz": tr.size},
                      index=pd.to_datetime(tr.t, unit="ms"))
    ref = df["px"].resample("15min").ohlc().join(df["sz"].resample("15min").sum())
    ref = ref.dropna()
    by_t = {c["t"]: c for c in got}
    assert len(by_t) == len(got) == 96  # a whole day of 15-minute candles
    for ts, row in ref.iterrows():
        c = by_t[int(ts.value // 1_000_000)]
        assert (float(c["o"]), float(c["h"]), float(c["l"]), float(c["c"])) == (
            row["open"], row["high"], row["low"], row["close"])
        assert float(c["v"]) == pytest.approx(row["sz"], rel=1e-12)


def test_candle_snapshot_keeps_the_latest_5000(market):
    # Four looped passes of one day: 5760 one-minute intervals, more than the limit.
    r = Replay(market, ReplayConfig(speed=0, start_at="data", loop=True), wall=0.0)
    r.start(0.0)
    while r.loop < 4:
        r.advance()
    got = r.info({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m",
                                                    "startTime": 0}}, wall=0)
    assert len(got) == hp.MAX_CANDLES
    now = r.now_ms(0)
    assert got[-1]["t"] == now // 60_000 * 60_000
    assert all(b["t"] - a["t"] == 60_000 for a, b in pairwise(got))


def test_start_at_now_shifts_published_times(market):
    wall = 2_000_000_000.0
    ex = Exchange([market], ReplayConfig(speed=2.0, start_at="now"), wall=0.0)
    ex.start(wall)
    r = ex.replays["BTC"]
    assert r.pub_time(0) == int(wall * 1000)
    assert r.now_ms(wall + 10) == int(wall * 1000) + 20_000  # twice real time
    assert r.clock.wall_at(r.pub_time(0) + 20_000) == pytest.approx(wall + 10)
    ch, msg = r.event_message(0)
    data = msg["data"][0] if ch == "trades" else msg["data"]
    assert data["time"] == int(wall * 1000)
    assert ex.info({"type": "exchangeStatus"}, wall + 1)["time"] == int(wall * 1000) + 2000


def test_loop_keeps_times_and_trade_ids_increasing(market):
    r = Replay(market, ReplayConfig(speed=0, start_at="data", loop=True), wall=0.0)
    r.start(0.0)
    last_t, last_tid = -1, -1
    first_trades = int(np.flatnonzero(market.ev_kind == TRADES)[0])
    for loop in range(2):
        assert r.loop == loop and r.pos == 0
        for pos in range(market.n_events):
            t = r.pub_time(pos)
            assert t >= last_t
            last_t = t
            if pos == first_trades:
                _, msg = r.event_message(pos)
                tid = msg["data"][0]["tid"]
                assert tid > last_tid
                last_tid = tid
            r.advance()
    assert r.loop == 2 and not r.finished


def test_info_answers_at_the_final_state(market):
    r = finished(market)
    p = market.n_events - 1
    bids, asks = market.book(p)
    book = r.info({"type": "l2Book", "coin": "BTC"}, 0)
    assert [float(x["px"]) for x in book["levels"][0]] == [b[0] for b in bids]
    assert [float(x["sz"]) for x in book["levels"][1]] == [a[1] for a in asks]
    meta, ctxs = r.info({"type": "metaAndAssetCtxs"}, 0)
    assert meta["universe"][0]["name"] == "BTC"
    assert [float(x) for x in ctxs[0]["impactPxs"]] == [bids[0][0], asks[0][0]]
    assert float(r.info({"type": "allMids"}, 0)["BTC"]) == market.mid(p)
    fh = r.info({"type": "fundingHistory", "coin": "BTC", "startTime": 0}, 0)
    assert len(fh) == 24 and all(f["time"] % 3_600_000 == 0 for f in fh)


@pytest.mark.parametrize("req", [
    {"type": "nope"}, {"kind": "meta"}, [], {"type": "l2Book", "coin": "ETH"},
    {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "7m"}},
    {"type": "candleSnapshot"},
    {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": "x"}},
])
def test_info_rejects_what_hyperliquid_rejects(market, req):
    r = finished(market)
    with pytest.raises(InfoError):
        r.info(req, 0)


def test_load_market_errors_are_clear(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_market(tmp_path / "missing", "BTC")
    with pytest.raises(DataError, match="no prices files for BTC"):
        load_market(tmp_path, "BTC")


def test_a_corrupt_parquet_file_is_named_or_gives_way_to_its_csv(market, tiny, tmp_path,
                                                                  capsys):
    data = tmp_path / "d"
    data.mkdir()
    for p in tiny.glob("*_BTC_*.csv"):
        (data / p.name).write_bytes(p.read_bytes())
    broken = data / "prices_BTC_2025-09-01.parquet"
    broken.write_bytes(b"PAR1" + (tiny / "prices_BTC_2025-09-01.csv").read_bytes()[:4096])
    m = load_market(data, "BTC")  # the CSV of the same day is read instead
    assert np.array_equal(m.ev_t, market.ev_t) and np.array_equal(m.bid, market.bid)

    (data / "prices_BTC_2025-09-01.csv").unlink()
    assert main(["replay", "--data-dir", str(data), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"error: {broken}: cannot read it" in err


@pytest.mark.parametrize("channel,msg", [
    ("bbo", hp.bbo_msg("BTC", 5, (1.0, 1.0, 1), (2.0, 1.0, 1))),
    ("trades", hp.trades_msg("BTC", [(1.0, 1.0, 1, 5, 1)])),
    ("l2Book", hp.l2book_msg("BTC", 5, [(1.0, 1.0, 1)], [(2.0, 1.0, 1)])),
    ("candle", hp.candle_msg(hp.candle("BTC", "1m", 60_000, 1, 1, 1, 1, 1, 1))),
])
def test_corrupt_messages_are_routable_but_rejected(channel, msg):
    bad = corrupt(channel, msg)
    assert bad["channel"] == channel and msg != bad
    parse = {"bbo": hp.parse_bbo, "trades": hp.parse_trades,
             "l2Book": lambda m: hp.parse_l2book(m, 1), "candle": hp.parse_candle}[channel]
    parse(msg)
    with pytest.raises(hp.ProtocolError):
        parse(bad)


def test_faults_validate():
    with pytest.raises(ValueError):
        Faults(drop_after=-1)
    with pytest.raises(ValueError):
        Faults(stall_every=3)
    assert not Faults().any and Faults(malformed_every=2).any


def test_history_is_past_at_the_start(market):
    wall = 2_000_000_000.0
    r = Replay(market, ReplayConfig(speed=1.0, start_at="now", history_s=3600), wall=wall)
    r.start(wall)
    anchor = market.ev_t[0] + 3_600_000
    assert market.ev_t[r.pos] >= anchor > market.ev_t[r.pos - 1]
    assert r.pub_time(r.pos) >= int(wall * 1000)  # the first streamed event is not in the past
    got = r.info({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m",
                                                    "startTime": 0}}, wall)
    # An hour of history: 60 closed one-minute candles plus the one now open.
    assert len(got) == 61 and got[0]["t"] == (int(wall * 1000) - 3_600_000) // 60_000 * 60_000
    assert sum(c["n"] for c in got) == int(market.fills_upto[r.pos - 1])
    with pytest.raises(ValueError, match="longer than the data"):
        Replay(market, ReplayConfig(history_s=2 * 86_400), wall=wall)


def test_single_file_layout_parquet_and_no_orderbooks(market, tiny, tmp_path):
    single = tmp_path / "single"
    single.mkdir()
    for kind in ("prices", "trades", "orderbooks"):
        (single / f"{kind}_BTC.csv").write_bytes(
            (tiny / f"{kind}_BTC_2025-09-01.csv").read_bytes())
    m1 = load_market(single, "BTC")
    assert np.array_equal(m1.ev_t, market.ev_t) and np.array_equal(m1.ev_kind, market.ev_kind)

    pq_dir = tmp_path / "parquet"
    generate(SynthConfig(days=1, seed=3, bbo_rate=0.2, A_bid=0.02, A_ask=0.02,
                         l2_interval=60.0, start=date(2025, 9, 1), fmt="parquet"), pq_dir)
    assert not list(pq_dir.glob("*.csv"))
    m2 = load_market(pq_dir, "BTC")
    assert np.array_equal(m2.ev_t, market.ev_t) and np.array_equal(m2.bid, market.bid)

    # Without orderbooks files, l2Book events carry the BBO as a one-level book.
    (single / "orderbooks_BTC.csv").unlink()
    m3 = load_market(single, "BTC")
    assert m3.l2_from_bbo and (m3.ev_kind == L2).sum() == (m3.ev_kind == BBO).sum()
    j = int(np.flatnonzero(m3.ev_kind == L2)[5])
    r = Replay(m3, ReplayConfig(speed=0, start_at="data"), wall=0.0)
    _, msg = r.event_message(j)
    i = int(m3.ev_idx[j])
    assert msg["data"]["levels"] == [[hp.level(m3.bid[i], m3.bid_sz[i])],
                                     [hp.level(m3.ask[i], m3.ask_sz[i])]]


def test_two_coins_interleave_on_one_clock(market, tiny, tmp_path):
    eth_dir = tmp_path / "eth"
    generate(SynthConfig(coin="ETH", days=1, seed=4, mid=4000.0, sigma=0.3, bbo_rate=0.1,
                         A_bid=0.01, A_ask=0.01, l2_interval=120.0, start=date(2025, 9, 1)),
             eth_dir)
    for f in eth_dir.glob("*_ETH_*.csv"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    for f in tiny.glob("*_BTC_*.csv"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    eth = load_market(tmp_path, "ETH")
    ex = Exchange([market, eth], ReplayConfig(speed=0, start_at="data"), wall=0.0)
    ex.start(0.0)
    times, counts = [], {"BTC": 0, "ETH": 0}
    while (r := ex.next_replay()) is not None:
        times.append(r.pub_time())
        counts[r.market.coin] += 1
        r.advance()
    assert counts == {"BTC": market.n_events, "ETH": eth.n_events}
    assert times == sorted(times)  # one timeline, in published-time order
    meta, ctxs = ex.info({"type": "metaAndAssetCtxs"}, 0)
    assert [u["name"] for u in meta["universe"]] == ["BTC", "ETH"] and len(ctxs) == 2
    assert float(ex.info({"type": "allMids"}, 0)["ETH"]) == eth.mid(eth.n_events - 1)
    book = ex.info({"type": "l2Book", "coin": "ETH"}, 0)
    assert book["coin"] == "ETH"
    with pytest.raises(InfoError, match="BTC, ETH"):
        ex.info({"type": "l2Book", "coin": "SOL"}, 0)
    with pytest.raises(ValueError, match="twice"):
        Exchange([market, market], ReplayConfig(), wall=0.0)
