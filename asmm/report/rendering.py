"""A report's figures as people read them: a terminal table (rich), the figures as plain
JSON-able values, a self-contained interactive HTML page (template in
``templates/report.html``, package data) and a PNG of the equity, inventory and captured
spread over time. Presentation only: every figure comes from :mod:`asmm.report.ledger`."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from asmm.core.io import atomic_path, save_png
from asmm.report.comparison import Comparison
from asmm.report.ledger import PnLSummary
from asmm.report.verdict import VerdictView

if TYPE_CHECKING:  # asmm.report.markouts loads numba; only reports with market data need it
    from asmm.report.markouts import FillMarkouts

MARKOUTS_TITLE = ("Markouts: the collector's mid after each fill against the fill's price "
                  "(bp, mean per side; negative = the market moved against us)")


def _fmt(x: float, spec: str, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "> 1e300 %" if unit == "%" else "inf"
    return f"{x:{spec}}{unit}"


def summary_rows(summaries: Sequence[PnLSummary], quote: str = "USDC",
                 base: str = "") -> list[tuple[str, list[str]]]:
    """The report's figures as text: (label, one value per summary)."""
    when = datetime.fromtimestamp
    rows = [
        ("realised PnL (after fees, funding)", lambda s: _fmt(s.realised, ",.4f", f" {quote}")),
        ("unrealised PnL (open inventory at mark)",
         lambda s: _fmt(s.unrealised, ",.4f", f" {quote}")),
        ("total PnL", lambda s: _fmt(s.total, ",.4f", f" {quote}")),
        ("fees paid", lambda s: _fmt(s.fees, ",.4f", f" {quote}")),
        ("funding received (+) / paid (−)", lambda s: _fmt(s.funding, ",.4f", f" {quote}")),
        ("round trips long / short",
         lambda s: f"{s.round_trips_long} / {s.round_trips_short}"),
        ("win rate (after fees)", lambda s: _fmt(100 * s.win_rate, ".1f", " %")),
        ("avg captured spread (before fees)", lambda s: _fmt(s.captured_bp, ".2f", " bp")),
        ("avg fees per round trip", lambda s: _fmt(s.fee_bp, ".2f", " bp")),
        ("inventory now (net)", lambda s: _fmt(s.inventory_now, ".6g", f" {base}".rstrip())),
        ("inventory max |q|", lambda s: _fmt(s.inventory_max, ".6g", f" {base}".rstrip())),
        ("max drawdown", lambda s: _fmt(s.max_drawdown, ",.4f", f" {quote}")
         + (f" ({100 * s.max_drawdown_pct:.3f} %)" if s.capital else "")),
        ("starting capital", lambda s: _fmt(s.capital, ",.2f", f" {quote}")),
        ("CAGR since first fill", lambda s: _fmt(100 * s.cagr, ",.2f", " %")
         + (" (from < 7 days)" if s.days_running < 7 and not math.isnan(s.cagr) else "")),
        ("days running", lambda s: _fmt(s.days_running, ".3f")),
        ("first fill (UTC)",
         lambda s: when(s.first_fill, UTC).strftime("%Y-%m-%d %H:%M:%S")),
        ("fills", lambda s: str(s.fills)),
    ]
    return [(label, [fn(s) for s in summaries]) for label, fn in rows]


def summary_table(summaries: Sequence[PnLSummary], quote: str = "USDC", base: str = ""):
    """A rich table, one column per summary (per bot, then the merged book)."""
    from rich.table import Table

    t = Table(title="PnL report", title_justify="left")
    t.add_column("figure")
    for s in summaries:
        t.add_column(s.name, justify="right")
    for label, values in summary_rows(summaries, quote, base):
        t.add_row(label, *values)
    return t


def markout_rows(marked: Sequence[FillMarkouts]) -> list[list[str]]:
    """One row per bot and side: its fills and mean markout at each horizon."""
    return [[m.name, side, str(n), *(_fmt(v, "+.3f") for v in means.values())]
            for m in marked for side, n, means in m.by_side()]


def markouts_head(marked: Sequence[FillMarkouts]) -> list[str]:
    return ["bot", "side", "fills", *(f"{h:g} s" for h in marked[0].horizons)]


def markouts_table(marked: Sequence[FillMarkouts]):
    from rich.table import Table

    t = Table(title=MARKOUTS_TITLE, title_justify="left")
    for col in markouts_head(marked):
        t.add_column(col, justify="left" if col in ("bot", "side") else "right")
    for row in markout_rows(marked):
        t.add_row(*row)
    return t


