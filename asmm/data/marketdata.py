"""The collector's file format: names, columns, writing, and reading into typed arrays.

Layouts (both read, CSV or Parquet with the same columns)::

    DIR/<kind>_<COIN>_<YYYY-MM-DD>.csv   one file per UTC day (what the collector writes)
    DIR/<kind>_<COIN>.csv                one file (existing archives)

Kinds and columns (docs/design.md):

- ``prices``: timestamp, price, size, side (bid|ask), exchange_timestamp — one row per side
  of each BBO message.
- ``trades``: timestamp, price, size, side (buy|sell = aggressor), trade_id, exchange_timestamp.
- ``orderbooks``: timestamp, sequence, exchange_timestamp, then bid_price_i, bid_size_i,
  ask_price_i, ask_size_i for i = 0 .. depth-1.
- ``gaps``: start, end (epoch seconds), reason — periods the collector was not receiving.

``timestamp`` is local receive time in epoch seconds (float); ``exchange_timestamp`` is
exchange time in epoch milliseconds (int).

Conventions every consumer shares:

- **Ordering.** Rows are ordered by exchange time (stable sort; out-of-order rows are
  counted in :class:`Quality`). At equal exchange time, **trades come before book updates**:
  Hyperliquid stamps a block's trades and the book *after* that block with the same time, so
  the book a trade executed against is the last one strictly before it.
- **Bad rows** (unparseable, not UTF-8, a truncated last line, NaN, non-positive price or
  size, unknown side, an exchange time in another unit than the rest of its file) are dropped
  and counted, never silently used. A crossed or locked BBO is kept in the arrays (it
  happened) but flagged; estimators leave it out.
- **Bad files** are a :class:`DataError` naming the file: unreadable, missing a column, or a
  time column in the wrong unit (``exchange_timestamp`` in seconds, ``timestamp`` in
  milliseconds, ...). An unreadable Parquet file with a CSV of the same day beside it is
  replaced by that CSV (logged, and noted in :class:`Quality`).
- **Layouts.** Daily files and a single file of the same kind and coin are merged only when
  their exchange times do not overlap (an archive that moved from one layout to the other).
  Overlapping ones are refused, naming both files: the reader cannot tell which one is right
  (another market's file under this coin's name, a copy), and merging would double or mix
  the rows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from asmm.core.errors import DataError
from asmm.core.io import atomic_path

log = logging.getLogger(__name__)

PRICES_COLUMNS = ["timestamp", "price", "size", "side", "exchange_timestamp"]
TRADES_COLUMNS = ["timestamp", "price", "size", "side", "trade_id", "exchange_timestamp"]
GAPS_COLUMNS = ["start", "end", "reason"]
KINDS = ("prices", "trades", "orderbooks", "gaps")
_FILE_RE = re.compile(
    r"^(?P<kind>prices|trades|orderbooks|gaps)_(?P<coin>[A-Za-z0-9@:\-]+?)"
    r"(?:_(?P<day>\d{4}-\d{2}-\d{2}))?\.(?P<ext>csv|parquet)$"
)


T = TypeVar("T")


def orderbook_columns(depth: int) -> list[str]:
    cols = ["timestamp", "sequence", "exchange_timestamp"]
    for i in range(depth):
        cols += [f"bid_price_{i}", f"bid_size_{i}", f"ask_price_{i}", f"ask_size_{i}"]
    return cols


def day_path(folder: str | Path, kind: str, coin: str, day: date, ext: str = "csv") -> Path:
    """``<folder>/<kind>_<COIN>_<YYYY-MM-DD>.<ext>``."""
    return Path(folder) / f"{kind}_{coin}_{day.isoformat()}.{ext}"


def day_bounds(day: date) -> tuple[float, float]:
    """Epoch seconds of the UTC day's start and end."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    return start, start + 86400.0


@dataclass
class DataFile:
    kind: str
    coin: str
    day: date | None  # None: single-file layout
    path: Path
    fallback: Path | None = None  # the CSV of the same day, when ``path`` is its Parquet


