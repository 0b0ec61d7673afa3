"""The parameter file: schema v1, validation, atomic write and a cached, validating reader.

The calibrator writes it, the Freqtrade strategy reads it. The strategy must never quote on
a half-written, invalid or expired file, so every read goes through :func:`load_params`
(or :class:`ParamsCache`), which raises one of the typed errors below with a message that
says what to do.

File layout (JSON, numbers in the units named in ``units``)::

    {"schema_version": 1, "coin": "BTC", "model": "glft",
     "computed_at": "2025-09-02T00:10:00Z", "valid_until": "2025-09-03T12:10:00Z",
     "data_window": {"start": "...Z", "end": "...Z"},
     "units": {"price": "USDC", "time": "s", "sigma": "USDC/sqrt(s)", ...},
     "mid_price": 100000.0, "sigma": 6.8, "gamma": 0.05,
     "bid": {"A": 0.5, "k": 0.5}, "ask": {"A": 0.5, "k": 0.5},
     "derived": {...human-friendly views, never read back...},
     "diagnostics": {...}}
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

UNITS = {
    "price": "USDC",
    "time": "s",
    "mid_price": "USDC",
    "sigma": "USDC/sqrt(s)",
    "A": "1/s",
    "k": "1/USDC",
    "gamma": "1/USDC",
    "inventory": "lots",
}


class ParamsError(Exception):
    """Base class: the parameter file cannot be used. Never quote on it."""


class ParamsMissingError(ParamsError):
    """No file at the path."""


class ParamsInvalidError(ParamsError):
    """The file is not valid schema-v1 JSON with finite, positive numbers."""


class ParamsExpiredError(ParamsError):
    """``valid_until`` has passed."""


def _utc(text: str, key: str) -> datetime:
    try:
        dt = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ParamsInvalidError(f"{key} = {text!r} is not an ISO-8601 time") from None
    if dt.tzinfo is None:
        raise ParamsInvalidError(f"{key} = {text!r} has no time zone; write it in UTC with 'Z'")
    return dt.astimezone(UTC)


def iso_utc(dt: datetime) -> str:
    """``2025-09-01T00:00:00Z`` form used throughout the file."""
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _positive(value: Any, name: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ParamsInvalidError(f"{name} = {value!r} is not a number") from None
    if not math.isfinite(x) or x <= 0.0:
        raise ParamsInvalidError(
            f"{name} = {value!r} must be a finite number > 0; "
            "re-run the calibrator on more or cleaner data"
        )
    return x


@dataclass(frozen=True)
class SideIntensity:
    """Fill intensity of one side: ``A`` fills/s at depth 0, decay ``k`` in 1/price."""

    A: float
    k: float


@dataclass(frozen=True)
class Params:
    """A validated schema-v1 parameter set. Units as in :data:`UNITS`."""

    coin: str
    model: str
    computed_at: datetime
    valid_until: datetime
    data_window: tuple[datetime, datetime]
    mid_price: float
    sigma: float
    gamma: float
    bid: SideIntensity
    ask: SideIntensity
    diagnostics: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.model not in ("as", "glft"):
            raise ParamsInvalidError(f"model = {self.model!r}; expected 'as' or 'glft'")
        for name in ("mid_price", "sigma", "gamma"):
            _positive(getattr(self, name), name)
        for side in ("bid", "ask"):
            s = getattr(self, side)
            _positive(s.A, f"{side}.A")
            _positive(s.k, f"{side}.k")
        if self.valid_until <= self.computed_at:
            raise ParamsInvalidError("valid_until must be later than computed_at")

    def check_fresh(self, now: datetime | None = None) -> None:
        """Raise :class:`ParamsExpiredError` if ``now`` (default: the clock) is past validity."""
        now = now or datetime.now(UTC)
        if now > self.valid_until:
            raise ParamsExpiredError(
                f"parameters for {self.coin} expired at {iso_utc(self.valid_until)} "
                f"(now {iso_utc(now)}); run the calibrator (asmm calibrate) or check its sidecar"
            )

    def to_dict(self) -> dict:
        """The JSON document, with units and derived human-friendly views."""
        daily_sigma_pct = self.sigma * math.sqrt(86400.0) / self.mid_price * 100.0
        return {
            "schema_version": SCHEMA_VERSION,
            "coin": self.coin,
            "model": self.model,
            "computed_at": iso_utc(self.computed_at),
            "valid_until": iso_utc(self.valid_until),
            "data_window": {
                "start": iso_utc(self.data_window[0]),
                "end": iso_utc(self.data_window[1]),
            },
            "units": dict(UNITS),
            "mid_price": self.mid_price,
            "sigma": self.sigma,
            "gamma": self.gamma,
            "bid": {"A": self.bid.A, "k": self.bid.k},
            "ask": {"A": self.ask.A, "k": self.ask.k},
            "derived": {
                "note": "human-friendly views; derived from the fields above, never read back",
                "sigma_daily_pct": daily_sigma_pct,
                "bid_mean_sweep_depth_bp": 1.0 / self.bid.k / self.mid_price * 1e4,
                "ask_mean_sweep_depth_bp": 1.0 / self.ask.k / self.mid_price * 1e4,
            },
            "diagnostics": self.diagnostics,
        }

    @classmethod
    def from_dict(cls, doc: Any) -> Params:
        """Validate a parsed document; raises :class:`ParamsInvalidError` naming the problem."""
        if not isinstance(doc, dict):
            raise ParamsInvalidError("the file must hold a JSON object")
        version = doc.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ParamsInvalidError(
                f"schema_version = {version!r}; this version of asmm reads {SCHEMA_VERSION}. "
                "Re-run the calibrator of the same asmm version as the strategy"
            )
        missing = [k for k in ("coin", "model", "computed_at", "valid_until", "data_window",
                               "units", "mid_price", "sigma", "gamma", "bid", "ask")
                   if k not in doc]
        if missing:
            raise ParamsInvalidError(f"missing fields: {', '.join(missing)}")
        units = doc["units"]
        if not isinstance(units, dict):
            raise ParamsInvalidError("units must be an object")
        for key, unit in UNITS.items():
            if units.get(key) != unit:
                raise ParamsInvalidError(
                    f"units.{key} = {units.get(key)!r}; expected {unit!r} "
                    "(a file in other units would quote wrong prices)"
                )
        window = doc["data_window"]
        if not isinstance(window, dict) or "start" not in window or "end" not in window:
            raise ParamsInvalidError("data_window needs start and end")
        sides = {}
        for side in ("bid", "ask"):
            s = doc[side]
            if not isinstance(s, dict):
                raise ParamsInvalidError(f"{side} must be an object with A and k")
            sides[side] = SideIntensity(_positive(s.get("A"), f"{side}.A"),
                                        _positive(s.get("k"), f"{side}.k"))
        diagnostics = doc.get("diagnostics", {})
        return cls(
            coin=str(doc["coin"]),
            model=str(doc["model"]),
            computed_at=_utc(doc["computed_at"], "computed_at"),
            valid_until=_utc(doc["valid_until"], "valid_until"),
            data_window=(_utc(window["start"], "data_window.start"),
                         _utc(window["end"], "data_window.end")),
            mid_price=_positive(doc["mid_price"], "mid_price"),
            sigma=_positive(doc["sigma"], "sigma"),
            gamma=_positive(doc["gamma"], "gamma"),
            bid=sides["bid"],
            ask=sides["ask"],
            diagnostics=diagnostics if isinstance(diagnostics, dict) else {},
        )


def default_path(coin: str, folder: str | os.PathLike = "scripts") -> Path:
    """``scripts/avellaneda_parameters_<COIN>.json``."""
    return Path(folder) / f"avellaneda_parameters_{coin}.json"


def atomic_write_json(path: str | os.PathLike, doc: Any) -> None:
    """Write JSON so a reader sees the old file or the new one, never a mix.

    Temp file in the same folder (rename is atomic only within one file system), fsync of
    the data, rename over the target, fsync of the folder so the rename survives a crash.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_params(path: str | os.PathLike, params: Params) -> None:
    """Validate (by construction) and write atomically."""
    atomic_write_json(path, params.to_dict())


