"""`asmm replay`: serve recorded or synthetic collector data as an offline Hyperliquid (or,
with ``--venue bybit``, an offline Bybit v5)."""

from __future__ import annotations

import argparse


def _speed(text: str) -> float:
    if text in ("max", "0"):
        return 0.0
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"speed must be > 0 (or 'max'), got {text!r}")
    return v


def _count(text: str) -> int:
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v


def register(sub) -> None:
    from asmm.cli.paper import add_account_options

    p = sub.add_parser(
        "replay", help="serve collector data as an offline Hyperliquid (HTTP /info + WS /ws)",
        description="Replay a recorded or synthetic market over the part of Hyperliquid's API "
                    "that ccxt, Freqtrade and the Hyperliquid SDK use, with a paper exchange "
                    "(POST /exchange) that matches signed orders against it by the "
                    "backtester's fill rule. On start prints one line "
                    "'replay exchange listening on http://HOST:PORT' to stdout.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--venue", choices=["hyperliquid", "bybit"], default="hyperliquid",
                   help="whose API to speak: Hyperliquid (POST /info, WS /ws, the paper "
                        "exchange) or Bybit v5 public (GET /v5/market/..., WS "
                        "/v5/public/linear; symbol COINUSDT, no paper exchange)")
    p.add_argument("--data-dir", required=True,
                   help="collector data folder (daily or single-file layout, CSV or Parquet)")
    p.add_argument("--coin", default="BTC",
                   help="coin(s) to serve, comma-separated (e.g. BTC,ETH); their files must "
                        "be in --data-dir")
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--port", type=int, default=8765, help="port to bind; 0 picks a free one")
    p.add_argument("--speed", type=_speed, default=1.0,
                   help="replay seconds per wall second; 'max' (or 0) = unpaced, as fast as "
                        "subscribers read")
    p.add_argument("--start-at", choices=["now", "data"], default="now",
                   help="'now' shifts the data's times so its first event is published when "
                        "streaming starts; 'data' keeps the recorded times")
    p.add_argument("--history", type=float, default=0.0, metavar="SECONDS",
                   help="treat the data's first SECONDS as already past when streaming starts "
                        "(in candles, volume, book), stream from there; gives Freqtrade "
                        "startup candles with --start-at now")
    p.add_argument("--loop", action="store_true",
                   help="start over at the end of the data (times keep increasing)")
    p.add_argument("--wait-subscriptions", type=_count, default=argparse.SUPPRESS,
                   help="start streaming once this many WS data subscriptions are open "
                        "(default: 1 when unpaced, else 0 = at once)")
    p.add_argument("--sz-decimals", type=_count, default=5,
                   help="size decimals in meta (ccxt amount step = 10^-N)")
    p.add_argument("--max-leverage", type=int, default=40,
                   help="maximum leverage of the market (Hyperliquid meta's maxLeverage, "
                        "Bybit's leverageFilter and risk limits)")
    p.add_argument("--tick", type=float, default=0.1,
                   help="Bybit: price tick in quote currency (priceFilter.tickSize)")
    p.add_argument("--qty-step", type=float, default=0.001,
                   help="Bybit: order size step in coin (lotSizeFilter.qtyStep)")
    p.add_argument("--min-qty", type=float, default=0.0,
                   help="Bybit: smallest order size in coin (lotSizeFilter.minOrderQty; "
                        "0 = one --qty-step)")
    p.add_argument("--funding-interval", type=int, default=480, metavar="MINUTES",
                   help="Bybit: minutes between funding times (fundingInterval); each pays "
                        "--funding-rate times the interval in hours")
    p.add_argument("--funding-rate", type=float, default=0.0,
                   help="hourly funding rate served by fundingHistory/metaAndAssetCtxs")
    p.add_argument("--account-value", type=float, default=10_000.0,
                   help="USDC value of the (empty) account in clearinghouseState")
    add_account_options(p)
    p.add_argument("--record", help="write every WebSocket message sent as a JSON line to this "
                                    "new file (refuses to overwrite)")
    p.add_argument("--drop-after", type=_count, default=0,
                   help="fault: close each WebSocket after N data messages (0 = never)")
    p.add_argument("--stall-every", type=_count, default=0,
                   help="fault: after every N data messages a WebSocket gets nothing for "
                        "--stall-seconds (0 = never)")
    p.add_argument("--stall-seconds", type=float, default=0.0,
                   help="fault: length of each stall, seconds")
    p.add_argument("--malformed-every", type=_count, default=0,
                   help="fault: after every N data messages send one malformed message "
                        "(0 = never)")
    p.add_argument("--silence-coin", default="", metavar="COIN",
                   help="fault: one coin goes quiet (with --silence-after) while the others "
                        "stream")
    p.add_argument("--silence-after", type=_count, default=0, metavar="N",
                   help="fault: after a WebSocket's N-th data message of --silence-coin it "
                        "gets none of that coin's messages for --silence-seconds")
    p.add_argument("--silence-seconds", type=float, default=0.0,
                   help="fault: how long --silence-coin stays quiet, seconds (0 = for good)")
    p.set_defaults(func=run)


