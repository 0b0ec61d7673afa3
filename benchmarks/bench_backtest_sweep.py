"""Backtest sweeps on Dask: 2 coins x 2 full-size synthetic days x a 16-point grid on 1 vs 2
local worker processes.

Usage: python benchmarks/bench_backtest_sweep.py [--coins 2] [--days 2] [--repeat 1] [--dataset]
       [--data DIR]
Prints one line per figure; copy them into benchmarks/README.md with the date.

The grid: 2 gammas (quoting each coin's GLFT parameter file, written at the market's
truth) and 2 fixed depths, x 2 latencies (0, 100 ms), x 2 fee tiers (hyperliquid:0 and
:4): 16 points, 1 s re-quotes, the exchange fill rule, two-sided.

Figures:
- ``run_sweep`` over the coins x days (one task per coin and day: read the day, simulate
  the 16 points in one ``run_grid`` pass) on a LocalCluster of 1 and of 2 worker
  processes, one thread each, the cluster already up and each worker's numba kernel
  loaded (a one-point task on every worker first): wall time, the tasks' own times (and
  of them the kernel passes; and their threads' CPU time: a task whose wall time exceeds
  it waited for a core), the speedup 1 -> 2 and the workers used.
- The whole command, ``asmm backtest --sweep ... --workers N`` in a fresh process (imports,
  cluster start and stop, the Parquet file included), for N = 1, 2.
- ``--repeat N``: each figure N times, 1 and 2 workers alternated; the best of each is
  compared (the machine may be shared).
- The load average before each figure: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

GAMMAS = "0.02,0.1"
DEPTHS = "2,5"
LATENCIES = "0,100"
TIERS = "hyperliquid:0,hyperliquid:4"
START = date(2025, 9, 1)


def make_data(data: Path, params: Path, coins: list[str], days: int) -> None:
    from asmm.core.params import Params, SideIntensity, default_path, write_params
    from asmm.data.synth import SynthConfig, generate

    now = datetime(START.year, START.month, START.day, tzinfo=UTC)
    for i, coin in enumerate(coins):
        t = generate(SynthConfig(coin=coin, days=days, seed=200 + i, start=START), data)
        write_params(default_path(coin, params), Params(
            coin=coin, model="glft", computed_at=now, valid_until=now + timedelta(days=1),
            data_window=(now, now), mid_price=t["mid0"], sigma=t["sigma"], gamma=0.05,
            bid=SideIntensity(t["bid"]["A"], t["bid"]["k"]),
            ask=SideIntensity(t["ask"]["A"], t["ask"]["k"])))


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


def spec(params: Path):
    from asmm.sim.sweep import expand_grid

    floats = lambda text: [float(x) for x in text.split(",")]  # noqa: E731
    return expand_grid({"order_size": 0.001, "refresh_seconds": 1.0},
                       gammas=floats(GAMMAS), fixed_depths=floats(DEPTHS),
                       latencies_ms=floats(LATENCIES), fee_tiers=TIERS.split(","),
                       params_dir=params)


def library(data: Path, params: Path, tasks: list, workers: int):
    import logging

    from asmm.core.cluster import open_client
    from asmm.sim.sweep import run_sweep, sweep_task

    sp = spec(params)
    one = replace(sp, points=sp.points[:1])
    with open_client(workers=workers, worker_log_level=logging.ERROR) as client:
        # Every worker loads the kernel (and reads a day) once before the clock starts.
        client.run(sweep_task, tasks[0][0], tasks[0][1], str(data), one)
        t0 = time.perf_counter()
        outcomes = run_sweep(tasks, data, sp, client)
        wall = time.perf_counter() - t0
    failed = [f"{o.coin} {o.day}: {o.error}" for o in outcomes if not o.ok]
    if failed:
        sys.exit("a task failed; never time a failed run:\n" + "\n".join(failed))
    return wall, outcomes, len(sp.points)


def command(data: Path, params: Path, out: Path, workers: int) -> float:
    asmm = str(Path(sys.executable).parent / "asmm")
    t0 = time.perf_counter()
    proc = subprocess.run([asmm, "backtest", "--sweep", "--data-dir", str(data),
                           "--params-dir", str(params), "--gammas", GAMMAS, "--fixed-depths",
                           DEPTHS, "--latencies-ms", LATENCIES, "--fee-tiers", TIERS,
                           "--order-size", "0.001", "--refresh-seconds", "1", "--workers",
                           str(workers), "--out", str(out), "--json"],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"asmm backtest --sweep --workers {workers} exited {proc.returncode}:\n"
                 f"{proc.stderr[-3000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coins", type=int, default=2)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--dataset", action="store_true",
                    help="convert the days to the hive-partitioned Parquet dataset first and "
                         "sweep that (default: the CSV files as generated)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="library runs per worker count, alternated (the best is compared)")
    ap.add_argument("--data", help="folder for the coins' days (S0, S1, ...) and their "
                                   "parameter files (DIR/params), generated there when it "
                                   "holds none, kept afterwards (default: a temp folder)")
    args = ap.parse_args()
    coins = [f"S{i}" for i in range(args.coins)]
    days = [START + timedelta(days=i) for i in range(args.days)]
    tasks = [(c, d) for c in coins for d in days]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "data"
        params = data / "params"
        if not any(data.glob("trades_S0_*")):
            t0 = time.perf_counter()
            make_data(data, params, coins, args.days)
            print(f"generated {args.coins} coins x {args.days} full-size days in "
                  f"{time.perf_counter() - t0:.1f} s")
        if args.dataset:
            from asmm.data.dataset import build_dataset

            ds = Path(tmp) / "DS"
            t0 = time.perf_counter()
            build_dataset(data, ds, coins)
            print(f"as a hive dataset (asmm dataset) in {time.perf_counter() - t0:.1f} s; "
                  "the sweeps read it")
            data = ds
        from asmm.data.files import day_bounds
        from asmm.sim import load_events, run_grid

        ev = load_events(data, coins[0], *day_bounds(days[0]))
        t0 = time.perf_counter()  # warm the numba cache (compiles only if stale)
        sp = spec(params)
        run_grid(ev, [sp.points[-1].config(sp.settings)])
        print(f"{len(ev):,} events in {coins[0]} {days[0]}; kernel warm-up in this process "
              f"{time.perf_counter() - t0:.1f} s")
        walls: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.repeat):  # 1 and 2 workers alternated: the same background
            for n in (1, 2):
                before = load()
                wall, outcomes, points = library(data, params, tasks, n)
                walls[n].append(wall)
                used = sorted({o.worker_name for o in outcomes})
                task_s = sum(o.seconds for o in outcomes)
                cpu_s = sum(o.cpu_seconds for o in outcomes)
                kernel_s = sum(o.rows[0]["kernel_seconds"] for o in outcomes)
                print(f"run_sweep, {len(tasks)} coin-days x {points} points, {n} worker(s): "
                      f"{wall:.2f} s wall, tasks {task_s:.2f} s in all "
                      f"({task_s / len(tasks):.2f} s a coin-day, of it the {points}-point "
                      f"pass {kernel_s / len(tasks):.2f} s; CPU {cpu_s / len(tasks):.2f} s a "
                      f"coin-day), workers used {used} ({before})")
        print(f"speedup 1 -> 2 workers: {min(walls[1]) / min(walls[2]):.2f}x (best of "
              f"{args.repeat} each: {min(walls[1]):.2f} s / {min(walls[2]):.2f} s)")
        cmd: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.repeat):
            for n in (1, 2):
                before = load()
                cmd[n].append(command(data, params, Path(tmp) / "res.parquet", n))
                print(f"asmm backtest --sweep --workers {n} ({len(tasks)} coin-days x "
                      f"{points} points): {cmd[n][-1]:.1f} s wall, fresh process ({before})")
        print(f"speedup of the command: {min(cmd[1]) / min(cmd[2]):.2f}x (best of "
              f"{args.repeat} each: {min(cmd[1]):.1f} s / {min(cmd[2]):.1f} s)")


if __name__ == "__main__":
    main()
