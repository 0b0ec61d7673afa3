"""WebSocket messages per second the replay exchange pushes unpaced, and its start-up time.

One full-size synthetic day is served by ``asmm replay --speed max`` (a subprocess, as users
run it); one aiohttp client in this process subscribes to bbo, trades and l2Book and only
counts frames, so the figure is the server's push rate (the collector's benchmark needs
>= 20,000 msg/s from it). On a shared machine the wall-clock rate depends on the load, so
the server's own CPU time (from /proc) is reported too: messages per CPU-second is the rate
one free core sustains.

Usage: python benchmarks/bench_replay.py [--days 1] [--data DIR]
Prints one line per figure; copy them into benchmarks/README.md with the date.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import aiohttp

from asmm.data.synth import SynthConfig, generate
from asmm.venues.hyperliquid.replay.process import start_replay


async def consume(ws_url: str, coin: str, n_events: int) -> tuple[int, int, float]:
    """Subscribe to the three channels, read until ``n_events`` data frames arrived;
    returns (frames, bytes, seconds from the first data frame to the last)."""
    frames = nbytes = 0
    t_first = None
    async with aiohttp.ClientSession() as s, s.ws_connect(ws_url, max_msg_size=0) as ws:
        for ch in ("bbo", "trades", "l2Book"):
            await ws.send_str(json.dumps({"method": "subscribe",
                                          "subscription": {"type": ch, "coin": coin}}))
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            if not msg.data.startswith('{"channel":"bbo"') and not msg.data.startswith(
                    '{"channel":"trades"') and not msg.data.startswith('{"channel":"l2Book"'):
                continue
            if t_first is None:
                t_first = time.perf_counter()
            frames += 1
            nbytes += len(msg.data)
            if frames == n_events:
                break
    return frames, nbytes, time.perf_counter() - t_first


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process, MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=int, default=1, help="full-size synthetic days to serve")
    ap.add_argument("--data", help="serve this collector folder instead of a synthetic one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or tmp
        if not args.data:
            generate(SynthConfig(days=args.days), data)
        t0 = time.perf_counter()
        rp = start_replay(data, "--wait-subscriptions", "3", speed="max", log_dir=tmp,
                          timeout=600)
        startup = time.perf_counter() - t0
        try:
            n_events = rp.clock()["events"]
            cpu0 = cpu_seconds(rp.proc.pid)
            frames, nbytes, dt = asyncio.run(consume(rp.ws_url, "BTC", n_events))
            cpu = cpu_seconds(rp.proc.pid) - cpu0
            rss = peak_rss_mb(rp.proc.pid)
        finally:
            rp.stop()
    print(f"replay: {frames:,} WS messages in {dt:.2f} s = {frames / dt:,.0f} msg/s "
          f"({nbytes / dt / 1e6:.1f} MB/s), unpaced, 1 client; server CPU {cpu:.2f} s = "
          f"{frames / cpu:,.0f} msg per CPU-second; start-up (load {args.days} full-size "
          f"day(s), bind) {startup:.2f} s; server peak RSS {rss:.0f} MB; "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
