"""Messages per second the collector receives, parses and writes, and its peak memory.

One full-size synthetic day (20 L2 levels a side, as Hyperliquid serves) is streamed unpaced
by ``asmm replay --speed max`` (a subprocess pinned to the other core), twice:

1. to a collector in this process, pinned to one core: messages per CPU-second it used (its
   capacity on one core, whatever the replay's speed and the machine's other load), split
   by thread: websocket (frame reading, queueing) and writer (decoding, parsing, formatting,
   writing);
2. to ``asmm collect`` as deployed (its own process, pinned to one core): wall rate from its
   first data message until the writer has taken the last one (bounded by the slower of the
   replay and the collector, and by whatever else runs on the machine), and its peak RSS
   (VmHWM, read before it is stopped).

With ``--venue bybit`` the same day is served by ``asmm replay --venue bybit`` (orderbook.1,
orderbook.50 snapshot + deltas, publicTrade) to the Bybit collector, which keeps the
50-level book from the deltas; the messages counted are those the replay sent.

Usage: python benchmarks/bench_collector.py [--venue hyperliquid|bybit]
       [--ws-client aiohttp|sdk] [--bbo-rate 5] [--data DIR]
Prints one line per figure; copy them into benchmarks/README.md with the date.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from asmm.venues.bybit.collector.service import BybitCollector
from asmm.venues.hyperliquid.collector.config import CollectorConfig
from asmm.venues.hyperliquid.collector.service import Collector
from asmm.venues.hyperliquid.replay.process import start_replay

# The replay's counters of data messages (GET /_replay/sent), per venue.
DATA_CHANNELS = {"hyperliquid": ("bbo", "trades", "l2Book"),
                 "bybit": ("orderbook", "publicTrade")}

ASMM = str(Path(sys.executable).parent / "asmm")


def _cpu(stat: Path) -> float:
    """CPU seconds (user + system) from a /proc .../stat file."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(native_id: int) -> float:
    return _cpu(Path(f"/proc/self/task/{native_id}/stat"))


def process_cpu(pid: int) -> float:
    return _cpu(Path(f"/proc/{pid}/stat"))


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def sent_messages(rp, venue: str) -> int | None:
    """Data messages the replay sent, once it finished streaming; None before."""
    if not rp.clock()["finished"]:
        return None
    sent = rp.sent()["messages"]
    return sum(sent.get(ch, 0) for ch in DATA_CHANNELS[venue])


def in_process(url: str, n_events, out: Path, ws_client: str, venue: str) -> dict:
    """Phase 1: CPU per message, split by thread. ``n_events()``: the messages to wait for
    (None while not known)."""
    if venue == "bybit":
        cfg = CollectorConfig(venue="bybit", output_dir=out, bybit_api_url=url,
                              orderbook_depth=20, stale_seconds=600, status_seconds=3600)
        c = BybitCollector(cfg)
    else:
        cfg = CollectorConfig(output_dir=out, api_url=url, orderbook_depth=20,
                              stale_seconds=600, status_seconds=3600, ws_client=ws_client)
        c = Collector(cfg)
    runner = threading.Thread(target=c.run, daemon=True)
    runner.start()
    while c.stats.last_data is None:
        time.sleep(0.001)  # the measurement's start, not synchronisation
    cpu0 = time.process_time()
    session = c._session
    writer = next(t for t in threading.enumerate() if t.name == "collector-writer")
    while True:
        n = n_events()
        if n is not None and sum(c.stats.messages.values()) >= n and c.queue.empty():
            break
        time.sleep(0.05)
    ws_thread = session.manager if ws_client == "sdk" and venue != "bybit" else session._thread
    res = {"cpu": time.process_time() - cpu0, "ws_cpu": thread_cpu(ws_thread.native_id),
           "writer_cpu": thread_cpu(writer.native_id), "rows": dict(c.writer.rows_written),
           "messages": n}
    c.stop()
    runner.join()
    return res


