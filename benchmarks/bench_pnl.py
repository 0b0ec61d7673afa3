"""Speed of the PnL report: reading a Freqtrade database, the figures, the plot.

A month of a busy market maker: N round trips (default 30,000: about 1,000 a day) of one
lot each, alternating long and short, in a real Freqtrade SQLite database. The database is
written with Freqtrade's schema (``init_db``) and bulk SQL inserts (Freqtrade's ORM would
take minutes for that many trades; the report reads the same tables either way).

Usage: python benchmarks/bench_pnl.py [--trades 30000]
Prints one line per figure; copy them into benchmarks/README.md with the date.
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from asmm.report.ledger import summarize
from asmm.report.rendering import plot
from asmm.report.sources import load_db


def make_db(path: Path, n: int, seed: int = 0) -> None:
    from freqtrade.persistence import Trade, init_db

    init_db(f"sqlite:///{path}")
    Trade.session.remove()
    rng = np.random.default_rng(seed)
    t0 = 1_756_684_800.0
    opens = t0 + np.cumsum(rng.exponential(80.0, n))
    holds = rng.exponential(40.0, n)
    entry = 100_000 + np.cumsum(rng.normal(0, 20, n))
    move = rng.normal(0.5, 3.0, n)
    trades, orders = [], []
    for i in range(n):
        short = i % 2 == 1
        ex = entry[i] + (-move[i] if short else move[i])
        od = _dt(opens[i])
        cd = _dt(opens[i] + holds[i])
        trades.append((i + 1, "hyperliquid", "BTC/USDC:USDC", "BTC", "USDC", 0, 0.00015,
                       0.00015, entry[i], ex, 0.001, 0.001, entry[i] * 0.001, od, cd,
                       int(short), 1.0, "FUTURES", 0.0, "Avellaneda", 0, 0.0, 1))
        sides = ("sell", "buy") if short else ("buy", "sell")
        for j, (side, px, when) in enumerate(((sides[0], entry[i], od), (sides[1], ex, cd))):
            orders.append((2 * i + j + 1, i + 1, side, "BTC/USDC:USDC", 0, f"o{2 * i + j}",
                           "closed", "BTC/USDC:USDC", "limit", side, px, px, 0.001, 0.001,
                           0.0, px * 0.001, when, when, 0.001, px))
    with sqlite3.connect(path) as con:
        con.executemany(
            "INSERT INTO trades (id, exchange, pair, base_currency, stake_currency, is_open, "
            "fee_open, fee_close, open_rate, close_rate, amount, amount_requested, "
            "stake_amount, open_date, close_date, is_short, leverage, trading_mode, "
            "funding_fees, strategy, is_stop_loss_trailing, interest_rate, record_version) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", trades)
        con.executemany(
            "INSERT INTO orders (id, ft_trade_id, ft_order_side, ft_pair, ft_is_open, "
            "order_id, status, symbol, order_type, side, price, average, amount, filled, "
            "remaining, cost, order_date, order_filled_date, ft_amount, ft_price) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", orders)


def _dt(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trades", type=int, default=30_000, help="round trips in the database")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "t.sqlite"
        make_db(db, args.trades)
        t0 = time.perf_counter()
        book = load_db(db)
        t1 = time.perf_counter()
        s = summarize(book)
        t2 = time.perf_counter()
        plot(s, Path(tmp) / "p.png")
        t3 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.trades:,} round trips ({s.fills:,} fills): load_db {t1 - t0:.2f} s, "
          f"summarize {t2 - t1:.2f} s, plot {t3 - t2:.2f} s, total {t3 - t0:.2f} s")
    print(f"peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
