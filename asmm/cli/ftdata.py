"""`asmm ftdata`: collector trades -> Freqtrade futures candles, for `freqtrade backtesting`."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "ftdata", help="build Freqtrade candle files from collector trades",
        description="Write <datadir>/futures/<PAIR>-<tf>-futures.feather candles (and the 1h "
                    "mark candles and funding-rate file Freqtrade needs for Hyperliquid "
                    "futures) from the collector's trades, with Freqtrade's own data handler. "
                    "Hyperliquid serves only the latest 5000 candles; this backtests any "
                    "recorded or synthetic day.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data-dir", required=True,
                   help="collector data folder (daily or single-file layout, CSV or Parquet)")
    p.add_argument("--coin", default="BTC", help="coin whose trades to read")
    p.add_argument("--datadir", required=True,
                   help="Freqtrade data folder to write into, e.g. user_data/data/hyperliquid")
    p.add_argument("--pair", help="Freqtrade pair name (default: COIN/USDC:USDC)")
    p.add_argument("--timeframes", nargs="+", default=["1m"],
                   help="candle timeframes to write (1h is always written: mark prices)")
    p.add_argument("--funding-rate", type=float, default=0.0,
                   help="hourly funding rate written to the funding-rate file (fraction)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console

    from asmm.core.errors import DataError
    from asmm.freqtrade.ftdata import write_freqtrade_futures_data

    console = Console()
    try:
        written = write_freqtrade_futures_data(args.data_dir, args.coin, args.datadir,
                                               pair=args.pair,
                                               timeframes=tuple(args.timeframes),
                                               funding_rate=args.funding_rate)
    except (DataError, ValueError) as e:
        Console(stderr=True).print(f"[red]error:[/red] {e}")
        return 2
    for kind, path in written.items():
        console.print(f"{kind}: {path}")
    return 0
