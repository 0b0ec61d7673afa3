"""Collector parts without a network: day files, rotation, flushing, gaps, config, health."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from asmm.data.files import PRICES_COLUMNS, TRADES_COLUMNS, day_bounds, orderbook_columns
from asmm.data.readers import read_bbo, read_gaps, read_orderbooks, read_trades
from asmm.venues.hyperliquid import protocol as hlproto
from asmm.venues.hyperliquid.collector.config import ConfigError, from_env
from asmm.venues.hyperliquid.collector.health import (
    Stats,
    check_heartbeat,
    status_line,
    write_heartbeat,
)
from asmm.venues.hyperliquid.collector.writer import (
    DayWriter,
    GapLog,
    WriterError,
    csv_to_parquet,
    format_row,
)
from asmm.venues.hyperliquid.collector.writer_thread import backoff_delay

COLUMNS = {"prices": PRICES_COLUMNS, "trades": TRADES_COLUMNS,
           "orderbooks": orderbook_columns(2)}
MIDNIGHT = day_bounds(date(2025, 9, 2))[0]


def _bbo_lines(t: float, ex_ms: int, bid: float, ask: float) -> list[str]:
    msg = hlproto.bbo_msg("BTC", ex_ms, (bid, 0.5, 1), (ask, 0.25, 2))
    return [format_row(r) for r in hlproto.parse_bbo(msg, t)]


def test_format_row_empty_fields_for_missing_values():
    assert format_row((1.5, None, float("nan"), "bid", 7)) == "1.5,,,bid,7\n"


def test_rows_round_trip_through_the_reader(tmp_path):
    w = DayWriter(tmp_path, COLUMNS)
    t0 = MIDNIGHT + 10.0
    for i in range(5):
        for line in _bbo_lines(t0 + i, int((t0 + i) * 1000), 100.0 + i, 101.0 + i):
            w.write("prices", "BTC", t0 + i, line)
    fills = [(100.5, 0.001, 1, int(t0 * 1000), 11), (100.0, 0.002, -1, int(t0 * 1000), 12)]
    for row in hlproto.parse_trades(hlproto.trades_msg("BTC", fills), t0):
        w.write("trades", "BTC", t0, format_row(row))
    book = hlproto.l2book_msg("BTC", int(t0 * 1000), [(100.0, 1.0, 1)],
                              [(101.0, 2.0, 1), (102.0, 3.0, 1)])
    w.write("orderbooks", "BTC", t0, format_row(hlproto.parse_l2book(book, 2, t0, 1)))
    w.close()
    bbo = read_bbo(tmp_path, "BTC")
    np.testing.assert_array_equal(bbo.bid, 100.0 + np.arange(5))
    np.testing.assert_array_equal(bbo.ask, 101.0 + np.arange(5))
    assert bbo.t_local[0] == t0
    tr = read_trades(tmp_path, "BTC")
    assert list(tr.trade_id) == [11, 12] and list(tr.side) == [1, -1]
    np.testing.assert_array_equal(tr.size, [0.001, 0.002])
    ob = read_orderbooks(tmp_path, "BTC")
    assert ob.bid_px[0, 0] == 100.0 and math.isnan(ob.bid_px[0, 1])  # missing level -> NaN
    np.testing.assert_array_equal(ob.ask_sz[0], [2.0, 3.0])


def test_nothing_reaches_the_file_before_a_flush_then_whole_lines(tmp_path):
    w = DayWriter(tmp_path, COLUMNS, flush_bytes=1 << 30)
    t = MIDNIGHT + 5
    for line in _bbo_lines(t, int(t * 1000), 100.0, 101.0):
        w.write("prices", "BTC", t, line)
    path = tmp_path / "prices_BTC_2025-09-02.csv"
    assert path.read_text() == ",".join(PRICES_COLUMNS) + "\n"  # header only: rows buffered
    w.flush()
    text = path.read_text()
    assert text.endswith("\n") and text.count("\n") == 3
    w.close()


def test_size_triggered_flush_writes_only_complete_lines(tmp_path):
    w = DayWriter(tmp_path, COLUMNS, flush_bytes=200)
    t = MIDNIGHT + 5
    for i in range(49):  # 98 lines of ~45 bytes: flushed in runs of 5, 3 left buffered
        for line in _bbo_lines(t + i, int((t + i) * 1000), 100.0 + i, 101.0 + i):
            w.write("prices", "BTC", t + i, line)
    text = (tmp_path / "prices_BTC_2025-09-02.csv").read_text()
    # Not closed: whatever reached the file so far is whole lines (a kill -9 now loses only
    # the buffer, never leaves half a row).
    assert 1 < text.count("\n") < 1 + 98 and text.endswith("\n")
    w.close()


def test_utc_day_rollover_opens_new_files_and_never_goes_back(tmp_path):
    w = DayWriter(tmp_path, COLUMNS)
    before, after = MIDNIGHT - 0.5, MIDNIGHT + 0.5
    for t in (before, after, before):  # the last: a clock stepping back over midnight
        for line in _bbo_lines(t, int(t * 1000), 100.0, 101.0):
            w.write("prices", "BTC", t, line)
    w.close()
    old = (tmp_path / "prices_BTC_2025-09-01.csv").read_text().splitlines()
    new = (tmp_path / "prices_BTC_2025-09-02.csv").read_text().splitlines()
    assert len(old) == 1 + 2 and len(new) == 1 + 4
    assert w.files_closed == [tmp_path / "prices_BTC_2025-09-01.csv"]


# Where PARQUET puts a finished day, by PARQUET_LAYOUT (hive: the dataset's partition).
FINISHED = {"hive": "kind=prices/coin=BTC/date={day}/part-0.parquet",
            "flat": "prices_BTC_{day}.parquet"}


@pytest.mark.parametrize("layout", ["hive", "flat"])
def test_parquet_conversion_of_a_finished_day(tmp_path, layout):
    w = DayWriter(tmp_path, COLUMNS, parquet=True, parquet_layout=layout)
    for t in (MIDNIGHT - 2, MIDNIGHT - 1, MIDNIGHT + 1):
        for line in _bbo_lines(t, int(t * 1000), 100.0, 101.0):
            w.write("prices", "BTC", t, line)
    w.close()  # waits for the conversion
    assert not (tmp_path / "prices_BTC_2025-09-01.csv").exists()
    assert (tmp_path / FINISHED[layout].format(day="2025-09-01")).exists()
    assert (tmp_path / "prices_BTC_2025-09-02.csv").exists()  # current day stays CSV
    bbo = read_bbo(tmp_path, "BTC")  # the finished day and the current one, merged
    assert len(bbo) == 3 and bbo.t[0] == int((MIDNIGHT - 2) * 1000)


def test_parquet_conversion_skips_a_truncated_last_line(tmp_path):
    p = tmp_path / "trades_BTC_2025-09-01.csv"
    p.write_text(",".join(TRADES_COLUMNS) + "\n1.0,100.0,0.1,buy,5,1000\n1.0,100.0,0.1,bu")
    out = csv_to_parquet(p)
    tr = read_trades(tmp_path, "BTC")
    assert out.suffix == ".parquet" and len(tr) == 1 and tr.trade_id[0] == 5


def test_append_to_existing_day_removes_a_partial_last_line(tmp_path):
    p = tmp_path / "prices_BTC_2025-09-02.csv"
    t = MIDNIGHT + 1
    p.write_text(",".join(PRICES_COLUMNS) + "\n" + _bbo_lines(t, int(t * 1000), 1, 2)[0][:-9])
    w = DayWriter(tmp_path, COLUMNS)
    for line in _bbo_lines(t + 1, int((t + 1) * 1000), 100.0, 101.0):
        w.write("prices", "BTC", t + 1, line)
    w.close()
    # The crash's half line had all five fields, its time cut to "1756": removed, not read.
    assert p.read_text().count("1756,") == 0
    bbo = read_bbo(tmp_path, "BTC")
    assert len(bbo) == 1 and bbo.bid[0] == 100.0 and bbo.quality.dropped == {}


def test_header_mismatch_refuses_instead_of_mixing_layouts(tmp_path):
    p = tmp_path / "orderbooks_BTC_2025-09-02.csv"
    original = ",".join(orderbook_columns(5)) + "\n"
    p.write_text(original)
    w = DayWriter(tmp_path, COLUMNS)
    with pytest.raises(WriterError, match="ORDERBOOK_DEPTH"):
        w.write("orderbooks", "BTC", MIDNIGHT + 1, "x\n")
    assert p.read_text() == original


def _disk_fills_up_after(monkeypatch, n_bytes: int) -> None:
    """The writer's low-level write puts ``n_bytes`` more bytes on disk, then fails as a
    full disk does: a short write, then ENOSPC."""
    import errno

    from asmm.venues.hyperliquid.collector import writer

    room = [n_bytes]

    def write_all(fd, data):
        n = min(room[0], len(data))
        os.write(fd, data[:n])
        room[0] -= n
        if n < len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer, "_write_all", write_all)


def test_a_write_that_fails_part_way_leaves_the_file_on_a_line_boundary(tmp_path,
                                                                       monkeypatch):
    w = DayWriter(tmp_path, COLUMNS)
    t = MIDNIGHT + 5
    for i in range(3):
        for line in _bbo_lines(t + i, int((t + i) * 1000), 100.0 + i, 101.0):
            w.write("prices", "BTC", t + i, line)
    w.flush()
    path = tmp_path / "prices_BTC_2025-09-02.csv"
    before = path.read_bytes()
    for line in _bbo_lines(t + 3, int((t + 3) * 1000), 103.0, 104.0):
        w.write("prices", "BTC", t + 3, line)
    _disk_fills_up_after(monkeypatch, 10)  # part of the next row fits
    with pytest.raises(OSError, match="No space"):
        w.flush()
    assert path.read_bytes() == before  # the 10 bytes of half a row were cut off again
    assert w.abandon() == 2 and w.rows_written["prices"] == 6  # the unwritten rows dropped
    monkeypatch.undo()  # space again: the next row reopens the file and appends
    for line in _bbo_lines(t + 4, int((t + 4) * 1000), 104.0, 105.0):
        w.write("prices", "BTC", t + 4, line)
    w.close()
    bbo = read_bbo(tmp_path, "BTC")
    np.testing.assert_array_equal(bbo.bid, [100.0, 101.0, 102.0, 104.0])
    assert bbo.quality.dropped == {}


def test_a_partial_header_is_started_again(tmp_path, monkeypatch):
    _disk_fills_up_after(monkeypatch, 12)  # a new day file gets half its header
    w = DayWriter(tmp_path, COLUMNS)
    t = MIDNIGHT + 5
    with pytest.raises(OSError):
        for line in _bbo_lines(t, int(t * 1000), 100.0, 101.0):
            w.write("prices", "BTC", t, line)
    w.abandon()
    path = tmp_path / "prices_BTC_2025-09-02.csv"
    assert path.read_bytes() == b""  # cut back; even a crash would leave just a partial header
    path.write_text(",".join(PRICES_COLUMNS)[:12])
    monkeypatch.undo()
    w = DayWriter(tmp_path, COLUMNS)
    for line in _bbo_lines(t, int(t * 1000), 100.0, 101.0):
        w.write("prices", "BTC", t, line)
    w.close()
    assert path.read_text().splitlines()[0] == ",".join(PRICES_COLUMNS)
    assert len(read_bbo(tmp_path, "BTC")) == 1


def test_gap_times_are_rounded_outwards_to_the_microsecond(tmp_path):
    start, end = 1756700000.1234567, 1756700001.0000001  # both between two microseconds
    GapLog(tmp_path).record("BTC", start, end, "test")
    (s, e), = read_gaps(tmp_path, "BTC")
    assert s <= start and e >= end and e - s < end - start + 2e-6


def test_gaps_file_is_what_read_gaps_expects(tmp_path):
    g = GapLog(tmp_path)
    g.record("BTC", 100.0, 105.5, "connection closed, then stale")
    g.record("BTC", 200.0, 200.0, "empty: not recorded")
    g.record("BTC", 300.0, 301.0, "no data for 2.0 s")
    np.testing.assert_array_equal(read_gaps(tmp_path, "BTC"), [[100.0, 105.5], [300.0, 301.0]])
    assert "connection closed; then stale" in (tmp_path / "gaps_BTC.csv").read_text()


def test_config_from_env_and_overrides():
    cfg = from_env({"SYMBOLS": "BTC, ETH", "ORDERBOOK_DEPTH": "5", "PARQUET": "yes",
                    "FLUSH_SECONDS": "0.5"}, flush_seconds=2.0, output_dir=None)
    assert cfg.symbols == ("BTC", "ETH") and cfg.orderbook_depth == 5 and cfg.parquet
    assert cfg.flush_seconds == 2.0  # the flag wins
    assert cfg.api_url == "https://api.hyperliquid.xyz"
    assert cfg.heartbeat_path == Path("HL_data/.heartbeat.json")
    assert cfg.parquet_layout == "hive"  # the dataset layout unless PARQUET_LAYOUT=flat
    assert from_env({"PARQUET_LAYOUT": "flat"}).parquet_layout == "flat"


@pytest.mark.parametrize("env,match", [
    ({"ORDERBOOK_DEPTH": "21"}, "ORDERBOOK_DEPTH"),
    ({"ORDERBOOK_DEPTH": "ten"}, "ORDERBOOK_DEPTH='ten'"),
    ({"SYMBOLS": ","}, "SYMBOLS is empty"),
    ({"SYMBOLS": "BTC/USD"}, "invalid coin"),
    ({"HL_API_URL": "api.hyperliquid.xyz"}, "HL_API_URL"),
    ({"STALE_SECONDS": "0"}, "STALE_SECONDS"),
    ({"ON_FULL": "ignore"}, "ON_FULL"),
    ({"PARQUET": "maybe"}, "PARQUET"),
    ({"PARQUET_LAYOUT": "nested"}, "PARQUET_LAYOUT"),
])
def test_config_rejects_bad_values_with_the_variable_name(env, match):
    with pytest.raises(ConfigError, match=match):
        from_env(env)


def test_backoff_doubles_caps_and_jitters():
    rng = random.Random(1)
    d = [backoff_delay(a, 1.0, 30.0, rng) for a in range(8)]
    for a, x in enumerate(d):
        nominal = min(30.0, 2.0 ** a)
        assert nominal / 2 <= x <= nominal
    # Jitter: two collectors with different seeds do not reconnect in lockstep.
    assert backoff_delay(3, 1.0, 30.0, random.Random(2)) != backoff_delay(
        3, 1.0, 30.0, random.Random(3))


def test_status_line_rates_and_counts():
    s = Stats()
    prev = s.snapshot()
    for _ in range(120):
        s.count_message("bbo", 1.0)
    s.count_malformed()
    line = status_line(prev, s.snapshot(), 60.0, 7, {"prices": 240})
    assert "bbo 2.0/s" in line and "queue 7" in line and "malformed 1" in line
    assert "prices 240" in line


def test_heartbeat_check(tmp_path):
    hb = tmp_path / "hb.json"
    assert not check_heartbeat(hb, 1000.0, 60)[0]
    write_heartbeat(hb, {"time": 1000.0, "last_data": 990.0})
    assert json.loads(hb.read_text())["time"] == 1000.0
    assert check_heartbeat(hb, 1010.0, 60)[0]
    ok, why = check_heartbeat(hb, 1100.0, 60)
    assert not ok and "heartbeat" in why
    write_heartbeat(hb, {"time": 1100.0, "last_data": 990.0})
    ok, why = check_heartbeat(hb, 1100.0, 60)
    assert not ok and "no market data" in why
    # Receiving but not writing (disk full): unhealthy too.
    write_heartbeat(hb, {"time": 1100.0, "last_data": 1099.0, "write_error": "[Errno 28] No "
                         "space left on device"})
    ok, why = check_heartbeat(hb, 1100.0, 60)
    assert not ok and "cannot write the data files: [Errno 28]" in why


def _collector(tmp_path, **kw):
    from asmm.venues.hyperliquid.collector.config import CollectorConfig
    from asmm.venues.hyperliquid.collector.service import Collector

    return Collector(CollectorConfig(output_dir=tmp_path, **kw))


def test_restart_gap_starts_where_the_files_were_complete(tmp_path, caplog):
    # complete_until (newest row of the last full flush), not last_data (newest message,
    # perhaps only in the killed process's memory).
    write_heartbeat(tmp_path / ".heartbeat.json",
                    {"time": 1000.0, "last_data": 999.0, "complete_until": 997.5})
    gap, = _collector(tmp_path)._restart_gap()
    assert gap.start == 997.5 and gap.reason == "collector restart" and gap.coins == ["BTC"]
    # A coin that was quiet has its own, earlier complete_until; the others do not wait for
    # it. A coin the previous run did not collect starts at the common one.
    write_heartbeat(tmp_path / ".heartbeat.json", {
        "time": 1000.0, "last_data": 999.0, "complete_until": 900.0,
        "coins": {"BTC": {"complete_until": 997.5}, "ETH": {"complete_until": 900.0},
                  "SOL": {"complete_until": 997.5}}})
    gaps = _collector(tmp_path, symbols=("BTC", "ETH", "SOL", "NEW"))._restart_gap()
    assert sorted((g.start, tuple(g.coins)) for g in gaps) == [
        (900.0, ("ETH", "NEW")), (997.5, ("BTC", "SOL"))]
    # A heartbeat that is not one: said in one line, and the collector starts anyway.
    (tmp_path / ".heartbeat.json").write_bytes(b"[]")
    assert _collector(tmp_path)._restart_gap() == []
    assert any("not an object" in m and "cannot be recorded as a gap" in m
               for m in caplog.messages)


def test_full_queue_with_drop_counts_and_logs_every_drop(tmp_path, caplog):
    c = _collector(tmp_path, queue_size=2, on_full="drop")
    for i in range(5):
        c._on_data("bbo", float(i), {"channel": "bbo"})
    assert c.queue.qsize() == 2 and c.stats.dropped == 3 and c.stats.messages["bbo"] == 5
    assert sum("dropped a bbo message" in r.getMessage() for r in caplog.records) == 3


def test_messages_dropped_on_a_full_queue_are_inside_a_recorded_gap(tmp_path):
    c = _collector(tmp_path, queue_size=2, on_full="drop")
    for t in (1.0, 2.0, 3.0, 4.0):  # 3.0 and 4.0 dropped
        c._on_data("bbo", t, {"channel": "bbo"})
    c.queue.get()
    c.queue.get()
    c._on_data("bbo", 5.0, {"channel": "bbo"})  # queued again: the gap ends here
    c.queue.put(None)
    c._write_loop()
    np.testing.assert_array_equal(read_gaps(tmp_path, "BTC"), [[3.0, 5.0]])
    assert "queue full" in (tmp_path / "gaps_BTC.csv").read_text()


def test_full_queue_with_block_waits_for_the_writer(tmp_path):
    c = _collector(tmp_path, queue_size=1)
    c._on_data("bbo", 0.0, {})
    done = threading.Event()

    def put_second():
        c._on_data("bbo", 1.0, {})
        done.set()

    threading.Thread(target=put_second, daemon=True).start()
    assert not done.wait(0.3)  # still waiting for room: nothing dropped
    assert c.queue.get()[1] == 0.0
    assert done.wait(10)
    assert c.queue.get()[1] == 1.0 and c.stats.dropped == 0


def _asmm(*args, env=None):
    exe = Path(sys.executable).parent / "asmm"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_healthcheck_cli(tmp_path):
    missing = _asmm("collect", "--healthcheck", "--output-dir", str(tmp_path))
    assert missing.returncode == 1 and "no readable heartbeat" in missing.stdout
    now = time.time()
    write_heartbeat(tmp_path / ".heartbeat.json", {"time": now, "last_data": now - 1})
    ok = _asmm("collect", "--healthcheck", "--output-dir", str(tmp_path))
    assert ok.returncode == 0 and ok.stdout.startswith("ok")
    write_heartbeat(tmp_path / ".heartbeat.json", {"time": now, "last_data": now - 1000})
    stale = _asmm("collect", "--healthcheck", "--output-dir", str(tmp_path), "--max-age", "500",
                  env={"OUTPUT_DIR": "/nonexistent"})  # the flag wins over the variable
    assert stale.returncode == 1 and "no market data" in stale.stdout


@pytest.mark.parametrize("content,why", [
    (b"{\"time\": 17", "not JSON"),  # cut short
    (b"\xff\xfe{}", "not JSON"),  # not UTF-8
    (b"[]", "not an object"),
    (b"{\"time\": \"x\"}", "'time' is 'x'"),
    (b"{\"last_data\": 1.0}", "'time' is None"),
    (b"{\"time\": 1e9, \"last_data\": NaN}", "'last_data' is nan"),
    (b"{\"time\": true}", "'time' is True"),
    (None, "cannot read"),  # a folder where the file should be
])
def test_healthcheck_on_a_corrupt_heartbeat_is_one_unhealthy_line(tmp_path, content, why):
    hb = tmp_path / ".heartbeat.json"
    if content is None:
        hb.mkdir()
    else:
        hb.write_bytes(content)
    r = _asmm("collect", "--healthcheck", "--output-dir", str(tmp_path))
    assert r.returncode == 1 and r.stderr == ""
    assert r.stdout.count("\n") == 1 and why in r.stdout and str(hb) in r.stdout


def test_cli_bad_setting_is_a_clear_error(tmp_path):
    r = _asmm("collect", "--output-dir", str(tmp_path), env={"ORDERBOOK_DEPTH": "50"})
    assert r.returncode == 2 and "ORDERBOOK_DEPTH must be 1..20" in r.stderr
    assert not any(tmp_path.iterdir())


def test_unwritable_output_dir_fails_at_start(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    c = _collector(blocker / "out")
    assert c.run() == 2


def test_header_mismatch_stops_the_collector_with_the_reason(tmp_path):
    from datetime import UTC, datetime

    now = time.time()
    day = datetime.fromtimestamp(now, UTC).date().isoformat()
    existing = tmp_path / f"orderbooks_BTC_{day}.csv"
    existing.write_text(",".join(orderbook_columns(5)) + "\n")
    c = _collector(tmp_path, orderbook_depth=2)
    book = hlproto.l2book_msg("BTC", int(now * 1000), [(100.0, 1.0, 1)], [(101.0, 1.0, 1)])
    c.queue.put(("l2Book", now, book))
    c.queue.put(None)
    c._write_loop()
    assert "ORDERBOOK_DEPTH" in c.fatal and c._stop.is_set()
    assert existing.read_text() == ",".join(orderbook_columns(5)) + "\n"


@pytest.mark.parametrize("layout", ["hive", "flat"])
def test_parquet_converts_days_an_earlier_run_left_as_csv(tmp_path, layout):
    w = DayWriter(tmp_path, COLUMNS)  # an earlier run without rotation: day 1 stays CSV
    for t in (MIDNIGHT - 2, MIDNIGHT + 1):
        for line in _bbo_lines(t, int(t * 1000), 100.0, 101.0):
            w.write("prices", "BTC", t, line)
    w.close()
    (tmp_path / "prices_BTC_2025-09-02.csv").rename(tmp_path / "prices_BTC_2025-08-31.csv")
    w2 = DayWriter(tmp_path, COLUMNS, parquet=True, parquet_layout=layout)
    # Today is 2025-09-02: the two earlier days are converted, no file of today exists.
    assert w2.convert_earlier_days(int(MIDNIGHT // 86400), [("prices", "BTC")]) == 2
    w2.close()
    assert not list(tmp_path.glob("prices_*.csv"))
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet")) == [
        FINISHED[layout].format(day=d) for d in ("2025-08-31", "2025-09-01")]
    assert len(read_bbo(tmp_path, "BTC")) == 2
