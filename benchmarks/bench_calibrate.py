"""Wall time and peak memory of the calibrator on full-size synthetic days.

Usage: python benchmarks/bench_calibrate.py [--days 7] [--data DIR]
Prints one line per figure; copy them into benchmarks/README.md with the date.

Figures:
- sigma, A and k for one full-size day: reading the day's files and reducing them
  (``day_stats``), then the estimate; and the reduction alone on arrays already in memory.
- The whole command (`asmm calibrate`, a fresh process: imports, numba cache, reading,
  estimating, the 32-point gamma grid backtested, the file written) on 2 days, defaults.
- Memory flat in days: the command pooling every day (``--window-days N``) and
  backtesting every day but the first (``--walk-forward-days N-1``), for 2 and N days;
  and the peak RSS of one process after each day of a walk forward.
Each command runs in its own process, so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

RUN_CASE = r"""
import json, resource, sys, time
from asmm.cli import main
t0 = time.perf_counter()
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "seconds": time.perf_counter() - t0,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def command(args: list[str]) -> dict:
    """Run `asmm <args>` in a fresh process; wall time of the process and its peak RSS."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUN_CASE, *args], capture_output=True,
                          text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"asmm {' '.join(args)} failed:\n{proc.stderr}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:  # a failed run is fast: never time one
        sys.exit(f"asmm {' '.join(args)} exited {res['rc']}:\n{proc.stderr}")
    res["wall"] = wall
    return res


def one_day(folder: Path) -> None:
    import numpy as np

    from asmm.calibrate import estimators as est
    from asmm.calibrate import intensity
    from asmm.calibrate.config import CalibrationConfig
    from asmm.calibrate.days import day_stats, estimate
    from asmm.data.files import day_bounds
    from asmm.data.readers import read_bbo, read_trades

    cfg = CalibrationConfig()
    day = date(2025, 9, 1)
    day_stats(folder, "BTC", day, cfg)  # warm: page cache and first-call costs
    t0 = time.perf_counter()
    e = estimate([day_stats(folder, "BTC", day, cfg)])
    total = time.perf_counter() - t0

    lo, hi = day_bounds(day)
    bbo, tr = read_bbo(folder, "BTC", lo, hi), read_trades(folder, "BTC", lo, hi)
    t0 = time.perf_counter()
    ok = est.valid_states(bbo.bid, bbo.ask)
    gaps = np.zeros((0, 2))
    est.sigma_stats(bbo.t, bbo.mid, ok, lo, hi, 1.0, gaps)
    sw = intensity.group_sweeps(tr.t, tr.price, tr.side)
    ex = intensity.exposure_seconds(bbo.t, ok, float(bbo.t[-1]), gaps)
    sides = intensity.reach_stats(sw, bbo.t, bbo.bid, bbo.ask, ok, 1.0, gaps, ex)
    for s in sides.values():
        intensity.estimate_side(s)
    compute = time.perf_counter() - t0
    print(f"sigma, A, k for one full-size day ({len(bbo):,} BBO states, {len(tr):,} trades, "
          f"{e.bid.sweeps + e.ask.sweeps:,} sweeps): {total:.2f} s reading CSV included, "
          f"{compute:.2f} s on arrays in memory")


MEMORY_TRACE = r"""
import resource, sys
from datetime import date, timedelta
from asmm.calibrate.config import CalibrationConfig
from asmm.calibrate.days import day_stats, estimate
from asmm.calibrate.gamma import backtest_with_asmm, gamma_grid
folder, n = sys.argv[1], int(sys.argv[2])
cfg = CalibrationConfig()
run = backtest_with_asmm(folder, cfg)
day = date(2025, 9, 1)
prev = day_stats(folder, "BTC", day, cfg)
peaks = []
for i in range(1, n):
    day += timedelta(days=1)
    e = estimate([prev])
    run(day, e, gamma_grid(e, cfg))
    prev = day_stats(folder, "BTC", day, cfg)
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
print(" ".join(map(str, peaks)))
"""


def memory_trace(folder: Path, days: int) -> None:
    """Walk forward day after day in one process; peak RSS after each day."""
    proc = subprocess.run([sys.executable, "-c", MEMORY_TRACE, str(folder), str(days)],
                          capture_output=True, text=True, check=True)
    print(f"one process walking forward over days 2..{days} (estimate on day N-1, 32 "
          f"backtests on day N): peak RSS after each day {proc.stdout.split()} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=7, help="full-size days for the memory figure")
    ap.add_argument("--data", help="folder with >= --days synthetic days (default: generate "
                                   "them in a temp folder, removed afterwards)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "full"
        if not args.data:
            from asmm.data.synth import SynthConfig, generate

            generate(SynthConfig(days=args.days), data)
        two = Path(tmp) / "two"
        two.mkdir()
        for p in data.glob("*_BTC_2025-09-0[12].*"):
            (two / p.name).symlink_to(p.resolve())

        one_day(data)
        # The synthetic days are in 2025: their validity counts from the run.
        out = ["--output", str(Path(tmp) / "p.json"), "--valid-from", "now"]
        command(["calibrate", "--data-dir", str(two), *out])  # warm numba cache
        r = command(["calibrate", "--data-dir", str(two), *out])
        print(f"asmm calibrate, 2 full-size days, 32-point gamma grid: {r['wall']:.2f} s "
              f"wall ({r['seconds']:.2f} s after imports), peak RSS {r['rss_mb']:.0f} MB")
        for n, folder in ((2, two), (args.days, data)):
            r = command(["calibrate", "--data-dir", str(folder), *out,
                         "--window-days", str(n), "--walk-forward-days", str(n - 1)])
            print(f"asmm calibrate --window-days {n} --walk-forward-days {n - 1} on {n} days: "
                  f"{r['wall']:.2f} s wall, peak RSS {r['rss_mb']:.0f} MB")
        memory_trace(data, args.days)


if __name__ == "__main__":
    main()
