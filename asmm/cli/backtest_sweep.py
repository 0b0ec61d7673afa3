"""`asmm backtest --sweep`: a grid of backtests × coins × days on Dask
(:mod:`asmm.sim.sweep`): the options, their checks, a progress bar over (coin, day) tasks,
the results written as Parquet, a summary per grid point (or ``--json``), the failures;
exit 1 if any (coin, day) failed. :mod:`asmm.cli.backtest` dispatches here on ``--sweep``.
"""

from __future__ import annotations

import math

TOP = 20  # grid points shown by default
# Options of the single run that a sweep names otherwise.
_SINGLE_ONLY = (("--coin", "coin", "--coins"), ("--params", "params", "--params-dir"),
                ("--fixed-depth", "fixed_depth", "--fixed-depths"),
                ("--gamma", "gamma", "--gammas"), ("--from", "start", "--days"),
                ("--to", "end", "--days"), ("--plot", "plot", "--out"))
_SWEEP_ONLY = (("--coins", "coins"), ("--days", "days"), ("--gammas", "gammas"),
               ("--fixed-depths", "fixed_depths"), ("--latencies-ms", "latencies_ms"),
               ("--fee-tiers", "fee_tiers"), ("--fill-rules", "fill_rules"),
               ("--params-dir", "params_dir"), ("--scheduler", "scheduler"),
               ("--workers", "workers"), ("--out", "out"), ("--top", "top"))


def add_arguments(p) -> None:
    g = p.add_argument_group(
        "sweep", "--sweep: every combination of the grid options (each a comma list; one "
                 "left out takes its single option's value) over coins x days, one Dask "
                 "task per (coin, day) running the whole grid in one pass")
    g.add_argument("--sweep", action="store_true",
                   help="sweep a grid over coins x days on Dask instead of one backtest")
    g.add_argument("--coins", metavar="C,..|all",
                   help="coins to sweep, or all with data (default: all)")
    g.add_argument("--days", metavar="YYYY-MM-DD,..|all",
                   help="UTC days to sweep, or all each coin has (default: all)")
    g.add_argument("--gammas", metavar="G,..",
                   help="gammas (1/price) quoting each coin's parameter file")
    g.add_argument("--fixed-depths", metavar="D,..",
                   help="baseline depths (price) from the mid")
    g.add_argument("--latencies-ms", metavar="MS,..", help="latencies, ms")
    g.add_argument("--fee-tiers", metavar="NAME,..",
                   help="fee tiers (as --fee-tier: hyperliquid:0..6, bybit:vip0, ...)")
    g.add_argument("--fill-rules", metavar="RULE,..",
                   help="fill rules: exchange, trades, freqtrade-dry-run")
    g.add_argument("--params-dir", metavar="DIR",
                   help="folder of the parameter files (avellaneda_parameters_<COIN>.json, "
                        "as asmm calibrate --coins writes); needed by --gammas, and when "
                        "no --fixed-depths is given (the files quoted as they are)")
    g.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="run on this Dask scheduler's workers (default: a local cluster)")
    g.add_argument("--workers", type=int,
                   help="local cluster: worker processes, one thread each (default: cores)")
    g.add_argument("--out", metavar="RESULTS.parquet",
                   help="the results, one row per coin, day and grid point (required)")
    g.add_argument("--top", type=int,
                   help=f"grid points shown, best mean PnL first (default: {TOP})")


def check(args) -> str | None:
    """Why the sweep options do not go together as given (None: they do)."""
    if not args.sweep:
        given = [flag for flag, dest in _SWEEP_ONLY
                 if getattr(args, dest) is not None]
        return (f"{', '.join(given)} {'go' if len(given) > 1 else 'goes'} with --sweep"
                if given else None)
    for flag, dest, instead in _SINGLE_ONLY:
        if getattr(args, dest) is not None:
            return f"{flag} is for one backtest; a sweep takes {instead}"
    if args.out is None:
        return "--sweep needs --out RESULTS.parquet (one row per coin, day and grid point)"
    if args.scheduler is not None and args.workers is not None:
        return ("--workers sizes the local cluster; a scheduler's workers are the ones "
                "started on its machines (dask worker ADDRESS)")
    if args.workers is not None and args.workers < 1:
        return f"--workers {args.workers}: at least 1"
    if args.fee_tiers and args.fee_tier:
        return "name the fee tiers with --fee-tiers only"
    if (args.fee_tiers or args.fee_tier) and (args.maker_fee is not None
                                               or args.taker_fee is not None):
        return ("--maker-fee/--taker-fee and fee tiers do not go together in a sweep: "
                "sweep tiers, or give the rates")
    return None