def comparison_table(c: Comparison):
    """A rich table of the live figures beside the backtest's, with their difference."""
    from rich.table import Table

    t = Table(title=comparison_title(c), title_justify="left", caption=fill_rule_note(c),
              caption_justify="left")
    for col in ("figure", "live", "backtest", "live - backtest"):
        t.add_column(col, justify="right" if col != "figure" else "left")
    for row in comparison_rows(c):
        t.add_row(*row)
    return t


def comparison_title(c: Comparison) -> str:
    span = (c.window[1] - c.window[0]) / 60.0
    cadence = ""
    if c.cadence["fill_reaction_ms"] or c.cadence["requote_gap_ms"]:
        cadence = (f", a fill seen {c.cadence['fill_reaction_ms'] / 1000:g} s later and a "
                   f"re-priced order off the book {c.cadence['requote_gap_ms'] / 1000:g} s, as "
                   f"Freqtrade")
    return (f"Does paper trading match the backtest? ({span:.1f} min from the bot's start, "
            f"{c.backtest['events']:,} market events; backtester: execution '{c.execution}', "
            f"fill rule '{c.fill_rule}', a decision every {c.loop_seconds:g} s{cadence})")


def fill_rule_note(c: Comparison) -> str:
    return f"Fill rule '{c.fill_rule}' because the bot is {c.fill_rule_why}."


def comparison_rows(c: Comparison) -> list[list[str]]:
    """(figure, live, backtest, live - backtest) as text; n/a where a side does not say."""
    return [[label, _fmt(live, ",.6g"), _fmt(bt, ",.6g"), _fmt(live - bt, "+,.6g")]
            for label, live, bt in c.rows]


def comparison_dict(c: Comparison) -> dict:
    """The comparison as plain JSON-able values: its setup and, per figure, both sides."""
    return {"window": list(c.window), "data_shift": c.shift, "execution": c.execution,
            "fill_rule": str(c.fill_rule), "fill_rule_why": c.fill_rule_why,
            "loop_seconds": c.loop_seconds, "cadence_ms": c.cadence,
            "figures": {label: {"live": _json_num(live), "backtest": _json_num(bt)}
                        for label, live, bt in c.rows}}


def verdict_title(v: VerdictView) -> str:
    if v.block is None:
        return "Expected (the calibrator's verdict) vs live"
    b = v.block
    return (f"Expected (the calibrator's verdict: execution '{b['execution']}', gamma by "
            f"{b['gamma_source']}, tested over {b['tested_hours']:.3g} h "
            f"{'in' if b['in_sample'] else 'out of'} sample) vs live")


def verdict_rows(v: VerdictView) -> list[list[str]]:
    """(figure, expected, live) as text; n/a where a side does not say."""
    return [[label, _fmt(exp, ",.4g"), _fmt(live, ",.4g")] for label, exp, live in v.rows]


