"""Collector data as a hive-partitioned Parquet dataset (``asmm dataset``), which DuckDB,
Polars, Dask and Spark read as it is, and every asmm reader takes as ``--data-dir``.

Layout (docs/dataset.md)::

    DS/kind=<prices|trades|orderbooks>/coin=<COIN>/date=<YYYY-MM-DD>/part-0.parquet
    DS/kind=gaps/coin=<COIN>/part-0.parquet        a coin's gaps, one file
    DS/_asmm_dataset/<COIN>.json                   the manifest of a coin (what made each
                                                   of its partitions); ``lock``: one writer

- **Columns** are exactly the collector's, in its types (int64 ``exchange_timestamp``,
  ``trade_id``, ``sequence``, a missing value null; string ``side``, ``reason``; float64
  the rest). ``kind``, ``coin`` and ``date`` are only in the path: a hive reader adds them.
- **Rows** of a daily source file (flat or hive, CSV or Parquet) go to its day's partition,
  in the file's order, less the rows no reader could use anyway (unparseable, a time in
  another unit), which are counted. A single-file source (``<kind>_<COIN>.csv``) is split
  by the UTC day of each row's exchange time (its receive time when that is missing), so
  a window read from its days' partitions holds every row in the window.
- **Incremental and idempotent.** A unit — a kind, coin and day; a coin's gaps; or all of a
  kind and coin when a single file is among its sources — is written again only when the
  list of its source files' (path under the data folder, size, mtime in ns) differs from
  the one the manifest recorded when it was last written, or when one of its Parquet files
  is missing or has another size or mtime than recorded (replaced or damaged by hand).
  Otherwise it is skipped: a second run writes nothing. A source file that disappeared
  leaves its partitions alone (the dataset is an archive; the collector's folder may be
  pruned).
- **Atomic.** Each Parquet file is written to a hidden temp file beside it, fsync'd and
  renamed (:func:`asmm.core.io.atomic_path`); the manifest is written the same way, after
  its partitions. A crash leaves whole files only; a partition the manifest does not
  record yet is simply written again. A unit whose source cannot be read writes nothing
  (its previous partitions stay) and is reported; the others go on. One writer at a time
  (a lock file). One manifest per coin: a save rewrites one coin's entries, however many
  coins the dataset holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from asmm.core.errors import DataError
from asmm.core.io import atomic_write_json
from asmm.data.files import (
    KINDS,
    DataFile,
    check_layouts,
    collector_types,
    list_coins,
    list_files,
    partition_path,
    write_table,
)
from asmm.data.readers import read_table
from asmm.data.rows import Quality, first_line

log = logging.getLogger(__name__)

META = "_asmm_dataset"  # the manifests' folder (hidden from hive readers by its "_")
LOCK = f"{META}/lock"
FORMAT = 1  # of the partitions and the manifest; another one is rewritten whole
_SAVE_EVERY_S = 5.0  # a coin's manifest is saved this often during a run, and at its end
_EPOCH = date(1970, 1, 1)


@dataclass
class Unit:
    """What is written (or skipped) as one: its sources and its manifest key."""

    kind: str
    coin: str
    day: date | None  # None: a coin's gaps, or a kind and coin whole (single-file source)
    files: list[DataFile]

    @property
    def key(self) -> str:
        return "/".join([self.kind, self.coin] + ([self.day.isoformat()] if self.day else []))


@dataclass
class Summary:
    """A run: partitions written and skipped and rows written, by kind; rows dropped, by
    reason; units that failed, with why."""

    written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    dropped: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def plan(data_dir: str | Path, coins: list[str]) -> list[Unit]:
    """The units of ``coins``' data in ``data_dir``, by coin, day and kind."""
    units = []
    for coin in coins:
        for kind in KINDS:
            files = list_files(data_dir, kind, coin)
            if not files:
                continue
            if kind == "gaps" or any(f.day is None for f in files):
                units.append(Unit(kind, coin, None, files))
                continue
            by_day: dict[date, list[DataFile]] = {}
            for f in files:
                by_day.setdefault(f.day, []).append(f)
            units += [Unit(kind, coin, d, fs) for d, fs in by_day.items()]
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(units, key=lambda u: (u.coin, u.day or date.max, order[u.kind]))