def list_files(folder: str | Path, kind: str, coin: str) -> list[DataFile]:
    """Files of one kind and coin, daily ones sorted by day, then any single-file one.

    A folder holding the same day as both CSV and Parquet yields the Parquet one (faster,
    and written from the same rows) with the CSV as its ``fallback``, read if the Parquet
    one cannot be.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist")
    found: dict[date | None, dict[str, Path]] = {}
    for p in folder.iterdir():
        m = _FILE_RE.match(p.name)
        if not m or m["kind"] != kind or m["coin"] != coin:
            continue
        day = date.fromisoformat(m["day"]) if m["day"] else None
        found.setdefault(day, {})[m["ext"]] = p
    files = {day: DataFile(kind, coin, day, by_ext.get("parquet", by_ext.get("csv")),
                           by_ext["csv"] if len(by_ext) == 2 else None)
             for day, by_ext in found.items()}
    daily = sorted((f for d, f in files.items() if d is not None), key=lambda f: f.day)
    single = [f for d, f in files.items() if d is None]
    return daily + single


def available_days(folder: str | Path, coin: str) -> list[date]:
    """UTC days that have both a prices and a trades file (daily layout)."""
    p = {f.day for f in list_files(folder, "prices", coin) if f.day}
    t = {f.day for f in list_files(folder, "trades", coin) if f.day}
    return sorted(p & t)


# --------------------------------------------------------------------------- writing


def write_table(table: pa.Table, path: str | Path) -> None:
    """Write a table as CSV or Parquet by the path's extension."""
    with atomic_path(path, durable=False) as tmp:
        if Path(path).suffix == ".parquet":
            pq.write_table(table, tmp)
        else:
            opts = pacsv.WriteOptions(quoting_style="none", quoting_header="none")
            pacsv.write_csv(table, tmp, opts)


# --------------------------------------------------------------------------- reading


@dataclass
class Quality:
    """What a reader dropped or noticed, by reason. Logged and kept with the data."""

    rows_read: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def drop(self, reason: str, n: int) -> None:
        if n:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(n)

    def merge(self, other: Quality) -> None:
        self.rows_read += other.rows_read
        for k, v in other.dropped.items():
            self.drop(k, v)
        self.notes.extend(other.notes)


# A number as the collector (or any CSV writer) prints it, in RE2 syntax for Arrow.
_NUMBER_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(?i:inf|infinity|nan)$"

# Which epoch unit each time column holds (docs/design.md, "Collector data format").
_TIME_UNITS = {"exchange_timestamp": "milliseconds", "timestamp": "seconds",
               "start": "seconds", "end": "seconds"}
_PER_SECOND = {"seconds": 1.0, "milliseconds": 1e3, "microseconds": 1e6, "nanoseconds": 1e9}
# Epoch seconds of 2000-01-01 and 2100-01-01: every time a collector can have written. The
# units are 1000x apart and this span is 4.3x wide, so a value belongs to at most one unit.
_EPOCH_SPAN_S = (946_684_800.0, 4_102_444_800.0)


