"""Backtest results and the runners around the numba kernel (the configuration is
:mod:`asmm.sim.config`).

Units (docs/design.md): prices and depths in quote currency, time in seconds, ``sigma`` price per
sqrt(s), ``A`` 1/s, ``k`` and ``gamma`` 1/price, inventory in lots (position / order size),
fees as fractions of notional.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from asmm.core.enums import Execution, FillRule, Model, Queue, Reference
from asmm.core.errors import DataError
from asmm.core.model import MODEL_AS, MODELS
from asmm.core.policy import FLAT_SIDE_CODE
from asmm.data.grid import infer_tick as infer_price_grid
from asmm.sim import kernel as K
from asmm.sim import records as R
from asmm.sim.config import FIXED, BacktestConfig
from asmm.sim.events import Events
from asmm.sim.markouts import HORIZONS, markouts

EXECUTIONS = {Execution.TWO_SIDED: R.EXEC_TWO_SIDED, Execution.FREQTRADE: R.EXEC_FREQTRADE,
              Execution.FREQTRADE_PAIR: R.EXEC_PAIR}
QUEUES = {Queue.NONE: R.QUEUE_NONE, Queue.PROB: R.QUEUE_PROB}
FILL_RULES = {FillRule.EXCHANGE: R.RULE_EXCHANGE, FillRule.TRADES: R.RULE_TRADES,
              FillRule.FREQTRADE_DRY_RUN: R.RULE_DRY_RUN}
# Summary-key spelling of each FILL.how: fills_book_through, markout_10s_bp_book_through, ...
HOW_KEYS = tuple(name.replace("-", "_") for name in R.HOW_NAMES)
HOURS_PER_YEAR = 24.0 * 365.0
_CHUNK = 250_000  # events per kernel call under a progress bar


def fixed_depth_model(depth: float) -> dict:
    """Model arguments that make :func:`asmm.core.model.quote_scalar` quote ``depth`` each side.

    A–S with ``tau = 0`` has no inventory term and quotes ``ln(1 + gamma/k) / gamma`` from
    the mid; ``gamma = 1/depth`` and ``k = gamma / (e - 1)`` make that exactly ``depth``. So
    the baseline goes through the same rounding, touch and inventory-bound rules as the
    models, with no second quote implementation.
    """
    gamma = 1.0 / depth
    return {"model": MODEL_AS, "sigma": 0.0, "gamma": gamma, "k": gamma / math.expm1(1.0),
            "horizon": math.inf}


def infer_tick(events: Events) -> float:
    """The price grid of the data, from the BBO prices
    (:func:`asmm.data.grid.infer_tick`:
    the most common gap, so a stray off-grid print does not halve it); 0 (no rounding) when
    the data has fewer than two distinct prices."""
    px = events.bid[events.kind == 0][:200_000]
    try:
        return infer_price_grid(px[np.isfinite(px)])
    except DataError:
        return 0.0


def _param_record(cfg: BacktestConfig, tick: float) -> np.ndarray:
    """The kernel's PARAMS record (0-d) for ``cfg`` quoting on a ``tick`` price grid."""
    p = np.zeros((), R.PARAMS)
    if cfg.model == FIXED:
        fx = fixed_depth_model(cfg.fixed_depth)
        p["model"], p["sigma"], p["gamma"] = fx["model"], fx["sigma"], fx["gamma"]
        p["k_bid"] = p["k_ask"] = fx["k"]
        p["A_bid"] = p["A_ask"] = 1.0
        # tau = horizon - (T mod horizon) must stay finite: any positive horizon works,
        # the A–S inventory term is zero with sigma = 0.
        p["horizon"] = 1.0
        p["quote_fee"] = 0.0  # the baseline quotes exactly the depth asked for
        p["time_dependent"] = False
    else:
        glft = cfg.model == Model.GLFT
        p["model"], p["sigma"], p["gamma"] = MODELS[cfg.model], cfg.sigma, cfg.gamma
        p["A_bid"] = cfg.A_bid if glft else 1.0
        p["A_ask"] = cfg.A_ask if glft else 1.0
        p["k_bid"], p["k_ask"] = cfg.k_bid, cfg.k_ask
        p["horizon"] = cfg.horizon
        p["quote_fee"] = cfg.maker_fee
        p["time_dependent"] = cfg.model == Model.AS
    p["order_size"] = cfg.order_size
    p["refresh"] = cfg.refresh_seconds
    p["latency"] = cfg.latency_ms / 1000.0
    p["reaction"] = cfg.fill_reaction_ms / 1000.0
    p["requote_gap"] = cfg.requote_gap_ms / 1000.0
    p["maker_fee"] = cfg.maker_fee
    p["taker_fee"] = cfg.taker_fee
    p["fill_rule"] = FILL_RULES[cfg.fill_rule]
    p["max_inventory"] = cfg.max_inventory
    p["min_spread"] = cfg.min_spread
    p["max_improve_ticks"] = cfg.max_improve_ticks
    p["tick"] = tick
    # Freqtrade's dry-run knows no queue: whatever cfg.queue says, nothing waits in one.
    dry_run = cfg.fill_rule == FillRule.FREQTRADE_DRY_RUN
    p["queue"] = R.QUEUE_NONE if dry_run else QUEUES[cfg.queue]
    p["queue_power"] = cfg.queue_power
    p["execution"] = EXECUTIONS[cfg.execution]
    p["flat_side"] = FLAT_SIDE_CODE[cfg.flat_side]
    if cfg.reference == Reference.MICROPRICE:
        p["micro_buckets"] = len(cfg.microprice)
        p["micro_adj"][:len(cfg.microprice)] = cfg.microprice
    return p


