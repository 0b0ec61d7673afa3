"""Row files of the collector: one CSV per kind, coin and UTC day, written line-atomically.

Rows are buffered in memory and handed to the OS only as whole lines (one ``os.write`` of
complete lines per flush), so after a ``kill -9`` every file ends on a line boundary and
parses; what is lost is at most the rows buffered since the last flush. The reader in
:mod:`asmm.marketdata` still skips a truncated last line should one ever appear (a full
disk, a crash mid-``write``).

The UTC day of a row is the day of its local receive time (the ``timestamp`` column, from
the collector's clock). A row never goes to a day older than the newest one its stream has
already written (a clock stepping back over midnight would otherwise reopen, and with
Parquet on, rewrite a finished day); its ``timestamp`` column keeps the true time.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from asmm.marketdata import GAPS_COLUMNS, day_path

log = logging.getLogger(__name__)

_EPOCH = date(1970, 1, 1)
_INT_COLUMNS = {"exchange_timestamp", "trade_id", "sequence"}
_STR_COLUMNS = {"side", "reason"}


class WriterError(Exception):
    """A file cannot be written without damaging earlier data (e.g. a header mismatch)."""


def utc_day(t: float) -> int:
    """UTC day number (days since 1970-01-01) of epoch seconds ``t``."""
    return int(t // 86400.0)


def day_date(day: int) -> date:
    return _EPOCH + timedelta(days=day)


def format_row(row) -> str:
    """One CSV line (with newline) from values in column order; ``None`` and NaN -> empty.

    Collector values are numbers and fixed words (bid/ask/buy/sell), never text with
    commas, so no quoting is needed — the same dialect :func:`asmm.marketdata.write_table`
    writes.
    """
    return ",".join("" if v is None or v != v else str(v) for v in row) + "\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


@dataclass
class _DayFile:
    path: Path
    fd: int
    buf: list[str] = field(default_factory=list)
    nbytes: int = 0
    rows: int = 0

    def flush(self) -> None:
        if self.buf:
            _write_all(self.fd, "".join(self.buf).encode())
            self.buf.clear()
            self.nbytes = 0

    def close(self) -> None:
        self.flush()
        os.fsync(self.fd)
        os.close(self.fd)


def _open_day_file(path: Path, columns: list[str]) -> _DayFile:
    """Open for append; write the header into a new or empty file, check it otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    f = _DayFile(path, fd)
    size = os.fstat(fd).st_size
    header = ",".join(columns)
    if size == 0:
        _write_all(fd, (header + "\n").encode())
        return f
    with open(path, "rb") as fh:
        first = fh.readline().decode(errors="replace").rstrip("\r\n")
        tail_start = max(0, size - 65536)
        fh.seek(tail_start)
        tail = fh.read()
    if first != header:
        os.close(fd)
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
        if keep == 0:
            _write_all(fd, (header + "\n").encode())
    return f


def csv_to_parquet(path: Path) -> Path:
    """Convert a finished day CSV to Parquet with the same columns, atomically; remove the CSV.

    The Parquet file appears only complete (temp + rename); the CSV is removed only after
    that, so an interruption leaves the CSV, never a lost day.
    """
    with path.open() as fh:
        names = fh.readline().strip().split(",")
    types = {c: (pa.int64() if c in _INT_COLUMNS else pa.string() if c in _STR_COLUMNS
                 else pa.float64()) for c in names}
    table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(
        invalid_row_handler=lambda row: "skip"),
        convert_options=pacsv.ConvertOptions(column_types=types))
    out = path.with_suffix(".parquet")
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    path.unlink()
    return out


class DayWriter:
    """Appends rows to ``<folder>/<kind>_<COIN>_<YYYY-MM-DD>.csv``; single-threaded use.

    ``columns`` maps kind -> column names. A file's buffer goes to the OS when it holds
    ``flush_bytes`` or on :meth:`flush` (the collector calls it every FLUSH_SECONDS). When a
    stream moves to a new UTC day its previous file is closed (fsync'd) and, with
    ``parquet``, converted to Parquet in a background thread.
    """

    def __init__(self, folder: str | Path, columns: dict[str, list[str]], *,
                 parquet: bool = False, flush_bytes: int = 1 << 20):
        self.folder = Path(folder)
        self.columns = columns
        self.parquet = parquet
        self.flush_bytes = flush_bytes
        self._open: dict[tuple[str, str], tuple[int, _DayFile]] = {}
        self._converters: list[threading.Thread] = []
        self.rows_written: dict[str, int] = {k: 0 for k in columns}
        self.files_closed: list[Path] = []

    def write(self, kind: str, coin: str, t_recv: float, line: str) -> None:
        """Append one formatted line (see :func:`format_row`) received at ``t_recv`` (s)."""
        key = (kind, coin)
        day = utc_day(t_recv)
        cur = self._open.get(key)
        if cur is None or day > cur[0]:
            if cur is not None:
                self._finish(cur[1])
            f = _open_day_file(day_path(self.folder, kind, coin, day_date(day)),
                               self.columns[kind])
            cur = (day, f)
            self._open[key] = cur
        f = cur[1]
        f.buf.append(line)
        f.nbytes += len(line)
        f.rows += 1
        self.rows_written[kind] += 1
        if f.nbytes >= self.flush_bytes:
            f.flush()

    def flush(self) -> None:
        for _, f in self._open.values():
            f.flush()

    def close(self) -> None:
        """Flush and close every open file; wait for Parquet conversions of finished days.

        The current day stays CSV (it is not finished; the next run appends to it).
        """
        for _, f in self._open.values():
            f.close()
        self._open.clear()
        for t in self._converters:
            t.join()

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
                if (day - _EPOCH).days < today and not path.with_suffix(".parquet").exists():
                    self._convert_in_background(path)
                    n += 1
        return n

    def _finish(self, f: _DayFile) -> None:
        f.close()
        self.files_closed.append(f.path)
        log.info("closed %s (%d rows this run)", f.path.name, f.rows)
        if self.parquet:
            self._convert_in_background(f.path)

    def _convert_in_background(self, path: Path) -> None:
        t = threading.Thread(target=self._convert, args=(path,), daemon=True,
                             name=f"parquet-{path.stem}")
        t.start()
        self._converters = [c for c in self._converters if c.is_alive()] + [t]

    @staticmethod
    def _convert(path: Path) -> None:
        try:
            out = csv_to_parquet(path)
            log.info("converted %s -> %s", path.name, out.name)
        except Exception:
            log.exception("Parquet conversion of %s failed; the CSV is kept", path)


class GapLog:
    """``gaps_<COIN>.csv`` (start, end, reason): appended and fsync'd one row at a time."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.recorded = 0

    def path(self, coin: str) -> Path:
        return self.folder / f"gaps_{coin}.csv"

    def record(self, coin: str, start: float, end: float, reason: str) -> None:
        if not end > start:
            return
        reason = " ".join(str(reason).replace(",", ";").split())
        f = _open_day_file(self.path(coin), GAPS_COLUMNS)
        try:
            _write_all(f.fd, format_row((f"{start:.6f}", f"{end:.6f}", reason)).encode())
            os.fsync(f.fd)
        finally:
            os.close(f.fd)
        self.recorded += 1
        log.warning("gap recorded for %s: %.3f s (%s)", coin, end - start, reason)
