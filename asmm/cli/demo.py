"""`asmm demo`: the offline demo behind `make demo`."""

from __future__ import annotations

import argparse
import shlex


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="the whole offline pipeline on a synthetic market (about 5 minutes)",
        description="Synthesize a market -> calibrate -> tick-level backtest -> replay "
                    "exchange with its paper exchange -> Freqtrade trading the strategy on it "
                    "(live mode, a throw-away key) -> PnL report against the backtester -> "
                    "shut everything down. Logs of every step go to WORKDIR/logs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--workdir", default="demo_run", help="folder for the demo's files and logs")
    p.add_argument("--coin", default="BTC", help="coin of the synthetic market")
    p.add_argument("--days", type=int, default=2,
                   help="days of synthetic market (calibration's walk-forward needs 2)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the synthetic market")
    p.add_argument("--trade-on", choices=["paper", "dry-run"], default="paper",
                   help="paper: Freqtrade live against the paper exchange, which fills by the "
                        "backtester's rule; dry-run: Freqtrade's own dry-run fills (the book "
                        "crossing the order)")
    p.add_argument("--dry-run-minutes", type=float, default=3.0,
                   help="how long the bot trades")
    p.add_argument("--max-dry-run-minutes", type=float, default=6.0,
                   help="if no round trip has closed after --dry-run-minutes, trade on until "
                        "one has, for at most this long in all")
    p.add_argument("--api-port", type=int, default=8080,
                   help="port of Freqtrade's REST API / FreqUI on 127.0.0.1")
    p.add_argument("--replay-port", type=int, default=0,
                   help="port of the replay exchange on 127.0.0.1 (0: any free port)")
    p.add_argument("--steps", default=None,
                   help="comma-separated subset of steps to run: synthesize, calibrate, "
                        "backtest, replay, trade (or dry-run, its old name), report (default: "
                        "all)")
    for step in ("synth", "calibrate", "backtest", "replay"):
        p.add_argument(f"--{step}-args", type=shlex.split, default=[],
                       help=f"extra options passed to `asmm {step}`, as one quoted string")
    p.set_defaults(func=run)


def run(args) -> int:
    from asmm.cli.demo_run import run_demo

    return run_demo(args)
