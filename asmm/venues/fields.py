"""Checked values of an exchange's JSON messages, for every venue's parser
(:mod:`asmm.venues.hyperliquid.protocol`, :mod:`asmm.venues.bybit.collector.parse`): a
frame that is not a JSON object, or a field that is not what the format says, raises
:class:`~asmm.core.errors.ProtocolError` naming it, so a parser checks a whole message
before it makes any row.
"""

from __future__ import annotations

import json
import math
from typing import Any

from asmm.core.errors import ProtocolError


def json_object(text: str | bytes) -> dict:
    """One text frame decoded into a JSON object."""
    try:
        msg = json.loads(text)
    except (ValueError, TypeError) as e:
        raise ProtocolError(f"not JSON: {str(text)[:80]!r} ({e})") from None
    if not isinstance(msg, dict):
        raise ProtocolError(f"not a JSON object: {str(text)[:80]!r}")
    return msg


def positive_number(value: Any, what: str, zero_ok: bool = False) -> float:
    """A price or size sent as a decimal string or a JSON number: finite and > 0 (or 0 with
    ``zero_ok``, e.g. a level a book delta removes)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ProtocolError(f"{what} is not a number: {value!r}")
    try:
        x = float(value)
    except ValueError:
        raise ProtocolError(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(x) or x < 0 or (x == 0 and not zero_ok):
        raise ProtocolError(f"{what} must be finite and > 0{' (or 0)' if zero_ok else ''}, "
                            f"got {value!r}")
    return x


def positive_int(value: Any, what: str) -> int:
    """A positive integer sent as a JSON number or a decimal string (epoch ms times, update
    ids, sequence numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ProtocolError(f"{what} is not an integer: {value!r}")
    try:
        n = int(value)
    except ValueError:
        raise ProtocolError(f"{what} is not an integer: {value!r}") from None
    if n <= 0:
        raise ProtocolError(f"{what} must be > 0, got {value!r}")
    return n
