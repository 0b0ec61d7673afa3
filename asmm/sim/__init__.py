"""Tick-level market-making backtester over the collector's data.

Public API (stable; the calibrator depends on it)::

    events = load_events(data_dir, coin, start=None, end=None)   # epoch seconds
    result = run_backtest(events, BacktestConfig(model="fixed", fixed_depth=2.0))
    result.summary()        # flat dict: pnl, fees, sharpe, max_drawdown, fills_bid, ...
    result.hourly_pnl()     # pandas Series of hourly PnL increments
    results = run_grid(events, [cfg.with_(gamma=g) for g in gammas])   # one pass

Modules: :mod:`.events` (loading and merging), :mod:`.kernel` (the numba event loop, which
quotes with :func:`asmm.core.model.quote_scalar`), :mod:`.engine` (configuration, results).
"""

from asmm.sim.engine import (
    EXECUTIONS,
    QUEUES,
    BacktestConfig,
    BacktestResult,
    fixed_depth_model,
    infer_tick,
    run_backtest,
    run_grid,
)
from asmm.sim.events import Events, load_events, merge

__all__ = [
    "EXECUTIONS",
    "QUEUES",
    "BacktestConfig",
    "BacktestResult",
    "Events",
    "fixed_depth_model",
    "infer_tick",
    "load_events",
    "merge",
    "run_backtest",
    "run_grid",
]