def load_params(path: str | os.PathLike, now: datetime | None = None,
                check_fresh: bool = True) -> Params:
    """Read, validate and (by default) check freshness. Raises a :class:`ParamsError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParamsMissingError(
            f"no parameter file at {path}; run `asmm calibrate` "
            "(or scripts/calculate_avellaneda_parameters.py) first"
        ) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ParamsInvalidError(f"{path} is not valid JSON ({e})") from None
    try:
        params = Params.from_dict(doc)
    except ParamsInvalidError as e:
        raise ParamsInvalidError(f"{path}: {e}") from None
    if check_fresh:
        params.check_fresh(now)
    return params


class ParamsCache:
    """Re-reads the file only when its mtime or size changes; thread-safe.

    :meth:`get` returns valid, fresh parameters or raises a :class:`ParamsError`. A file
    that fails validation is remembered as failed for that mtime (no re-parse every loop)
    and never handed out; freshness is checked on every call against ``now``.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._params: Params | None = None
        self._error: ParamsError | None = None

    def get(self, now: datetime | None = None) -> Params:
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                self._key, self._params = None, None
                raise ParamsMissingError(
                    f"no parameter file at {self.path}; run `asmm calibrate` first"
                ) from None
            key = (st.st_mtime_ns, st.st_size)
            if key != self._key:
                self._key = key
                try:
                    self._params, self._error = load_params(self.path, check_fresh=False), None
                except ParamsError as e:
                    self._params, self._error = None, e
            if self._error is not None:
                raise self._error
            assert self._params is not None
            self._params.check_fresh(now)
            return self._params
