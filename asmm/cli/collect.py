"""`asmm collect`: record a venue's market data into day files — Hyperliquid's bbo, trades and
l2Book, or (``--venue bybit``) Bybit's orderbook.1, orderbook.50 and publicTrade."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from asmm.venues.collector_common.config import SETTINGS, CollectorConfig

    defaults = CollectorConfig()
    p = sub.add_parser(
        "collect", help="record market data (Hyperliquid bbo, trades, l2Book; or Bybit "
                        "orderbook.1, orderbook.50, publicTrade) to day files",
        description="Subscribe to each coin's book and trades and write one CSV per kind "
                    "(prices, trades, orderbooks), coin and UTC day, reconnecting on its own "
                    "and recording gaps. --venue hyperliquid (default): bbo, trades, l2Book "
                    "from HL_API_URL. --venue bybit: USDT perpetuals (coin BTC = BTCUSDT) "
                    "from BYBIT_WS_URL, the book kept from orderbook.50 snapshots and deltas "
                    "(a sequence gap resubscribes and records a gap), the BBO from "
                    "orderbook.1, trades from publicTrade; the files are the same. Every "
                    "option can also be set by the environment variable named in its help; a "
                    "flag wins over the variable.")
    for name, var, parse, text in SETTINGS:
        flag = "--" + name.replace("_", "-")
        if name == "parquet":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                           help=f"{text} [env {var}, default off]")
        elif name == "venue":
            p.add_argument(flag, choices=("hyperliquid", "bybit"), default=None,
                           help=f"{text} [env {var}, default {defaults.venue}]")
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

    from asmm.venues.collector_common.config import SETTINGS, ConfigError, from_env
    from asmm.venues.collector_common.health import check_heartbeat

    try:
        cfg = from_env(os.environ, **{name: getattr(args, name) for name, *_ in SETTINGS})
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.healthcheck:
        ok, why = check_heartbeat(cfg.heartbeat_path, time.time(), args.max_age)
        print(why)
        return 0 if ok else 1
    # A service's status lines are its output: shown even without -v (the shared collector
    # code logs under asmm.venues.collector_common, the venue's under asmm.venues.<venue>).
    logging.getLogger("asmm.venues").setLevel(
        min(logging.INFO, logging.getLogger().getEffectiveLevel()))
    if cfg.venue == "bybit":
        from asmm.venues.bybit.collector.service import BybitCollector as Collector
    else:
        from asmm.venues.hyperliquid.collector.service import Collector

    collector = Collector(cfg)

    def on_signal(signum, _frame):
        logging.getLogger("asmm.venues").info(
            "%s: writing buffered rows and stopping", signal.Signals(signum).name)
        collector.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return collector.run()