def _floats(text: str | None, flag: str) -> list[float]:
    from asmm.core.errors import ConfigError

    if text is None:
        return []
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: numbers separated by commas") from None


def _names(text: str | None) -> list[str]:
    return [] if text is None else [x.strip() for x in text.split(",") if x.strip()]


def _spec(args):
    """The :class:`asmm.sim.sweep.SweepSpec` the options describe."""
    from pathlib import Path

    from asmm.cli.backtest import _fees
    from asmm.cli.options import config_from
    from asmm.core.settings import declared
    from asmm.sim.config import FIXED, BacktestConfig
    from asmm.sim.sweep import expand_grid

    fees = _fees(args)
    # The settings as the options give them; the quote is the grid's.
    template = config_from(BacktestConfig, args, model=FIXED, fixed_depth=1.0, **fees)
    settings = {f.name: getattr(template, f.name) for f, _ in declared(BacktestConfig)}
    tiers = _names(args.fee_tiers) or ([args.fee_tier] if args.fee_tier else [])
    return expand_grid(
        settings, gammas=_floats(args.gammas, "--gammas"),
        fixed_depths=_floats(args.fixed_depths, "--fixed-depths"),
        latencies_ms=_floats(args.latencies_ms, "--latencies-ms"), fee_tiers=tiers,
        fill_rules=_names(args.fill_rules),
        params_dir=None if args.params_dir is None else Path(args.params_dir).absolute(),
        sample_seconds=args.sample_seconds)


def _tasks(args, data_dir) -> tuple[list, list]:
    """(coin, day) pairs to run, and the outcomes of coins without a day to sweep."""
    from asmm.data.selection import coin_days, parse_coins, parse_days
    from asmm.sim.sweep import TaskOutcome

    coins = parse_coins(args.coins or "all", data_dir)
    days = parse_days(args.days or "all")
    tasks, none = [], []
    for coin in coins:
        todo = coin_days(data_dir, coin, days)
        tasks += [(coin, d) for d in todo]
        if not todo:
            none.append(TaskOutcome(coin, None, error="no day with both prices and trades "
                                                      f"data in {data_dir}"))
    return tasks, none


def run(args) -> int:
    from pathlib import Path

    from rich.console import Console

    from asmm.core.cluster import cli_client
    from asmm.core.errors import ConfigError

    err = Console(stderr=True)
    if why := check(args):
        err.print(f"[red]error:[/red] {why}", soft_wrap=True)
        return 2
    # Handed to the workers: absolute, so a worker started elsewhere does not read it from
    # its own working folder.
    data_dir = Path(args.data_dir).absolute()
    try:
        spec = _spec(args)
        tasks, no_days = _tasks(args, data_dir)
        if args.top is not None and args.top < 1:
            raise ConfigError(f"--top {args.top}: at least 1")
    except (ConfigError, ValueError) as e:
        err.print(f"[red]error:[/red] {' '.join(str(e).split())}", soft_wrap=True)
        return 2
    try:
        with cli_client(args.scheduler, args.workers) as client:
            return _run(args, spec, tasks, no_days, data_dir, client, err)
    except ConfigError as e:
        err.print(f"[red]error:[/red] {' '.join(str(e).split())}", soft_wrap=True)
        return 2


def _run(args, spec, tasks, no_days, data_dir, client, err) -> int:
    import time

    from asmm.core.cluster import describe
    from asmm.sim.sweep import results_table, run_sweep, summarize, write_results

    t0 = time.perf_counter()
    outcomes = no_days + (_with_progress(err, len(tasks), lambda on_done: run_sweep(
        tasks, data_dir, spec, client, on_done=on_done)) if tasks else [])
    wall = time.perf_counter() - t0
    failures = [o.failure() for o in outcomes if not o.ok]
    table = results_table(outcomes)
    if table is not None:
        try:
            write_results(args.out, table, spec, failures)
        except OSError as e:
            err.print(f"[red]error:[/red] cannot write {args.out}: {e}", soft_wrap=True)
            return 2
    summary = summarize(table, spec) if table is not None else []
    _report(args, spec, outcomes, summary, failures, describe(client, args.scheduler),
            wall, written=table is not None)
    return 1 if failures else 0


