"""`asmm calibrate [COIN]`: sigma, A and k per side and gamma from collector data -> parameter
file. Also `scripts/calculate_avellaneda_parameters.py`. Argument parsing and terminal
output only; the work is :mod:`asmm.calibrate.run`."""

from __future__ import annotations

import argparse
import re

from asmm.core.fees import MAKER_FEE

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """``90``, ``30s``, ``15m``, ``24h``, ``1d`` -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smhd]?)\s*", text)
    if not m or float(m[1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration like 24h, 90m")
    return float(m[1]) * _UNITS[m[2] or "s"]


def add_options(p: argparse.ArgumentParser) -> None:
    """The options shared by `asmm calibrate` and the script."""
    p.add_argument("coin", nargs="?", default="BTC", help="coin to calibrate")
    p.add_argument("--data-dir", help="collector data folder (default: $HL_DATA_LOC, else "
                                      "HL_data_collector/HL_data)")
    p.add_argument("--output", help="parameter file to write (default: "
                                    "scripts/avellaneda_parameters_<COIN>.json)")
    p.add_argument("--model", choices=["glft", "as"], default="glft",
                   help="quote model the parameters are for (and gamma is backtested with)")
    p.add_argument("--as-horizon", type=duration, default=86400.0,
                   help="model 'as': session length T; tau runs down to the next multiple of "
                        "it in UTC epoch time (1d: the end of the UTC day)")
    p.add_argument("--window-days", type=int, default=1,
                   help="latest days pooled for sigma, A and k")
    p.add_argument("--walk-forward-days", type=int, default=1,
                   help="latest days backtested in the gamma search, each with estimates from "
                        "the days before it; 0 uses the documented fallback rule instead")
    p.add_argument("--gamma-points", type=int, default=32, help="size of the log-spaced gamma grid")
    p.add_argument("--gamma-min", type=float,
                   help="smallest gamma, 1/price (default: 0.001 x the scale: k for glft, "
                        "1/(k sigma^2 T) for as)")
    p.add_argument("--gamma-max", type=float,
                   help="largest gamma, 1/price (default: 10 x the scale)")
    p.add_argument("--risk-aversion", type=float, default=0.5,
                   help="objective = mean hourly PnL - this x std of hourly PnL - inventory "
                        "penalty")
    p.add_argument("--min-fills-per-hour", type=float, default=1.0,
                   help="a gamma whose backtest fills less often is not eligible (quoting so "
                        "wide that nothing fills is not market making)")
    p.add_argument("--inventory-penalty", type=float, default=0.0,
                   help="objective penalty, price per lot^2 per hour of mean |inventory|^2")
    p.add_argument("--maker-fee", type=float, default=MAKER_FEE,
                   help="maker fee as a fraction of notional (0.00015 = 1.5 bp)")
    p.add_argument("--order-size", type=float, default=0.001,
                   help="order size in coin (one lot) for the backtests")
    p.add_argument("--max-inventory", type=float, default=5.0,
                   help="inventory bound Q in lots for the backtests")
    p.add_argument("--sigma-dt", type=float, default=1.0,
                   help="grid of the mid for sigma, seconds")
    p.add_argument("--tick", type=float, help="price tick (default: inferred from the quotes)")
    p.add_argument("--min-sweeps", type=int, default=100,
                   help="fewest sweeps per side that support an (A, k) estimate")
    p.add_argument("--max-silence", type=duration, default=300.0,
                   help="a book frozen longer than this is treated as an outage (e.g. 5m)")
    p.add_argument("--quote-outlier-z", type=float, default=20.0,
                   help="a quote whose mid lies outside the trades before and after it by more "
                        "than this many robust sigmas over the time between them (plus the "
                        "floor) is left out as implausible")
    p.add_argument("--quote-outlier-floor", type=float, default=1e-3,
                   help="the least distance from those trades that makes a quote implausible, "
                        "as a fraction of the price")
    p.add_argument("--valid-for", type=duration, default=36 * 3600.0,
                   help="validity of the written file after the end of its data (e.g. 36h); "
                        "older data is refused, since its file would be expired when written")
    p.add_argument("--valid-from", choices=["data", "now"], default="data",
                   help="'now' counts the validity from computed_at instead: for recorded "
                        "days replayed as live (asmm replay --start-at now, the demo) only")
    p.add_argument("--every", type=duration,
                   help="sidecar mode: recompute on this schedule (e.g. 24h) until stopped; a "
                        "failed run is logged and the last good file kept")


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate", help="estimate sigma, A, k per side and gamma; write the parameter file",
        description="Calibrate the quote model from collector data: sigma from the mid, A and k "
                    "per side by maximum likelihood from aggressive sweeps, gamma by walk-"
                    "forward tick-level backtest. Writes the parameter file atomically; a "
                    "failed run exits non-zero and leaves the previous file untouched.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_options(p)
    p.set_defaults(func=run)


def config_from_args(args):
    from datetime import timedelta

    from asmm.calibrate.config import CalibrationConfig

    return CalibrationConfig(
        coin=args.coin, model=args.model, sigma_dt=args.sigma_dt, tick=args.tick,
        window_days=args.window_days, walk_forward_days=args.walk_forward_days,
        gamma_points=args.gamma_points, gamma_min=args.gamma_min, gamma_max=args.gamma_max,
        risk_aversion=args.risk_aversion, min_fills_per_hour=args.min_fills_per_hour,
        inventory_penalty=args.inventory_penalty,
        as_horizon=args.as_horizon, maker_fee=args.maker_fee, order_size=args.order_size,
        max_inventory=args.max_inventory,
        min_sweeps=args.min_sweeps, max_silence=args.max_silence,
        quote_outlier_z=args.quote_outlier_z, quote_outlier_floor=args.quote_outlier_floor,
        validity=timedelta(seconds=args.valid_for), valid_from=args.valid_from)


def run(args) -> int:
    import logging
    import signal
    import threading

    from rich.console import Console
    from rich.markup import escape

    from asmm.calibrate.config import resolve_data_dir
    from asmm.calibrate.run import calibrate, run_every, write_result
    from asmm.core.errors import CalibrationError
    from asmm.core.params import default_path

    err = Console(stderr=True)
    try:
        cfg = config_from_args(args)
    except ValueError as e:
        err.print(f"[red]error:[/red] {_one_line(e)}", soft_wrap=True)
        return 2
    data_dir = resolve_data_dir(args.data_dir)
    output = args.output or default_path(cfg.coin)

    def once() -> None:
        result = _with_progress(err, lambda pr: calibrate(data_dir, cfg, progress=pr))
        write_result(output, result)
        _print_summary(result, output)

    if args.every is None:
        try:
            once()
        except (CalibrationError, OSError) as e:
            why = _one_line(e)
        except Exception as e:
            # A bug, not bad data: still one line; the traceback comes with -vv.
            logging.getLogger(__name__).debug("traceback", exc_info=True)
            why = f"internal error ({type(e).__name__}: {_one_line(e)}; -vv shows the traceback)"
        else:
            return 0
        err.print(f"[red]calibration failed:[/red] {why}; nothing written, "
                  f"{escape(str(output))} (if any) is unchanged", soft_wrap=True)
        return 1

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger(__name__).warning("calibrator sidecar: every %.0f s, writing %s",
                                        args.every, output)
    run_every(once, args.every, stop)
    return 0


def _one_line(e: BaseException) -> str:
    """The message as one line of plain text (not Rich markup)."""
    from rich.markup import escape

    return escape(" ".join(str(e).split()))


def _with_progress(console, work):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from asmm.calibrate.config import Progress as Hooks

    with Progress("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        tasks = {}

        class Bars(Hooks):
            def start(self, what, total):
                tasks[what] = bar.add_task(what, total=total)

            def advance(self, what, n=1):
                bar.advance(tasks[what], n)

        return work(Bars())


def _print_summary(result, output) -> None:
    from rich.console import Console
    from rich.table import Table

    from asmm.calibrate.run import summary_rows
    from asmm.cli.tables import ladder_table

    rows, ladder = summary_rows(result)
    p = result.params
    t = Table(title=f"{p.coin} calibration ({p.model}) -> {output}", title_justify="left")
    for col in ("parameter", "estimate", "based on"):
        t.add_column(col)
    for r in rows:
        t.add_row(*r)
    out = Console()
    if not out.is_terminal:
        # A pipe or log file reports 80 columns, which would cut the prices short.
        out = Console(width=120)
    out.print(t)
    out.print(ladder_table(f"quotes at mid {p.mid_price:,.2f} for inventory q = -2..2 (lots)",
                           ladder))
