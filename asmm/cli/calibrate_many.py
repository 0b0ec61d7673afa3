"""`asmm calibrate --coins BTC,ETH|all`: many coins on Dask (:mod:`asmm.calibrate.many`), a
progress bar over coins, a summary table (or ``--json``), exit 1 if any coin failed.
Argument checks, terminal output and the sidecar loop only; :mod:`asmm.cli.calibrate`
dispatches here when ``--coins`` is given."""

from __future__ import annotations

import math


def check(args) -> str | None:
    """Why the many-coins options do not go together as given (None: they do)."""
    if args.coins is None:
        given = [flag for flag, v in (("--output-dir", args.output_dir),
                                      ("--scheduler", args.scheduler),
                                      ("--workers", args.workers), ("--json", args.json))
                 if v not in (None, False)]
        return (f"{', '.join(given)} {'go' if len(given) > 1 else 'goes'} with --coins"
                if given else None)
    if args.coin is not None:
        return (f"name the coins either as the argument ({args.coin}) or with --coins, "
                "not both")
    if args.output is not None:
        return ("--output names one file; with --coins each coin's file goes into "
                "--output-dir DIR (DIR/avellaneda_parameters_<COIN>.json)")
    if args.scheduler is not None and args.workers is not None:
        return ("--workers sizes the local cluster; a scheduler's workers are the ones "
                "started on its machines (dask worker ADDRESS)")
    if args.workers is not None and args.workers < 1:
        return f"--workers {args.workers}: at least 1"
    return None


def run(args, cfg, data_dir, err) -> int:
    """Calibrate ``--coins`` once, or every ``--every`` seconds until stopped."""
    from pathlib import Path

    from asmm.calibrate.many import parse_coins
    from asmm.cli.calibrate import _one_line
    from asmm.core.cluster import cli_client
    from asmm.core.errors import ConfigError

    # Handed to the workers: absolute, so a worker started elsewhere does not read it from
    # its own working folder.
    data_dir = Path(data_dir).absolute()
    output_dir = Path(args.output_dir or "scripts").absolute()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        coins = parse_coins(args.coins, data_dir)
    except (ConfigError, OSError) as e:
        err.print(f"[red]error:[/red] {_one_line(e)}", soft_wrap=True)
        return 2
    # The local workers' warnings are in each file (diagnostics.warnings), printed with -v.
    try:
        with cli_client(args.scheduler, args.workers) as client:
            return _run(args, cfg, coins, data_dir, output_dir, client, err)
    except ConfigError as e:
        err.print(f"[red]error:[/red] {_one_line(e)}", soft_wrap=True)
        return 2


def _run(args, cfg, coins, data_dir, output_dir, client, err) -> int:
    import logging
    import signal
    import threading

    from asmm.calibrate.many import parse_coins
    from asmm.calibrate.run import run_every
    from asmm.core.errors import CalibrationError, ConfigError

    def once() -> list:
        todo = coins
        if args.every is not None:
            # 'all' is listed again each run: a coin the collector added is picked up.
            try:
                todo = parse_coins(args.coins, data_dir)
            except ConfigError as e:
                raise CalibrationError(str(e)) from None
        outcomes, wall = _with_progress(err, todo, lambda on_done: _calibrate(
            todo, data_dir, output_dir, cfg, client, on_done))
        _report(args, outcomes, client, output_dir, wall)
        return outcomes

    if args.every is None:
        return 1 if any(not o.ok for o in once()) else 0

    def job() -> None:
        failed = [o.coin for o in once() if not o.ok]
        if failed:
            raise CalibrationError(f"{len(failed)} of the coins failed ({', '.join(failed)}); "
                                   "the others were written")

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger(__name__).warning("calibrator sidecar: %s every %.0f s, writing into %s",
                                        args.coins, args.every, output_dir)
    run_every(job, args.every, stop)
    return 0


def _calibrate(coins, data_dir, output_dir, cfg, client, on_done):
    import time

    from asmm.calibrate.many import calibrate_many

    t0 = time.perf_counter()
    outcomes = calibrate_many(coins, data_dir, output_dir, cfg, client, on_done=on_done)
    return outcomes, time.perf_counter() - t0


def _with_progress(console, coins, work):
    """A bar over coins (on a terminal), advanced as each task finishes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("coins", total=len(coins))

        def on_done(o):
            what = f"{o.coin} on {_worker(o)}" if o.ok else f"{o.coin} failed"
            bar.update(task, advance=1, description=f"coins (last: {what})")

        return work(on_done)


def _worker(o) -> str:
    """The worker's name and, when the name is not it, its address without the scheme."""
    if not o.worker:
        return "?"
    addr = o.worker.split("://", 1)[-1]
    return addr if o.worker_name in ("", o.worker) else f"{o.worker_name} {addr}"


def _num(x, fmt: str = ".4g") -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else \
        format(x, fmt)


def _report(args, outcomes, client, output_dir, wall: float) -> None:
    import json
    from pathlib import Path

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    where = _cluster(args, client)
    # A file reported written but not seen here: the output folder is not shared with the
    # workers (docs/cluster.md).
    elsewhere = [o.coin for o in outcomes if o.ok and not Path(o.path).exists()]
    failed = [o for o in outcomes if not o.ok]
    if args.json:
        print(json.dumps({"output_dir": str(output_dir), "cluster": where,
                          "wall_seconds": wall, "failed": len(failed),
                          "not_seen_here": elsewhere,
                          "coins": [o.as_dict() for o in outcomes]}, indent=2))
        return
    t = Table(title=f"calibration of {len(outcomes)} coins on {where} -> {output_dir}: "
                    f"{len(outcomes) - len(failed)} written, {len(failed)} failed, "
                    f"{wall:.1f} s", title_justify="left")
    for col in ("coin", "worker", "σ USDC/√s", "A bid /s", "k bid /USDC", "A ask /s",
                "k ask /USDC", "γ /USDC", "profitable", "PnL/h USDC", "fills/h", "time s"):
        t.add_column(col, justify="left" if col in ("coin", "worker") else "right")
    t.add_column("file, or why not", overflow="fold")
    for o in outcomes:
        tail = escape(Path(o.path).name) if o.ok else f"[red]failed:[/red] {escape(o.error)}"
        prof = "" if o.profitable is None else ("yes" if o.profitable else "no")
        t.add_row(o.coin, escape(_worker(o)), _num(o.sigma), _num(o.A_bid), _num(o.k_bid),
                  _num(o.A_ask), _num(o.k_ask), _num(o.gamma), prof,
                  _num(o.pnl_per_hour, "+.4g"), _num(o.fills_per_hour, ".3g"),
                  _num(o.seconds, ".1f"), tail)
    out = Console()
    if not out.is_terminal:
        # A pipe or log file: each row on one line, not cut at 80 columns.
        out = Console(width=1000)
    out.print(t)
    if warned := [o.coin for o in outcomes if o.warnings]:
        out.print(f"warnings in the files of {', '.join(warned)} (diagnostics.warnings; "
                  "-v prints them as they come)", soft_wrap=True)
    if elsewhere:
        out.print(f"[yellow]note:[/yellow] {', '.join(elsewhere)}: written by the workers "
                  f"but not found here in {escape(str(output_dir))}; give --output-dir a "
                  "folder every worker and this machine share (docs/cluster.md)",
                  soft_wrap=True)


def _cluster(args, client) -> str:
    n = len(client.nthreads())
    if args.scheduler is not None:
        return f"{args.scheduler} ({n} workers)"
    return f"a local cluster of {n} worker processes"