@dataclass
class BacktestResult:
    """What one configuration did.

    ``fills``: dict of arrays, one per field of :data:`asmm.sim.records.FILL` (``t``,
    ``side`` +1 our bid filled / -1 our ask, ``price``, ``qty`` and ``position`` in coin,
    ``fee``, ``mid``, ``cash`` and ``realised`` in quote currency, ``avg_cost``, ``how``
    (a code of :data:`asmm.sim.records.HOW_NAMES`), ``order`` (the order's id)) and the
    markouts of each fill (``markout_1s_bp``, ``markout_10s_bp``, ``markout_60s_bp``:
    :func:`asmm.sim.markouts.markouts`, NaN past the data) — empty unless fills were
    recorded. ``samples``: dict of arrays on a regular grid ``t`` (epoch
    s), one per field of :data:`asmm.sim.records.SAMPLE`: equity (quote currency, marked
    at the exchange mid), inventory (lots), mid, our resting bid/ask (NaN if none),
    cumulative fees. ``events``: market events simulated;
    ``seconds``: wall time of the kernel pass, shared by all configurations of a grid.
    """

    config: BacktestConfig
    stats: dict
    fills: dict
    samples: dict
    events: int
    seconds: float
    start: float
    end: float

    def hourly_pnl(self) -> pd.Series:
        """PnL increments per UTC hour (quote currency), indexed by the hour's end."""
        t = self.samples["t"]
        eq = self.samples["equity"]
        hours = t / 3600.0
        on_hour = (np.abs(hours - np.round(hours)) < 1e-6) & np.isfinite(eq)
        ht = np.concatenate([[self.start], t[on_hour], [self.end]])
        he = np.concatenate([[0.0], eq[on_hour], [self.stats["pnl"]]])
        keep = np.concatenate([[True], np.diff(ht) > 0])
        ht, he = ht[keep], he[keep]
        idx = pd.to_datetime(ht[1:], unit="s", utc=True)
        return pd.Series(np.diff(he), index=idx, name="pnl")

    def sharpe(self) -> float:
        """Annualised Sharpe ratio of hourly PnL increments; NaN when undefined (fewer than
        two hours, or a flat equity curve)."""
        h = self.hourly_pnl().to_numpy()
        if h.size < 2:
            return math.nan
        sd = float(np.std(h, ddof=1))
        if not sd > 0:
            return math.nan
        return float(np.mean(h) / sd * math.sqrt(HOURS_PER_YEAR))

    def summary(self) -> dict:
        """One flat dict of scalars (JSON-ready except NaN for undefined ratios)."""
        s = dict(self.stats)
        s["sharpe"] = self.sharpe()
        s["events"] = self.events
        s["seconds"] = self.seconds
        s["events_per_second"] = self.events / self.seconds if self.seconds > 0 else math.nan
        s["hours"] = (self.end - self.start) / 3600.0
        s["model"] = self.config.model
        s["execution"] = self.config.execution
        s["queue"] = self.config.queue
        s["fill_rule"] = self.config.fill_rule
        s["reference"] = self.config.reference
        s["gamma"] = self.config.gamma
        s["fixed_depth"] = self.config.fixed_depth
        if self.config.label:
            s["label"] = self.config.label
        return s


