"""`asmm backtest`: tick-level market-making backtest over collector data."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from asmm.cli.options import add_options, config_from


def _when(text: str) -> float:
    """Epoch seconds from epoch seconds, ``YYYY-MM-DD`` or an ISO time (UTC if no zone)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not epoch seconds, YYYY-MM-DD or an ISO-8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def register(sub) -> None:
    from asmm.sim.config import BacktestConfig

    p = sub.add_parser(
        "backtest", help="tick-level market-making backtest over collector data",
        description="Replay recorded (or synthetic) BBO, trades and L2 snapshots and simulate "
                    "the quotes of asmm.core.model with latency, queue position and fees. Prints "
                    "PnL, Sharpe, drawdown, fills and inventory for the chosen execution mode "
                    "and, for comparison, the other two modes on the same data. With --sweep: "
                    "a grid of them over coins x days on Dask, results as Parquet "
                    "(docs/backtester.md, Sweeps).")
    p.add_argument("--data-dir", required=True, help="collector data folder")
    p.add_argument("--coin", help="coin to backtest (default: BTC)")
    # One of the two is required without --sweep (run() says so, as argparse would).
    src = p.add_mutually_exclusive_group()
    src.add_argument("--params", help="parameter file (scripts/avellaneda_parameters_<COIN>"
                                      ".json) whose model, sigma, gamma, A, k are quoted; "
                                      "its valid_until is not checked (old periods are the "
                                      "point of a backtest)")
    src.add_argument("--fixed-depth", type=float,
                     help="baseline: quote D price units either side of the mid")
    p.add_argument("--gamma", type=float,
                   help="override the parameter file's gamma (1/price)")
    p.add_argument("--from", dest="start", type=_when,
                   help="window start: epoch seconds, YYYY-MM-DD or ISO time (UTC)")
    p.add_argument("--to", dest="end", type=_when,
                   help="window end (exclusive), same forms as --from")
    # Every strategy setting, its default and its help, from BacktestConfig.
    add_options(p, BacktestConfig)
    p.add_argument("--fee-tier", metavar="NAME",
                   help="the venue's fee tier whose maker and taker rates the backtest pays: "
                        "hyperliquid:0..6 (+mm1..3, +wood..diamond) or bybit:vip0..vip5/"
                        "supreme (asmm/core/fees.py); an explicit --maker-fee/--taker-fee "
                        "overrides the tier's rate")
    # None tells "not given" from "given as the default", so a tier can fill only what the
    # user left out; _config puts the declared default back when no tier is named either.
    p.set_defaults(maker_fee=None, taker_fee=None)
    p.add_argument("--sample-seconds", type=float, default=60.0,
                   help="equity/plot sampling interval, s (must divide 3600; default: "
                        "%(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print one flat JSON object instead of tables")
    p.add_argument("--plot", metavar="OUT.png", help="write a PNG: mid, quotes, fills, "
                                                     "inventory and equity")
    from asmm.cli import backtest_sweep

    backtest_sweep.add_arguments(p)
    p.set_defaults(func=run, backtest_parser=p)


def _fees(args) -> dict[str, float]:
    """``maker_fee`` and ``taker_fee``: as given, else the tier's (``--fee-tier``), else
    BacktestConfig's defaults (fractions of notional)."""
    import dataclasses

    from asmm.core.fees import fee_tier
    from asmm.core.settings import default_of
    from asmm.sim.config import BacktestConfig

    tier = fee_tier(args.fee_tier) if args.fee_tier else None  # ConfigError naming the tiers
    declared = {f.name: default_of(f) for f in dataclasses.fields(BacktestConfig)}
    return {name: given if given is not None else
            getattr(tier, side) if tier is not None else declared[name]
            for name, side, given in (("maker_fee", "maker", args.maker_fee),
                                      ("taker_fee", "taker", args.taker_fee))}


def _config(args):
    from asmm.sim.config import FIXED, BacktestConfig

    fees = _fees(args)
    if args.fixed_depth is not None:
        if args.gamma is not None:
            raise ValueError("--gamma applies to --params, not to --fixed-depth")
        return config_from(BacktestConfig, args, model=FIXED, fixed_depth=args.fixed_depth,
                           **fees)
    from asmm.core.params import load_params

    params = load_params(args.params, check_fresh=False)
    if params.coin != args.coin:
        raise ValueError(f"{args.params} is for {params.coin}, not {args.coin}")
    quoted = BacktestConfig.quoting(params)
    if args.gamma is not None:
        quoted["gamma"] = args.gamma
    return config_from(BacktestConfig, args, **quoted, **fees)


def _fmt(v) -> str:
    if isinstance(v, float):
        return "n/a" if v != v else f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)


