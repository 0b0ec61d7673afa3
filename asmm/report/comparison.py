"""Does paper trading match the backtest? Live figures of a bot beside what the tick-level
backtester (:mod:`asmm.sim`) expected over the same window, with the same lot, fee rate and
parameter file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asmm.core.errors import PnLError
from asmm.report.ledger import PnLSummary


@dataclass(frozen=True)
class Comparison:
    """Live figures next to what the tick-level backtester expected over the same window.

    ``rows``: (figure, live, backtest) with the same units on both sides; ``window``:
    (start, end) in the live clock, epoch s; ``shift``: seconds added to live times to
    reach the data's times (non-zero only for a replay that moved the data to 'now')."""

    window: tuple[float, float]
    shift: float
    execution: str
    rows: tuple[tuple[str, float, float], ...]
    backtest: dict


def compare_with_backtest(summary: PnLSummary, data_dir: str | Path, coin: str,
                          params_file: str | Path, *, shift: float = 0.0,
                          execution: str = "freqtrade") -> Comparison:
    """Run the tick-level backtester on the collector's data for the live window
    ``[bot start (else first fill), end]`` with the live order size and fee rate and the
    parameter file the bot quoted from, and line its figures up with the live ones.

    Raises :class:`PnLError` when the data or the parameter file cannot be used."""
    # Imported here: the backtester pulls in numba, which a report without --data-dir
    # never needs.
    from asmm.core.errors import DataError
    from asmm.core.params import ParamsError, load_params
    from asmm.sim import BacktestConfig, load_events, run_backtest

    start, end = summary.started, float(summary.curves.time[-1])
    try:
        params = load_params(params_file, check_fresh=False)
        events = load_events(data_dir, coin, start + shift, end + shift)
        cfg = BacktestConfig.from_params(params, order_size=summary.lot,
                                         maker_fee=summary.fee_rate, execution=execution)
        bt = run_backtest(events, cfg).summary()
        if not bt["events"]:
            raise ValueError(f"no market data in {data_dir} for the window")
    except (DataError, ParamsError, ValueError, FileNotFoundError) as e:
        raise PnLError(f"cannot backtest the live window for the comparison: {e}") from e
    lot = summary.lot
    rows = (
        ("fills, our bid (buys)", float(summary.fills_buy), float(bt["fills_bid"])),
        ("fills, our ask (sells)", float(summary.fills_sell), float(bt["fills_ask"])),
        ("volume (base)", summary.volume, bt["volume_bid"] + bt["volume_ask"]),
        ("fees (USDC)", summary.fees, bt["fees"]),
        ("PnL after fees, marked (USDC)", summary.total, bt["pnl"]),
        ("max drawdown (USDC)", summary.max_drawdown, bt["max_drawdown"]),
        ("inventory max |q| (lots)", summary.inventory_max / lot, bt["inventory_max_abs"]),
        ("inventory at the end (lots)", summary.inventory_now / lot, bt["inventory_final"]),
    )
    return Comparison((start, end), shift, execution, rows, bt)
