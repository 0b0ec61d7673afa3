"""Terminal tables shared by the CLIs (rich). Presentation only."""

from __future__ import annotations

from rich.table import Table


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
