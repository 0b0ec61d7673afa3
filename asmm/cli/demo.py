"""`asmm demo`: the offline demo behind `make demo`."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="offline demo on a synthetic market",
        description="Synthesize a market with known parameters, then show what both quote "
                    "models quote on it for inventories -2..2.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--workdir", default="demo_run", help="folder for the demo's files")
    p.add_argument("--days", type=int, default=2, help="days of synthetic market")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    p.add_argument("--gamma", type=float, default=0.01, help="risk aversion for the quote table")
    p.add_argument("--tau", type=float, default=60.0,
                   help="A-S time to horizon for the quote table (seconds)")
    p.set_defaults(func=run)


def run(args) -> int:
    from asmm.demo import run_demo

    return run_demo(args)