def _markout_means(marks: np.ndarray) -> dict:
    """Mean markouts (bp) from the kernel's sums ``marks`` ((3 hows, 2 sides, horizons)
    MARKOUT): over all fills (``markout_10s_bp``), per side (``markout_10s_bp_bid``) and
    per how (``markout_10s_bp_book_through``); NaN where no fill's horizon is covered."""

    def mean(m):
        n = m["n"].sum()
        return float(m["sum_bp"].sum() / n) if n else math.nan

    out = {}
    for j, h in enumerate(HORIZONS):
        key = f"markout_{h:g}s_bp"
        out[key] = mean(marks[..., j])
        for i, side in enumerate(("bid", "ask")):
            out[f"{key}_{side}"] = mean(marks[:, i, j])
        for i, how in enumerate(HOW_KEYS):
            out[f"{key}_{how}"] = mean(marks[i, :, j])
    return out


def _stats(a: np.void, marks: np.ndarray, cfg: BacktestConfig, mid_end: float,
           span: float) -> dict:
    """The summary of ACCOUNT record ``a`` and markout sums ``marks`` after ``span``
    seconds, marked at ``mid_end``."""
    pos = a["pos"]
    unreal = pos * (mid_end - a["avg_cost"]) if pos != 0.0 else 0.0
    pnl = a["cash"] + (pos * mid_end if pos != 0.0 else 0.0)
    n_fills = a["n_bid"] + a["n_ask"]
    mean_q = a["inv_int"] / span if span > 0 else 0.0
    var_q = max(a["inv_int2"] / span - mean_q**2, 0.0) if span > 0 else 0.0
    return {
        "pnl": float(pnl),
        "realised": float(a["realised"]),
        "unrealised": float(unreal),
        "fees": float(a["fees"]),
        "pnl_after_close": float(pnl - cfg.taker_fee * abs(pos) * mid_end),
        "max_drawdown": float(a["max_drawdown"]),
        "fills_bid": int(a["n_bid"]),
        "fills_ask": int(a["n_ask"]),
        "fills_trade": int(n_fills - a["n_book_through"] - a["n_dry_run_cross"]),
        "fills_book_through": int(a["n_book_through"]),
        "fills_dry_run_cross": int(a["n_dry_run_cross"]),
        "volume_bid": float(a["vol_bid"]),
        "volume_ask": float(a["vol_ask"]),
        "captured_spread_bp": float(a["captured_bp"] / n_fills) if n_fills else math.nan,
        "inventory_mean": float(mean_q),
        "inventory_std": float(math.sqrt(var_q)),
        "inventory_max_abs": float(a["max_abs_q"]),
        "inventory_final": float(pos / cfg.order_size),
        "time_at_bound": float(a["t_bound"] / span) if span > 0 else 0.0,
        "rejected_post_only": int(a["rejects"]),
        "max_resting_orders": int(a["max_live"]),
        "quote_updates": int(a["quote_updates"]),
    } | _markout_means(marks)


