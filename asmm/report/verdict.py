"""Did the bot earn what its parameter file expected? The calibrator's verdict (the file's
``verdict`` block: fills and PnL per hour, 10 s markout, at its maker fee) beside the same
figures of the live bots.

Like with like where the figures allow: the live PnL per hour is the book's total PnL (after
fees and funding, open inventory at the mark) over the time since the bot started (else
since its first fill) to the end of the report; the verdict's PnL is for the calibrator's
lot, so it is scaled to the live lot when the file records its lot
(``diagnostics.config.order_size``). Fills per hour, markouts (bp) and fees (fractions of
notional) do not depend on the lot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from asmm.core.errors import PnLError
from asmm.core.verdict_text import sentence
from asmm.report.ledger import PnLSummary

if TYPE_CHECKING:
    from asmm.report.markouts import FillMarkouts

NO_VERDICT = "the parameter file has no verdict (written by an older calibrator)"


@dataclass(frozen=True)
class VerdictView:
    """The verdict of ``params_file`` beside the live figures.

    ``block``: the file's verdict as written (None: it has none, and ``said`` says so);
    ``tier``: the fee tier it was computed at (None when the file does not record it);
    ``said``: its one-line statement of profitability and break-even fee; ``rows``:
    (figure, expected, live) with the units in the label (NaN: that side does not say);
    ``live_hours``: the live period the per-hour figures cover; ``lot_scale``: live lot ÷
    the file's lot applied to the expected PnL (None: not scaled); ``notes``: footnotes."""

    params_file: str
    block: dict | None
    tier: str | None
    said: str
    rows: tuple[tuple[str, float, float], ...] = ()
    live_hours: float = math.nan
    lot_scale: float | None = None
    notes: tuple[str, ...] = ()


def verdict_view(summary: PnLSummary, params_file: str | Path,
                 marked: FillMarkouts | None = None) -> VerdictView:
    """The verdict of ``params_file`` beside ``summary`` (the live book; with ``marked``,
    its fills' markouts against the collector's mid). The file's freshness is not checked:
    the verdict of the file the bot quoted from is the point, however old.

    Raises :class:`PnLError` when the file cannot be read or is not a valid parameter file."""
    from asmm.core.params import ParamsError, load_params

    try:
        params = load_params(params_file, check_fresh=False)
    except (ParamsError, OSError) as e:
        raise PnLError(f"cannot read the parameter file for its verdict: {e}") from e
    v = params.verdict
    config = params.diagnostics.get("config")
    config = config if isinstance(config, dict) else {}
    tier = config.get("fee_tier") if isinstance(config.get("fee_tier"), str) else None
    if v is None:
        return VerdictView(str(params_file), None, tier, NO_VERDICT)

    end = float(summary.curves.time[-1])
    hours = (end - summary.started) / 3600.0

    def per_hour(x: float) -> float:
        return x / hours if hours > 0 else math.nan

    file_lot = config.get("order_size")
    notes = [f"Live: the {hours:.3g} h since the bot started (else its first fill); PnL "
             "after fees and funding, open inventory at the mark."]
    if isinstance(file_lot, int | float) and not isinstance(file_lot, bool) and file_lot > 0:
        scale = summary.lot / file_lot
        notes.append(f"Expected PnL scaled linearly from the file's lot {file_lot:g} to the "
                     f"live lot {summary.lot:g} (x {scale:.4g}); the sentence is at the "
                     "file's lot.")
    else:
        scale = None
        notes.append("The file does not record its lot: the expected PnL is at the "
                     "calibrator's lot, not scaled to the live one.")
    live_mark = math.nan
    if marked is not None:
        m = marked.means(0).get("markout_10s_bp")
        live_mark = math.nan if m is None else float(m)
    else:
        notes.append("Live markouts need the collector's data of the live period "
                     "(--data-dir).")
    notes.append("Live maker fee: the mean fee rate of the live fills (any taker fill "
                 "included).")
    pnl = v["expected_pnl_per_hour"] * (scale if scale is not None else 1.0)
    rows = (
        ("fills per hour", v["expected_fills_per_hour"], per_hour(float(summary.fills))),
        ("PnL per hour (USDC)", pnl, per_hour(summary.total)),
        ("markout 10 s (bp)", _num(v["markout_10s_bp"]), live_mark),
        ("maker fee (bp)", v["maker_fee"] * 1e4, summary.fee_rate * 1e4),
    )
    said = sentence(v, tier or "the calibrator's fees")
    return VerdictView(str(params_file), v, tier, said, rows, hours, scale, tuple(notes))


def _num(v: float | None) -> float:
    return math.nan if v is None else float(v)
