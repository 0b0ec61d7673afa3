"""The collector at width: 20 coins in one `asmm collect` process, the replay exchange paced.

One synthetic day per coin (`asmm.data.synth.generate`, 20 L2 levels a side as Hyperliquid
serves), in three tiers (messages per second at --speed 1: bbo + trades + l2Book):

- 1 coin  "BTC": the project's full-size day (bbo 5/s, 0.5 market orders/s a side, an L2
  snapshot every 2 s): ~6.5 msg/s;
- 3 coins (ETH, SOL, HYPE): bbo 2.5/s, 0.25 orders/s a side, L2 every 2 s: ~3.5 msg/s each;
- 16 coins: bbo 0.5/s, 0.05 orders/s a side, L2 every 4 s: ~0.85 msg/s each (illiquid perps).

`asmm replay --coin <the 20> --speed S` serves them on one clock, paced (S published seconds
per wall second; --speed 30 puts the BTC-like coin near the ~200 msg/s collector.md quotes
for Hyperliquid's real BTC feed), pinned to one core; `asmm collect` (SYMBOLS = the 20 coins,
defaults otherwise) runs in its own process on the other core for --minutes from its
confirmed subscriptions. Recorded: its peak RSS (VmHWM) and RSS after the first minute and at
the end (growth), CPU seconds per wall second, messages/s received, the largest queue depth
the heartbeat showed, and, after SIGTERM, that it exited 0 and every coin has rows of every
kind and no gap.

Usage: python benchmarks/bench_collector_width.py [--minutes 5] [--speed 1] [--data DIR]
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
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from asmm.venues.hyperliquid.replay.process import start_replay

ASMM = str(Path(sys.executable).parent / "asmm")
TIER1 = ["BTC"]
TIER2 = ["ETH", "SOL", "HYPE"]
TIER3 = ["XRP", "DOGE", "SUI", "AVAX", "LINK", "BNB", "ADA", "LTC", "DOT", "APT", "ARB",
         "OP", "TIA", "SEI", "WIF", "NEAR"]
COINS = TIER1 + TIER2 + TIER3


def generate_all(out: str) -> None:
    """Write one day of each coin into ``out`` (run in a child process: the arrays must not
    count in this process's memory)."""
    from asmm.data.synth import SynthConfig, generate

    base = SynthConfig(days=1, depth=20, start=date(2025, 9, 1))
    for i, coin in enumerate(COINS):
        if coin in TIER1:
            cfg = replace(base, coin=coin, seed=100 + i)
        else:
            mid, tick = (4000.0, 0.1) if coin in TIER2 else (10.0, 0.001)
            s = mid / base.mid  # prices, sigma and 1/k scale with the price level
            rates = (dict(bbo_rate=2.5, A_bid=0.25, A_ask=0.25, l2_interval=2.0)
                     if coin in TIER2 else
                     dict(bbo_rate=0.5, A_bid=0.05, A_ask=0.05, l2_interval=4.0))
            cfg = replace(base, coin=coin, seed=100 + i, mid=mid, tick=tick,
                          sigma=base.sigma * s, k_bid=base.k_bid / s, k_ask=base.k_ask / s,
                          fill_size=base.fill_size / s, **rates)
        generate(cfg, out)


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _mem_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def _heartbeat(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _rows(out: Path, kind: str, coin: str) -> int:
    return sum(max(sum(1 for _ in open(p, "rb")) - 1, 0)
               for p in out.glob(f"{kind}_{coin}_*.csv"))


def run(data: str, tmp: str, minutes: float, speed: float) -> dict:
    cores = sorted(os.sched_getaffinity(0))
    rp = start_replay(data, "--wait-subscriptions", str(3 * len(COINS)), coin=",".join(COINS),
                      speed=speed, log_dir=tmp, timeout=900)
    out = Path(tmp) / "out"
    hb_path = out / ".heartbeat.json"
    proc = None
    try:
        if len(cores) > 1:
            os.sched_setaffinity(rp.proc.pid, {cores[1]})
        proc = subprocess.Popen([ASMM, "collect", "--api-url", rp.url, "--output-dir",
                                 str(out), "--symbols", ",".join(COINS)],
                                stderr=open(Path(tmp) / "collect.log", "wb"))
        if len(cores) > 1:
            os.sched_setaffinity(proc.pid, {cores[0]})
        while not ((hb := _heartbeat(hb_path)) and hb.get("connected")):
            if proc.poll() is not None:
                raise RuntimeError(f"asmm collect exited with {proc.returncode}")
            time.sleep(0.2)  # waiting for the start of the measurement, not synchronising
        t0, cpu0, msgs0 = time.monotonic(), _cpu(proc.pid), sum(hb["messages"].values())
        rcpu0 = _cpu(rp.proc.pid)
        rss_1min, max_queue, samples = None, 0, []
        while (elapsed := time.monotonic() - t0) < minutes * 60:
            time.sleep(5.0)  # the sampling period
            hb = _heartbeat(hb_path) or hb
            max_queue = max(max_queue, hb["queue"])
            rss = _mem_mb(proc.pid, "VmRSS")
            samples.append((round(elapsed), round(rss, 1)))
            if rss_1min is None and elapsed >= 60:
                rss_1min = rss
            if proc.poll() is not None:
                raise RuntimeError(f"asmm collect exited with {proc.returncode}")
        wall = time.monotonic() - t0
        cpu, rcpu = _cpu(proc.pid) - cpu0, _cpu(rp.proc.pid) - rcpu0
        hb = _heartbeat(hb_path) or hb
        msgs = sum(hb["messages"].values()) - msgs0
        hwm, rss_end = _mem_mb(proc.pid, "VmHWM"), _mem_mb(proc.pid, "VmRSS")
        sent = rp.sent()["messages"]
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=120)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        rp.stop()
    hb = _heartbeat(hb_path)
    rows = {c: {k: _rows(out, k, c) for k in ("prices", "trades", "orderbooks")}
            for c in COINS}
    return {"wall": wall, "cpu": cpu, "replay_cpu": rcpu, "msgs": msgs, "hwm": hwm,
            "rss_1min": rss_1min, "rss_end": rss_end, "max_queue": max_queue, "rc": rc,
            "rows": rows, "gaps": sorted(p.name for p in out.glob("gaps_*.csv")),
            "stale": {c: v["stale"] for c, v in hb["coins"].items() if v["stale"]},
            "reconnects": hb["reconnects"], "dropped": hb["dropped"],
            "received": hb["messages"],
            "sent": {k: sent[k] for k in ("bbo", "trades", "l2Book")}, "samples": samples,
            "mb": sum(p.stat().st_size for p in out.glob("*.csv")) / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0, help="how long to collect")
    ap.add_argument("--speed", type=float, default=1.0,
                    help="replay speed (published seconds per wall second; paced)")
    ap.add_argument("--data", help="use this folder of the 20 coins' days (made if missing)")
    ap.add_argument("--generate", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        generate_all(args.generate)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or os.path.join(tmp, "market")
        if not Path(data, f"prices_{COINS[-1]}_2025-09-01.csv").exists():
            subprocess.run([sys.executable, __file__, "--generate", data], check=True)
        r = run(data, tmp, args.minutes, args.speed)
    empty = [c for c, k in r["rows"].items() if not all(k.values())]
    print(f"asmm collect, {len(COINS)} coins, replay paced at --speed {args.speed:g}, "
          f"{r['wall']:.0f} s: {r['msgs'] / r['wall']:,.1f} msg/s received "
          f"({r['msgs']:,} messages; {r['received']}; the replay sent {r['sent']} in all)")
    print(f"  CPU {r['cpu'] / r['wall']:.4f} s per wall second ({r['cpu']:.1f} CPU-s; the "
          f"replay server {r['replay_cpu'] / r['wall']:.4f}); largest queue {r['max_queue']}")
    print(f"  peak RSS (VmHWM) {r['hwm']:.0f} MB; RSS {r['rss_1min'] or 0:.0f} MB after 1 min, "
          f"{r['rss_end']:.0f} MB at the end; {r['mb']:.1f} MB of CSV")
    print(f"  stopped with exit code {r['rc']}; coins without rows of some kind: "
          f"{empty or 'none'}; gaps files: {r['gaps'] or 'none'}; went quiet: "
          f"{r['stale'] or 'none'}; reconnects {r['reconnects']}; dropped {r['dropped']}")
    print(f"  RSS samples (s, MB): {r['samples']}")
    print(f"  rows per coin: {json.dumps(r['rows'])}")


if __name__ == "__main__":
    main()