def run_grid(events: Events, cfgs: Sequence[BacktestConfig], *, sample_seconds: float = 60.0,
             record_fills: bool = False,
             progress: Callable[[int, int], None] | None = None) -> list[BacktestResult]:
    """Simulate every configuration in ``cfgs`` in one pass over ``events``.

    Cost grows with ``len(cfgs)`` per event but the events are read once, which is what
    makes a gamma grid cheap. ``sample_seconds`` (must divide 3600) spaces the equity
    samples used for the hourly PnL, drawdown and plots. ``record_fills`` keeps every fill
    (memory: 96 bytes per fill per configuration); markouts are summed as the fills happen
    either way. ``progress(done, total)`` is called between chunks of events.
    """
    K.drop_stale_cache()
    cfgs = list(cfgs)
    if not cfgs:
        raise ValueError("run_grid needs at least one configuration")
    if not (sample_seconds > 0 and math.isclose(3600.0 / sample_seconds,
                                                round(3600.0 / sample_seconds))):
        raise ValueError(f"sample_seconds = {sample_seconds} must divide 3600")
    tick = None
    records = []
    for cfg in cfgs:
        if cfg.tick is None and tick is None:
            tick = infer_tick(events)
        records.append(_param_record(cfg, cfg.tick if cfg.tick is not None else tick))
    par = np.ascontiguousarray(np.stack(records))
    t_start, t_end = float(events.start), float(events.end)
    sample_seconds = float(sample_seconds)
    samp0 = math.ceil(t_start / sample_seconds) * sample_seconds
    n_samples = max(math.floor((t_end - samp0) / sample_seconds) + 1, 0)
    # A re-pricing with a gap sends two actions (the cancel, then the replacement), each
    # in flight up to the latency plus the gap.
    ring_cap = max(2 * (1 + (c.requote_gap_ms > 0))
                   * (math.ceil((c.latency_ms + c.requote_gap_ms) / 1000.0 / c.refresh_seconds)
                      + 2) for c in cfgs)
    tape = R.tape_of(events)
    clock = R.Clock(sample0=float(samp0), sample_dt=sample_seconds, end=t_end)
    mids = events.mids()

    def simulate(fill_cap, report):
        state = R.new_state(par, t_start, ring_cap, fill_cap, n_samples, mids,
                            np.array(HORIZONS, dtype=np.float64))
        n = events.t.size
        # An empty call compiles (or loads from the cache) outside the timed part.
        K.advance(tape, par, clock, state, 0, 0)
        t0 = time.perf_counter()
        step = n if report is None else _CHUNK
        for i0 in range(0, n, step):
            i1 = min(i0 + step, n)
            K.advance(tape, par, clock, state, i0, i1)
            if report is not None:
                report(i1, n)
        K.finish(tape, par, clock, state)
        return state, time.perf_counter() - t0

    # Room for two fills a trade (both slots) covers the trades rule; book-through and
    # dry-run fills are not bounded by the trades, and a run that fills more is simulated
    # again with room for every fill (the kernel stops recording when the records are full).
    state, seconds = simulate(2 * events.n_trades if record_fills else 0, progress)
    acc = state.account
    if record_fills and np.any(acc["n_bid"] + acc["n_ask"] > acc["n_recorded"]):
        state, seconds = simulate(int(np.max(acc["n_bid"] + acc["n_ask"])), None)
    market = state.market[0]
    mid_end = 0.5 * (market["bid"] + market["ask"])
    sample_t = samp0 + sample_seconds * np.arange(n_samples)
    out = []
    for c, cfg in enumerate(cfgs):
        a = state.account[c]
        f = state.ledger.fills[c, : a["n_recorded"]]
        fd = {name: f[name].copy() for name in R.FILL.names}
        mk = markouts(fd["t"], fd["price"], fd["side"], *mids)
        fd |= {f"markout_{h:g}s_bp": mk[:, j] for j, h in enumerate(HORIZONS)}
        sd = {"t": sample_t} | {name: state.samples[c][name].copy() for name in R.SAMPLE.names}
        stats = _stats(a, state.ledger.marks[c], cfg, mid_end, t_end - t_start)
        out.append(BacktestResult(cfg, stats, fd, sd, len(events), seconds, t_start, t_end))
    return out


def run_backtest(events: Events, cfg: BacktestConfig, *, sample_seconds: float = 60.0,
                 record_fills: bool = True,
                 progress: Callable[[int, int], None] | None = None) -> BacktestResult:
    """Simulate one configuration; fills are recorded by default."""
    return run_grid(events, [cfg], sample_seconds=sample_seconds, record_fills=record_fills,
                    progress=progress)[0]
