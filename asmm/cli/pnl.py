"""`asmm pnl` (and `show_PnL.py`): PnL report of one or more Freqtrade bots, a table on the
terminal and a PNG.

Reads a running bot's REST API (``--url``, repeatable; the bots are also shown as one book
with their net inventory) or its SQLite trades database (``--db``). All figures come from
``asmm.report``; this module only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from asmm.core.enums import FillRule

DESCRIPTION = ("PnL report of Freqtrade market-making bots: realised/unrealised PnL, fees, "
               "funding, round trips, win rate, captured spread, inventory, drawdown, CAGR; "
               "plus a PNG with equity, inventory and captured spread over time.")
EPILOG = ("Credentials come from --user/--password or the environment variables "
          "FREQTRADE_API_USER / FREQTRADE_API_PASSWORD (FREQTRADE_API_URL may list URLs, "
          "comma-separated). Exit status: 0 ok, 2 bad input or unreachable source.")


def add_arguments(p: argparse.ArgumentParser) -> None:
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
    cmp = p.add_argument_group("market data: markouts; does paper trading match the backtest?")
    cmp.add_argument("--data-dir", type=Path, default=None,
                     help="collector data covering the live period: markouts of every fill "
                          "(the mid 1 s, 10 s, 60 s later), and with --params a tick-level "
                          "backtest of that window to compare with")
    cmp.add_argument("--params", type=Path, default=None,
                     help="parameter file the bot quoted from: its verdict (expected fills "
                          "and PnL per hour, markout, maker fee) beside the live figures, "
                          "and with --data-dir a backtest of the live window to compare with")
    cmp.add_argument("--data-shift", type=float, default=0.0,
                     help="seconds to add to live times to get the data's times (a replay "
                          "started with --start-at now moved the data; its /_replay/clock "
                          "shift_ms / -1000)")
    cmp.add_argument("--execution", choices=["freqtrade", "freqtrade-pair", "two-sided"],
                     default=None,
                     help="backtester execution to compare with (default: freqtrade for one "
                          "bot, freqtrade-pair for several)")
    cmp.add_argument("--fill-rule", choices=list(FillRule), default=None,
                     help="backtester fill rule to compare with (default: the bot's own: "
                          "freqtrade-dry-run for a dry-run bot, exchange for a live one)")
    cmp.add_argument("--loop-seconds", type=float, default=5.0,
                     help="the bot's loop, Freqtrade's internals.process_throttle_secs (its "
                          "REST API does not show it): the backtester decides, and checks "
                          "dry-run orders, this often (default: 5, the shipped configs')")
    p.add_argument("--png", type=Path, default=Path("pnl.png"),
                   help="where to write the plot (default: pnl.png)")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    p.add_argument("--html", type=Path, default=None,
                   help="also write an interactive, self-contained HTML report here")
    p.add_argument("--json", action="store_true",
                   help="print the figures as JSON instead of the table")
    p.add_argument("--timeout", type=float, default=10.0, help="API timeout, seconds (default: 10)")


def register(sub) -> None:
    p = sub.add_parser("pnl", help="PnL report of running Freqtrade bots (also show_PnL.py)",
                       description=DESCRIPTION, epilog=EPILOG)
    add_arguments(p)
    p.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``show_PnL.py``, the name users know: same options as ``asmm pnl``."""
    p = argparse.ArgumentParser(prog="show_PnL.py", description=DESCRIPTION, epilog=EPILOG)
    add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """``show_PnL.py``: its own parser and log format, as before ``asmm pnl`` existed."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    return run(args)


def run(args) -> int:
    from rich.console import Console

    from asmm.core.errors import PnLError
    from asmm.freqtrade.config import MMConfig
    from asmm.report.comparison import BotSettings, compare_with_backtest, fill_rule_for
    from asmm.report.ledger import base_currency, merge_books, summarize, with_capital
    from asmm.report.rendering import (
        comparison_dict,
        comparison_table,
        markouts_table,
        plot,
        summary_dict,
        summary_table,
        verdict_dict,
        verdict_table,
        write_html,
    )
    from asmm.report.sources import load_db, load_rest
    from asmm.report.verdict import verdict_view

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
            books = [load_rest(u, args.user, password, timeout=args.timeout) for u in urls]
        else:
            books = [load_db(d) for d in args.db]
            if args.mark is not None:
                for b in books:
                    b.marks = {t.pair: args.mark for t in b.trades}
        books = [with_capital(b, args.capital) for b in books]
        merged = merge_books(books)
        base = base_currency(merged)
        summaries = [summarize(b, now) for b in books]
        if len(books) > 1:
            summaries.append(summarize(merged, now))
        comparison, marked, verdict = None, [], None
        if args.data_dir is not None:
            from asmm.report.markouts import fill_markouts, load_mids

            mids = load_mids(args.data_dir, base, books, shift=args.data_shift)
            marked = [fill_markouts(b, mids, shift=args.data_shift)
                      for b in (books if len(books) == 1 else [*books, merged])]
        if args.params is not None:
            verdict = verdict_view(summaries[-1], args.params, marked[-1] if marked else None)
        if args.params is not None and args.data_dir is not None:
            execution = args.execution or ("freqtrade" if len(books) == 1 else "freqtrade-pair")
            if args.fill_rule is None:
                rule, why = fill_rule_for(books)
            else:
                rule, why = args.fill_rule, "named on the command line (--fill-rule)"
            # The strategy's quoting settings as shipped; the REST API does not show them.
            mm = MMConfig()
            bot = BotSettings(args.loop_seconds, mm.min_spread_ticks, mm.max_improve_ticks,
                              reference=mm.reference)
            comparison = compare_with_backtest(
                summaries[-1], args.data_dir, base, args.params, bot, fill_rule=rule,
                fill_rule_why=why, shift=args.data_shift, execution=execution,
                marked=marked[-1])
    except PnLError as e:
        err.print(f"[red]error:[/red] {e}")
        return 2
    if args.json:
        doc = [summary_dict(s) for s in summaries]
        for d, m in zip(doc, marked, strict=False):
            d["markouts"] = m.as_dict()
        if verdict is not None:
            doc[-1]["verdict"] = verdict_dict(verdict)
        if comparison is not None:
            doc[-1]["backtest"] = comparison_dict(comparison)
        print(json.dumps(doc, indent=1))
    else:
        out.print(summary_table(summaries, base=base))
        if marked:
            out.print(markouts_table(marked))
        if verdict is not None:
            out.print(verdict_table(verdict))
        if comparison is not None:
            out.print(comparison_table(comparison))
        elif args.params is not None:
            out.print("(no backtest of the live window to compare with: that needs the "
                      "collector's data, --data-dir)")
    if not args.no_plot:
        path = plot(summaries[-1], args.png, base=base or "base")
        (err if args.json else out).print(
            f"plot (equity, inventory, captured spread over time): {path}")
    if args.html is not None:
        path = write_html(summaries, args.html, base=base, comparison=comparison,
                          marked=marked, verdict=verdict)
        (err if args.json else out).print(f"interactive report: {path}")
    return 0