def _first_line(e: BaseException) -> str:
    """An exception's message on one line (Arrow's run over several)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _empty(columns: list[str], types: dict[str, pa.DataType]) -> pa.Table:
    return pa.table({c: pa.array([], type=types.get(c, pa.float64())) for c in columns})


def _read_raw(path: Path, columns: list[str], types: dict[str, pa.DataType],
              quality: Quality) -> pa.Table:
    """Read one file into ``columns`` of ``types``; bad rows are skipped and counted.

    Raises :class:`DataError` naming the file when it cannot be read at all, lacks a column
    or holds a time column in the wrong unit (:func:`_time_unit_rows`). ``quality`` is
    updated only when the file was read.
    """
    q = Quality()
    try:
        if path.suffix == ".parquet":
            table = _conform(pq.read_table(path), types, q)
        else:
            table = _read_csv(path, columns, types, q)
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or _first_line(e)})") from None
    except pa.ArrowException as e:
        raise DataError(f"{path}: cannot read it as a collector file ({_first_line(e)})") \
            from None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        has = table.column_names
        shown = ", ".join(has[:12]) + (", ..." if len(has) > 12 else "")
        raise DataError(f"{path}: missing columns {missing} (has {shown})")
    table = table.select(columns)
    bad = None
    for col in columns:
        if col in _TIME_UNITS:
            wrong = _time_unit_rows(path, col, _num(table, col, np.float64))
            bad = wrong if bad is None else bad | wrong
    if bad is not None and bad.any():
        q.drop("exchange_timestamp not in epoch milliseconds", np.count_nonzero(bad))
        table = table.filter(pa.array(~bad))
    q.rows_read = table.num_rows
    quality.merge(q)
    return table


def _time_unit_rows(path: Path, col: str, t: np.ndarray) -> np.ndarray:
    """Rows of ``exchange_timestamp`` in another unit than the rest of the file (bool mask).

    The file's unit is that of its median time: a file in the wrong unit (exchange time in
    seconds, local time in milliseconds) is a :class:`DataError` naming the unit, because
    read as the right one its times land in 1970 or the far future and every window comes
    out empty. A few stray rows in another unit are dropped instead (returned), so one
    bad row cannot move a replay's clock to 1970. Times in no unit's range of plausible
    dates (hand-made test files) are not judged.
    """
    ok = np.zeros(t.size, dtype=bool)
    # About a thousand evenly spread rows decide the file's unit as well as all of them.
    sample = t[:: max(1, t.size // 1000)]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return ok
    expected = _TIME_UNITS[col]
    lo, hi = _EPOCH_SPAN_S
    median = float(np.median(sample))
    for unit, per_s in _PER_SECOND.items():
        if lo * per_s <= median < hi * per_s:
            if unit != expected:
                when = datetime.fromtimestamp(median / per_s, UTC).date()
                raise DataError(
                    f"{path}: {col} is in epoch {unit}, not {expected} (median {median:.0f} "
                    f"is {when} read as {unit}); the collector format has {col} in epoch "
                    f"{expected}")
            if col == "exchange_timestamp":
                per_s = _PER_SECOND[expected]
                return np.isfinite(t) & ((t < lo * per_s) | (t >= hi * per_s))
            return ok
    return ok


def _read_csv(path: Path, columns: list[str], types: dict[str, pa.DataType],
              quality: Quality) -> pa.Table:
    """One CSV file.

    Every complete row a writer puts down ends with a newline, so a CSV file that does not
    end with one was cut mid-row (kill -9, a full disk): its last line is dropped even when
    it happens to have the right number of fields ("...,17566848" cut from a timestamp).
    Rows with the wrong number of fields are skipped too.
    """
    size = path.stat().st_size
    if size == 0:
        quality.notes.append(f"{path.name}: empty file")
        return _empty(columns, types)
    data: bytes | None = None
    with open(path, "rb") as fh:
        fh.seek(size - 1)
        complete = fh.read(1) == b"\n"
    if not complete:
        data = path.read_bytes()
        data = data[: data.rfind(b"\n") + 1]
        quality.drop("truncated last line", 1)
        if not data:  # not even a whole header: a file cut as it was created
            quality.notes.append(f"{path.name}: empty file (header cut short)")
            return _empty(columns, types)
    convert = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True)
    try:
        return pacsv.read_csv(path if data is None else pa.BufferReader(data),
                              convert_options=convert)
    except pa.ArrowInvalid:
        # A bad row (a wrong number of fields, text in a number column, bytes that are not
        # UTF-8) fails the typed read of the whole file; only such a file pays for the
        # slower reading below.
        return _parse_csv_tolerant(path.read_bytes() if data is None else data, types,
                                   quality)


def _parse_csv_tolerant(data: bytes, types: dict[str, pa.DataType],
                        quality: Quality) -> pa.Table:
    """The slow path: lines that are not UTF-8, rows with the wrong number of fields and
    rows with a cell that is not a number where one belongs are dropped and counted."""
    text = data.decode("utf-8", errors="replace")
    if "\ufffd" in text:  # the replacement character: some line held bytes not UTF-8
        lines = text.split("\n")
        kept = [line for line in lines if "\ufffd" not in line]
        quality.drop("line not UTF-8", len(lines) - len(kept))
        data = "\n".join(kept).encode()
    # Only now a Python handler for rows of the wrong width: Arrow hands it the row as
    # text, and a row that is not UTF-8 would fail that hand-over (removed just above).
    skipped = 0

    def on_bad(row):
        nonlocal skipped
        skipped += 1
        return "skip"

    table = pacsv.read_csv(
        pa.BufferReader(data),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_bad),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in types},
                                             strings_can_be_null=True),
    )
    quality.drop("malformed row", skipped)
    return _conform(table, types, quality)


def _conform(table: pa.Table, types: dict[str, pa.DataType], quality: Quality) -> pa.Table:
    """Cast the columns of ``types`` that ``table`` has. A row whose text is not a number
    where one belongs is dropped and counted as malformed; any other cast that fails is an
    error (a column of the wrong kind)."""
    def is_text(c):
        t = table.schema.field(c).type
        return pa.types.is_string(t) or pa.types.is_large_string(t)

    numeric = [c for c, t in types.items()
               if c in table.column_names and pa.types.is_floating(t) and is_text(c)]
    if numeric:
        bad = np.zeros(table.num_rows, dtype=bool)
        for c in numeric:
            is_num = pc.match_substring_regex(table.column(c), _NUMBER_RE)
            bad |= ~is_num.fill_null(True).to_numpy(zero_copy_only=False)
        if bad.any():
            quality.drop("malformed row", np.count_nonzero(bad))
            table = table.filter(pa.array(~bad))
    for c, t in types.items():
        if c in table.column_names and table.schema.field(c).type != t:
            try:
                table = table.set_column(table.schema.get_field_index(c), c,
                                         table.column(c).cast(t))
            except pa.ArrowException as e:
                raise pa.ArrowInvalid(f"column {c} of type {table.schema.field(c).type} is "
                                      f"not {t}: {_first_line(e)}") from None
    return table


def _num(table: pa.Table, col: str, dtype) -> np.ndarray:
    return table.column(col).to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _sort_by_exchange_time(arrays: dict[str, np.ndarray], quality: Quality, what: str) -> dict:
    ts = arrays["exchange_timestamp"]
    if ts.size > 1 and np.any(np.diff(ts) < 0):
        n = int(np.count_nonzero(np.diff(ts) < 0))
        quality.notes.append(f"{what}: {n} out-of-order rows re-sorted by exchange time")
        order = np.argsort(ts, kind="stable")
        arrays = {k: v[order] for k, v in arrays.items()}
    return arrays


@dataclass
class Trades:
    """Trades as arrays of equal length, ordered by exchange time.

    ``t`` exchange time (ms, int64); ``t_local`` receive time (s, float64); ``price`` and
    ``size`` (float64); ``side`` +1 buy aggressor / -1 sell aggressor (int8); ``trade_id``.
    """

    t: np.ndarray
    t_local: np.ndarray
    price: np.ndarray
    size: np.ndarray
    side: np.ndarray
    trade_id: np.ndarray
    quality: Quality = field(default_factory=Quality)

    def __len__(self) -> int:
        return int(self.t.size)


@dataclass
class BBO:
    """Best bid/offer states, one per distinct exchange time, ordered by time.

    ``t`` (ms), ``t_local`` (s), ``bid``/``ask`` prices, ``bid_size``/``ask_size``;
    ``crossed`` is True where ``bid >= ask`` (kept, flagged; estimators leave it out).
    """

    t: np.ndarray
    t_local: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    quality: Quality = field(default_factory=Quality)

    @property
    def mid(self) -> np.ndarray:
        return 0.5 * (self.bid + self.ask)

    @property
    def crossed(self) -> np.ndarray:
        return self.bid >= self.ask

    def __len__(self) -> int:
        return int(self.t.size)


def _window(df_t_ms: np.ndarray, start: float | None, end: float | None) -> np.ndarray:
    keep = np.ones(df_t_ms.size, dtype=bool)
    if start is not None:
        keep &= df_t_ms >= start * 1000.0
    if end is not None:
        keep &= df_t_ms < end * 1000.0
    return keep


def _files(folder, kind, coin, start, end) -> list[DataFile]:
    files = list_files(folder, kind, coin)
    if not files:
        raise DataError(
            f"no {kind} files for {coin} in {folder} "
            f"(expected {kind}_{coin}_YYYY-MM-DD.csv or {kind}_{coin}.csv)"
        )
    if start is None and end is None:
        return files
    out = []
    for f in files:
        if f.day is None:
            out.append(f)
            continue
        lo, hi = day_bounds(f.day)
        if (end is None or lo < end) and (start is None or hi > start):
            out.append(f)
    if not out:
        have = ", ".join(f.day.isoformat() for f in files if f.day) or "none"
        raise DataError(
            f"no {kind} files for {coin} in {folder} cover the window "
            f"[{_fmt_epoch(start)}, {_fmt_epoch(end)}); days on disk: {have}"
        )
    return out


def _fmt_epoch(t: float | None) -> str:
    return "open" if t is None else datetime.fromtimestamp(t, UTC).isoformat()


def _read_file(f: DataFile, read: Callable[[Path], T], quality: Quality) -> tuple[Path, T]:
    """``(path, read(path))`` of ``f``'s file, or of its CSV fallback when the Parquet file
    cannot be read (a copy cut short, a disk error): the CSV holds the same rows."""
    try:
        return f.path, read(f.path)
    except DataError as e:
        if f.fallback is None:
            raise
        quality.notes.append(f"{e}; read {f.fallback.name} (the same day as CSV) instead")
        return f.fallback, read(f.fallback)


def _check_layouts(spans: list[tuple[DataFile, Path, float, float]], kind: str) -> None:
    """Refuse a single-layout file whose exchange times (ms) overlap a daily file's (module
    docstring, "Layouts"); ``spans`` are ``(file, path read, first, last)``."""
    for one, one_path, lo1, hi1 in spans:
        if one.day is not None:
            continue
        for f, path, lo, hi in spans:
            if f.day is not None and lo <= hi1 and lo1 <= hi:
                raise DataError(
                    f"{one_path} and {path} both hold {kind} of {f.coin} from "
                    f"{_fmt_epoch(max(lo, lo1) / 1000)} to {_fmt_epoch(min(hi, hi1) / 1000)}: "
                    "the single-file and the daily layout are merged only when their times "
                    "do not overlap, since which one is right cannot be told; move one of "
                    "them out of the folder")


def _span(f: DataFile, path: Path, t_ms: np.ndarray) -> list[tuple[DataFile, Path, float, float]]:
    return [(f, path, float(t_ms.min()), float(t_ms.max()))] if t_ms.size else []


def _clean_common(price, size, quality: Quality, what: str) -> np.ndarray:
    bad_nan = ~(np.isfinite(price) & np.isfinite(size))
    bad_sign = ~bad_nan & ((price <= 0) | (size <= 0))
    quality.drop(f"{what}: NaN or missing price/size", np.count_nonzero(bad_nan))
    quality.drop(f"{what}: non-positive price/size", np.count_nonzero(bad_sign))
    return ~(bad_nan | bad_sign)


def read_trades(folder: str | Path, coin: str, start: float | None = None,
                end: float | None = None) -> Trades:
    """Trades of ``coin`` with exchange time in ``[start, end)`` (epoch seconds)."""
    # Integers are read as float64 (exact below 2**53) so a missing value is a NaN to count,
    # not a parse error that loses the whole file.
    types = {"timestamp": pa.float64(), "price": pa.float64(), "size": pa.float64(),
             "side": pa.string(), "trade_id": pa.float64(), "exchange_timestamp": pa.float64()}
    quality = Quality()
    parts, spans = [], []
    for f in _files(folder, "trades", coin, start, end):
        path, tbl = _read_file(f, lambda p: _read_raw(p, TRADES_COLUMNS, types, quality),
                               quality)
        side_txt = tbl.column("side").cast(pa.string())
        is_buy = pc.equal(side_txt, "buy").fill_null(False).to_numpy(zero_copy_only=False)
        is_sell = pc.equal(side_txt, "sell").fill_null(False).to_numpy(zero_copy_only=False)
        side = (is_buy.astype(np.int8) - is_sell.astype(np.int8))
        ex = _num(tbl, "exchange_timestamp", np.float64)
        tid = _num(tbl, "trade_id", np.float64)
        ts_null = ~np.isfinite(ex)  # missing, or "inf": no time to place the row at
        arr = {
            "exchange_timestamp": np.where(ts_null, 0, ex).astype(np.int64),
            "timestamp": _num(tbl, "timestamp", np.float64),
            "price": _num(tbl, "price", np.float64),
            "size": _num(tbl, "size", np.float64),
            "side": side,
            "trade_id": np.where(np.isfinite(tid), tid, -1).astype(np.int64),
        }
        keep = _clean_common(arr["price"], arr["size"], quality, "trades")
        bad_side = keep & (side == 0)
        quality.drop("trades: side not buy/sell", np.count_nonzero(bad_side))
        quality.drop("trades: missing exchange_timestamp", np.count_nonzero(keep & ts_null))
        keep &= (side != 0) & ~ts_null
        spans += _span(f, path, arr["exchange_timestamp"][keep])
        keep &= _window(arr["exchange_timestamp"], start, end)
        parts.append({k: v[keep] for k, v in arr.items()})
    _check_layouts(spans, "trades")
    arr = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    arr = _sort_by_exchange_time(arr, quality, "trades")
    # The same fill written twice (a reconnect replaying a snapshot) counts once.
    ids = arr["trade_id"]
    if ids.size:
        _, first = np.unique(ids, return_index=True)
        dup = ids.size - first.size
        if dup and np.all(ids >= 0):
            quality.drop("trades: duplicate trade_id", dup)
            first.sort()
            arr = {k: v[first] for k, v in arr.items()}
    _log_quality("trades", coin, quality)
    return Trades(arr["exchange_timestamp"], arr["timestamp"], arr["price"], arr["size"],
                  arr["side"], arr["trade_id"], quality)


def read_bbo(folder: str | Path, coin: str, start: float | None = None,
             end: float | None = None) -> BBO:
    """BBO states of ``coin`` from the ``prices`` files, exchange time in ``[start, end)``.

    Each BBO message is a bid row and an ask row with the same exchange time; the state at
    a time is the last bid and last ask seen up to it. States before both sides are known
    are dropped.
    """
    types = {"timestamp": pa.float64(), "price": pa.float64(), "size": pa.float64(),
             "side": pa.string(), "exchange_timestamp": pa.float64()}
    quality = Quality()
    parts, spans = [], []
    for f in _files(folder, "prices", coin, start, end):
        path, tbl = _read_file(f, lambda p: _read_raw(p, PRICES_COLUMNS, types, quality),
                               quality)
        side_txt = tbl.column("side").cast(pa.string())
        is_bid = pc.equal(side_txt, "bid").fill_null(False).to_numpy(zero_copy_only=False)
        is_ask = pc.equal(side_txt, "ask").fill_null(False).to_numpy(zero_copy_only=False)
        ex = _num(tbl, "exchange_timestamp", np.float64)
        arr = {"timestamp": _num(tbl, "timestamp", np.float64),
               "price": _num(tbl, "price", np.float64),
               "size": _num(tbl, "size", np.float64),
               "is_bid": is_bid}
        keep = _clean_common(arr["price"], arr["size"], quality, "prices")
        quality.drop("prices: side not bid/ask", np.count_nonzero(keep & ~(is_bid | is_ask)))
        timed = np.isfinite(ex)
        quality.drop("prices: missing exchange_timestamp", np.count_nonzero(keep & ~timed))
        keep &= (is_bid | is_ask) & timed
        arr["exchange_timestamp"] = np.where(timed, ex, 0).astype(np.int64)
        spans += _span(f, path, arr["exchange_timestamp"][keep])
        keep &= _window(arr["exchange_timestamp"], start, end)
        parts.append({k: v[keep] for k, v in arr.items()})
    _check_layouts(spans, "prices")
    arr = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    arr = _sort_by_exchange_time(arr, quality, "prices")
    n = arr["price"].size
    idx = np.arange(n)
    is_bid = arr["is_bid"]
    last_bid = np.maximum.accumulate(np.where(is_bid, idx, -1)) if n else idx
    last_ask = np.maximum.accumulate(np.where(~is_bid, idx, -1)) if n else idx
    ts = arr["exchange_timestamp"]
    # One state per exchange time: the row that closes a run of equal times.
    closes = np.ones(n, dtype=bool)
    if n:
        closes[:-1] = ts[1:] != ts[:-1]
    closes &= (last_bid >= 0) & (last_ask >= 0)
    lb, la = last_bid[closes], last_ask[closes]
    bbo = BBO(ts[closes], arr["timestamp"][closes], arr["price"][lb], arr["price"][la],
              arr["size"][lb], arr["size"][la], quality)
    ncross = int(np.count_nonzero(bbo.crossed))
    if ncross:
        quality.notes.append(f"prices: {ncross} crossed or locked BBO states (flagged)")
    _log_quality("prices", coin, quality)
    return bbo


@dataclass
class OrderBooks:
    """L2 snapshots: ``t`` (ms), ``t_local`` (s), ``bid_px``/``bid_sz``/``ask_px``/``ask_sz``
    of shape (n, depth); missing levels are NaN."""

    t: np.ndarray
    t_local: np.ndarray
    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray
    quality: Quality = field(default_factory=Quality)

    @property
    def depth(self) -> int:
        return int(self.bid_px.shape[1])

    def __len__(self) -> int:
        return int(self.t.size)


def read_orderbooks(folder: str | Path, coin: str, start: float | None = None,
                    end: float | None = None) -> OrderBooks:
    """L2 snapshots of ``coin`` (depth inferred from the header)."""
    quality = Quality()
    parts, spans = [], []
    depth = None
    for f in _files(folder, "orderbooks", coin, start, end):
        path, (d, tbl) = _read_file(f, lambda p: _read_orderbook_file(p, quality), quality)
        if depth is not None and d != depth:
            raise DataError(f"{path}: depth {d} differs from earlier files' {depth}")
        depth = d
        ex = _num(tbl, "exchange_timestamp", np.float64)
        spans += _span(f, path, ex[np.isfinite(ex)])
        keep = np.isfinite(ex) & _window(np.nan_to_num(ex), start, end)
        quality.drop("orderbooks: missing exchange_timestamp", np.count_nonzero(~np.isfinite(ex)))

        def grid(prefix, tbl=tbl, d=d, keep=keep):
            return np.stack([_num(tbl, f"{prefix}_{i}", np.float64)[keep] for i in range(d)],
                            axis=1)

        parts.append({
            "exchange_timestamp": ex[keep].astype(np.int64),
            "timestamp": _num(tbl, "timestamp", np.float64)[keep],
            "bid_px": grid("bid_price"), "bid_sz": grid("bid_size"),
            "ask_px": grid("ask_price"), "ask_sz": grid("ask_size"),
        })
    _check_layouts(spans, "orderbooks")
    arr = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    arr = _sort_by_exchange_time(arr, quality, "orderbooks")
    _log_quality("orderbooks", coin, quality)
    return OrderBooks(arr["exchange_timestamp"], arr["timestamp"], arr["bid_px"], arr["bid_sz"],
                      arr["ask_px"], arr["ask_sz"], quality)


def _read_orderbook_file(path: Path, quality: Quality) -> tuple[int, pa.Table]:
    """``(depth, table)`` of one orderbooks file, the depth from its header."""
    try:
        if path.suffix == ".parquet":
            names = pq.read_schema(path).names
        else:
            with open(path, "rb") as fh:
                names = fh.readline().decode("utf-8", errors="replace").strip().split(",")
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"{path}: cannot read it ({_first_line(e)})") from None
    d = sum(1 for c in names if c.startswith("bid_price_"))
    if d == 0:
        raise DataError(f"{path}: no bid_price_0 column; not an orderbooks file")
    cols = orderbook_columns(d)
    return d, _read_raw(path, cols, {c: pa.float64() for c in cols}, quality)


def read_gaps(folder: str | Path, coin: str) -> np.ndarray:
    """Collector gaps as an (n, 2) array of [start, end) epoch seconds; empty if none."""
    try:
        files = list_files(folder, "gaps", coin)
    except DataError:
        return np.zeros((0, 2))
    quality = Quality()
    out = []
    types = {"start": pa.float64(), "end": pa.float64(), "reason": pa.string()}
    for f in files:
        _, tbl = _read_file(f, lambda p: _read_raw(p, GAPS_COLUMNS, types, quality), quality)
        s, e = _num(tbl, "start", np.float64), _num(tbl, "end", np.float64)
        ok = np.isfinite(s) & np.isfinite(e) & (e > s)
        out.append(np.stack([s[ok], e[ok]], axis=1))
    _log_quality("gaps", coin, quality)
    return np.concatenate(out) if out else np.zeros((0, 2))


def iter_days(folder: str | Path, coin: str) -> Iterator[tuple[date, float, float]]:
    """UTC days with data, as ``(day, start, end)`` epoch seconds — for day-by-day work.

    For the single-file layout the days are those spanned by its trades.
    """
    days = available_days(folder, coin)
    if not days:
        tr = read_trades(folder, coin)
        if len(tr) == 0:
            raise DataError(f"no trades for {coin} in {folder}")
        first = datetime.fromtimestamp(tr.t[0] / 1000, UTC).date()
        last = datetime.fromtimestamp(tr.t[-1] / 1000, UTC).date()
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    for d in days:
        lo, hi = day_bounds(d)
        yield d, lo, hi


def _log_quality(kind: str, coin: str, q: Quality) -> None:
    for reason, n in q.dropped.items():
        log.warning("%s %s: dropped %d rows (%s)", kind, coin, n, reason)
    for note in q.notes:
        log.warning("%s %s: %s", kind, coin, note)
