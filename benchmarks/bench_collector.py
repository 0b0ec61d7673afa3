"""Messages per second the collector receives, parses and writes, and its peak memory.

One full-size synthetic day (20 L2 levels a side, as Hyperliquid serves) is streamed unpaced
by ``asmm replay --speed max`` (a subprocess pinned to the other core); the collector runs
in this process pinned to one core, writing CSV to a temporary folder. Figures:

- wall rate: messages from the first data message until the writer has taken the last one;
  bounded by the slower of the replay's push rate and the collector;
- collector CPU: the same messages per CPU-second this process used (its capacity on one
  core, whatever the replay's speed), split by thread: the SDK's websocket thread (frame
  reading + JSON decoding + queueing) and the writer (parsing + formatting + writing);
- peak RSS of this process (VmHWM), which holds nothing but the collector.

Usage: python benchmarks/bench_collector.py [--bbo-rate 5] [--data DIR]
Prints one line per figure; copy them into benchmarks/README.md with the date.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from asmm.collector.config import CollectorConfig
from asmm.collector.service import Collector
from asmm.replay.process import start_replay


def thread_cpu(native_id: int) -> float:
    """CPU seconds (user + system) of one thread of this process, from /proc."""
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of another process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bbo-rate", type=float, default=5.0,
                    help="BBO updates per second of the synthetic day")
    ap.add_argument("--ws-client", choices=["sdk", "aiohttp"], default="aiohttp",
                    help="the collector's websocket transport (WS_CLIENT)")
    ap.add_argument("--data", help="stream this collector folder instead of a synthetic day")
    args = ap.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or os.path.join(tmp, "market")
        if not args.data:
            # In a child process: the day's arrays must not count in this process's peak.
            subprocess.run([str(Path(sys.executable).parent / "asmm"), "synth", "--out", data,
                            "--days", "1", "--depth", "20", "--bbo-rate", str(args.bbo_rate)],
                           check=True, capture_output=True)
        rp = start_replay(data, "--wait-subscriptions", "3", speed="max", log_dir=tmp,
                          timeout=600)
        try:
            if len(cores) > 1:
                os.sched_setaffinity(rp.proc.pid, {cores[1]})
                os.sched_setaffinity(0, {cores[0]})
            n_events = rp.clock()["events"]
            cfg = CollectorConfig(output_dir=Path(tmp) / "out", api_url=rp.url,
                                  orderbook_depth=20, stale_seconds=600, status_seconds=3600,
                                  ws_client=args.ws_client)
            c = Collector(cfg)
            runner = threading.Thread(target=c.run, daemon=True)
            cpu0 = time.process_time()
            runner.start()
            while c.stats.last_data is None:
                time.sleep(0.001)  # a measurement's start, not synchronisation
            t0, cpu_start = time.perf_counter(), time.process_time()
            replay_cpu0 = process_cpu(rp.proc.pid)
            session = c._session
            writer = next(t for t in threading.enumerate() if t.name == "collector-writer")
            while sum(c.stats.messages.values()) < n_events or not c.queue.empty():
                time.sleep(0.01)
            dt = time.perf_counter() - t0
            ws_thread = session.manager if args.ws_client == "sdk" else session._thread
            ws_cpu = thread_cpu(ws_thread.native_id)
            wr_cpu = thread_cpu(writer.native_id)
            cpu = time.process_time() - cpu_start
            replay_cpu = process_cpu(rp.proc.pid) - replay_cpu0
            c.stop()
            runner.join()
            total_cpu = time.process_time() - cpu0
            rows = dict(c.writer.rows_written)
            mb = sum(p.stat().st_size for p in cfg.output_dir.glob("*.csv")) / 1e6
        except BaseException:
            print(rp.log(), file=sys.stderr)
            raise
        finally:
            rp.stop()
    n = n_events
    print(f"collector (WS_CLIENT={args.ws_client}): {n:,} messages (bbo+trades+l2Book, "
          f"20 levels) in {dt:.2f} s wall = "
          f"{n / dt:,.0f} msg/s with the replay unpaced; {mb:.0f} MB of CSV; rows {rows}")
    print(f"collector CPU: {cpu:.2f} s for them = {n / cpu:,.0f} msg per CPU-second "
          f"(websocket thread {ws_cpu:.2f} s incl. its connection, writer thread "
          f"{wr_cpu:.2f} s; whole run incl. start/stop {total_cpu:.2f} s)")
    print(f"replay exchange CPU meanwhile: {replay_cpu:.2f} s (its own core)")
    print(f"collector peak RSS: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
