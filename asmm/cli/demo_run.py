"""The offline demo behind ``make demo``: from a synthetic market to a PnL report.

Steps, each a subprocess of the component's own CLI with its output in ``<workdir>/logs``:
synthesize -> calibrate -> tick-level backtest -> replay exchange with its paper exchange
(background) -> Freqtrade trading the strategy on it (background, FreqUI/REST on 127.0.0.1)
-> PnL report -> shutdown.
Every step says what it does; a failing step stops the demo naming itself and its log; a
component that is not installed is skipped with a note. Everything started is stopped on
the way out, also on Ctrl-C. The demo holds no formulas: it only runs and shows.

This module runs the steps of :mod:`asmm.cli.demo_steps` in order; :mod:`asmm.cli.demo_process`
holds what they share (the demo's state and the processes it started).
"""

from __future__ import annotations

import signal
from pathlib import Path

from rich.console import Console

from asmm.cli.demo_process import Demo, StepFailed, StepSkipped
from asmm.cli.demo_steps import STEPS


def run_demo(args) -> int:
    console = Console()
    work = Path(args.workdir).resolve()
    d = Demo(args, console, work)
    # "dry-run": the trading step's name before it traded on the paper exchange.
    only = ({"trade" if s == "dry-run" else s for s in args.steps.split(",")}
            if args.steps else None)
    unknown = (only or set()) - {n for n, _, _ in STEPS}
    if unknown:
        console.print(f"[red]error:[/red] unknown step(s) {', '.join(sorted(unknown))}; "
                      f"choose from {', '.join(n for n, _, _ in STEPS)}")
        return 2
    d.logs.mkdir(parents=True, exist_ok=True)
    code = 0
    i, name = 0, "start"

    def on_term(signum, frame):
        raise KeyboardInterrupt

    # `kill <demo>` shuts down what the demo started, as Ctrl-C does.
    previous_term = signal.signal(signal.SIGTERM, on_term)
    try:
        for i, (name, title, fn) in enumerate(STEPS, 1):
            if only is not None and name not in only:
                continue
            console.rule(f"[bold]{i}. {title}")
            try:
                fn(d)
            except StepSkipped as e:
                note = f"step {i} ({name}) skipped: {e}"
                d.notes.append(note)
                console.print(f"[yellow]{note}[/yellow]")
    except StepFailed as e:
        console.print(f"[bold red]step {i} ({name}) failed:[/bold red] {e}")
        if e.log is not None:
            console.print(f"read the log: [bold]{e.log}[/bold]")
        code = 1
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted during step {i} ({name})[/yellow]")
        code = 130
    finally:
        if d.procs:
            console.rule("[bold]Shutting down what the demo started")
            d.stop_all()
        signal.signal(signal.SIGTERM, previous_term)
    if d.notes:
        console.print("[yellow]Not shown in this run:[/yellow]")
        for n in d.notes:
            console.print(f"  - {n}")
    if code == 0:
        console.print(f"demo finished; files and logs in {work}")
    return code
