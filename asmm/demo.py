"""The offline demo: each step says what it does; a failing step names itself."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from .report import ladder_table, quote_ladder
from .synth import SynthConfig, generate


def run_demo(args) -> int:
    console = Console()
    work = Path(args.workdir)
    data = work / "HL_data"
    console.rule("[bold]1. Synthesize a market with known parameters")
    cfg = SynthConfig(days=args.days, seed=args.seed)
    with console.status(f"writing {cfg.days} full-size days to {data} ..."):
        truth = generate(cfg, data)
    t = Table(title="True parameters of the synthetic market", title_justify="left")
    for col in ("quantity", "bid side", "ask side", "unit"):
        t.add_column(col)
    t.add_row("sigma", f"{truth['sigma']}", f"{truth['sigma']}", "USDC/sqrt(s)")
    t.add_row("A", f"{truth['bid']['A']}", f"{truth['ask']['A']}", "fills/s at depth 0")
    t.add_row("k", f"{truth['bid']['k']}", f"{truth['ask']['k']}", "1/USDC")
    t.add_row("tick", f"{truth['tick']}", "", "USDC")
    console.print(t)
    days = ", ".join(f"{d['day']}: {d['bbo_updates']:,} BBO / {d['trades']:,} trades"
                     for d in truth["days"])
    console.print(f"files in {data} ({days})")

    console.rule("[bold]2. What the models quote on it")
    mid = truth["mid0"]
    common = dict(sigma=truth["sigma"], gamma=args.gamma, A_bid=truth["bid"]["A"],
                  k_bid=truth["bid"]["k"], A_ask=truth["ask"]["A"], k_ask=truth["ask"]["k"],
                  tick=truth["tick"])
    console.print(ladder_table(
        f"GLFT (infinite horizon), gamma = {args.gamma}/USDC, mid {mid:,.0f}",
        quote_ladder("glft", mid, **common)))
    console.print(ladder_table(
        f"Avellaneda-Stoikov, gamma = {args.gamma}/USDC, tau = {args.tau:g} s, mid {mid:,.0f}",
        quote_ladder("as", mid, tau=args.tau, **common)))
    console.print("Depths are from the mid in USDC and bp; prices rounded to the tick away "
                  "from the mid; q is inventory in lots.")
    return 0
