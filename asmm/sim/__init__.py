"""Tick-level market-making backtester over the collector's data.

Public API (stable; the calibrator depends on it)::

    events = load_events(data_dir, coin, start=None, end=None)   # epoch seconds
    result = run_backtest(events, BacktestConfig(model="fixed", fixed_depth=2.0))
    result.summary()        # flat dict: pnl, fees, sharpe, max_drawdown, fills_bid, ...
    result.hourly_pnl()     # pandas Series of hourly PnL increments
    results = run_grid(events, [cfg.with_(gamma=g) for g in gammas])   # one pass

Modules: :mod:`.config` (the configuration), :mod:`.events` (loading and merging),
:mod:`.engine` (runs and results) around the numba kernel: :mod:`.records` (the state, by
name), :mod:`.kernel` (the event loop), :mod:`.matching` (the simulated exchange),
:mod:`.decision` (the strategy, quoting with :func:`asmm.core.model.quote_scalar`).

The names load on first use (PEP 562), so importing a light module of the package, such
as :mod:`.config` for the CLI's options, does not compile or import numba.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "BacktestConfig": "asmm.sim.config",
    "EXECUTIONS": "asmm.sim.engine",
    "QUEUES": "asmm.sim.engine",
    "BacktestResult": "asmm.sim.engine",
    "fixed_depth_model": "asmm.sim.engine",
    "infer_tick": "asmm.sim.engine",
    "run_backtest": "asmm.sim.engine",
    "run_grid": "asmm.sim.engine",
    "Events": "asmm.sim.events",
    "load_events": "asmm.sim.events",
    "merge": "asmm.sim.events",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'asmm.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
