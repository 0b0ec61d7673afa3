"""Backtest sweeps: a grid of configurations × coins × days, one Dask task per (coin, day).

- **The grid** (:func:`expand_grid`) is the product of its axes: the quote (each γ of
  ``gammas`` quoting the coin's parameter file, each depth of ``fixed_depths`` quoting the
  baseline; neither: the file as it is), ``latencies_ms``, ``fee_tiers`` (names of
  :mod:`asmm.core.fees`) and ``fill_rules``. An axis left empty takes the one value of the
  other settings. Every point is a :class:`GridPoint`; the settings that are not swept
  (order size, refresh, queue, execution, ...) are the same for all.
- **One task per (coin, day)** (:func:`sweep_task`): the worker reads that UTC day's events
  itself (:func:`asmm.sim.events.load_events`, the day's bounds), the coin's parameter file
  if the grid needs it (``<params_dir>/avellaneda_parameters_<COIN>.json``), and simulates
  every point of the grid in one :func:`asmm.sim.engine.run_grid` pass (the points share the
  events and the inferred tick; they may differ in γ, depth, latency, fees and fill rule).
  It returns one small row per point (:class:`TaskOutcome`): no market data goes through
  the scheduler, so the data folder must be a path every worker reads as the same folder.
- **A failing (coin, day) fails alone**: a refusal (no data that day, a missing parameter
  file) or a bug becomes the outcome's ``error``; a task the cluster could not run becomes
  an outcome on the client. :func:`run_sweep` returns one outcome per task.
- **Results**: :func:`results_table` (one row per coin, day and grid point: the grid
  values, PnL, fees, fills per side and by kind, markouts, Sharpe, drawdown, inventory,
  events, times, the worker), :func:`summarize` (per grid point over coins × days, best
  mean PnL first) and :func:`write_results` (Parquet, atomic, the grid and the failures in
  its metadata).

Dask is imported inside :func:`run_sweep` only, so workers and tests can call
:func:`sweep_task` directly. Units: docs/design.md (γ 1/price, depths price, latency ms,
fees fractions of notional, PnL quote currency, markouts bp).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from asmm.core.cluster import this_worker
from asmm.core.enums import FillRule, Reference
from asmm.core.errors import AsmmError, ConfigError
from asmm.core.fees import fee_tier
from asmm.core.params import default_path, load_params
from asmm.data.files import day_bounds
from asmm.sim.config import FIXED, BacktestConfig

log = logging.getLogger(__name__)

# Columns of the results table that are text, and the one that is a day; the others are
# int64 when every value is an int, float64 otherwise.
TEXT_COLUMNS = ("coin", "model", "fee_tier", "fill_rule", "execution", "worker",
                "worker_name")
META_KEY = b"asmm.sweep"


@dataclass(frozen=True)
class GridPoint:
    """One configuration of the grid: what it quotes, its latency, fees and fill rule.

    ``gamma`` (1/price) quotes the coin's parameter file at that γ; ``fixed_depth`` (price)
    quotes the baseline; both None quotes the file as it is (its own γ).
    """

    point: int
    latency_ms: float
    fee_tier: str | None     # the tier the fees come from; None: the rates as given
    maker_fee: float         # fraction of notional
    taker_fee: float
    fill_rule: str
    gamma: float | None = None
    fixed_depth: float | None = None

    @property
    def uses_params(self) -> bool:
        return self.fixed_depth is None

    def quote_label(self) -> str:
        if self.fixed_depth is not None:
            return f"depth {self.fixed_depth:g}"
        return "γ of the file" if self.gamma is None else f"γ {self.gamma:g}"

    def config(self, settings: dict, params=None) -> BacktestConfig:
        """The :class:`BacktestConfig` of this point on top of ``settings`` (the fields not
        swept), quoting ``params`` (an :class:`asmm.core.params.Params`) where it needs
        them. ``ValueError`` for a combination the backtester refuses."""
        swept = dict(latency_ms=self.latency_ms, maker_fee=self.maker_fee,
                     taker_fee=self.taker_fee, fill_rule=self.fill_rule)
        quoted = BacktestConfig.quoting(params) if params is not None else {}
        if self.fixed_depth is not None:
            quoted = dict(model=FIXED, fixed_depth=self.fixed_depth,
                          microprice=quoted.get("microprice"))
        elif params is None:
            raise ValueError(f"grid point {self.point} ({self.quote_label()}) quotes a "
                             "parameter file and none was given")
        elif self.gamma is not None:
            quoted["gamma"] = self.gamma
        return BacktestConfig(**(settings | swept | quoted))


@dataclass(frozen=True)
class SweepSpec:
    """What every task of a sweep simulates: the grid, the settings not swept (fields of
    :class:`BacktestConfig` by name), where the parameter files are, the sampling."""

    points: tuple[GridPoint, ...]
    settings: dict = field(default_factory=dict)
    params_dir: str | None = None
    sample_seconds: float = 60.0

    @property
    def needs_params(self) -> bool:
        return any(p.uses_params for p in self.points) or \
            self.settings.get("reference") == Reference.MICROPRICE


def _positive(values: Iterable[float], name: str, *, zero: bool = False) -> tuple:
    out = tuple(dict.fromkeys(float(v) for v in values))
    for v in out:
        if not (math.isfinite(v) and (v >= 0 if zero else v > 0)):
            raise ConfigError(f"{name}: {v:g} must be a finite number "
                              f"{'>= 0' if zero else '> 0'}")
    return out


def expand_grid(settings: dict, *, gammas: Sequence[float] = (),
                fixed_depths: Sequence[float] = (), latencies_ms: Sequence[float] = (),
                fee_tiers: Sequence[str] = (), fill_rules: Sequence[str] = (),
                params_dir: str | Path | None = None,
                sample_seconds: float = 60.0) -> SweepSpec:
    """The sweep of every combination of the axes (repeats dropped, order kept; quote axis
    first, then latency, fee tier, fill rule), on top of ``settings`` — which also gives the
    one value of an axis left empty (``latency_ms``, ``maker_fee``/``taker_fee``,
    ``fill_rule``). Every point is checked here, on the caller's side, with a stand-in
    quote: a bad setting is a :class:`ConfigError` before any task runs."""
    gammas = _positive(gammas, "--gammas")
    depths = _positive(fixed_depths, "--fixed-depths")
    latencies = _positive(latencies_ms, "--latencies-ms", zero=True) or \
        (float(settings.get("latency_ms", 100.0)),)
    tiers = tuple(dict.fromkeys(fee_tiers))
    fees = [(t.name, t.maker, t.taker) for t in map(fee_tier, tiers)] or \
        [(None, settings.get("maker_fee"), settings.get("taker_fee"))]
    rules = tuple(dict.fromkeys(fill_rules)) or (settings.get("fill_rule",
                                                              FillRule.EXCHANGE),)
    for r in rules:
        if r not in tuple(FillRule):
            raise ConfigError(f"--fill-rules: {r!r}; choose from {', '.join(FillRule)}")
    quotes = [dict(gamma=g) for g in gammas] + [dict(fixed_depth=d) for d in depths] \
        or [dict()]
    settings = {k: v for k, v in settings.items()
                if k not in ("latency_ms", "maker_fee", "taker_fee", "fill_rule")}
    points = []
    for i, (q, lat, (tier, maker, taker), rule) in enumerate(
            itertools.product(quotes, latencies, fees, rules)):
        kw = dict(latency_ms=lat, fill_rule=FillRule(rule))
        if maker is not None:
            kw["maker_fee"], kw["taker_fee"] = maker, taker
        else:  # the rates BacktestConfig declares
            base = BacktestConfig(model=FIXED, fixed_depth=1.0)
            kw["maker_fee"], kw["taker_fee"] = base.maker_fee, base.taker_fee
        points.append(GridPoint(i, fee_tier=tier, **kw, **q))
    spec = SweepSpec(tuple(points), settings,
                     None if params_dir is None else str(params_dir), float(sample_seconds))
    if spec.needs_params and params_dir is None:
        raise ConfigError("the grid quotes each coin's parameter file (--gammas, the "
                          "microprice reference, or no --fixed-depths): give --params-dir "
                          "DIR holding avellaneda_parameters_<COIN>.json")
    for p in points:  # every setting checked once, with a stand-in quote
        try:
            GridPoint(**(asdict(p) | dict(gamma=None, fixed_depth=p.fixed_depth or 1.0))
                      ).config({k: v for k, v in settings.items() if k != "reference"})
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return spec


@dataclass
class TaskOutcome:
    """One (coin, day): a row per grid point, or why there is none."""

    coin: str
    day: date | None             # None: the coin has no day to sweep
    rows: list[dict] = field(default_factory=list)
    error: str | None = None
    worker: str = ""             # address of the worker that ran the task ("" if unknown)
    worker_name: str = ""        # its name (dask worker --name), else its address
    seconds: float = math.nan    # wall time of the task on the worker (read + simulate)
    # CPU time of the worker process during the task (its reader threads included; a
    # worker of one thread runs one task at a time). Well below ``seconds``: it waited.
    cpu_seconds: float = math.nan
    events: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    def failure(self) -> dict:
        return {"coin": self.coin, "day": None if self.day is None else self.day.isoformat(),
                "worker": self.worker, "worker_name": self.worker_name,
                "error": self.error}


def _row(coin: str, day: date, p: GridPoint, result) -> dict:
    cfg = result.config
    row = {"coin": coin, "day": day, "point": p.point, "model": str(cfg.model),
           "gamma": cfg.gamma if cfg.model != FIXED else math.nan,
           "fixed_depth": cfg.fixed_depth if cfg.fixed_depth is not None else math.nan,
           "latency_ms": cfg.latency_ms, "fee_tier": p.fee_tier, "maker_fee": cfg.maker_fee,
           "taker_fee": cfg.taker_fee, "fill_rule": str(cfg.fill_rule),
           "execution": str(cfg.execution)}
    row |= result.stats
    row |= {"sharpe": result.sharpe(), "events": result.events,
            "hours": (result.end - result.start) / 3600.0, "kernel_seconds": result.seconds}
    return row


def sweep_task(coin: str, day: date, data_dir: str, spec: SweepSpec) -> TaskOutcome:
    """The task: every grid point of ``spec`` over ``coin``'s UTC ``day`` in one pass.

    Never raises for a (coin, day) that cannot be simulated: the outcome's ``error`` says
    why (one line) and it has no rows.
    """
    from asmm.sim.engine import run_grid
    from asmm.sim.events import load_events

    worker, name = this_worker()
    out = TaskOutcome(coin, day, worker=worker, worker_name=name)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        params = None
        if spec.needs_params:
            path = default_path(coin, spec.params_dir)
            params = load_params(path, check_fresh=False)
            if params.coin != coin:
                raise ConfigError(f"{path} is for {params.coin}, not {coin}")
        cfgs = [p.config(spec.settings, params) for p in spec.points]
        events = load_events(data_dir, coin, *day_bounds(day))
        results = run_grid(events, cfgs, sample_seconds=spec.sample_seconds)
    except (AsmmError, OSError, ValueError) as e:
        out.error = " ".join(str(e).split()) or type(e).__name__
    except Exception as e:
        # A bug, not bad data: the worker's log gets the traceback, the outcome one line.
        log.exception("%s %s: sweep task failed on an internal error", coin, day)
        out.error = f"internal error ({type(e).__name__}: {' '.join(str(e).split())})"
    else:
        out.events = len(events)
        out.rows = [_row(coin, day, p, r) for p, r in zip(spec.points, results, strict=True)]
    out.seconds = time.perf_counter() - t0
    out.cpu_seconds = time.process_time() - c0
    for row in out.rows:
        row.update(seconds=out.seconds, cpu_seconds=out.cpu_seconds, worker=worker,
                   worker_name=name)
    return out


def run_sweep(tasks: Sequence[tuple[str, date]], data_dir: str | Path, spec: SweepSpec,
              client, *, on_done: Callable[[TaskOutcome], None] | None = None
              ) -> list[TaskOutcome]:
    """Run ``tasks`` ((coin, day) pairs) on ``client``'s cluster, one Dask task each; one
    outcome per task in the order given. ``on_done`` is called on this side as each task
    finishes. ``data_dir`` and ``spec.params_dir`` are handed to the workers as they are:
    paths every worker reads as the same folder."""
    from distributed import as_completed

    tasks = list(dict.fromkeys(tasks))
    batch = uuid.uuid4().hex[:8]
    futures = {client.submit(sweep_task, coin, day, str(data_dir), spec,
                             key=f"sweep-{coin}-{day.isoformat()}-{batch}", pure=False):
               (coin, day) for coin, day in tasks}
    done: dict[tuple[str, date], TaskOutcome] = {}
    try:
        for fut in as_completed(futures):
            coin, day = futures[fut]
            try:
                out = fut.result()
            except Exception as e:  # the cluster could not run it (a worker died, ...)
                out = TaskOutcome(coin, day, error=f"the task did not run to the end on the "
                                                   f"cluster ({type(e).__name__}: "
                                                   f"{' '.join(str(e).split())})")
            done[(coin, day)] = out
            if on_done is not None:
                on_done(out)
    finally:
        # Interrupted: no task left behind on a shared cluster.
        client.cancel([f for f in futures if not f.done()])
    return [done[t] for t in tasks]


def results_table(outcomes: Iterable[TaskOutcome]):
    """The rows of every outcome as one ``pyarrow.Table`` (None when there is none): text
    columns as strings, ``day`` as a date, counts as int64, the rest float64."""
    import pyarrow as pa

    rows = [r for o in outcomes for r in o.rows]
    if not rows:
        return None
    cols = list(dict.fromkeys(k for r in rows for k in r))
    arrays, fields = [], []
    for c in cols:
        vals = [r.get(c) for r in rows]
        if c in TEXT_COLUMNS:
            typ = pa.string()
        elif c == "day":
            typ = pa.date32()
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            typ = pa.int64()
        else:
            typ = pa.float64()
            vals = [math.nan if v is None else float(v) for v in vals]
        arrays.append(pa.array(vals, typ))
        fields.append(pa.field(c, typ))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def summarize(table, spec: SweepSpec) -> list[dict]:
    """Per grid point, over its coins × days: how many, mean and worst PnL per coin-day,
    fees, fills (per coin-day), markouts (means over the fills, weighted by each day's
    fills), mean Sharpe, the largest drawdown, mean inventory std — best mean PnL first.
    Grid points without a row (every task failed) are left out."""
    import numpy as np

    df = table.to_pandas()
    df["fills"] = df["fills_bid"] + df["fills_ask"]
    out = []
    for p in spec.points:
        g = df[df["point"] == p.point]
        if g.empty:
            continue
        s = {"point": p.point, "quote": p.quote_label(), "gamma": p.gamma,
             "fixed_depth": p.fixed_depth, "latency_ms": p.latency_ms,
             "fee_tier": p.fee_tier, "maker_fee": p.maker_fee, "taker_fee": p.taker_fee,
             "fill_rule": str(p.fill_rule), "coin_days": len(g),
             "coins": int(g["coin"].nunique()), "days": int(g["day"].nunique()),
             "pnl_mean": float(g["pnl"].mean()), "pnl_min": float(g["pnl"].min()),
             "pnl_total": float(g["pnl"].sum()), "fees_mean": float(g["fees"].mean()),
             "fills_mean": float(g["fills"].mean()),
             "fills_bid_mean": float(g["fills_bid"].mean()),
             "fills_ask_mean": float(g["fills_ask"].mean()),
             "sharpe_mean": float(g["sharpe"].mean()),  # NaN-skipping
             "max_drawdown_max": float(g["max_drawdown"].max()),
             "inventory_std_mean": float(g["inventory_std"].mean())}
        for h in ("1s", "10s", "60s"):
            m = g[f"markout_{h}_bp"].to_numpy()
            w = g["fills"].to_numpy(dtype=float)
            ok = np.isfinite(m) & (w > 0)
            s[f"markout_{h}_bp"] = float(np.average(m[ok], weights=w[ok])) \
                if ok.any() else math.nan
        out.append(s)
    out.sort(key=lambda s: -s["pnl_mean"] if math.isfinite(s["pnl_mean"]) else math.inf)
    return out


def json_safe(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, date):
        return v.isoformat()
    return str(v) if not isinstance(v, (int, float, str, bool, type(None))) else v


def describe(spec: SweepSpec, failures: Sequence[dict] = ()) -> dict:
    """The sweep as JSON-ready data (the Parquet file's metadata): the grid points, the
    settings not swept, where the parameter files are, and the failed (coin, day)s."""
    return {"points": [{k: json_safe(v) for k, v in asdict(p).items()}
                       for p in spec.points],
            "settings": {k: json_safe(v) for k, v in spec.settings.items()},
            "params_dir": spec.params_dir, "sample_seconds": spec.sample_seconds,
            "failures": list(failures)}


def write_results(path: str | Path, table, spec: SweepSpec,
                  failures: Sequence[dict] = ()) -> None:
    """Write the results table as Parquet (zstd), atomically (a reader sees the previous
    file or this one), with :func:`describe` as JSON under the metadata key
    ``asmm.sweep``."""
    from asmm.data.files import write_table

    meta = dict(table.schema.metadata or {})
    meta[META_KEY] = json.dumps(describe(spec, failures)).encode()
    write_table(table.replace_schema_metadata(meta), path, durable=True)


def read_metadata(path: str | Path) -> dict:
    """The :func:`describe` document stored in a results file."""
    import pyarrow.parquet as pq

    return json.loads(pq.read_schema(path).metadata[META_KEY])
