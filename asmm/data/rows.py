"""One collector file read into a table: bad rows dropped and counted, time units checked.

- **Bad rows** are dropped and counted in :class:`Quality`, never silently used: here those
  that cannot be read (unparseable, not UTF-8, a truncated last line, an exchange time in
  another unit than the rest of its file), in :mod:`asmm.data.readers` those whose values
  make no sense (NaN, non-positive price or size, unknown side, no exchange time).
- **Bad files** are a :class:`DataError` naming the file: unreadable, missing a column, or a
  time column in the wrong unit (``exchange_timestamp`` in seconds, ``timestamp`` in
  milliseconds, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from asmm.core.errors import DataError


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


def first_line(e: BaseException) -> str:
    """An exception's message on one line (Arrow's run over several)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _empty(columns: list[str], types: dict[str, pa.DataType]) -> pa.Table:
    return pa.table({c: pa.array([], type=types.get(c, pa.float64())) for c in columns})


def read_rows(path: Path, columns: list[str], types: dict[str, pa.DataType],
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
        raise DataError(f"{path}: cannot read it ({e.strerror or first_line(e)})") from None
    except pa.ArrowException as e:
        raise DataError(f"{path}: cannot read it as a collector file ({first_line(e)})") \
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
            wrong = _time_unit_rows(path, col, column_array(table, col, np.float64))
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
                                      f"not {t}: {first_line(e)}") from None
    return table


def column_array(table: pa.Table, col: str, dtype) -> np.ndarray:
    """Column ``col`` of ``table`` as a numpy array of ``dtype`` (nulls as NaN)."""
    return table.column(col).to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def sort_by_exchange_time(arrays: dict[str, np.ndarray], quality: Quality, what: str) -> dict:
    """``arrays`` in ``exchange_timestamp`` order (stable: equal times keep the file's order);
    a re-sort is noted in ``quality``."""
    ts = arrays["exchange_timestamp"]
    if ts.size > 1 and np.any(np.diff(ts) < 0):
        n = int(np.count_nonzero(np.diff(ts) < 0))
        quality.notes.append(f"{what}: {n} out-of-order rows re-sorted by exchange time")
        order = np.argsort(ts, kind="stable")
        arrays = {k: v[order] for k, v in arrays.items()}
    return arrays