def as_deployed(url: str, n_events, out: Path, ws_client: str, venue: str,
                core: int | None) -> dict:
    """Phase 2: ``asmm collect`` in its own process; wall rate and peak RSS."""
    where = (["--venue", "bybit", "--bybit-api-url", url] if venue == "bybit"
             else ["--api-url", url, "--ws-client", ws_client])
    proc = subprocess.Popen([ASMM, "collect", *where, "--output-dir", str(out),
                             "--stale-seconds", "600"], stderr=subprocess.DEVNULL)
    if core is not None:
        os.sched_setaffinity(proc.pid, {core})
    hb_path = out / ".heartbeat.json"
    t_first = None
    try:
        while True:
            try:
                hb = json.loads(hb_path.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                hb = {"messages": {}, "queue": 0}
            n = sum(hb["messages"].values())
            if n and t_first is None:
                # The heartbeat is written every second: the first data came at most 1 s ago.
                t_first = time.perf_counter() - 1.0
            target = n_events() if n else None
            if target is not None and n >= target and hb["queue"] == 0:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"asmm collect exited with {proc.returncode}")
            time.sleep(0.05)
        wall = time.perf_counter() - t_first
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    mb = sum(p.stat().st_size for p in out.glob("*.csv")) / 1e6
    return {"wall": wall, "rss": rss, "mb": mb}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bbo-rate", type=float, default=5.0,
                    help="BBO updates per second of the synthetic day")
    ap.add_argument("--ws-client", choices=["sdk", "aiohttp"], default="aiohttp",
                    help="the collector's websocket transport (WS_CLIENT; Hyperliquid only)")
    ap.add_argument("--venue", choices=sorted(DATA_CHANNELS), default="hyperliquid",
                    help="whose protocol the replay speaks and which collector receives it")
    ap.add_argument("--data", help="stream this collector folder instead of a synthetic day")
    args = ap.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or os.path.join(tmp, "market")
        if not args.data:
            # In a child process: the day's arrays must not count in this process's memory.
            subprocess.run([ASMM, "synth", "--out", data, "--days", "1", "--depth", "20",
                            "--bbo-rate", str(args.bbo_rate)], check=True, capture_output=True)
        results = []
        for phase in (in_process, as_deployed):
            rp = start_replay(data, "--venue", args.venue, "--wait-subscriptions", "3",
                              speed="max", log_dir=tmp, timeout=600)
            try:
                core = None
                if len(cores) > 1:
                    os.sched_setaffinity(rp.proc.pid, {cores[1]})
                    os.sched_setaffinity(0, {cores[0]})
                    core = cores[0]
                if args.venue == "hyperliquid":  # one message per event
                    events = rp.clock()["events"]
                    n_events = lambda events=events: events  # noqa: E731
                else:
                    n_events = lambda rp=rp: sent_messages(rp, "bybit")  # noqa: E731
                out = Path(tmp) / f"out-{phase.__name__}"
                if phase is in_process:
                    results.append(phase(rp.url, n_events, out, args.ws_client, args.venue))
                else:
                    results.append(phase(rp.url, n_events, out, args.ws_client, args.venue,
                                         core))
            except BaseException:
                print(rp.log(), file=sys.stderr)
                raise
            finally:
                rp.stop()
    cpu, dep, n = results[0], results[1], results[0]["messages"]
    what = ("bbo + trades + l2Book" if args.venue == "hyperliquid"
            else "orderbook.1 + orderbook.50 + publicTrade")
    who = (f"WS_CLIENT={args.ws_client}" if args.venue == "hyperliquid" else "VENUE=bybit")
    print(f"collector ({who}) capacity: {n:,} messages ({what}, 20 levels) in "
          f"{cpu['cpu']:.2f} CPU-s = {n / cpu['cpu']:,.0f} msg per CPU-second (websocket "
          f"thread {cpu['ws_cpu']:.2f} s incl. its connection, writer "
          f"{cpu['writer_cpu']:.2f} s); rows {cpu['rows']}")
    print(f"asmm collect: {n / dep['wall']:,.0f} msg/s wall ({dep['wall']:.1f} s, replay "
          f"unpaced), peak RSS {dep['rss']:.0f} MB, {dep['mb']:.0f} MB of CSV")


if __name__ == "__main__":
    main()
