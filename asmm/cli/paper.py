"""`asmm paper --upstream URL`: a paper exchange on the live market (orders matched here,
never forwarded). The work is :mod:`asmm.venues.hyperliquid.paper.upstream`."""

from __future__ import annotations

import argparse


def add_account_options(p) -> None:
    """The paper exchange's options, shared by `asmm paper` and `asmm replay`."""
    p.add_argument("--ledger", metavar="PATH",
                   help="paper exchange: the SQLite ledger of accounts, orders and fills, kept "
                        "across restarts (default: in memory, lost at exit)")
    p.add_argument("--starting-balance", type=float, default=10_000.0,
                   help="paper exchange: USDC of an account created by its first signed "
                        "request")
    p.add_argument("--fee-tier", default="hyperliquid:0",
                   help="paper exchange: the fee tier accounts pay (asmm/core/fees.py)")
    p.add_argument("--signing-chain", choices=["mainnet", "testnet"], default="mainnet",
                   help="paper exchange: the network a new account's first request is signed "
                        "for (ccxt and Freqtrade sign mainnet whatever their URL; the "
                        "Hyperliquid SDK signs testnet for any URL but mainnet's)")
    p.add_argument("--accounts", type=_addresses, metavar="ADDR,...",
                   help="paper exchange: only these addresses get an account (and agents they "
                        "approve); others are refused as an unknown signer (default: any "
                        "signer)")


def _addresses(text: str) -> set[str]:
    return {a.strip().lower() for a in text.split(",") if a.strip()}


def register(sub) -> None:
    p = sub.add_parser(
        "paper", help="paper-trade the live market: Hyperliquid's API on 127.0.0.1, orders "
                      "matched locally",
        description="Relay the live Hyperliquid market (market /info passed through, "
                    "WebSockets piped) and serve a paper exchange: POST /exchange and the user "
                    "/info requests, orders matched against the upstream's book and trades by "
                    "the backtester's fill rule, accounts in a SQLite ledger. No order is ever "
                    "forwarded. On start prints 'paper exchange listening on "
                    "http://HOST:PORT' to stdout. (A recorded market: asmm replay, which "
                    "serves the same paper exchange.)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--upstream", required=True,
                   help="the exchange whose market is relayed, e.g. https://api.hyperliquid.xyz")
    p.add_argument("--coin", default="BTC", help="coin(s) to match, comma-separated")
    add_account_options(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--port", type=int, default=8766, help="port to bind; 0 picks a free one")
    p.set_defaults(func=run)


def run(args) -> int:
    import asyncio
    import signal
    import sqlite3
    import sys

    import aiohttp
    from rich.console import Console
    from rich.markup import escape

    from asmm.core.errors import ConfigError
    from asmm.venues.hyperliquid.paper.upstream import Relay

    err = Console(stderr=True, soft_wrap=True)
    coins = [c.strip() for c in args.coin.split(",") if c.strip()]

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        relay = Relay(args.upstream, coins, args.ledger, args.fee_tier, args.starting_balance,
                      args.accounts, args.host, args.port, args.signing_chain)
        port = await relay.start()
        try:
            print(f"paper exchange listening on http://{args.host}:{port}", flush=True)
            await stop.wait()
        finally:
            await relay.stop()

    try:
        asyncio.run(main())
    except (ValueError, ConfigError, sqlite3.Error, aiohttp.ClientError, OSError) as e:
        err.print(f"[red]error:[/red] {escape(str(e))}")
        return 2
    sys.stdout.flush()
    return 0
