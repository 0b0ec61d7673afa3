"""Speed of the tick-level backtester, and the same market exported for hftbacktest.

Usage::

    python benchmarks/bench_backtest.py [--data DIR] [--export-hft EVENTS.npz]
                                        [--hft-python PYTHON]

Without ``--data`` it writes two full-size synthetic days (``asmm synth --days 2``) to a
temporary folder. Figures: load time; the kernel over all events for ``--fixed-depth 2``
with 100 ms and 1 s re-quotes (queue prob, no latency); a 32-point GLFT gamma grid on one
day (the calibrator's use). ``--export-hft`` writes the market in hftbacktest's event
format; with ``--hft-python`` (an interpreter with hftbacktest 2.4.4) the side-by-side
script runs on it. Prints one line per figure; copy them into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from asmm.data.readers import read_bbo, read_trades
from asmm.data.synth import SynthConfig, generate
from asmm.sim import BacktestConfig, load_events, run_backtest, run_grid

# hftbacktest 2.4.4 event format (hftbacktest.types): flags and record layout.
EXCH_EVENT, LOCAL_EVENT, BUY_EVENT, SELL_EVENT = 1 << 31, 1 << 30, 1 << 29, 1 << 28
DEPTH_EVENT, TRADE_EVENT = 1, 2
HFT_DTYPE = np.dtype([("ev", "u8"), ("exch_ts", "i8"), ("local_ts", "i8"), ("px", "f8"),
                      ("qty", "f8"), ("order_id", "u8"), ("ival", "i8"), ("fval", "f8")],
                     align=True)


def export_hft(data_dir: str, coin: str, path: str) -> int:
    """The collector's BBO and trades as hftbacktest events (nanoseconds).

    A BBO-only feed leaves a stale level behind when the touch moves, so a moved touch also
    emits a zero-size update at the old price. Receive times are made non-decreasing over
    the merged stream (hftbacktest reads its local stream in file order).
    """
    bbo, tr = read_bbo(data_dir, coin), read_trades(data_dir, coin)
    rows = []
    for px, sz, flag in ((bbo.bid, bbo.bid_size, BUY_EVENT), (bbo.ask, bbo.ask_size,
                                                              SELL_EVENT)):
        moved = np.ones(px.size, bool)
        moved[1:] = px[1:] != px[:-1]
        old = np.flatnonzero(moved[1:]) + 1
        rows.append((bbo.t[old], bbo.t_local[old], px[old - 1], np.zeros(old.size),
                     np.full(old.size, DEPTH_EVENT | flag), np.zeros(old.size)))
        rows.append((bbo.t, bbo.t_local, px, sz, np.full(px.size, DEPTH_EVENT | flag),
                     np.ones(px.size)))
    rows.append((tr.t, tr.t_local, tr.price, tr.size,
                 np.where(tr.side > 0, TRADE_EVENT | BUY_EVENT, TRADE_EVENT | SELL_EVENT),
                 np.full(tr.t.size, -1.0)))
    t, tl, px, qty, ev, order = (np.concatenate(c) for c in zip(*rows, strict=True))
    # Exchange time order; at one time trades first, then removals, then new levels.
    idx = np.lexsort((order, t))
    out = np.zeros(idx.size, HFT_DTYPE)
    out["ev"] = ev[idx].astype(np.uint64) | EXCH_EVENT | LOCAL_EVENT
    out["exch_ts"] = t[idx] * 1_000_000
    out["local_ts"] = np.maximum.accumulate(np.maximum(tl[idx] * 1e9, t[idx] * 1e6)
                                            ).astype(np.int64)
    out["px"], out["qty"] = px[idx], qty[idx]
    np.savez_compressed(path, data=out)
    return out.size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="collector data folder (default: 2 synthetic days)")
    ap.add_argument("--coin", default="BTC", help="coin")
    ap.add_argument("--export-hft", help="write the market as hftbacktest events (.npz)")
    ap.add_argument("--hft-python", default=os.environ.get("HFT_PYTHON"),
                    help="interpreter with hftbacktest 2.4.4 to run the side-by-side script "
                         "on the export (default: $HFT_PYTHON, as `make bench` sets it)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = tmp + "/synth"
            generate(SynthConfig(days=2), data)
        t0 = time.perf_counter()
        ev = load_events(data, args.coin)
        load_s = time.perf_counter() - t0
        print(f"load: {len(ev):,} events ({ev.n_bbo:,} BBO states, {ev.n_trades:,} trades, "
              f"{ev.book_t.size:,} L2 snapshots) in {load_s:.2f} s")
        # At most 10 lots, as every recorded figure (benchmarks/README.md) was measured.
        base = BacktestConfig(model="fixed", fixed_depth=2.0, queue="prob", latency_ms=0.0,
                              order_size=0.001, max_inventory=10.0)
        run_backtest(ev, base.with_(refresh_seconds=1.0), record_fills=False)  # compile
        for refresh in (0.1, 1.0):
            wall, cpu = [], []
            for _ in range(3):
                c0 = time.process_time()
                wall.append(run_backtest(ev, base.with_(refresh_seconds=refresh),
                                         record_fills=False).seconds)
                cpu.append(time.process_time() - c0)
            # CPU time as well: on a shared machine the wall clock measures the neighbours.
            print(f"asmm backtest: fixed depth 2, {refresh * 1000:.0f} ms re-quotes: "
                  f"{len(ev):,} events, kernel {min(wall):.3f} s wall "
                  f"= {len(ev) / min(wall) / 1e6:.1f} M events/s, run {min(cpu):.3f} s CPU "
                  f"= {len(ev) / min(cpu) / 1e6:.1f} M events/s (best of 3)")
        day = load_events(data, args.coin, ev.start, ev.start + 86400.0)
        glft = BacktestConfig(model="glft", sigma=6.8, gamma=0.01, A_bid=0.5, k_bid=0.5,
                              A_ask=0.5, k_ask=0.5, refresh_seconds=1.0, latency_ms=100.0,
                              max_inventory=10.0)
        grid = [glft.with_(gamma=g) for g in np.geomspace(1e-3, 1.0, 32)]
        c0 = time.process_time()
        wall = run_grid(day, grid)[0].seconds
        print(f"asmm backtest: 32-point GLFT gamma grid, one day ({len(day):,} events), "
              f"1 s re-quotes, 100 ms latency: kernel {wall:.2f} s wall, run "
              f"{time.process_time() - c0:.2f} s CPU")
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        if args.export_hft or args.hft_python:
            npz = args.export_hft or tmp + "/events.npz"
            n = export_hft(data, args.coin, npz)
            print(f"hftbacktest export: {n:,} events to {npz}")
            if args.hft_python:
                script = Path(__file__).with_name("hftbacktest_side_by_side.py")
                subprocess.run([args.hft_python, str(script), npz], check=True)


if __name__ == "__main__":
    main()
