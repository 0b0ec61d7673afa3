"""The parameter file: schema v1, validation, atomic write and a cached, validating reader.

The calibrator writes it, the Freqtrade strategy reads it. The strategy must never quote on
a half-written, invalid, implausible, foreign or expired file, so every read goes through
:func:`load_params` (or :class:`ParamsCache`), which raises a :class:`ParamsError` with a
message that says what to do — whatever is at the path (not UTF-8, a folder, unreadable,
nested a thousand deep): the reader itself never raises anything else.

File layout (JSON, numbers in the units named in ``units``)::

    {"schema_version": 1, "coin": "BTC", "model": "glft",
     "computed_at": "2025-09-02T00:10:00Z", "valid_until": "2025-09-03T12:10:00Z",
     "data_window": {"start": "...Z", "end": "...Z"},
     "units": {"price": "USDC", "time": "s", "sigma": "USDC/sqrt(s)", ...},
     "mid_price": 100000.0, "sigma": 6.8, "gamma": 0.05,
     "bid": {"A": 0.5, "k": 0.5}, "ask": {"A": 0.5, "k": 0.5},
     "derived": {...human-friendly views, never read back...},
     "diagnostics": {...}}

Those keys and no others: an unknown key is refused (a typo, or a file of a newer schema,
must not pass as if it said nothing).
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asmm.core.errors import (
    ParamsError,
    ParamsExpiredError,
    ParamsInvalidError,
    ParamsMismatchError,
    ParamsMissingError,
)
from asmm.core.io import atomic_write_json
from asmm.core.params_blocks import check_microprice, check_verdict, exact_keys

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

REQUIRED_KEYS = ("schema_version", "coin", "model", "computed_at", "valid_until",
                 "data_window", "units", "mid_price", "sigma", "gamma", "bid", "ask")
OPTIONAL_KEYS = ("derived", "diagnostics", "microprice", "verdict")

# Plausibility bounds, as unit-free views so one table serves every coin. Outside them a
# number is a symptom (a fat-finger quote, another market's file, a unit mix-up), not a
# market; each range is a few orders of magnitude wider than any liquid perpetual shows.
#   sigma_daily_pct = sigma * sqrt(86400) / mid * 100   BTC: 0.5-4 %/day; 200 % is a crash day
#                                                        twice over
#   k_mid           = k * mid = 1e4 / (mean sweep depth in bp)   BTC k 1/$: 1.1e5
#   gamma_mid       = gamma * mid   only its order of magnitude: A-S gammas are ~1e-6 of
#                                   GLFT's for the same risk (the grid spans 1e4 either way)
#   A               = fills/s at depth 0, per side: one a day to ten thousand a second
PLAUSIBLE = {
    "sigma_daily_pct": (0.01, 200.0),
    "k_mid": (10.0, 1e7),
    "gamma_mid": (1e-9, 1e9),
    "A": (1e-5, 1e4),
}

# The reader's own limits on what it is handed: a parameter file is ~10 kB.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32
# Clocks of two hosts (calibrator, bot) disagree by a little; a file from the future by more
# than this is a wrong clock or a forged file.
CLOCK_SKEW = timedelta(minutes=1)


def _utc(text: Any, key: str) -> datetime:
    if not isinstance(text, str):
        raise ParamsInvalidError(f"{key} = {text!r} is not an ISO-8601 time string")
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
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


def _json_number(value: Any, name: str) -> float:
    """A positive number as JSON writes one: ``"6.8"`` or ``true`` are refused, not coerced
    (a file written by hand or by another tool must say what it means)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamsInvalidError(f"{name} = {value!r} is not a JSON number")
    return _positive(value, name)


def _depth(doc: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node)
    return deepest