def _markouts(suffix: str):
    """A cell of the markouts at 1 s / 10 s / 60 s of the fills ``suffix`` names."""
    from asmm.sim.markouts import HORIZONS

    def cell(s):
        vals = (s[f"markout_{h:g}s_bp{suffix}"] for h in HORIZONS)
        return " / ".join("n/a" if v != v else f"{v:+.2f}" for v in vals)

    return cell


def _fill_rows(sums: list[dict]) -> list[tuple]:
    """Rows of fills by how they came about and of markouts (all fills, per side, per how):
    the kinds of fill that happened in any column."""
    from asmm.sim.engine import HOW_KEYS

    hows = [h for h in HOW_KEYS if any(s[f"fills_{h}"] for s in sums)]
    label = {h: h.replace("_", "-") for h in hows}
    return [*((f"  of them {label[h]}", f"fills_{h}") for h in hows),
            ("markout 1 s / 10 s / 60 s, bp", _markouts("")),
            ("  of bid fills", _markouts("_bid")), ("  of ask fills", _markouts("_ask")),
            *((f"  of {label[h]} fills", _markouts(f"_{h}")) for h in hows)]


def run(args) -> int:
    from asmm.cli import backtest_sweep

    if args.sweep:
        return backtest_sweep.run(args)
    if why := backtest_sweep.check(args):
        args.backtest_parser.error(why)
    if args.params is None and args.fixed_depth is None:
        args.backtest_parser.error("one of the arguments --params --fixed-depth is required")
    if args.coin is None:
        args.coin = "BTC"
    return _run_one(args)


def _run_one(args) -> int:
    import json
    import math

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from asmm.core.errors import DataError
    from asmm.core.params import ParamsError
    from asmm.sim import EXECUTIONS, load_events, run_grid

    err = Console(stderr=True)
    try:
        cfg = _config(args)
        events = load_events(args.data_dir, args.coin, args.start, args.end)
        # The three execution modes in one pass: the gap between them is part of the answer.
        cfgs = [cfg] + [cfg.with_(execution=m) for m in EXECUTIONS if m != cfg.execution]
        with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task("backtesting", total=events.t.size)
            results = run_grid(events, cfgs, sample_seconds=args.sample_seconds,
                               record_fills=bool(args.plot),
                               progress=lambda done, _n: bar.update(task, completed=done))
    except (DataError, ParamsError, ValueError, OSError) as e:
        err.print(f"[red]error:[/red] {e}")
        return 2
    main = results[0]
    summary = main.summary()
    for r in results:
        key = r.config.execution.replace("-", "_")
        summary[f"pnl_{key}"] = r.summary()["pnl"]
    # The rates paid, and the tier they came from (None: named one by one, or the defaults).
    summary.update(fee_tier=args.fee_tier, maker_fee=cfg.maker_fee, taker_fee=cfg.taker_fee)
    if args.plot:
        from asmm.sim.plot import plot_result

        try:
            plot_result(main, args.plot)
        except OSError as e:
            err.print(f"[red]error:[/red] cannot write {args.plot}: {e}")
            return 2
    if args.json:
        print(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v)
                          for k, v in summary.items()}))
        return 0
    out = Console()
    t = Table(title=f"{args.coin} backtest, {summary['hours']:.1f} h, "
                    f"{summary['events']:,} events, fill rule {summary['fill_rule']}, maker "
                    f"fee {cfg.maker_fee * 1e4:.3g} bp"
                    + (f" ({args.fee_tier})" if args.fee_tier else "") + "; the "
                    f"{len(results)} execution modes simulated in one pass in "
                    f"{summary['seconds']:.2f} s",
              title_justify="left")
    t.add_column("metric")
    for r in results:
        t.add_column(r.config.execution, justify="right")
    rows = [("PnL, marked to mid", "pnl"), ("  realised (before fees)", "realised"),
            ("  unrealised", "unrealised"), ("  fees", "fees"),
            ("PnL after closing at taker fee", "pnl_after_close"),
            ("Sharpe (hourly, annualised)", "sharpe"), ("max drawdown", "max_drawdown"),
            ("fills bid", "fills_bid"), ("fills ask", "fills_ask"),
            *_fill_rows(sums := [r.summary() for r in results]),
            ("avg captured spread, bp", "captured_spread_bp"),
            ("inventory mean, lots", "inventory_mean"), ("inventory std", "inventory_std"),
            ("inventory max |q|", "inventory_max_abs"),
            ("time at inventory bound", "time_at_bound"),
            ("post-only rejects", "rejected_post_only"),
            ("most orders resting at once", "max_resting_orders")]
    for label, key in rows:
        t.add_row(label, *(_fmt(s[key]) if isinstance(key, str) else key(s) for s in sums))
    out.print(t)
    gaps = ", ".join(f"{s['execution']} {s['pnl'] - sums[0]['pnl']:+,.2f}" for s in sums[1:])
    out.print(f"PnL gap vs {sums[0]['execution']}: {gaps}")
    if args.plot:
        out.print(f"plot written to {args.plot}")
    return 0
