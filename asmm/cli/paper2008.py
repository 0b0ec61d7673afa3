"""`asmm paper2008`: Avellaneda & Stoikov (2008) section 4, inventory vs symmetric strategy."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "paper2008", help="reproduce the 2008 paper's numerical experiment",
        description="Simulate the inventory strategy and the symmetric strategy of "
                    "Avellaneda & Stoikov (2008), section 4 (s=100, T=1, sigma=2, dt=0.005, "
                    "k=1.5, A=140) and print their spread, profit and final inventory.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--gamma", type=float, default=0.1, help="risk aversion (1/price)")
    p.add_argument("--simulations", type=int, default=1000, help="number of simulated runs")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    from asmm.sim.paper2008 import run as simulate

    try:
        res = simulate(args.gamma, args.simulations, args.seed)
    except ValueError as e:
        Console(stderr=True).print(f"[red]error:[/red] {e}")
        return 2
    if args.json:
        print(json.dumps(res))
        return 0
    t = Table(title=f"A-S 2008 experiment, gamma = {args.gamma}, {args.simulations} runs")
    for col in ("strategy", "avg spread", "profit", "std(profit)", "final q", "std(final q)"):
        t.add_column(col, justify="right")
    for name, r in res.items():
        t.add_row(name, f"{r['spread']:.2f}", f"{r['profit_mean']:.2f}",
                  f"{r['profit_std']:.2f}", f"{r['q_mean']:.2f}", f"{r['q_std']:.2f}")
    Console().print(t)
    return 0
