#!/usr/bin/env python3
"""PnL report of one or more Freqtrade bots: a table on the terminal and a PNG.

Reads a running bot's REST API (``--url``, repeatable; the bots are also shown as one book
with their net inventory) or its SQLite trades database (``--db``). All figures come from
``asmm.report``; this file only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from asmm.core.errors import PnLError
from asmm.report import ledger, rendering, sources
from asmm.report.comparison import compare_with_backtest


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="show_PnL.py",
        description="PnL report of Freqtrade market-making bots: realised/unrealised PnL, fees, "
                    "funding, round trips, win rate, captured spread, inventory, drawdown, "
                    "CAGR; plus a PNG with equity, inventory and captured spread over time.",
        epilog="Credentials come from --user/--password or the environment variables "
               "FREQTRADE_API_USER / FREQTRADE_API_PASSWORD (FREQTRADE_API_URL may list URLs, "
               "comma-separated). Exit status: 0 ok, 2 bad input or unreachable source.")
    src = p.add_argument_group("source (one kind)")
    src.add_argument("--url", action="append", default=[],
                     help="Freqtrade API base URL, e.g. http://127.0.0.1:8080 (repeat for "
                          "several bots; default $FREQTRADE_API_URL)")
    src.add_argument("--db", action="append", default=[], type=Path,
                     help="Freqtrade SQLite trades database, opened read-only (repeatable)")
    p.add_argument("--user", default=os.environ.get("FREQTRADE_API_USER"),
                   help="API username (default $FREQTRADE_API_USER)")
    p.add_argument("--password", default=None,
                   help="API password (default $FREQTRADE_API_PASSWORD; prefer the variable, "
                        "a flag shows in the process list)")
    p.add_argument("--capital", type=float, default=None,
                   help="starting capital in USDC per bot for CAGR and drawdown %% (default: "
                        "the bot's starting balance over REST; none for --db)")
    p.add_argument("--mark", type=float, default=None,
                   help="mark price for unrealised PnL with --db (default: last fill price)")
    p.add_argument("--now", type=datetime.fromisoformat, default=None,
                   help="end of the report period, ISO UTC (default: now)")
    cmp = p.add_argument_group("does paper trading match the backtest?")
    cmp.add_argument("--data-dir", type=Path, default=None,
                     help="collector data covering the live period: also backtest that window "
                          "tick by tick and compare")
    cmp.add_argument("--params", type=Path, default=None,
                     help="parameter file the bot quoted from (needed with --data-dir)")
    cmp.add_argument("--data-shift", type=float, default=0.0,
                     help="seconds to add to live times to get the data's times (a replay "
                          "started with --start-at now moved the data; its /_replay/clock "
                          "shift_ms / -1000)")
    cmp.add_argument("--execution", choices=["freqtrade", "freqtrade-pair", "two-sided"],
                     default=None,
                     help="backtester execution to compare with (default: freqtrade for one "
                          "bot, freqtrade-pair for several)")
    p.add_argument("--png", type=Path, default=Path("pnl.png"),
                   help="where to write the plot (default: pnl.png)")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    p.add_argument("--html", type=Path, default=None,
                   help="also write an interactive, self-contained HTML report here")
    p.add_argument("--json", action="store_true",
                   help="print the figures as JSON instead of the table")
    p.add_argument("--timeout", type=float, default=10.0, help="API timeout, seconds (default: 10)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    out = Console()
    err = Console(stderr=True, soft_wrap=True)
    urls = args.url or [u for u in os.environ.get("FREQTRADE_API_URL", "").split(",") if u]
    if bool(urls) == bool(args.db):
        err.print("[red]error:[/red] give either --url (or $FREQTRADE_API_URL) or --db")
        return 2
    password = args.password or os.environ.get("FREQTRADE_API_PASSWORD")
    now = args.now.replace(tzinfo=args.now.tzinfo or UTC).timestamp() if args.now else None
    try:
        if urls:
            books = [sources.load_rest(u, args.user, password, timeout=args.timeout)
                     for u in urls]
        else:
            books = [sources.load_db(d) for d in args.db]
            if args.mark is not None:
                for b in books:
                    b.marks = {t.pair: args.mark for t in b.trades}
        books = [ledger.with_capital(b, args.capital) for b in books]
        summaries = [ledger.summarize(b, now) for b in books]
        if len(books) > 1:
            summaries.append(ledger.summarize(ledger.merge_books(books), now))
        comparison = None
        if args.data_dir is not None:
            if args.params is None:
                raise PnLError("--data-dir needs --params (the file the bot quoted from)")
            base = ledger.base_currency(ledger.merge_books(books))
            execution = args.execution or ("freqtrade" if len(books) == 1 else "freqtrade-pair")
            comparison = compare_with_backtest(summaries[-1], args.data_dir, base,
                                                   args.params, shift=args.data_shift,
                                                   execution=execution)
    except PnLError as e:
        err.print(f"[red]error:[/red] {e}")
        return 2
    base = ledger.base_currency(ledger.merge_books(books))
    if args.json:
        doc = [rendering.summary_dict(s) for s in summaries]
        if comparison is not None:
            doc[-1]["backtest"] = {label: {"live": live, "backtest": bt}
                                   for label, live, bt in comparison.rows}
        print(json.dumps(doc, indent=1))
    else:
        out.print(rendering.summary_table(summaries, base=base))
        if comparison is not None:
            out.print(rendering.comparison_table(comparison))
    if not args.no_plot:
        path = rendering.plot(summaries[-1], args.png, base=base or "base")
        (err if args.json else out).print(
            f"plot (equity, inventory, captured spread over time): {path}")
    if args.html is not None:
        path = rendering.write_html(summaries, args.html, base=base, comparison=comparison)
        (err if args.json else out).print(f"interactive report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
