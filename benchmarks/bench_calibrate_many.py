"""Many coins on Dask: 8 coins x 2 full-size synthetic days on 1 vs 2 local worker processes.

Usage: python benchmarks/bench_calibrate_many.py [--coins 8] [--days 2] [--data DIR]
Prints one line per figure; copy them into benchmarks/README.md with the date.

Figures:
- ``calibrate_many`` over the coins (defaults: the 32-point gamma grid, walk-forward on the
  latest 24 h) on a LocalCluster of 1 and of 2 worker processes, one thread each, the
  cluster already up: wall time, the sum of the tasks' own times, the speedup 1 -> 2
  (goal >= 1.7 on 2 cores) and the workers used.
- The whole command, ``asmm calibrate --coins all --workers N`` in a fresh process
  (imports, cluster start and stop included), for N = 1, 2.
- The load average before each figure: the machine may be shared.

The coins are distinct markets (a seed each), the same size as the one-coin benchmark's
(benchmarks/bench_calibrate.py). The numba cache is warmed in this process first, so no
worker compiles.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def make_data(folder: Path, coins: list[str], days: int) -> None:
    from asmm.data.synth import SynthConfig, generate

    start = (datetime.now(UTC) - timedelta(days=days)).date()
    for i, coin in enumerate(coins):
        generate(SynthConfig(coin=coin, days=days, seed=100 + i, start=start), folder)


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


def library(data: Path, out: Path, coins: list[str], workers: int) -> tuple[float, list]:
    import logging

    from asmm.calibrate.config import CalibrationConfig
    from asmm.calibrate.many import calibrate_many, open_client

    cfg = CalibrationConfig()
    with open_client(workers=workers, worker_log_level=logging.ERROR) as client:
        t0 = time.perf_counter()
        outcomes = calibrate_many(coins, data, out, cfg, client)
        wall = time.perf_counter() - t0
    failed = [f"{o.coin}: {o.error}" for o in outcomes if not o.ok]
    if failed:
        sys.exit("a coin failed; never time a failed run:\n" + "\n".join(failed))
    return wall, outcomes


def command(data: Path, out: Path, workers: int) -> float:
    t0 = time.perf_counter()
    asmm = str(Path(sys.executable).parent / "asmm")
    proc = subprocess.run([asmm, "calibrate", "--coins", "all",
                           "--data-dir", str(data), "--output-dir", str(out), "--workers",
                           str(workers), "--json"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"asmm calibrate --coins all --workers {workers} exited {proc.returncode}:\n"
                 f"{proc.stderr[-3000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coins", type=int, default=8)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--data", help="folder for the coins' days (C0, C1, ...), generated there "
                                   "when it holds none, kept afterwards (default: a temp "
                                   "folder, removed)")
    args = ap.parse_args()
    coins = [f"C{i}" for i in range(args.coins)]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "data"
        if not any(data.glob("trades_C0_*")):
            t0 = time.perf_counter()
            make_data(data, coins, args.days)
            print(f"generated {args.coins} coins x {args.days} full-size days in "
                  f"{time.perf_counter() - t0:.1f} s")
        out = Path(tmp) / "out"

        import logging

        from asmm.calibrate.config import CalibrationConfig
        from asmm.calibrate.run import calibrate

        logging.getLogger("asmm").setLevel(logging.ERROR)  # the files hold the warnings
        t0 = time.perf_counter()  # warm the numba cache (compiles only if stale)
        calibrate(data, CalibrationConfig(coin=coins[0]))
        print(f"one coin in this process (cache warm-up): {time.perf_counter() - t0:.1f} s")

        walls = {}
        for n in (1, 2):
            before = load()
            walls[n], outcomes = library(data, out, coins, n)
            used = sorted({o.worker_name for o in outcomes})
            tasks = sum(o.seconds for o in outcomes)
            print(f"calibrate_many, {args.coins} coins x {args.days} days, {n} worker(s): "
                  f"{walls[n]:.1f} s wall, tasks {tasks:.1f} s in all "
                  f"({tasks / args.coins:.1f} s a coin), workers used {used} ({before})")
        print(f"speedup 1 -> 2 workers: {walls[1] / walls[2]:.2f}x (goal >= 1.7)")
        cmd = {}
        for n in (1, 2):
            before = load()
            cmd[n] = command(data, out, n)
            print(f"asmm calibrate --coins all --workers {n} ({args.coins} coins): "
                  f"{cmd[n]:.1f} s wall, fresh process ({before})")
        print(f"speedup of the command: {cmd[1] / cmd[2]:.2f}x")


if __name__ == "__main__":
    main()
