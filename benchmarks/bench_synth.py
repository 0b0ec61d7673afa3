"""Wall time of `asmm synth` for full-size days and of `asmm paper2008` for 1000 runs.

Usage: python benchmarks/bench_synth.py [--days 2] [--out DIR]
Prints one line per figure; copy them into benchmarks/README.md with the date.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

from asmm.data.synth import SynthConfig, generate
from asmm.sim.paper2008 import run as paper_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=int, default=2, help="full-size days to write")
    ap.add_argument("--out", help="output folder (default: a temp folder, removed)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        generate(SynthConfig(days=1, bbo_rate=0.1, A_bid=0.01, A_ask=0.01), out + "/warm")
        t0 = time.perf_counter()
        truth = generate(SynthConfig(days=args.days), out + "/full")
        dt = time.perf_counter() - t0
    bbo = sum(d["bbo_updates"] for d in truth["days"]) / args.days
    trades = sum(d["trades"] for d in truth["days"]) / args.days
    print(f"synth: {dt / args.days:.2f} s per full-size day ({bbo:,.0f} BBO updates, "
          f"{trades:,.0f} trades per day), {args.days} days in {dt:.2f} s, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    paper_run(0.1, 10)
    t0 = time.perf_counter()
    paper_run(0.1, 1000)
    print(f"paper: 1000 simulations in {time.perf_counter() - t0:.3f} s")


if __name__ == "__main__":
    main()