def _with_progress(console, total, work):
    """A bar over (coin, day) tasks (on a terminal), advanced as each finishes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("coin-days", total=total)

        def on_done(o):
            what = f"{o.coin} {o.day} on {o.worker_name or '?'}" if o.ok else \
                f"{o.coin} {o.day} failed"
            bar.update(task, advance=1, description=f"coin-days (last: {what})")

        return work(on_done)


def _num(x, fmt: str = ".4g") -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else \
        format(x, fmt)


def _worker(worker: str, name: str) -> str:
    """The worker's name and, when the name is not it, its address without the scheme."""
    if not worker:
        return "-"
    addr = worker.split("://", 1)[-1]
    return addr if name in ("", worker) else f"{name} {addr}"


def _workers(outcomes) -> dict[str, int]:
    """Tasks run per worker."""
    count: dict[str, int] = {}
    for o in outcomes:
        if o.worker:
            key = _worker(o.worker, o.worker_name)
            count[key] = count.get(key, 0) + 1
    return count


def _report(args, spec, outcomes, summary, failures, where, wall, *, written) -> None:
    import json

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from asmm.sim.sweep import json_safe

    top = args.top or TOP
    ran = [o for o in outcomes if o.day is not None]
    workers = _workers(outcomes)
    rows = sum(len(o.rows) for o in outcomes)
    if args.json:
        print(json.dumps({
            "out": str(args.out) if written else None, "cluster": where,
            "wall_seconds": wall, "tasks": len(ran), "failed": len(failures), "rows": rows,
            "grid_points": len(spec.points), "workers": workers,
            "summary": [{k: json_safe(v) for k, v in s.items()} for s in summary],
            "failures": failures}, indent=2))
        return
    out = Console()
    if not out.is_terminal:
        out = Console(width=1000)  # a pipe or log file: each row on one line
    coins = len({o.coin for o in outcomes})
    n = len(spec.points)
    title = (f"backtest sweep: {n} grid point{'s' * (n != 1)} x {len(ran)} coin-days "
             f"({coins} coins) on {where}: {rows} backtests, {len(failures)} failed, "
             f"{wall:.1f} s" + (f" -> {args.out}" if written else "; nothing written"))
    t = Table(title=escape(title), title_justify="left")
    cols = ("#", "quote", "latency ms", "fee tier", "maker bp", "fill rule", "coin-days",
            "PnL/day mean", "PnL/day worst", "fees/day", "fills/day", "markout 10 s bp",
            "Sharpe", "max DD")
    for c in cols:
        t.add_column(c, justify="left" if c in ("quote", "fee tier", "fill rule") else "right")
    for s in summary[:top]:
        t.add_row(str(s["point"]), s["quote"], _num(s["latency_ms"], "g"),
                  escape(s["fee_tier"] or "-"), _num(s["maker_fee"] * 1e4, ".3g"),
                  s["fill_rule"], str(s["coin_days"]), _num(s["pnl_mean"], "+,.4g"),
                  _num(s["pnl_min"], "+,.4g"), _num(s["fees_mean"], ",.4g"),
                  _num(s["fills_mean"], ",.0f"), _num(s["markout_10s_bp"], "+.3f"),
                  _num(s["sharpe_mean"], ",.4g"), _num(s["max_drawdown_max"], ",.4g"))
    out.print(t)
    if len(summary) > top:
        out.print(f"{len(summary) - top} more grid points in {escape(str(args.out))} "
                  "(--top N shows more)", soft_wrap=True)
    if workers:
        out.print("tasks per worker: " + ", ".join(f"{escape(w)}: {n}"
                                                   for w, n in workers.items()),
                  soft_wrap=True)
    if failures:
        f = Table(title=f"{len(failures)} failed (coin, day)", title_justify="left")
        for c in ("coin", "day", "worker", "why"):
            f.add_column(c, overflow="fold" if c == "why" else "ellipsis")
        for x in failures:
            f.add_row(x["coin"], x["day"] or "-", escape(_worker(x["worker"], x["worker_name"])),
                      f"[red]{escape(x['error'])}[/red]")
        out.print(f)
