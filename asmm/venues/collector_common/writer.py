"""Row files of the collector: one CSV per kind, coin and UTC day, written line-atomically.

With Parquet on, each finished day is converted (atomically) and its CSV removed: by default
into the hive-partitioned dataset layout, ``kind=<kind>/coin=<COIN>/date=<day>/part-0.parquet``
under the output folder (:mod:`asmm.data.dataset`; DuckDB, Polars, Dask and Spark read it as
it is), or, with the ``flat`` layout, beside the CSVs as ``<kind>_<COIN>_<day>.parquet``. The
day being written stays a CSV in the output folder either way; the readers merge the two.

Rows are buffered in memory and handed to the OS only as whole lines (one ``os.write`` of
complete lines per flush), so after a ``kill -9`` every file ends on a line boundary and
parses; what is lost is at most the rows buffered since the last flush. A write that fails
part-way (a full disk) is cut back to where it started, and a partial last line left by a
crash mid-``write`` is removed when the file is next opened; the reader in
:mod:`asmm.data.rows` skips one anyway.

The UTC day of a row is the day of its local receive time (the ``timestamp`` column, from
the collector's clock). A row never goes to a day older than the newest one its stream has
already written (a clock stepping back over midnight would otherwise reopen, and with
Parquet on, rewrite a finished day); its ``timestamp`` column keeps the true time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path

from asmm.core.errors import WriterError
from asmm.data.files import (
    GAPS_COLUMNS,
    KINDS,
    collector_types,
    day_path,
    partition_path,
    write_table,
)
from asmm.data.readers import read_table
from asmm.data.rows import Quality

log = logging.getLogger(__name__)

_EPOCH = date(1970, 1, 1)
PARQUET_LAYOUTS = ("hive", "flat")


def utc_day(t: float) -> int:
    """UTC day number (days since 1970-01-01) of epoch seconds ``t``."""
    return int(t // 86400.0)


def day_date(day: int) -> date:
    return _EPOCH + timedelta(days=day)


def format_row(row) -> str:
    """One CSV line (with newline) from values in column order; ``None`` and NaN -> empty.

    Collector values are numbers and fixed words (bid/ask/buy/sell), never text with
    commas, so no quoting is needed — the same dialect :func:`asmm.data.files.write_table`
    writes.
    """
    return ",".join("" if v is None or v != v else str(v) for v in row) + "\n"


def _microseconds(t: float, rounding: str) -> str:
    """``t`` (s) to six decimals, rounded as asked from its exact binary value: parsed
    back, it is on the chosen side of ``t`` (``t * 1e6`` could round the other way)."""
    return str(Decimal(t).quantize(Decimal("0.000001"), rounding=rounding))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _append(fd: int, data: bytes) -> None:
    """Append ``data`` (whole lines) to a file opened with O_APPEND, or nothing.

    A write that fails part-way (ENOSPC after a short write) leaves part of a line; the file
    is cut back to its size before the write so that it still ends on a line boundary. Best
    effort: should that fail too, the next open removes the partial line.
    """
    size = os.fstat(fd).st_size
    try:
        _write_all(fd, data)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


@dataclass
class _DayFile:
    path: Path
    fd: int
    buf: list[str] = field(default_factory=list)
    nbytes: int = 0
    rows: int = 0
    parquet: Path | None = None  # where the finished day goes with Parquet on

    def flush(self) -> None:
        if self.buf:
            _append(self.fd, "".join(self.buf).encode())
            self.buf.clear()
            self.nbytes = 0

    def close(self) -> None:
        """Flush, fsync and close; the descriptor is closed even when writing fails (the
        unwritten rows then stay in ``buf``)."""
        try:
            self.flush()
            os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.fd = -1


def _open_day_file(path: Path, columns: list[str]) -> _DayFile:
    """Open for append; write the header into a new or empty file, check it otherwise."""
    # A file where the folder should be: the open below then says "Not a directory".
    with contextlib.suppress(FileExistsError):
        path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        _prepare(fd, path, ",".join(columns))
    except BaseException:
        os.close(fd)
        raise
    return _DayFile(path, fd)


def _prepare(fd: int, path: Path, header: str) -> None:
    size = os.fstat(fd).st_size
    if size:
        with open(path, "rb") as fh:
            first = fh.readline()
            tail_start = max(0, size - 65536)
            fh.seek(tail_start)
            tail = fh.read()
        if not first.endswith(b"\n"):
            # Not even the header is complete: the disk filled up (or the process died)
            # while a new file was being started. Nothing in it is data.
            log.warning("%s held only a partial header %r; starting it again", path,
                        first[:80].decode(errors="replace"))
            os.ftruncate(fd, 0)
            size = 0
    if size == 0:
        _append(fd, (header + "\n").encode())
        return
    first = first.decode(errors="replace").rstrip("\r\n")
    if first != header:
        raise WriterError(
            f"{path} exists with other columns ({first[:80]}...) than this run writes "
            f"({header[:80]}...); was ORDERBOOK_DEPTH changed? Move the file away or "
            "use another OUTPUT_DIR — the collector will not mix layouts in one file.")
    if not tail.endswith(b"\n"):
        # A partial last line from an earlier crash can still have the right number of
        # fields with a cut-off last value (a plausible but wrong time) that no reader can
        # tell from a good row: it is removed, and logged, before this run appends.
        keep = tail_start + tail.rfind(b"\n") + 1
        os.ftruncate(fd, keep)
        log.warning("%s ended in a partial line from an earlier crash; removed it: %r",
                    path, tail[keep - tail_start:][:200].decode(errors="replace"))


def csv_to_parquet(path: Path, out: Path | None = None) -> Path:
    """Convert a finished day CSV to Parquet with the same columns, atomically; remove the CSV.

    ``out`` defaults to the CSV's name with ``.parquet``. The rows are those the readers take
    (a truncated last line or a malformed row dropped, :mod:`asmm.data.rows`) in the
    collector's column types (:func:`asmm.data.files.collector_types`), as ``asmm dataset``
    writes them. The Parquet file appears only complete (temp + rename); the CSV is removed
    only after that, so an interruption leaves the CSV, never a lost day.
    """
    kind = path.name.split("_", 1)[0]
    if kind not in KINDS:
        raise ValueError(f"{path.name} is not a collector file (<kind>_<COIN>_<day>.csv)")
    quality = Quality()
    table = collector_types(read_table(path, kind, quality))
    out = out or path.with_suffix(".parquet")
    write_table(table, out, durable=True)
    if quality.dropped:
        log.warning("%s: dropped %s converting to Parquet", path.name, quality.dropped)
    path.unlink()
    return out


class DayWriter:
    """Appends rows to ``<folder>/<kind>_<COIN>_<YYYY-MM-DD>.csv``; single-threaded use.

    ``columns`` maps kind -> column names. A file's buffer goes to the OS when it holds
    ``flush_bytes`` or on :meth:`flush` (the collector calls it every FLUSH_SECONDS). When a
    stream moves to a new UTC day its previous file is closed (fsync'd) and, with
    ``parquet``, converted to Parquet in a background thread, to the ``parquet_layout``
    (module docstring: ``hive`` or ``flat``).
    """

    def __init__(self, folder: str | Path, columns: dict[str, list[str]], *,
                 parquet: bool = False, parquet_layout: str = "hive",
                 flush_bytes: int = 1 << 20):
        if parquet_layout not in PARQUET_LAYOUTS:
            raise ValueError(f"parquet_layout must be one of {PARQUET_LAYOUTS}, got "
                             f"{parquet_layout!r}")
        self.folder = Path(folder)
        self.columns = columns
        self.parquet = parquet
        self.parquet_layout = parquet_layout
        self.flush_bytes = flush_bytes
        self._open: dict[tuple[str, str], _DayFile] = {}
        self._day: dict[tuple[str, str], int] = {}  # newest UTC day of each stream
        self._converters: list[threading.Thread] = []
        self.rows_written: dict[str, int] = {k: 0 for k in columns}  # incl. buffered rows
        self.files_closed: list[Path] = []

    def write(self, kind: str, coin: str, t_recv: float, line: str) -> None:
        """Append one formatted line (see :func:`format_row`) received at ``t_recv`` (s).

        Raises OSError when the file cannot be opened or written; then call :meth:`abandon`.
        """
        key = (kind, coin)
        day = max(utc_day(t_recv), self._day.get(key, 0))
        f = self._open.get(key)
        if f is None or day != self._day[key]:
            if f is not None:
                self._finish(f)
                del self._open[key]
            self._day[key] = day
            f = _open_day_file(day_path(self.folder, kind, coin, day_date(day)),
                               self.columns[kind])
            f.parquet = self.parquet_path(kind, coin, day_date(day))
            self._open[key] = f
        f.buf.append(line)
        f.nbytes += len(line)
        f.rows += 1
        self.rows_written[kind] += 1
        if f.nbytes >= self.flush_bytes:
            f.flush()

    def parquet_path(self, kind: str, coin: str, day: date) -> Path:
        """Where a finished day of ``kind`` and ``coin`` goes with Parquet on."""
        if self.parquet_layout == "hive":
            return partition_path(self.folder, kind, coin, day)
        return day_path(self.folder, kind, coin, day, "parquet")

    def flush(self) -> None:
        for f in self._open.values():
            f.flush()

    def close(self) -> None:
        """Flush and close every open file; wait for Parquet conversions of finished days.

        The current day stays CSV (it is not finished; the next run appends to it).
        """
        for key in list(self._open):
            self._open[key].close()
            del self._open[key]
        for t in self._converters:
            t.join()

    def abandon(self) -> int:
        """After a failed write: close every file without writing its buffered rows and
        return how many rows that drops. The next :meth:`write` opens its file again (a
        partial last line is then removed)."""
        lost = 0
        for (kind, _), f in self._open.items():
            lost += len(f.buf)
            self.rows_written[kind] -= len(f.buf)
            if f.fd >= 0:
                with contextlib.suppress(OSError):  # the error that matters was raised already
                    os.close(f.fd)
        self._open.clear()
        return lost

    def convert_earlier_days(self, today: int, kinds_coins) -> int:
        """With Parquet on: convert day CSVs older than ``today`` (days since the epoch) that
        an earlier run left behind (it stopped before their day ended); returns how many.

        Runs in the background like the conversions at rotation.
        """
        if not self.parquet:
            return 0
        n = 0
        for kind, coin in kinds_coins:
            for path in sorted(self.folder.glob(f"{kind}_{coin}_*.csv")):
                try:
                    day = date.fromisoformat(path.stem.rsplit("_", 1)[1])
                except ValueError:
                    continue
                out = self.parquet_path(kind, coin, day)
                if (day - _EPOCH).days < today and not out.exists():
                    self._convert_in_background(path, out)
                    n += 1
        return n

    def _finish(self, f: _DayFile) -> None:
        f.close()
        self.files_closed.append(f.path)
        log.info("closed %s (%d rows this run)", f.path.name, f.rows)
        if self.parquet:
            self._convert_in_background(f.path, f.parquet)

    def _convert_in_background(self, path: Path, out: Path) -> None:
        t = threading.Thread(target=self._convert, args=(path, out), daemon=True,
                             name=f"parquet-{path.stem}")
        t.start()
        self._converters = [c for c in self._converters if c.is_alive()] + [t]

    def _convert(self, path: Path, out: Path) -> None:
        try:
            csv_to_parquet(path, out)
            log.info("converted %s -> %s", path.name, out.relative_to(self.folder))
        except Exception:
            log.exception("Parquet conversion of %s failed; the CSV is kept", path)


class GapLog:
    """``gaps_<COIN>.csv`` (start, end, reason): appended and fsync'd one row at a time."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, coin: str) -> Path:
        return self.folder / f"gaps_{coin}.csv"

    def record(self, coin: str, start: float, end: float, reason: str) -> bool:
        """Append the gap [start, end] (epoch s); False if empty (nothing to record).

        Times are written to the microsecond, rounded outwards: the recorded gap contains
        the true one, so a row received at ``start`` is inside it. Raises OSError.
        """
        if not end > start:
            return False
        reason = " ".join(str(reason).replace(",", ";").split())
        row = (_microseconds(start, ROUND_FLOOR), _microseconds(end, ROUND_CEILING), reason)
        f = _open_day_file(self.path(coin), GAPS_COLUMNS)
        try:
            _append(f.fd, format_row(row).encode())
            os.fsync(f.fd)
        finally:
            os.close(f.fd)
        log.warning("gap recorded for %s: %.3f s (%s)", coin, end - start, reason)
        return True
