"""The backtest picture: mid with our quotes and fills, inventory, equity. Presentation only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asmm.core.io import save_png
from asmm.sim.engine import BacktestResult


def plot_result(result: BacktestResult, path: str | Path, title: str = "",
                max_fills: int = 2000) -> Path:
    """Write a three-panel PNG of ``result`` to ``path`` (atomically: a failed plot leaves any
    earlier file in place) and return the path. Draws at most about ``max_fills`` fills."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    path = Path(path)
    s = result.samples
    t = (s["t"] * 1000.0).astype("datetime64[ms]")
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(11, 8), sharex=True,
                                        gridspec_kw={"height_ratios": [3, 1, 1.5]})
    ax1.plot(t, s["mid"], lw=0.8, color="black", label="mid")
    ax1.plot(t, s["bid"], lw=0.6, color="tab:green", alpha=0.8, label="our bid")
    ax1.plot(t, s["ask"], lw=0.6, color="tab:red", alpha=0.8, label="our ask")
    f = result.fills
    if f["t"].size:
        # Thousands of markers hide the quotes: above max_fills, every n-th fill is drawn.
        every = max(1, -(-f["t"].size // max_fills))
        ft = (f["t"][::every] * 1000.0).astype("datetime64[ms]")
        fp = f["price"][::every]
        buy = f["side"][::every] > 0
        note = f" (1 in {every})" if every > 1 else ""
        ax1.scatter(ft[buy], fp[buy], s=8, marker="^", color="tab:green",
                    label=f"bid filled{note}", zorder=3)
        ax1.scatter(ft[~buy], fp[~buy], s=8, marker="v", color="tab:red",
                    label=f"ask filled{note}", zorder=3)
    ax1.set_ylabel("price")
    ax1.legend(loc="upper left", fontsize=8, ncol=5)
    ax2.step(t, s["inventory"], where="post", lw=0.8, color="tab:blue")
    ax2.axhline(0.0, color="grey", lw=0.5)
    ax2.set_ylabel("inventory (lots)")
    ax3.plot(t, s["equity"], lw=0.9, color="tab:purple", label="equity (marked to mid)")
    ax3.plot(t, -np.asarray(s["fees"]), lw=0.7, color="tab:orange", label="fees paid")
    ax3.axhline(0.0, color="grey", lw=0.5)
    ax3.set_ylabel("PnL (quote)")
    ax3.legend(loc="upper left", fontsize=8)
    ax3.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    sm = result.summary()
    fig.suptitle(title or (f"{sm['model']} / {sm['execution']} / queue {sm['queue']} / "
                           f"fill rule {sm['fill_rule']}: "
                           f"PnL {sm['pnl']:.2f}, fees {sm['fees']:.2f}, "
                           f"fills {sm['fills_bid']}+{sm['fills_ask']}"), fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)
