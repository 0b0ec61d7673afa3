"""Faults the collector must survive without losing a row outside a recorded gap.

Every test checks the same property: each row the exchange sent is either in a day file or
inside a gap of ``gaps_BTC.csv`` (start, end, reason; epoch seconds).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.csv as pacsv
from test_collector_replay import (
    DEPTH,
    _collect_cli,
    config,
    done_receiving,
    on_disk,
    replay,  # noqa: F401  (fixture)
    running,
    tiny_market,  # noqa: F401  (fixture; used by replay)
    wait_until,
)

from asmm.data.readers import read_bbo, read_gaps, read_orderbooks, read_trades
from asmm.venues.hyperliquid import protocol as hlproto
from asmm.venues.hyperliquid.collector import writer
from asmm.venues.hyperliquid.collector.config import CollectorConfig
from asmm.venues.hyperliquid.collector.health import read_heartbeat
from asmm.venues.hyperliquid.collector.service import Collector

KINDS = ("prices", "trades", "orderbooks")
# The tiny market's day in about 8.6 s of wall time: long enough to kill and restart a
# collector mid-stream.
PACE = 10_000
# Channel -> kind and the rows of a message without the receive time.
PARSE = {"bbo": ("prices", lambda m: [r[1:] for r in hlproto.parse_bbo(m, 0.0)]),
         "trades": ("trades", lambda m: [r[1:] for r in hlproto.parse_trades(m, 0.0)]),
         "l2Book": ("orderbooks", lambda m: [hlproto.parse_l2book(m, DEPTH, 0.0)[2:]])}


def _sent_rows(record: Path) -> list[tuple[str, tuple]]:
    """(kind, row without receive time) of every data row the replay sent, in send order
    across kinds (= receive order on one connection)."""
    rows = []
    for line in record.read_text().splitlines():
        e = json.loads(line)
        if e.get("malformed") or e.get("channel") not in PARSE:
            continue
        kind, parse = PARSE[e["channel"]]
        rows += [(kind, r) for r in parse(e["msg"])]
    return rows


def assert_sent_rows_on_disk_or_in_gaps(out: Path, record: Path) -> dict[str, int]:
    """Every row in the replay's ``record`` is in a day file or inside a recorded gap, and
    the files hold nothing else, in order. Returns the number of lost rows per kind.

    A lost row would have been received after every row sent before it, so after the
    newest of those on disk (receive time ``t_prev``): a gap covers it when it starts at or
    before ``t_prev`` and ends after it.
    """
    disk = {kind: on_disk(out, kind) for kind in KINDS}
    pos = dict.fromkeys(KINDS, 0)
    gaps = read_gaps(out, "BTC")
    lost = dict.fromkeys(KINDS, 0)
    t_prev = None
    for i, (kind, row) in enumerate(_sent_rows(record)):
        got, stamps = disk[kind]
        j = pos[kind]
        if j < len(got) and got[j] == row:
            t_prev = max(t_prev or stamps[j], stamps[j])
            pos[kind] += 1
            continue
        lost[kind] += 1
        assert t_prev is not None, f"sent row {i} ({kind}) lost before any row reached the disk"
        assert any(s <= t_prev < e for s, e in gaps), (
            f"sent row {i} ({kind}) is lost outside every gap: the newest row on disk sent "
            f"before it was received at {t_prev:.6f}; gaps {gaps.tolist()}")
    for kind in KINDS:
        assert pos[kind] == len(disk[kind][0]), f"{kind}: rows on disk that were never sent"
    return lost


def _last_prices_time(out: Path) -> float | None:
    """Receive time (s) of the newest prices row in the files, or None."""
    files = sorted(out.glob("prices_BTC_*.csv"))
    if not files:
        return None
    lines = files[-1].read_bytes().splitlines()
    return float(lines[-1].split(b",")[0]) if len(lines) > 1 else None


def _data_frames_after_first_connection(record: Path) -> dict[str, int]:
    frames = [json.loads(line) for line in record.read_text().splitlines()]
    counts = {"bbo": 0, "trades": 0, "l2Book": 0}
    data = [f for f in frames if f.get("channel") in counts and not f.get("malformed")]
    first = min(f["conn"] for f in data)
    for f in data:
        if f["conn"] != first:
            counts[f["channel"]] += 1
    return counts


def test_kill_9_loses_nothing_outside_the_restart_gap(replay, tmp_path):  # noqa: F811
    r = replay(PACE, "--wait-subscriptions", "3")
    out = tmp_path / "out"
    hb_path = out / ".heartbeat.json"
    # Rows wait in the collector's buffers up to FLUSH_SECONDS: a kill -9 loses them (the
    # finding had 5 s; 2 s keeps the test short).
    flags = ("--flush-seconds", "2")
    proc = _collect_cli(out, r.url, *flags)
    try:
        def unflushed_seconds() -> float:
            hb, on_file = read_heartbeat(hb_path), _last_prices_time(out)
            return hb["last_data"] - on_file if hb and hb["last_data"] and on_file else 0.0

        # The moment of the finding: rows reached the files once, and at least a second of
        # rows received since is still only in the collector's memory.
        wait_until(lambda: unflushed_seconds() >= 1.0, 30, "a second of unflushed rows")
        t_kill = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        newest_before_kill = max(max(on_disk(out, kind)[1]) for kind in KINDS)

        proc = _collect_cli(out, r.url, *flags)

        def received_the_rest() -> bool:
            hb = read_heartbeat(hb_path)
            if not (r.finished() and hb and hb["time"] > t_kill and hb["connected"]
                    and hb["queue"] == 0):
                return False
            r.sent()  # flushes the record file
            sent = _data_frames_after_first_connection(r.record)
            return all(hb["messages"].get(ch, 0) == n for ch, n in sent.items())

        wait_until(received_the_rest, 60, "the restarted collector to receive the rest")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    r.sent()
    lost = assert_sent_rows_on_disk_or_in_gaps(out, r.record)
    assert lost["prices"] > 100, "the kill lost no buffered rows: the test tested nothing"
    gaps = read_gaps(out, "BTC")
    assert len(gaps) == 1 and "collector restart" in (out / "gaps_BTC.csv").read_text()
    # From the newest row on disk at the kill (or before it) to after the kill.
    assert gaps[0, 0] <= newest_before_kill and gaps[0, 1] > t_kill
    for read in (read_bbo, read_trades, read_orderbooks):
        assert read(out, "BTC").quality.dropped == {}


def _problems(caplog) -> list[str]:
    """Collector log records with a traceback (there should be none)."""
    return [r.getMessage() for r in caplog.records if r.exc_info]


def _delays(caplog) -> list[float]:
    """The 'next try in X s' delays logged for retries of writing rows, in order."""
    return [float(m.split("next try in ")[1].split()[0]) for m in caplog.messages
            if "next try in" in m and ("cannot write to" in m or "still cannot write" in m)]


def test_disk_full_drops_rows_retries_with_backoff_and_records_the_gap(tmp_path, monkeypatch,
                                                                       caplog):
    # We cannot fill a disk in a test: the writer's low-level write fails as a full disk
    # does (a short write, then ENOSPC) for as long as ``full`` is set.
    caplog.set_level("INFO", logger="asmm.venues")
    full = [False]
    real_write_all = writer._write_all

    def write_all(fd, data):
        if full[0]:
            os.write(fd, data[:len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write_all(fd, data)

    monkeypatch.setattr(writer, "_write_all", write_all)
    out = tmp_path / "out"
    c = Collector(CollectorConfig(output_dir=out, flush_seconds=0.05, backoff_min=0.05,
                                  backoff_max=0.4, status_seconds=3600.0))
    loop = threading.Thread(target=c._write_loop, daemon=True)
    loop.start()
    sent = []  # (receive time, id): the id is the row's exchange_timestamp

    def feed_until(pred, what: str) -> None:
        deadline = time.monotonic() + 30
        while not pred():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            t = c.clock()
            i = len(sent) + 1
            c._on_data("bbo", t, hlproto.bbo_msg("BTC", i, (100.0, 1.0, 1), (101.0, 1.0, 1)))
            sent.append((t, i))
            time.sleep(0.002)  # the feed's pace (500 messages/s), not a synchronisation

    hb_path = out / ".heartbeat.json"
    feed_until(lambda: _last_prices_time(out), "rows on disk")
    full[0] = True
    # The heartbeat (not written through _write_all) tells the healthcheck.
    feed_until(lambda: len(_delays(caplog)) >= 4 and "No space left" in (
        read_heartbeat(hb_path)["write_error"] or ""), "three failed retries, a heartbeat")
    full[0] = False
    feed_until(lambda: (out / "gaps_BTC.csv").exists() and (_last_prices_time(out) or 0)
               > read_gaps(out, "BTC")[0, 1], "the gap recorded and rows after it")
    c.queue.put(None)  # what stop() sends the writer
    loop.join(timeout=30)
    assert not loop.is_alive() and c.fatal is None

    files = sorted(out.glob("prices_BTC_*.csv"))
    for p in files:  # the half-written rows were cut off again
        assert p.read_bytes().endswith(b"\n")
    rows = pacsv.read_csv(files[-1]).to_pydict() if len(files) == 1 else None
    assert rows is not None, "one day file expected"
    on_file = set(rows["exchange_timestamp"])
    gaps = read_gaps(out, "BTC")
    assert len(gaps) == 1 and "No space left on device" in (out / "gaps_BTC.csv").read_text()
    (start, end), = gaps
    lost = [(t, i) for t, i in sent if i not in on_file]
    assert len(lost) > 50
    assert all(start <= t <= end for t, _ in lost), "a row lost outside the gap"
    # Both sides of each message (two rows) or neither: no half-written message.
    assert set(Counter(rows["exchange_timestamp"]).values()) == {2}
    # The gap starts at the last row on disk before the loss and ends at the first row
    # written again (rounded outwards to the microsecond).
    t_before = max(t for t, i in sent if i in on_file and t < lost[0][0])
    t_after = min(t for t, i in sent if i in on_file and t > lost[0][0])
    assert t_before - 1e-6 <= start <= t_before and t_after <= end <= t_after + 1e-6
    # Logged in single lines: the failure once, then each retry, the back-off growing.
    assert not _problems(caplog)
    assert sum("cannot write to" in m for m in caplog.messages) == 1
    d = _delays(caplog)
    assert d[0] <= 0.05 and max(d[3:]) > 0.1 and max(d) <= 0.4
    assert any("writing works again" in m for m in caplog.messages)
    assert read_heartbeat(hb_path)["write_error"] is None


def test_unwritable_folder_is_retried_and_its_rows_recorded_as_a_gap(replay, tmp_path,  # noqa: F811
                                                                    caplog):
    caplog.set_level("INFO", logger="asmm.venues")
    r = replay(PACE, "--wait-subscriptions", "3")
    out, aside = tmp_path / "out", tmp_path / "out.aside"
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    cfg = config(out, r.url, backoff_min=0.05, backoff_max=0.4)
    with running(cfg, clock=clock) as c:
        wait_until(lambda: _last_prices_time(out), 30, "rows on disk")
        # The folder becomes unwritable. Tests run as root, whom chmod does not stop, so
        # the folder is replaced by a file: creating anything in it then fails for root
        # too, as it does for the collector's user when the folder loses its write
        # permission. Files already open keep taking rows in both cases.
        out.rename(aside)
        out.write_text("not a folder")
        # So rows are lost when files must be created: at the next UTC midnight (the
        # collector's clock jumps there) ...
        offset[0] = (int(time.time() // 86400) + 1) * 86400.0 - time.time()
        # ... and the gap of a reconnect cannot be recorded.
        assert r.rp.drop() == 1
        wait_until(lambda: len(_delays(caplog)) >= 3 and c.stats.reconnects == 1
                   and c.connected.is_set() and any("cannot write heartbeat" in m
                                                    for m in caplog.messages),
                   30, "retries, a reconnect and a failed heartbeat")
        t_restored = clock()
        out.unlink()
        aside.rename(out)
        wait_until(lambda: c.stats.gaps == 2, 30, "both gaps recorded")
        wait_until(lambda: done_receiving(r, c), 60, "the whole day")
    r.sent()
    lost = assert_sent_rows_on_disk_or_in_gaps(out, r.record)
    assert lost["prices"] > 100
    text = (out / "gaps_BTC.csv").read_text()
    assert "connection closed" in text and "cannot write files: Not a directory" in text
    outage = [g for g, line in zip(read_gaps(out, "BTC"), text.splitlines()[1:], strict=True)
              if "cannot write files" in line]
    assert len(outage) == 1 and outage[0][1] > t_restored  # ends at a row written after
    assert not _problems(caplog)
    assert sum("cannot write to" in m for m in caplog.messages) == 1
    assert sum("cannot write heartbeat" in m for m in caplog.messages) == 1
    assert sum("cannot record a gap" in m for m in caplog.messages) >= 1
    assert len(list(out.glob("prices_BTC_*.csv"))) == 2  # the old day and the new one
