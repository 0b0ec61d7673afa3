"""Speed of the tick-level backtester, and hftbacktest side by side on the same events.

Usage::

    python benchmarks/bench_backtest.py [--data DIR] [--deep-data DIR] [--hft-python PYTHON]
                                        [--export-dir DIR]

Without ``--data`` / ``--deep-data`` it writes two full-size synthetic days of each market
to a temporary folder: the **shallow-sweep** market (``asmm synth --days 2``: sigma 6.8
$/sqrt(s), A 0.5/s, k 0.5/$, tick 1: sweeps reach 2 $ past the mid on average) and the
**deep-sweep** market (the same with k 0.1/$: 10 $ on average).

Figures (the exchange fill rule, the default, with markouts):

- load time; fixed depth 2 with 100 ms and 1 s re-quotes (queue prob, no latency) on the
  shallow market with its L2 snapshots, the job every earlier figure measured; the cost of
  the markouts and of recording fills on it; a 32-point GLFT gamma grid on one day (the
  calibrator's use);
- fills per fill rule on the shallow market for the side-by-side job below;
- with ``--hft-python`` (an interpreter with hftbacktest 2.4.4: `make bench` sets
  ``$HFT_PYTHON``), the side-by-side job on both markets, BBO and trades only (hftbacktest
  is given no L2, so neither is asmm): quotes 10 $ from the mid, re-quoted every 100 ms and
  every 5 s, post-only, 0.001 coin, at most 10 lots, probabilistic queue (power 3), no
  latency. Each market is exported in hftbacktest's event format (to ``--export-dir``,
  a temporary folder by default) and ``hftbacktest_side_by_side.py`` runs there; fills per
  side and kernel wall times of both are printed side by side, with the ratios.

Prints one line per figure; copy them into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import asmm.sim.engine as engine
from asmm.data.readers import read_bbo, read_trades
from asmm.data.synth import SynthConfig, generate
from asmm.sim import BacktestConfig, load_events, run_backtest, run_grid

# hftbacktest 2.4.4 event format (hftbacktest.types): flags and record layout.
EXCH_EVENT, LOCAL_EVENT, BUY_EVENT, SELL_EVENT = 1 << 31, 1 << 30, 1 << 29, 1 << 28
DEPTH_EVENT, TRADE_EVENT = 1, 2
HFT_DTYPE = np.dtype([("ev", "u8"), ("exch_ts", "i8"), ("local_ts", "i8"), ("px", "f8"),
                      ("qty", "f8"), ("order_id", "u8"), ("ival", "i8"), ("fval", "f8")],
                     align=True)
SIDE_BY_SIDE = dict(depth=10.0, refresh=(0.1, 5.0), qty=0.001, max_lots=10.0)


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


def best_of(ev, cfg, n=3, **kw):
    """The fastest of ``n`` runs (kernel wall s), its CPU s and its result."""
    runs = []
    for _ in range(n):
        c0 = time.process_time()
        r = run_backtest(ev, cfg, **kw)
        runs.append((r.seconds, time.process_time() - c0, r))
    return min(runs, key=lambda x: x[0])


def without_markouts(fn, *args, **kw):
    """``fn(*args, **kw)`` with the markout horizons emptied: what the markouts cost
    (benchmark only)."""
    saved, engine.HORIZONS = engine.HORIZONS, ()
    try:
        return fn(*args, **kw)
    finally:
        engine.HORIZONS = saved


def side_job(refresh: float, rule: str = "exchange") -> BacktestConfig:
    j = SIDE_BY_SIDE
    return BacktestConfig(model="fixed", fixed_depth=j["depth"], refresh_seconds=refresh,
                          queue="prob", latency_ms=0.0, order_size=j["qty"],
                          max_inventory=j["max_lots"], tick=1.0, fill_rule=rule)


def bench_classic(data: str, coin: str) -> None:
    t0 = time.perf_counter()
    ev = load_events(data, coin)
    print(f"load: {len(ev):,} events ({ev.n_bbo:,} BBO states, {ev.n_trades:,} trades, "
          f"{ev.book_t.size:,} L2 snapshots) in {time.perf_counter() - t0:.2f} s")
    # At most 10 lots, as every recorded figure (benchmarks/README.md) was measured.
    base = BacktestConfig(model="fixed", fixed_depth=2.0, queue="prob", latency_ms=0.0,
                          order_size=0.001, max_inventory=10.0)
    run_backtest(ev, base.with_(refresh_seconds=1.0), record_fills=False)  # compile
    for refresh in (0.1, 1.0):
        cfg = base.with_(refresh_seconds=refresh)
        wall, cpu, r = best_of(ev, cfg, record_fills=False)
        bare = without_markouts(best_of, ev, cfg, record_fills=False)[0]
        rec = best_of(ev, cfg, record_fills=True)[0]
        s = r.summary()
        # CPU time as well: on a shared machine the wall clock measures the neighbours.
        print(f"asmm backtest: fixed depth 2, {refresh * 1000:.0f} ms re-quotes: "
              f"{len(ev):,} events, kernel {wall:.3f} s wall = {len(ev) / wall / 1e6:.1f} M "
              f"events/s, run {cpu:.3f} s CPU (best of 3); {s['fills_bid'] + s['fills_ask']:,} "
              f"fills ({s['fills_book_through']:,} book-through); without markouts "
              f"{bare:.3f} s, recording every fill {rec:.3f} s")
    day = load_events(data, coin, ev.start, ev.start + 86400.0)
    glft = BacktestConfig(model="glft", sigma=6.8, gamma=0.01, A_bid=0.5, k_bid=0.5,
                          A_ask=0.5, k_ask=0.5, refresh_seconds=1.0, latency_ms=100.0,
                          max_inventory=10.0)
    grid = [glft.with_(gamma=g) for g in np.geomspace(1e-3, 1.0, 32)]
    c0 = time.process_time()
    wall = run_grid(day, grid)[0].seconds
    print(f"asmm backtest: 32-point GLFT gamma grid, one day ({len(day):,} events), "
          f"1 s re-quotes, 100 ms latency: kernel {wall:.2f} s wall, run "
          f"{time.process_time() - c0:.2f} s CPU")
    print(f"peak RSS so far (2 days loaded) {peak_rss_mb():.0f} MB")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_side_by_side(name: str, data: str, coin: str, out: str, hft_python: str | None,
                       rules: bool) -> None:
    ev = load_events(data, coin, with_book=False)  # the events hftbacktest is given
    run_backtest(ev, side_job(1.0), record_fills=False)  # compile
    ours = {}
    for refresh in SIDE_BY_SIDE["refresh"]:
        for rule in ("exchange", "trades", "freqtrade-dry-run") if rules else ("exchange",):
            wall, cpu, r = best_of(ev, side_job(refresh, rule), record_fills=False)
            s = r.summary()
            if rule == "exchange":
                ours[refresh] = (wall, s)
            print(f"asmm, {name} market, {refresh * 1000:.0f} ms, fill rule {rule}: fills bid "
                  f"{s['fills_bid']:,} ask {s['fills_ask']:,} (book-through "
                  f"{s['fills_book_through']:,}, dry-run cross {s['fills_dry_run_cross']:,}); "
                  f"markout 1/10/60 s {s['markout_1s_bp']:+.3f} / {s['markout_10s_bp']:+.3f} / "
                  f"{s['markout_60s_bp']:+.3f} bp; kernel {wall:.3f} s wall, {cpu:.3f} s CPU")
    if not hft_python:
        return
    npz = f"{out}/{name}.npz"
    n = export_hft(data, coin, npz)
    j = SIDE_BY_SIDE
    script = Path(__file__).with_name("hftbacktest_side_by_side.py")
    out = subprocess.run([hft_python, str(script), npz, "--json", "--depth", str(j["depth"]),
                          "--qty", str(j["qty"]), "--max-lots", str(j["max_lots"]),
                          "--repeat", "3", "--refresh", *map(str, j["refresh"])],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        h = json.loads(line)
        wall, s = ours[h["refresh"]]
        diff = [(s[f"fills_{k}"] - h[f"fills_{k}"]) / h[f"fills_{k}"] * 100
                for k in ("bid", "ask")]
        print(f"side by side, {name} market, {h['refresh'] * 1000:.0f} ms: fills bid asmm "
              f"{s['fills_bid']:,} / hftbacktest {h['fills_bid']:,} ({diff[0]:+.1f} %), ask "
              f"{s['fills_ask']:,} / {h['fills_ask']:,} ({diff[1]:+.1f} %); kernel wall asmm "
              f"{wall:.3f} s ({len(ev):,} events) / hftbacktest {h['wall']:.3f} s "
              f"({n:,} events, {h['cpu']:.3f} s CPU): asmm {h['wall'] / wall:.1f}x as fast")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="shallow-sweep collector data (default: synthetic)")
    ap.add_argument("--deep-data", help="deep-sweep collector data (default: synthetic)")
    ap.add_argument("--coin", default="BTC", help="coin")
    ap.add_argument("--hft-python", default=os.environ.get("HFT_PYTHON"),
                    help="interpreter with hftbacktest 2.4.4 for the side-by-side runs "
                         "(default: $HFT_PYTHON, as `make bench` sets it)")
    ap.add_argument("--export-dir", help="keep the hftbacktest exports (<market>.npz) here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, deep = args.data, args.deep_data
        if data is None:
            data = tmp + "/shallow"
            generate(SynthConfig(days=2), data)
        if deep is None:
            deep = tmp + "/deep"
            generate(SynthConfig(days=2, k_bid=0.1, k_ask=0.1), deep)
        bench_classic(data, args.coin)
        out = args.export_dir or tmp
        bench_side_by_side("shallow-sweep", data, args.coin, out, args.hft_python, True)
        bench_side_by_side("deep-sweep", deep, args.coin, out, args.hft_python, False)
        print(f"peak RSS (both markets loaded and exported) {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
