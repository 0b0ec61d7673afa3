"""`asmm synth`: write a synthetic market with known sigma, A, k in the collector format."""

from __future__ import annotations

import argparse
from datetime import date


def register(sub) -> None:
    p = sub.add_parser(
        "synth", help="write a synthetic market with known truth (collector format)",
        description="Simulate a market whose sigma, A and k are known and write it as the "
                    "collector does (prices/trades/orderbooks per UTC day) plus truth.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--coin", default="BTC", help="coin name used in file names")
    p.add_argument("--days", type=int, default=2, help="number of UTC days to write")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same files)")
    p.add_argument("--start", type=date.fromisoformat, default=date(2025, 9, 1),
                   help="first UTC day, YYYY-MM-DD")
    p.add_argument("--sigma", type=float, default=6.8,
                   help="mid volatility, price per sqrt(second)")
    p.add_argument("--A", type=float, default=0.5,
                   help="market orders per second per side (rate reaching depth 0)")
    p.add_argument("--k", type=float, default=0.5, help="depth decay per side, 1/price")
    p.add_argument("--A-bid", type=float, help="A of sell orders hitting bids (default --A)")
    p.add_argument("--A-ask", type=float, help="A of buy orders lifting asks (default --A)")
    p.add_argument("--k-bid", type=float, help="k of the bid side (default --k)")
    p.add_argument("--k-ask", type=float, help="k of the ask side (default --k)")
    p.add_argument("--mid", type=float, default=100_000.0, help="starting mid price")
    p.add_argument("--tick", type=float, default=1.0, help="price tick")
    p.add_argument("--depth", type=int, default=10, help="L2 levels per side")
    p.add_argument("--bbo-rate", type=float, default=5.0, help="BBO updates per second")
    p.add_argument("--l2-interval", type=float, default=2.0, help="seconds between L2 snapshots")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv", help="file format")
    p.add_argument("--rounding", choices=["floor", "ceil"], default="floor",
                   help="the level a sweep's last fill prints at: the deepest within its reach "
                        "(floor) or the first at or beyond it (ceil)")
    p.add_argument("--touch-only", type=float, default=0.0, metavar="P",
                   help="share of sweeps that print at the touch only, whatever their reach "
                        "(real Hyperliquid BTC: 0.8-0.9)")
    p.add_argument("--informed", type=float, default=0.0, metavar="F",
                   help="share of market orders followed by a mid move in their direction")
    p.add_argument("--move-prints", type=float, default=0.0, metavar="S",
                   help="share of the levels a moving book passes that print a trade (the "
                        "rest are cancelled); with it the A, k truth no longer holds exactly")
    p.add_argument("--impact", type=float, default=0.0, metavar="I",
                   help="size of that move, price; the expected markout per maker fill is "
                        "-F * I (in truth.json)")
    p.add_argument("--informed-lead", type=float, default=0.0, metavar="S",
                   help="seconds before an informed order during which the touch it takes "
                        "shows a quarter of its size: the book signal the microprice reads "
                        "(default 0: the book says nothing about the flow)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from asmm.data.synth import SynthConfig, generate

    cfg = SynthConfig(
        coin=args.coin, days=args.days, start=args.start, seed=args.seed, mid=args.mid,
        sigma=args.sigma,
        A_bid=args.A_bid if args.A_bid is not None else args.A,
        A_ask=args.A_ask if args.A_ask is not None else args.A,
        k_bid=args.k_bid if args.k_bid is not None else args.k,
        k_ask=args.k_ask if args.k_ask is not None else args.k,
        tick=args.tick, depth=args.depth, bbo_rate=args.bbo_rate,
        l2_interval=args.l2_interval, fmt=args.format, rounding=args.rounding,
        touch_only=args.touch_only, informed=args.informed, impact=args.impact,
        informed_lead=args.informed_lead,
        move_prints=args.move_prints,
    )
    console = Console(stderr=True)
    try:
        with Progress(console=console, transient=True,
                      disable=not console.is_terminal) as bar:
            task = bar.add_task("synthesizing days", total=cfg.days)
            truth = generate(cfg, args.out, progress=lambda _: bar.advance(task))
    except ValueError as e:
        console.print(f"[red]error:[/red] {e}")
        return 2
    n_tr = sum(d["trades"] for d in truth["days"])
    n_bbo = sum(d["bbo_updates"] for d in truth["days"])
    Console().print(f"wrote {cfg.days} day(s) of {cfg.coin} to {args.out}: "
                    f"{n_bbo:,} BBO updates, {n_tr:,} trades; truth in {args.out}/truth.json")
    return 0
