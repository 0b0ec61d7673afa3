"""Terminal tables shared by the CLIs (rich). Presentation only: numbers come from asmm.model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.table import Table

from .model import depth_bp, quotes


def quote_ladder(model: str, mid: float, *, sigma: float, gamma: float, A_bid: float,
                 k_bid: float, A_ask: float, k_ask: float, tau: float = 0.0,
                 tick: float = 0.0, maker_fee: float = 0.0,
                 inventories: Sequence[float] = (-2, -1, 0, 1, 2)) -> list[dict]:
    """Quotes for each inventory (lots): bid, ask, depths in price and bp, spread in bp."""
    q = np.asarray(inventories, dtype=float)
    qt = quotes(model, mid, q, sigma=sigma, gamma=gamma, A_bid=A_bid, k_bid=k_bid,
                A_ask=A_ask, k_ask=k_ask, tau=tau, tick=tick, maker_fee=maker_fee)
    rows = []
    for i, qi in enumerate(q):
        rows.append({
            "q": float(qi), "bid": float(qt.bid[i]), "ask": float(qt.ask[i]),
            "bid_depth": float(qt.bid_depth[i]), "ask_depth": float(qt.ask_depth[i]),
            "bid_depth_bp": float(depth_bp(qt.bid_depth[i], mid)),
            "ask_depth_bp": float(depth_bp(qt.ask_depth[i], mid)),
            "spread_bp": float(depth_bp(qt.ask[i] - qt.bid[i], mid)),
        })
    return rows


def ladder_table(title: str, rows: list[dict]) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("q", "bid", "ask", "δ bid", "δ ask", "δ bid bp", "δ ask bp",
                "spread bp"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(f"{r['q']:+.0f}", f"{r['bid']:.2f}", f"{r['ask']:.2f}",
                  f"{r['bid_depth']:.2f}", f"{r['ask_depth']:.2f}",
                  f"{r['bid_depth_bp']:.2f}", f"{r['ask_depth_bp']:.2f}",
                  f"{r['spread_bp']:.2f}")
    return t