def build_dataset(data_dir: str | Path, out: str | Path, coins: list[str] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Summary:
    """Bring the dataset ``out`` up to date with the collector data in ``data_dir`` (all its
    coins, or ``coins``); ``progress(done, total)`` after each unit.

    Raises :class:`DataError` before writing anything when the folder is missing, holds no
    collector files or none of a named coin, or ``out`` is ``data_dir`` or is being written
    by another run. A unit that fails is in the summary's ``failed``.
    """
    t0 = time.perf_counter()
    data_dir, out = Path(data_dir), Path(out)
    have = list_coins(data_dir)  # DataError when the folder is missing
    if not have:
        raise DataError(f"no collector files in {data_dir} (expected <kind>_<COIN>_"
                        "YYYY-MM-DD.csv/.parquet, <kind>_<COIN>.csv or kind=<kind>/ folders)")
    if out.exists() and out.resolve() == data_dir.resolve():
        raise DataError(f"--out {out} is the data folder itself; write the dataset elsewhere")
    if coins is None:
        coins = have
    elif missing := [c for c in coins if c not in have]:
        raise DataError(f"no collector files for {', '.join(missing)} in {data_dir} "
                        f"(coins there: {', '.join(have)})")
    units = plan(data_dir, coins)
    summary = Summary()
    (out / META).mkdir(parents=True, exist_ok=True)
    with _locked(out):
        manifest, saved = None, time.monotonic()
        try:
            for i, unit in enumerate(units):  # coin by coin
                if manifest is None or manifest["coin"] != unit.coin:
                    if manifest is not None:
                        _save_manifest(out, manifest, data_dir)
                    manifest = load_manifest(out, unit.coin)
                _do_unit(unit, data_dir, out, manifest, summary)
                if progress is not None:
                    progress(i + 1, len(units))
                if time.monotonic() - saved > _SAVE_EVERY_S:
                    _save_manifest(out, manifest, data_dir)
                    saved = time.monotonic()
        finally:
            if manifest is not None:
                _save_manifest(out, manifest, data_dir)
    summary.seconds = time.perf_counter() - t0
    return summary


def _do_unit(unit: Unit, data_dir: Path, out: Path, manifest: dict, summary: Summary) -> None:
    units = manifest["units"]
    try:
        sources = _fingerprint(unit, data_dir)
        entry = units.get(unit.key)
        if _up_to_date(entry, sources, out):
            summary.skipped[unit.kind] += len(entry.get("outputs", {}))
            return
        quality = Quality()
        tables = build_unit(unit, quality)
        outputs = {}
        for day, table in sorted(tables.items(), key=lambda kv: kv[0] or date.min):
            path = partition_path(out, unit.kind, unit.coin, day)
            write_table(table, path, durable=True)
            st = path.stat()
            outputs[path.relative_to(out).as_posix()] = [st.st_size, st.st_mtime_ns]
            summary.written[unit.kind] += 1
            summary.rows[unit.kind] += table.num_rows
    except (DataError, OSError) as e:
        why = first_line(e) if isinstance(e, DataError) else f"{e.filename}: {e.strerror}"
        summary.failed[unit.key] = why
        log.error("%s: %s; its partitions (if any) are unchanged", unit.key, why)
        return
    for reason, n in quality.dropped.items():
        summary.dropped[reason] = summary.dropped.get(reason, 0) + n
    # One set of entries per partition: a kind and coin written whole replaces its days'.
    if unit.day is None and unit.kind != "gaps":
        for day in tables:
            units.pop(f"{unit.kind}/{unit.coin}/{day.isoformat()}", None)
    elif unit.day is not None:
        units.pop(f"{unit.kind}/{unit.coin}", None)
    units[unit.key] = {"sources": sources, "outputs": outputs,
                       "rows": sum(t.num_rows for t in tables.values()),
                       "dropped": quality.dropped,
                       "written_at": datetime.now(UTC).isoformat(timespec="seconds")}


def _fingerprint(unit: Unit, data_dir: Path) -> list[list]:
    """``[path under data_dir, size, mtime_ns]`` of each source file (and fallback)."""
    out = []
    for f in unit.files:
        for p in (f.path, f.fallback):
            if p is not None:
                st = p.stat()
                out.append([p.relative_to(data_dir).as_posix(), st.st_size, st.st_mtime_ns])
    return out


def _up_to_date(entry: dict | None, sources: list[list], out: Path) -> bool:
    if not entry or entry.get("sources") != sources:
        return False
    for rel, recorded in entry.get("outputs", {}).items():
        try:
            st = (out / rel).stat()
        except OSError:
            return False
        if [st.st_size, st.st_mtime_ns] != recorded:
            return False
    return True


def build_unit(unit: Unit, quality: Quality) -> dict[date | None, pa.Table]:
    """The unit's partitions as tables in the collector's columns and types, by day (None:
    the coin's gaps file). Raises :class:`DataError` naming a file that cannot be read."""
    parts: dict[date | None, list[pa.Table]] = {}
    spans = []
    for f in unit.files:
        path, table = _read(f, unit.kind, quality)
        table = collector_types(table).replace_schema_metadata(None)
        if unit.kind == "gaps":
            parts.setdefault(None, []).append(table)
            continue
        ex = _floats(table, "exchange_timestamp")
        ex_ok = ex[np.isfinite(ex)]
        if ex_ok.size:
            spans.append((f, path, float(ex_ok.min()), float(ex_ok.max())))
        if f.day is not None:
            parts.setdefault(f.day, []).append(table)
        else:
            for day, rows in _split_by_day(table, ex, quality):
                parts.setdefault(day, []).append(rows)
    check_layouts(spans, unit.kind)
    out = {}
    for day, tables in parts.items():
        try:
            out[day] = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        except pa.ArrowInvalid as e:
            raise DataError(f"{unit.kind} of {unit.coin} on {day}: the files of this day do "
                            f"not have the same columns ({first_line(e)})") from None
    return out


def _read(f: DataFile, kind: str, quality: Quality) -> tuple[Path, pa.Table]:
    """As the readers do: the file, or its fallback (the same day as CSV) when it cannot be
    read."""
    try:
        return f.path, read_table(f.path, kind, quality)
    except DataError as e:
        if f.fallback is None:
            raise
        quality.notes.append(f"{e}; read {f.fallback.name} (the same day) instead")
        return f.fallback, read_table(f.fallback, kind, quality)


def _floats(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).cast(pa.float64()).fill_null(np.nan).to_numpy()


def _split_by_day(table: pa.Table, ex_ms: np.ndarray,
                  quality: Quality) -> Iterator[tuple[date, pa.Table]]:
    """Rows of a single-file source by the UTC day of their exchange time (receive time
    when that is missing); rows with neither are dropped and counted."""
    t = np.where(np.isfinite(ex_ms), ex_ms / 1000.0, _floats(table, "timestamp"))
    ok = np.isfinite(t) & (np.abs(t) < 2.5e11)  # within the years a date can name
    quality.drop("no exchange or receive time to file the row under a day",
                 np.count_nonzero(~ok))
    day = np.where(ok, np.floor(np.where(ok, t, 0) / 86400.0), 0).astype(np.int64)
    for d in np.unique(day[ok]):
        yield _EPOCH + timedelta(days=int(d)), table.filter(pa.array(ok & (day == d)))


def manifest_path(out: str | Path, coin: str) -> Path:
    return Path(out) / META / f"{coin}.json"


def load_manifest(out: str | Path, coin: str) -> dict:
    """The manifest of ``coin`` in the dataset ``out``; an empty one when there is none, or
    it cannot be read or is of another format (then all its units are written again)."""
    path = manifest_path(out, coin)
    empty = {"format": FORMAT, "coin": coin, "units": {}}
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return empty
    except (OSError, ValueError) as e:
        log.warning("%s cannot be read (%s); every partition is written again", path,
                    first_line(e))
        return empty
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or \
            doc.get("coin") != coin or not isinstance(doc.get("units"), dict):
        log.warning("%s is of another format; every partition is written again", path)
        return empty
    return doc


def _save_manifest(out: Path, manifest: dict, data_dir: Path) -> None:
    manifest["format"] = FORMAT
    manifest["last_source"] = str(data_dir.resolve())
    atomic_write_json(manifest_path(out, manifest["coin"]), manifest)


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(f"another asmm dataset run is writing {out}; wait for it to "
                            "finish") from None
        yield
    finally:
        os.close(fd)