def plausibility_problems(mid: float, sigma: float, gamma: float,
                          sides: dict[str, SideIntensity]) -> list[str]:
    """Each number outside :data:`PLAUSIBLE` at price level ``mid`` (USDC), as a sentence.

    ``sigma`` in USDC/√s, ``gamma`` and each side's ``k`` in 1/USDC, ``A`` in 1/s.
    """
    views = {"sigma_daily_pct": ("sigma", sigma * math.sqrt(86400.0) / mid * 100.0),
             "gamma_mid": ("gamma", gamma * mid)}
    for side, s in sides.items():
        views[f"{side}.k_mid"] = (f"{side}.k", s.k * mid)
        views[f"{side}.A"] = (f"{side}.A", s.A)
    out = []
    for view, (name, value) in views.items():
        lo, hi = PLAUSIBLE[view.split(".")[-1]]
        if not lo <= value <= hi:
            out.append(f"{name} is implausible: {view} = {value:.4g} outside [{lo:g}, {hi:g}]")
    return out


@dataclass(frozen=True)
class SideIntensity:
    """Fill intensity of one side: ``A`` fills/s at depth 0, decay ``k`` in 1/price."""

    A: float
    k: float


@dataclass(frozen=True)
class Params:
    """A validated schema-v1 parameter set. Units as in :data:`UNITS`.

    Construction checks what the numbers alone can tell (finite, positive, plausible at
    ``mid_price``, times in order); :meth:`check_fresh` what needs the clock and
    :meth:`check_market` what needs the live market.
    """

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
    microprice: dict | None = None
    verdict: dict | None = None

    def __post_init__(self):
        if not isinstance(self.coin, str) or not self.coin:
            raise ParamsInvalidError(f"coin = {self.coin!r} must be a non-empty string")
        if self.model not in ("as", "glft"):
            raise ParamsInvalidError(f"model = {self.model!r}; expected 'as' or 'glft'")
        for name in ("mid_price", "sigma", "gamma"):
            _positive(getattr(self, name), name)
        for side in ("bid", "ask"):
            s = getattr(self, side)
            _positive(s.A, f"{side}.A")
            _positive(s.k, f"{side}.k")
        problems = plausibility_problems(self.mid_price, self.sigma, self.gamma,
                                         {"bid": self.bid, "ask": self.ask})
        if problems:
            raise ParamsInvalidError("; ".join(problems) + " (see asmm.core.params.PLAUSIBLE)")
        if self.valid_until <= self.computed_at:
            raise ParamsInvalidError("valid_until must be later than computed_at")
        start, end = self.data_window
        if start > end:
            raise ParamsInvalidError("data_window.start is after data_window.end")
        if end > self.computed_at + CLOCK_SKEW:
            raise ParamsInvalidError("data_window.end is later than computed_at")
        if self.microprice is not None:
            check_microprice(self.microprice, self.mid_price)
        if self.verdict is not None:
            check_verdict(self.verdict)

    def check_fresh(self, now: datetime | None = None,
                    max_data_age: timedelta | None = None) -> None:
        """Raise unless usable at ``now`` (default: the clock).

        :class:`ParamsExpiredError` past ``valid_until`` or, with ``max_data_age``, when the
        data window ended longer ago than that (a dead collector must not be hidden by a
        calibrator that keeps re-writing files); :class:`ParamsInvalidError` when the file
        claims to be computed in the future.
        """
        now = now or datetime.now(UTC)
        if self.computed_at > now + CLOCK_SKEW:
            raise ParamsInvalidError(
                f"parameters for {self.coin} claim to be computed at "
                f"{iso_utc(self.computed_at)}, after now ({iso_utc(now)}): check the clocks "
                "of the calibrator's and the bot's hosts", kind="future")
        if now > self.valid_until:
            raise ParamsExpiredError(
                f"parameters for {self.coin} expired at {iso_utc(self.valid_until)} "
                f"(now {iso_utc(now)}); run the calibrator (asmm calibrate) or check its sidecar"
            )
        end = self.data_window[1]
        if max_data_age is not None and now - end > max_data_age:
            hours = (now - end).total_seconds() / 3600.0
            raise ParamsExpiredError(
                f"parameters for {self.coin} come from data ending {iso_utc(end)}, "
                f"{hours:.1f} h ago (> {max_data_age.total_seconds() / 3600.0:g} h): "
                "is the collector running? (asmm collect --healthcheck)", kind="data_age")

    def check_market(self, coin: str, mid: float, max_mid_distance: float) -> None:
        """Raise :class:`ParamsMismatchError` unless the file fits the market quoted now.

        ``coin`` is the pair's base (``BTC`` for ``BTC/USDC:USDC``); ``mid`` the live mid in
        USDC (NaN: not known, only the coin is checked); ``max_mid_distance`` a fraction
        (0.05 = 5 %) of the live mid. Within it, :data:`PLAUSIBLE` is re-checked at the
        live mid.
        """
        if self.coin != coin:
            raise ParamsMismatchError(
                f"parameter file is for {self.coin}, the bot trades {coin}: "
                f"point asmm.params_file at avellaneda_parameters_{coin}.json", kind="coin")
        if not math.isfinite(mid):
            return
        distance = abs(self.mid_price - mid) / mid
        if not distance <= max_mid_distance:
            raise ParamsMismatchError(
                f"parameter file's mid {self.mid_price:.6g} is {distance:.1%} from the live "
                f"mid {mid:.6g} (> {max_mid_distance:.1%}): re-calibrate on recent data",
                kind="mid")
        problems = plausibility_problems(mid, self.sigma, self.gamma,
                                         {"bid": self.bid, "ask": self.ask})
        if problems:
            raise ParamsMismatchError("; ".join(problems) + f" at the live mid {mid:.6g}",
                                      kind="plausibility")

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
            **({"microprice": self.microprice} if self.microprice is not None else {}),
            **({"verdict": self.verdict} if self.verdict is not None else {}),
        }

    @classmethod
    def from_dict(cls, doc: Any) -> Params:
        """Validate a parsed document; raises :class:`ParamsInvalidError` naming the problem."""
        if not isinstance(doc, dict):
            raise ParamsInvalidError("the file must hold a JSON object")
        version = doc.get("schema_version")
        if type(version) is not int or version != SCHEMA_VERSION:
            raise ParamsInvalidError(
                f"schema_version = {version!r}; this version of asmm reads {SCHEMA_VERSION}. "
                "Re-run the calibrator of the same asmm version as the strategy"
            )
        exact_keys(doc, REQUIRED_KEYS, "", OPTIONAL_KEYS)
        units = exact_keys(doc["units"], tuple(UNITS), "units")
        for key, unit in UNITS.items():
            if units.get(key) != unit:
                raise ParamsInvalidError(
                    f"units.{key} = {units.get(key)!r}; expected {unit!r} "
                    "(a file in other units would quote wrong prices)"
                )
        window = exact_keys(doc["data_window"], ("start", "end"), "data_window")
        sides = {}
        for side in ("bid", "ask"):
            s = exact_keys(doc[side], ("A", "k"), side)
            sides[side] = SideIntensity(_json_number(s["A"], f"{side}.A"),
                                        _json_number(s["k"], f"{side}.k"))
        for key in ("coin", "model"):
            if not isinstance(doc[key], str):
                raise ParamsInvalidError(f"{key} = {doc[key]!r} must be a string")
        diagnostics = doc.get("diagnostics", {})
        if not isinstance(diagnostics, dict):
            raise ParamsInvalidError("diagnostics must be a JSON object")
        return cls(
            coin=doc["coin"],
            model=doc["model"],
            computed_at=_utc(doc["computed_at"], "computed_at"),
            valid_until=_utc(doc["valid_until"], "valid_until"),
            data_window=(_utc(window["start"], "data_window.start"),
                         _utc(window["end"], "data_window.end")),
            mid_price=_json_number(doc["mid_price"], "mid_price"),
            sigma=_json_number(doc["sigma"], "sigma"),
            gamma=_json_number(doc["gamma"], "gamma"),
            bid=sides["bid"],
            ask=sides["ask"],
            diagnostics=diagnostics,
            microprice=doc.get("microprice"),
            verdict=doc.get("verdict"),
        )


