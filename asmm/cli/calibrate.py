"""`asmm calibrate [COIN]`: sigma, A and k per side and gamma from collector data -> parameter
file. Also `scripts/calculate_avellaneda_parameters.py`. Argument parsing and terminal
output only; the work is :mod:`asmm.calibrate.run`. Many coins on Dask (``--coins``):
:mod:`asmm.cli.calibrate_many`."""

from __future__ import annotations


def register(sub) -> None:
    from asmm.calibrate.config import VENUE_FEE_TIERS, CalibrationConfig, duration
    from asmm.cli.options import add_options

    p = sub.add_parser(
        "calibrate", help="estimate sigma, A, k per side and gamma; write the parameter file",
        description="Calibrate the quote model from collector data: sigma from the mid, A and k "
                    "per side by maximum likelihood from aggressive sweeps, gamma by walk-"
                    "forward tick-level backtest. Writes the parameter file atomically; a "
                    "failed run exits non-zero and leaves the previous file untouched.")
    p.add_argument("coin", nargs="?", default=None,
                   help=f"coin to calibrate (default: {CalibrationConfig.coin}); many at once: "
                        "--coins")
    p.add_argument("--data-dir", help="collector data folder (default: $HL_DATA_LOC, else "
                                      "HL_data_collector/HL_data)")
    p.add_argument("--output", help="parameter file to write (default: "
                                    "scripts/avellaneda_parameters_<COIN>.json)")
    # No --execution or --fee-tier default here: unset, they come from --bot-config, and the
    # tier else from the venue of the data (_as_the_bot).
    add_options(p, CalibrationConfig, defaults={"execution": None, "fee_tier": None})
    p.add_argument("--venue", choices=sorted(VENUE_FEE_TIERS),
                   help="the exchange the data came from; without --fee-tier (and a "
                        "--bot-config naming one) the fees are its base tier: "
                        + ", ".join(f"{v} {t}" for v, t in VENUE_FEE_TIERS.items())
                        + " (default: the data folder's venue.json, which asmm collect "
                          "writes, else hyperliquid)")
    p.add_argument("--bot-config", metavar="CONFIG.json",
                   help="the Freqtrade config of the bot the file is for: its asmm.mode sets "
                        "--execution when not given (pingpong: freqtrade; long/short: "
                        "freqtrade-pair), its asmm.lot_size --order-size and its asmm.fee_tier "
                        "and asmm.maker_fee the fees, each unless given here (default: the "
                        "bot's defaults, a ping-pong bot)")
    p.add_argument("--every", type=duration,
                   help="sidecar mode: recompute on this schedule (e.g. 24h) until stopped; a "
                        "failed run is logged and the last good file kept")
    many = p.add_argument_group(
        "many coins on Dask (one task per coin; docs/cluster.md)")
    many.add_argument("--coins", metavar="BTC,ETH,...|all",
                      help="calibrate these coins, or every coin with data in --data-dir, "
                           "one Dask task each; instead of COIN")
    many.add_argument("--output-dir", metavar="DIR",
                      help="with --coins: where each coin's avellaneda_parameters_<COIN>.json "
                           "is written, a folder every worker writes to (default: scripts)")
    many.add_argument("--scheduler", metavar="tcp://HOST:8786",
                      help="with --coins: run on the Dask scheduler at this address (default: "
                           "a local cluster)")
    many.add_argument("--workers", type=int, metavar="N",
                      help="with --coins: worker processes of the local cluster (default: the "
                           "cores)")
    many.add_argument("--json", action="store_true",
                      help="with --coins: print the outcome per coin as JSON instead of the "
                           "table")
    p.set_defaults(func=run)


def _as_the_bot(args, data_dir) -> dict:
    """What the bot's config decides for the calibration: the execution its mode trades
    with, its lot, its fees (``asmm.fee_tier``, ``asmm.maker_fee``) and, for a live bot
    (``dry_run: false``), Freqtrade's cadence as a live bot, each unless the command line
    names one. Without ``--bot-config``, the bot's defaults (a ping-pong
    bot). A fee tier named by neither is the base tier of the data's venue (``--venue``,
    else the folder's ``venue.json``: Bybit data is calibrated at ``bybit:vip0``)."""
    import json
    import logging

    from asmm.calibrate.config import CalibrationConfig, data_venue_and_tier
    from asmm.core.enums import execution_of_mode
    from asmm.core.errors import ConfigError
    from asmm.freqtrade.config import MMConfig

    mm = MMConfig()
    if args.bot_config is not None:
        try:
            with open(args.bot_config, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            raise ConfigError(f"--bot-config {args.bot_config}: cannot read it as JSON "
                              f"({e})") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"--bot-config {args.bot_config}: not a Freqtrade config")
        mm = MMConfig.from_dict(doc.get("asmm"))
    out = {"execution": args.execution or execution_of_mode(mm.mode)}
    venue, tier = data_venue_and_tier(data_dir, args.venue)
    out["venue"] = venue
    out["fee_tier"] = args.fee_tier or tier
    if args.bot_config is not None:
        if args.order_size == CalibrationConfig.order_size:
            out["order_size"] = mm.lot_size
        # The fees the bot quotes with, unless the command line names others.
        if args.fee_tier is None and mm.fee_tier is not None:
            out["fee_tier"] = mm.fee_tier
        if args.maker_fee is None and mm.maker_fee is not None:
            out["maker_fee"] = mm.maker_fee
        # An unknown dry_run counts as live, as in the bot.
        if not doc.get("dry_run", False):
            from asmm.core.settings import FREQTRADE_FILL_REACTION_MS, FREQTRADE_REQUOTE_GAP_MS
            if args.fill_reaction_ms == CalibrationConfig.fill_reaction_ms:
                out["fill_reaction_ms"] = FREQTRADE_FILL_REACTION_MS
            if args.requote_gap_ms == CalibrationConfig.requote_gap_ms:
                out["requote_gap_ms"] = FREQTRADE_REQUOTE_GAP_MS
    if not out["fee_tier"].lower().startswith(venue + ":"):
        logging.getLogger(__name__).warning(
            "the data is %s's, the fees %s's (%s): the verdict is for trading it there",
            venue, out["fee_tier"].partition(":")[0], out["fee_tier"])
    return out


def run(args) -> int:
    import logging
    import signal
    import threading

    from rich.console import Console
    from rich.markup import escape

    from asmm.calibrate.config import CalibrationConfig, resolve_data_dir
    from asmm.calibrate.run import calibrate, run_every, write_result
    from asmm.cli import calibrate_many
    from asmm.cli.options import config_from
    from asmm.core.errors import CalibrationError, ConfigError
    from asmm.core.params import default_path

    err = Console(stderr=True)
    if why := calibrate_many.check(args):
        err.print(f"[red]error:[/red] {escape(why)}", soft_wrap=True)
        return 2
    data_dir = resolve_data_dir(args.data_dir)
    try:
        cfg = config_from(CalibrationConfig, args, coin=args.coin or CalibrationConfig.coin,
                          **_as_the_bot(args, data_dir))
    except (ValueError, ConfigError) as e:
        err.print(f"[red]error:[/red] {_one_line(e)}", soft_wrap=True)
        return 2
    if args.coins is not None:
        return calibrate_many.run(args, cfg, data_dir, err)
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
    # The verdict, said plainly: an unprofitable one is information, not a failure.
    out.print(f"[bold]verdict:[/bold] {result.verdict_sentence}", soft_wrap=True)
