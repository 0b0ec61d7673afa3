"""`asmm collect`: record Hyperliquid bbo, trades and l2Book into day files."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from asmm.venues.hyperliquid.collector.config import SETTINGS, CollectorConfig

    defaults = CollectorConfig()
    p = sub.add_parser(
        "collect", help="record Hyperliquid market data (bbo, trades, l2Book) to day files",
        description="Subscribe to bbo, trades and l2Book for each coin and write one CSV "
                    "per kind, coin and UTC day, reconnecting on its own and recording gaps. "
                    "Every option can also be set by the environment variable named in its "
                    "help; a flag wins over the variable.")
    for name, var, parse, text in SETTINGS:
        flag = "--" + name.replace("_", "-")
        if name == "parquet":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                           help=f"{text} [env {var}, default off]")
        else:
            shown = getattr(defaults, name)
            shown = ",".join(shown) if isinstance(shown, tuple) else shown
            p.add_argument(flag, type=parse, default=None, metavar=var,
                           help=f"{text} [env {var}, default {shown}]")
    p.add_argument("--healthcheck", action="store_true",
                   help="do not collect: exit 0 if the heartbeat file shows a live collector "
                        "receiving data and writing it, 1 otherwise, with one line saying why "
                        "(the container healthcheck)")
    p.add_argument("--max-age", type=float, default=120.0,
                   help="with --healthcheck: the oldest acceptable heartbeat and last data "
                        "message, seconds")
    p.set_defaults(func=run)


def run(args) -> int:
    import logging
    import os
    import signal
    import sys
    import time

    from asmm.venues.hyperliquid.collector.config import SETTINGS, ConfigError, from_env
    from asmm.venues.hyperliquid.collector.health import check_heartbeat

    try:
        cfg = from_env(os.environ, **{name: getattr(args, name) for name, *_ in SETTINGS})
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.healthcheck:
        ok, why = check_heartbeat(cfg.heartbeat_path, time.time(), args.max_age)
        print(why)
        return 0 if ok else 1
    # A service's status lines are its output: shown even without -v.
    logging.getLogger("asmm.venues.hyperliquid.collector").setLevel(
        min(logging.INFO, logging.getLogger().getEffectiveLevel()))
    from asmm.venues.hyperliquid.collector.service import Collector

    collector = Collector(cfg)

    def on_signal(signum, _frame):
        logging.getLogger("asmm.venues.hyperliquid.collector").info(
            "%s: writing buffered rows and stopping", signal.Signals(signum).name)
        collector.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return collector.run()