def default_path(coin: str, folder: str | os.PathLike = "scripts") -> Path:
    """``scripts/avellaneda_parameters_<COIN>.json``."""
    return Path(folder) / f"avellaneda_parameters_{coin}.json"


def write_params(path: str | os.PathLike, params: Params) -> None:
    """Validate (by construction) and write atomically."""
    atomic_write_json(path, params.to_dict())


def _read_document(path: Path) -> Any:
    """The parsed JSON at ``path``; every way it can fail is a :class:`ParamsError`."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ParamsMissingError(
            f"no parameter file at {path}; run `asmm calibrate` "
            "(or scripts/calculate_avellaneda_parameters.py) first"
        ) from None
    except IsADirectoryError:
        raise ParamsInvalidError(f"parameter file {path} is a folder, not a file") from None
    except PermissionError:
        raise ParamsInvalidError(
            f"parameter file {path} cannot be read by this user (mode "
            f"{_mode(path)}): the calibrator writes 0644; fix the owner or mode") from None
    except OSError as e:
        raise ParamsInvalidError(f"parameter file {path} cannot be read: {e.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ParamsInvalidError(f"parameter file {path} is larger than "
                                 f"{MAX_FILE_BYTES >> 20} MiB: not a parameter file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ParamsInvalidError(f"parameter file {path} is not UTF-8 (byte {e.start})") \
            from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ParamsInvalidError(f"{path} is not valid JSON ({e})") from None
    except RecursionError:
        raise ParamsInvalidError(f"parameter file {path} is nested too deep") from None
    if _depth(doc) > MAX_DEPTH:
        raise ParamsInvalidError(f"parameter file {path} is nested deeper than {MAX_DEPTH}")
    return doc


def _mode(path: Path) -> str:
    try:
        return oct(path.stat().st_mode & 0o777)
    except OSError:
        return "unknown"


def load_params(path: str | os.PathLike, now: datetime | None = None,
                check_fresh: bool = True, max_data_age: timedelta | None = None) -> Params:
    """Read, validate and (by default) check freshness. Raises only :class:`ParamsError`."""
    path = Path(path)
    doc = _read_document(path)
    try:
        params = Params.from_dict(doc)
    except ParamsInvalidError as e:
        raise ParamsInvalidError(f"{path}: {e}") from None
    if check_fresh:
        params.check_fresh(now, max_data_age)
    return params


class ParamsCache:
    """Re-reads the file only when it changes; thread-safe.

    :meth:`get` returns valid, fresh parameters or raises a :class:`ParamsError`. A file
    that fails validation is remembered as failed for that version (no re-parse every loop)
    and never handed out; once the file changed, the old numbers are gone whatever the new
    content turns out to be. A version is (inode, mtime, ctime, size): a rename gives a new
    inode, and ctime cannot be set back by a writer that restores the mtime.
    """

    def __init__(self, path: str | os.PathLike, max_data_age: timedelta | None = None):
        self.path = Path(path)
        self.max_data_age = max_data_age
        self._lock = threading.Lock()
        self._key: tuple[int, ...] | None = None
        self._params: Params | None = None
        self._error: ParamsError | None = None

    def get(self, now: datetime | None = None) -> Params:
        with self._lock:
            try:
                st = self.path.stat()
                key = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
            except OSError:
                key = None  # gone or unreachable: _read_document says which
            if key is None or key != self._key:
                self._key, self._params, self._error = key, None, None
                try:
                    self._params = load_params(self.path, check_fresh=False)
                except ParamsError as e:
                    self._error = e
            if self._error is not None:
                raise self._error
            if self._params is None:  # unreachable by construction; never quote on it
                raise ParamsInvalidError(f"parameter file {self.path}: no usable version read")
            self._params.check_fresh(now, self.max_data_age)
            return self._params