def run(args) -> int:
    import asyncio
    import signal
    import sqlite3
    import sys
    import time
    from pathlib import Path

    import pyarrow as pa
    from rich.console import Console
    from rich.markup import escape

    from asmm.core.errors import ConfigError, DataError
    from asmm.venues.hyperliquid.paper.service import Paper
    from asmm.venues.hyperliquid.replay import (
        Exchange,
        Faults,
        ReplayConfig,
        ReplayServer,
        load_market,
    )
    from asmm.venues.hyperliquid.replay.server import serve_forever

    # soft_wrap: an error message names a path; keep it on one line, greppable.
    err = Console(stderr=True, soft_wrap=True)
    try:
        cfg = ReplayConfig(speed=args.speed, start_at=args.start_at, loop=args.loop,
                           sz_decimals=args.sz_decimals, max_leverage=args.max_leverage,
                           funding_rate=args.funding_rate, account_value=args.account_value,
                           history_s=args.history)
        faults = Faults(drop_after=args.drop_after, stall_every=args.stall_every,
                        stall_seconds=args.stall_seconds, malformed_every=args.malformed_every,
                        silence_coin=args.silence_coin, silence_after=args.silence_after,
                        silence_seconds=args.silence_seconds)
    except ValueError as e:
        err.print(f"[red]error:[/red] {e}")
        return 2
    if args.record and Path(args.record).exists():
        err.print(f"[red]error:[/red] record file {args.record} exists; not overwriting it")
        return 2
    coins = [c.strip() for c in args.coin.split(",") if c.strip()]
    if faults.silence_coin and faults.silence_coin not in coins:
        err.print(f"[red]error:[/red] --silence-coin {escape(faults.silence_coin)} is not "
                  f"served (--coin {escape(args.coin)})")
        return 2
    try:
        markets = [load_market(args.data_dir, coin) for coin in coins]
    except DataError as e:
        # escape: a file name or Arrow's text in brackets is not Rich markup.
        err.print(f"[red]error:[/red] {escape(str(e))}")
        return 2
    # Reading the CSVs leaves freed pages in Arrow's allocator; a long-running server
    # should not sit on them (~75 MB per full-size day).
    pa.default_memory_pool().release_unused()
    wait = getattr(args, "wait_subscriptions", None)  # its default depends on --speed
    if wait is None:
        wait = 1 if cfg.speed == 0 else 0
    if args.venue == "bybit" and (args.ledger or args.accounts):
        err.print("[red]error:[/red] --ledger and --accounts belong to the paper exchange, "
                  "which only the hyperliquid venue serves")
        return 2
    paper = None
    try:
        exchange = Exchange(markets, cfg, time.time())
        if args.venue == "bybit":
            from asmm.venues.bybit.replay import BybitConfig, BybitFeed, BybitReplayServer

            feed = BybitFeed(exchange, BybitConfig(
                tick=args.tick, qty_step=args.qty_step, min_qty=args.min_qty,
                max_leverage=args.max_leverage, funding_interval_min=args.funding_interval))
        else:
            paper = Paper(exchange, args.ledger, args.fee_tier, args.starting_balance,
                          args.accounts, args.signing_chain)
    except (ValueError, ConfigError, sqlite3.Error) as e:
        err.print(f"[red]error:[/red] {escape(str(e))}")
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if paper is None:
            server = BybitReplayServer(feed, faults, args.record, wait, args.host, args.port)
        else:
            server = ReplayServer(exchange, faults, args.record, wait, args.host, args.port,
                                  paper=paper)

        def ready(port: int) -> None:
            # The one stdout line: test fixtures in other processes read the port from it.
            print(f"replay exchange listening on http://{args.host}:{port}", flush=True)

        await serve_forever(server, stop, ready)

    try:
        asyncio.run(main())
    except OSError as e:
        err.print(f"[red]error:[/red] cannot serve on {args.host}:{args.port}: {e}")
        return 2
    finally:
        if paper is not None:
            paper.close()
    sys.stdout.flush()
    return 0
