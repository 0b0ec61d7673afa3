"""The parameter file's optional blocks — the microprice table and the verdict — and their
checks, as strict as the rest of the file (exact keys, JSON numbers, plausible values).
Raises :class:`~asmm.core.errors.ParamsInvalidError` naming the field."""

from __future__ import annotations

import math
from typing import Any

from asmm.core.errors import ParamsInvalidError

# The microprice block (Stoikov 2018; asmm.calibrate.microprice): the mid's expected move per
# bucket of book imbalance, added to the mid when the bot's reference is the microprice.
MICROPRICE_KEYS = ("horizon_seconds", "buckets", "adjustment", "se", "n", "spread_ticks")
# An adjustment is a fraction of a spread at most on a liquid book; one of 1 % of the mid
# is another market's file or a unit mix-up.
MAX_MICROPRICE_ADJUSTMENT = 0.01
# More buckets than this would leave each too few samples on a day of book; the backtest
# kernel holds the table in a record of this many slots.
MAX_MICROPRICE_BUCKETS = 32

VERDICT_KEYS = ("execution", "maker_fee", "taker_fee", "gamma_source", "tested_hours",
                "in_sample", "expected_fills_per_hour", "expected_pnl_per_hour",
                "markout_10s_bp", "profitable", "break_even_maker_fee")


def exact_keys(obj: Any, keys: tuple[str, ...], where: str, optional: tuple[str, ...] = ()
               ) -> dict:
    """``obj`` as a JSON object holding ``keys``, and nothing but them and ``optional``."""
    if not isinstance(obj, dict):
        raise ParamsInvalidError(f"{where or 'the file'} must be a JSON object")
    prefix = f"{where}." if where else ""
    missing = [prefix + k for k in keys if k not in obj]
    if missing:
        raise ParamsInvalidError(f"missing fields: {', '.join(missing)}")
    unknown = sorted(set(obj) - set(keys) - set(optional))
    if unknown:
        raise ParamsInvalidError(
            f"{where or 'the file'}: unknown fields {unknown}; the schema has "
            f"{sorted(keys + optional)} (a file from another asmm version?)")
    return obj


def finite_number(value: Any, name: str, *, allow_null: bool = False) -> float | None:
    """A finite JSON number (``true`` and ``"6.8"`` refused), or null where allowed."""
    if value is None and allow_null:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value):
        raise ParamsInvalidError(f"{name} = {value!r} is not a finite JSON number")
    return float(value)


def check_microprice(block: Any, mid: float) -> None:
    """The microprice block: exact keys, ``buckets`` >= 2 adjustments that are finite JSON
    numbers, each within :data:`MAX_MICROPRICE_ADJUSTMENT` of the mid."""
    exact_keys(block, MICROPRICE_KEYS, "microprice")
    buckets = block["buckets"]
    if type(buckets) is not int or not 2 <= buckets <= MAX_MICROPRICE_BUCKETS:
        raise ParamsInvalidError(f"microprice.buckets = {buckets!r} must be an integer from 2 "
                                 f"to {MAX_MICROPRICE_BUCKETS}")
    if block["spread_ticks"] != 1:
        raise ParamsInvalidError("microprice.spread_ticks must be 1 (estimated at one tick)")
    if not finite_number(block["horizon_seconds"], "microprice.horizon_seconds") > 0:
        raise ParamsInvalidError("microprice.horizon_seconds must be > 0")
    adj = block["adjustment"]
    if not isinstance(adj, list) or len(adj) != buckets:
        raise ParamsInvalidError(f"microprice.adjustment must list {buckets} numbers")
    for i, a in enumerate(adj):
        if isinstance(a, bool) or not isinstance(a, int | float) or not math.isfinite(a):
            raise ParamsInvalidError(f"microprice.adjustment[{i}] = {a!r} is not a finite "
                                     "JSON number")
        if abs(a) > MAX_MICROPRICE_ADJUSTMENT * mid:
            raise ParamsInvalidError(f"microprice.adjustment[{i}] = {a!r} is implausible "
                                     f"(over {MAX_MICROPRICE_ADJUSTMENT:.0%} of the mid)")


def check_verdict(v: Any) -> None:
    """The verdict block (asmm.calibrate.verdict): exact keys, fees within +-1 % (a fee is a
    fraction of notional), counts >= 0, ``profitable`` a boolean that agrees with the PnL."""
    exact_keys(v, VERDICT_KEYS, "verdict")
    if v["gamma_source"] not in ("walk-forward", "fallback"):
        raise ParamsInvalidError(f"verdict.gamma_source = {v['gamma_source']!r}; expected "
                                 "'walk-forward' or 'fallback'")
    if not isinstance(v["execution"], str):
        raise ParamsInvalidError("verdict.execution must be a string")
    for key in ("profitable", "in_sample"):
        if not isinstance(v[key], bool):
            raise ParamsInvalidError(f"verdict.{key} = {v[key]!r} must be true or false")
    for key in ("maker_fee", "taker_fee", "break_even_maker_fee"):
        fee = finite_number(v[key], f"verdict.{key}", allow_null=key == "break_even_maker_fee")
        if fee is not None and abs(fee) > 0.01:
            raise ParamsInvalidError(f"verdict.{key} = {fee!r} is not a fee (a fraction of "
                                     "notional: 0.00015 = 1.5 bp)")
    for key in ("tested_hours", "expected_fills_per_hour"):
        if finite_number(v[key], f"verdict.{key}") < 0:
            raise ParamsInvalidError(f"verdict.{key} must be >= 0")
    pnl = finite_number(v["expected_pnl_per_hour"], "verdict.expected_pnl_per_hour")
    finite_number(v["markout_10s_bp"], "verdict.markout_10s_bp", allow_null=True)
    if v["profitable"] != (pnl > 0):
        raise ParamsInvalidError("verdict.profitable disagrees with expected_pnl_per_hour")