def verdict_table(v: VerdictView):
    """A rich table of the verdict's figures beside the live ones, with its sentence and the
    footnotes below it; a file without a verdict is one line saying so."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    if v.block is None:
        return Text(f"{v.params_file}: {v.said}")
    t = Table(title=verdict_title(v), title_justify="left")
    for col in ("figure", "expected", "live"):
        t.add_column(col, justify="right" if col != "figure" else "left")
    for row in verdict_rows(v):
        t.add_row(*row)
    # Below the table, not as its caption: a caption wraps to the width of three columns.
    return Group(t, Text(f"verdict: {v.said}"), *(Text(f"  {n}", style="dim") for n in v.notes))


def verdict_dict(v: VerdictView) -> dict:
    """The verdict beside the live figures as plain JSON-able values: the file's block as
    written (null when it has none), the sentence, per figure both sides."""
    return {"file": v.params_file, "block": v.block, "fee_tier": v.tier, "sentence": v.said,
            "live_hours": _json_num(v.live_hours), "lot_scale": v.lot_scale,
            "figures": {label: {"expected": _json_num(exp), "live": _json_num(live)}
                        for label, exp, live in v.rows},
            "notes": list(v.notes)}


def _json_num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def summary_dict(s: PnLSummary) -> dict:
    """The scalar figures as plain JSON-able values (NaN/inf become None)."""
    keys = ("name", "realised", "unrealised", "total", "fees", "funding", "round_trips_long",
            "round_trips_short", "win_rate", "captured_bp", "fee_bp", "inventory_now",
            "inventory_max", "max_drawdown", "max_drawdown_pct", "capital", "cagr",
            "days_running", "first_fill", "started", "fills")
    out = {}
    for k in keys:
        v = getattr(s, k)
        out[k] = None if isinstance(v, float) and not math.isfinite(v) else v
    return out


def write_html(summaries: Sequence[PnLSummary], out: str | Path, *, base: str = "",
               comparison: Comparison | None = None,
               marked: Sequence[FillMarkouts] = (), verdict: VerdictView | None = None
               ) -> Path:
    """A self-contained interactive HTML page (no external scripts): the report's tables
    (the markouts, the verdict and the comparison when given) and the equity, inventory and
    captured-spread charts of the last summary, with the value under the mouse. Written to
    a temp file and renamed."""
    book = summaries[-1]
    c = book.curves
    rt = book.round_trips
    data = {
        "names": [s.name for s in summaries], "rows": summary_rows(summaries, base=base),
        "base": base or "base", "t": c.time.tolist(), "equity": c.equity.tolist(),
        "inventory": c.inventory.tolist(), "rt_t": [r.close_time for r in rt],
        "rt_bp": [r.captured_bp for r in rt], "rt_long": [not r.is_short for r in rt],
        "markouts": {"title": MARKOUTS_TITLE, "head": markouts_head(marked),
                     "rows": markout_rows(marked)} if marked else None,
        "verdict": None if verdict is None else {
            "title": verdict_title(verdict), "said": verdict.said,
            "rows": verdict_rows(verdict), "notes": list(verdict.notes)},
        "comparison": None if comparison is None else {
            "title": comparison_title(comparison), "note": fill_rule_note(comparison),
            "rows": comparison_rows(comparison)},
    }
    # "</" inside a <script> would end it early; JSON allows the escaped form.
    payload = json.dumps(data).replace("</", "<\\/")
    page = resources.files("asmm.report").joinpath("templates/report.html").read_text(
        encoding="utf-8")
    # A report someone has open in a browser is replaced whole, never half written.
    with atomic_path(out, durable=False) as tmp:
        tmp.write_text(page.replace("__DATA__", payload), encoding="utf-8")
    return Path(out)


def plot(summary: PnLSummary, out: str | Path, base: str = "base") -> Path:
    """PNG with the equity curve, the net inventory and the captured spread per round trip
    over time. Written to a temp file and renamed, so a failed plot leaves the old one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    out = Path(out)
    c = summary.curves
    t = pd.to_datetime(c.time, unit="s", utc=True)
    fig, ax = plt.subplots(3, 1, figsize=(11, 8.5), sharex=True,
                           gridspec_kw={"height_ratios": [3, 2, 2]})
    ax[0].step(t, c.equity, where="post", color="tab:blue", lw=1.2)
    ax[0].axhline(0, color="grey", lw=0.6)
    ax[0].set_ylabel("total PnL (USDC)")
    ax[0].set_title(f"{summary.name}: total PnL {summary.total:,.2f} USDC, "
                    f"{summary.round_trips_long + summary.round_trips_short} round trips, "
                    f"max drawdown {summary.max_drawdown:,.2f} USDC")
    ax[1].step(t, c.inventory, where="post", color="tab:orange", lw=1.2)
    ax[1].axhline(0, color="grey", lw=0.6)
    ax[1].set_ylabel(f"net inventory ({base})")
    rt = summary.round_trips
    if rt:
        rt_t = pd.to_datetime([r.close_time for r in rt], unit="s", utc=True)
        bp = np.array([r.captured_bp for r in rt])
        longs = np.array([not r.is_short for r in rt])
        ax[2].scatter(rt_t[longs], bp[longs], s=14, color="tab:green", label="long round trip")
        ax[2].scatter(rt_t[~longs], bp[~longs], s=14, color="tab:red",
                      label="short round trip")
        ax[2].axhline(summary.captured_bp, color="black", lw=0.8, ls="--",
                      label=f"mean {summary.captured_bp:.2f} bp")
        ax[2].axhline(summary.fee_bp, color="grey", lw=0.8, ls=":",
                      label=f"fees {summary.fee_bp:.2f} bp")
        ax[2].legend(loc="best", fontsize=8)
    else:
        ax[2].text(0.5, 0.5, "no closed round trip yet", ha="center", va="center",
                   transform=ax[2].transAxes)
    ax[2].set_ylabel("captured spread (bp)")
    locator = mdates.AutoDateLocator(tz=UTC)
    ax[2].xaxis.set_major_locator(locator)
    ax[2].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    ax[2].set_xlabel("time (UTC)")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    return save_png(fig, out)
