"""The calibrator's run: collector data -> a validated parameter file, and the sidecar loop.

- **sigma, A, k** come from the latest ``window`` hours of data (pooled statistics per UTC
  hour, :mod:`asmm.calibrate.days`; the time between recordings left out,
  :mod:`asmm.calibrate.windows`).
- **gamma**, walk-forward (:mod:`asmm.calibrate.gamma`) over the latest ``walk_forward``
  hours (with less than two days of data, the latest third), each UTC day of them estimated
  on the ``window`` hours before it, backtested as the bot trades (``execution``). The
  grid's results go into ``diagnostics.gamma``.
- **Under two hours of data**, or every test stretch skipped: gamma falls back to
  :func:`asmm.calibrate.gamma.fallback_gamma` and the file says so
  (``diagnostics.gamma.method`` and ``diagnostics.warnings``).
- **Freshness follows the data**: ``valid_until`` is ``validity`` after the end of the data
  window (never after ``computed_at + validity``), so a stopped collector cannot keep a
  sidecar writing fresh-looking files. Data older than the validity is refused: the file
  would be expired when written. Recorded days replayed as live (the demo, ``asmm replay
  --start-at now``) count from ``computed_at`` instead, by asking (``valid_from="now"``).

A run either writes a complete, validated parameter file atomically (:mod:`asmm.core.params`)
or raises :class:`CalibrationError` and writes nothing, so the last good file stays. Every
number written is finite: a NaN or inf anywhere is a :class:`CalibrationError` naming it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from asmm.calibrate import estimators as est
from asmm.calibrate import windows
from asmm.calibrate.config import CalibrationConfig, Progress
from asmm.calibrate.days import DayStats, Estimate, day_stats, estimate
from asmm.calibrate.gamma import fallback_gamma, gamma_grid, walk_forward
from asmm.calibrate.verdict import sentence, verdict
from asmm.core.errors import CalibrationError, DataError
from asmm.core.model import quote_ladder
from asmm.core.params import Params, ParamsError, SideIntensity, iso_utc, write_params
from asmm.data.readers import iter_days, read_gaps

log = logging.getLogger(__name__)


@dataclass
class Result:
    params: Params
    estimate: Estimate
    gamma: dict
    warnings: list[str]
    verdict_sentence: str = ""


def calibrate(data_dir: str | Path, cfg: CalibrationConfig, *, now: datetime | None = None,
              progress: Progress | None = None) -> Result:
    """Estimate everything and return the validated :class:`Params` (nothing written).

    Raises :class:`CalibrationError` when the data cannot support an estimate.
    """
    progress = progress or Progress()
    now = now or datetime.now(UTC)
    try:
        days = [d for d, _, _ in iter_days(data_dir, cfg.coin)]
        if not days:
            raise CalibrationError(f"no days of {cfg.coin} data in {data_dir}")
        gaps = est.merge_intervals(read_gaps(data_dir, cfg.coin))
    except DataError as e:
        raise CalibrationError(str(e)) from None
    # Newest first, until the plan could not change with more data.
    needed = windows.needed_seconds(cfg.window, cfg.walk_forward)
    stats: dict[date, DayStats] = {}
    unusable: dict[date, str] = {}
    have = 0.0
    progress.start("days", len(days))
    for d in reversed(days):
        try:
            stats[d] = day_stats(data_dir, cfg.coin, d, cfg, gaps)
            have += windows.active_seconds(stats[d].blocks)
        except (DataError, est.EstimationError) as e:
            if d == days[-1]:
                raise CalibrationError(str(e)) from None  # the newest day is always needed
            unusable[d] = str(e)
        progress.advance("days")
        if have >= needed:
            break
    blocks = [b for d in sorted(stats) for b in stats[d].blocks]
    plan = windows.plan(blocks, cfg.window, cfg.walk_forward)
    final_days = sorted({b.day for b in plan.final})
    if bad := [f"{d}: {why}" for d, why in sorted(unusable.items()) if d > final_days[0]]:
        raise CalibrationError("; ".join(bad))

    final = estimate(plan.final, cfg.min_sweeps)
    data_end = datetime.fromtimestamp(final.end, UTC)
    valid_until = validity_end(now, data_end, cfg)
    warnings = _freshness_warnings(now, data_end, valid_until, cfg)
    gamma_diag = None
    backtested = []
    if plan.pieces:
        gamma_diag = walk_forward(data_dir, cfg, list(plan.pieces), unusable, progress)
        warnings.extend(gamma_diag["warnings"])
        backtested = [p for p, t in zip(plan.pieces, gamma_diag["tests"], strict=True)
                      if "skipped" not in t]
        if gamma_diag["value"] is None:
            why = gamma_diag.get("reason") or "no test stretch could be backtested: " + \
                "; ".join(f"{t['test_window'][0]}: {t['skipped']}" for t in gamma_diag["tests"])
            gamma_diag = None
    else:
        why = plan.reason
    if gamma_diag is None:
        grid = gamma_grid(final, cfg)
        g = fallback_gamma(final, grid, cfg.max_inventory, cfg.model, cfg.as_horizon)
        warnings.append(f"gamma not backtested ({why}); fallback rule: a full inventory "
                        f"Q = {cfg.max_inventory} lots skews the quotes by one spread")
        gamma_diag = {"method": "fallback rule (not backtested)", "reason": why,
                      "value": g, "grid": grid.tolist()}
    gamma_source = "walk-forward" if gamma_diag["method"].startswith("walk") else "fallback"
    # The verdict tests gamma where the walk-forward did, else on the estimation window
    # itself (in sample, and the file says so).
    tested = [(*p.span, estimate(p.window, cfg.min_sweeps)) for p in backtested]
    in_sample = not tested
    if in_sample:
        tested = [(*p.span, final) for p in windows.by_day(plan.final)]
    try:
        the_verdict = verdict(data_dir, cfg, tested, float(gamma_diag["value"]), gamma_source,
                              in_sample)
    except (DataError, ValueError) as e:
        raise CalibrationError(f"the verdict's backtest failed: {e}") from None
    said = sentence(the_verdict, cfg.fee_tier)
    if not the_verdict["profitable"]:
        warnings.append(said)
        if cfg.require_profitable:
            raise CalibrationError(f"{said} (--require-profitable)")
    for s in (final.bid, final.ask):
        if s.inside > 0.01 * s.sweeps:
            warnings.append(f"{s.inside} of {s.sweeps} sweeps printed inside the recorded "
                            "touch (counted at the touch)")
    for d in final_days:
        if n := stats[d].quality["implausible_bbo_states"]:
            warnings.append(f"{d}: {n} BBO states left out as implausible (mid far outside "
                            "the trades around them)")

    quality = {d.isoformat(): stats[d].quality if d in stats else {"unusable": unusable[d]}
               for d in sorted({*stats, *unusable})}
    diagnostics = {
        "estimation": final.diagnostics(),
        "gamma": gamma_diag,
        "config": _config_dict(cfg),
        "data_quality": quality,
        "warnings": warnings,
    }
    start = datetime.fromtimestamp(final.start, UTC)
    end = datetime.fromtimestamp(final.end, UTC)
    try:
        params = Params(
            coin=cfg.coin, model=cfg.model, computed_at=now, valid_until=valid_until,
            data_window=(start, end), mid_price=final.mid, sigma=final.sigma.sigma,
            gamma=float(gamma_diag["value"]),
            bid=SideIntensity(final.bid.A, final.bid.k),
            ask=SideIntensity(final.ask.A, final.ask.k), diagnostics=diagnostics,
            microprice=final.microprice.as_dict() if final.microprice is not None else None,
            verdict=the_verdict)
    except ParamsError as e:  # an estimate came out non-finite or non-positive
        raise CalibrationError(f"the estimates do not form a valid parameter file: {e}") from e
    where = not_json_number(params.to_dict())
    if where:
        raise CalibrationError(f"{cfg.coin}: {where} in what would be written (every "
                               "number in the file must be finite)")
    for w in warnings:
        log.warning("%s: %s", cfg.coin, w)
    return Result(params, final, gamma_diag, warnings, said)


def validity_end(now: datetime, data_end: datetime, cfg: CalibrationConfig) -> datetime:
    """``valid_until``: ``cfg.validity`` after the data window ends (or after ``now``, if
    that is earlier: a clock behind the exchange's), or after ``now`` when
    ``cfg.valid_from == "now"``.

    Raises :class:`CalibrationError` when it would not be after ``now``: the newest data is
    older than the validity (a collector that stopped), so the file would be expired.
    """
    if cfg.valid_from == "now":
        return now + cfg.validity
    until = min(data_end, now) + cfg.validity
    if until <= now:
        raise CalibrationError(
            f"{cfg.coin}: the newest data ends at {iso_utc(data_end)}, "
            f"{_hours(now - data_end)} before now, longer ago than the validity "
            f"({_hours(cfg.validity)}): a file from it would be expired when written. Is the "
            "collector running? (Recorded days replayed as live: --valid-from now)")
    return until


def _freshness_warnings(now: datetime, data_end: datetime, valid_until: datetime,
                        cfg: CalibrationConfig) -> list[str]:
    if cfg.valid_from == "now":
        return [f"valid_until counts from computed_at, not from the data's end "
                f"({iso_utc(data_end)}): right for recorded data replayed as live only"]
    if (now - data_end).total_seconds() > cfg.max_silence:
        return [f"the newest data ends at {iso_utc(data_end)}, {_hours(now - data_end)} "
                f"ago: is the collector running? This file is valid until "
                f"{iso_utc(valid_until)} only"]
    return []


def _hours(d: timedelta) -> str:
    h = d.total_seconds() / 3600
    return f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} days"


def not_json_number(doc, where: str = "") -> str | None:
    """Where ``doc`` holds something :func:`json.dump` would refuse or write as a non-number
    (NaN, inf, a numpy array), as ``"diagnostics.estimation.ask.k_se is nan"``; None if
    nowhere."""
    if isinstance(doc, dict):
        items = ((f"{where}.{k}" if where else str(k), v) for k, v in doc.items())
    elif isinstance(doc, list | tuple):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(doc))
    elif isinstance(doc, float) and not math.isfinite(doc):
        return f"{where} is {doc}"
    elif doc is None or isinstance(doc, str | int | float):
        return None
    else:
        return f"{where} is a {type(doc).__name__}, not a JSON value"
    for path, v in items:
        if found := not_json_number(v, path):
            return found
    return None


def _config_dict(cfg: CalibrationConfig) -> dict:
    d = {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}
    d["validity"] = cfg.validity.total_seconds()
    return d


def write_result(path: str | Path, result: Result) -> None:
    """Atomic write (a reader sees the old file or the new one, never a mix)."""
    write_params(path, result.params)


def summary_rows(result: Result) -> tuple[list[tuple[str, str, str]], list[dict]]:
    """(parameter rows, quote ladder at q = -2..2) for the closing table."""
    e, p = result.estimate, result.params
    pct = e.sigma.sigma * math.sqrt(86400.0) / e.mid * 100
    rows = [
        ("sigma", f"{e.sigma.sigma:.4g} ± {e.sigma.se:.2g} USDC/√s",
         f"{pct:.2f} %/day, {e.sigma.n:,} increments"),
    ]
    for name, s in (("bid", e.bid), ("ask", e.ask)):
        rows.append((f"A {name}", f"{s.A:.4g} ± {s.A_se:.2g} /s",
                     f"{s.sweeps:,} sweeps in {s.exposure / 3600:.1f} h"))
        rows.append((f"k {name}", f"{s.k:.4g} ± {s.k_se:.2g} /USDC",
                     f"{s.beyond_touch:,} past the touch"))
    rows.append(("gamma", f"{p.gamma:.4g} /USDC", result.gamma["method"]))
    ladder = quote_ladder(p.model, e.mid, sigma=p.sigma, gamma=p.gamma, A_bid=p.bid.A,
                          k_bid=p.bid.k, A_ask=p.ask.A, k_ask=p.ask.k, tick=e.tick,
                          tau=float(p.diagnostics["config"]["as_horizon"]),
                          maker_fee=float(p.diagnostics["config"]["maker_fee"]))
    return rows, ladder


def run_every(job: Callable[[], None], every: float, stop: threading.Event,
              max_runs: int | None = None) -> tuple[int, int]:
    """The sidecar loop: ``job()`` now and then every ``every`` seconds until ``stop`` is set.

    A failing run is logged and the loop goes on (the job writes only on success, so the
    last good file stays). Returns ``(successes, failures)``; ``max_runs`` bounds the loop
    for tests.
    """
    ok = failed = 0
    while not stop.is_set() and (max_runs is None or ok + failed < max_runs):
        started = time.monotonic()
        try:
            job()
            ok += 1
        except (CalibrationError, OSError) as e:
            failed += 1
            log.error("calibration run failed: %s; keeping the last good file, next try in "
                      "%.0f s", e, every)
        except Exception as e:
            # A bug, not bad data: one line says so and the sidecar goes on; the traceback,
            # worth its lines in a bug report, comes with -vv.
            failed += 1
            log.error("calibration run failed on an internal error (%s: %s; -vv shows the "
                      "traceback); keeping the last good file, next try in %.0f s",
                      type(e).__name__, e, every)
            log.debug("traceback of the failed run", exc_info=True)
        if max_runs is not None and ok + failed >= max_runs:
            break
        stop.wait(max(0.0, every - (time.monotonic() - started)))
    return ok, failed
