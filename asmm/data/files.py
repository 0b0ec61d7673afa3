"""The collector's files: kinds, columns, names and layouts; finding them and writing one.

Layouts (all read, CSV or Parquet with the same columns, and merged)::

    DIR/<kind>_<COIN>_<YYYY-MM-DD>.csv   one file per UTC day (what the collector writes)
    DIR/<kind>_<COIN>.csv                one file (existing archives)
    DIR/kind=<kind>/coin=<COIN>/date=<YYYY-MM-DD>/*.parquet
                                         the hive-partitioned dataset (``asmm dataset``, the
                                         collector's Parquet mode); gaps per coin:
    DIR/kind=gaps/coin=<COIN>/*.parquet

Kinds and columns (docs/design.md):

- ``prices``: timestamp, price, size, side (bid|ask), exchange_timestamp — one row per side
  of each BBO message.
- ``trades``: timestamp, price, size, side (buy|sell = aggressor), trade_id, exchange_timestamp.
- ``orderbooks``: timestamp, sequence, exchange_timestamp, then bid_price_i, bid_size_i,
  ask_price_i, ask_size_i for i = 0 .. depth-1.
- ``gaps``: start, end (epoch seconds), reason — periods the collector was not receiving.

``timestamp`` is local receive time in epoch seconds (float); ``exchange_timestamp`` is
exchange time in epoch milliseconds (int).

- **Parquet or CSV.** A day held as both is read from its Parquet file (faster, written from
  the same rows), with the CSV as the fallback when the Parquet one cannot be read. A day
  held in the hive tree is read from there (one Parquet file per partition, as asmm writes
  it, with a flat file of the same day as its fallback; several part files are all read).
- **Layouts.** Daily files and a single file of the same kind and coin are merged only when
  their exchange times do not overlap (an archive that moved from one layout to the other).
  Overlapping ones are refused, naming both files (:func:`check_layouts`): the reader cannot
  tell which one is right (another market's file under this coin's name, a copy), and
  merging would double or mix the rows.

Reading rows is :mod:`asmm.data.rows`; the typed readers are :mod:`asmm.data.readers`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from asmm.core.errors import DataError
from asmm.core.io import atomic_path

PRICES_COLUMNS = ["timestamp", "price", "size", "side", "exchange_timestamp"]
TRADES_COLUMNS = ["timestamp", "price", "size", "side", "trade_id", "exchange_timestamp"]
GAPS_COLUMNS = ["start", "end", "reason"]
KINDS = ("prices", "trades", "orderbooks", "gaps")
# The collector's column types (its Parquet files, the dataset); every other column float64.
INT_COLUMNS = frozenset({"exchange_timestamp", "trade_id", "sequence"})
TEXT_COLUMNS = frozenset({"side", "reason"})
PART_NAME = "part-0.parquet"  # the one file of a partition asmm writes
_FILE_RE = re.compile(
    rf"^(?P<kind>{'|'.join(KINDS)})_(?P<coin>[A-Za-z0-9@:\-]+?)"
    r"(?:_(?P<day>\d{4}-\d{2}-\d{2}))?\.(?P<ext>csv|parquet)$"
)


def orderbook_columns(depth: int) -> list[str]:
    cols = ["timestamp", "sequence", "exchange_timestamp"]
    for i in range(depth):
        cols += [f"bid_price_{i}", f"bid_size_{i}", f"ask_price_{i}", f"ask_size_{i}"]
    return cols


def orderbook_row(t: float, sequence: int, exchange_ms: int, bids, asks,
                  depth: int) -> tuple:
    """One ``orderbooks`` row in :func:`orderbook_columns`' order: ``t`` the receive time
    (epoch s), ``sequence``, ``exchange_ms`` (epoch ms), then ``depth`` levels a side from
    ``bids``/``asks`` (``[(price, size), ...]`` best first); levels beyond the book are
    None (an empty CSV field, NaN when read)."""
    row: list = [t, int(sequence), exchange_ms]
    for i in range(depth):
        b = bids[i] if i < len(bids) else (None, None)
        a = asks[i] if i < len(asks) else (None, None)
        row += [b[0], b[1], a[0], a[1]]
    return tuple(row)


def day_path(folder: str | Path, kind: str, coin: str, day: date, ext: str = "csv") -> Path:
    """``<folder>/<kind>_<COIN>_<YYYY-MM-DD>.<ext>``."""
    return Path(folder) / f"{kind}_{coin}_{day.isoformat()}.{ext}"


def day_bounds(day: date) -> tuple[float, float]:
    """Epoch seconds of the UTC day's start and end."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    return start, start + 86400.0


def partition_path(root: str | Path, kind: str, coin: str, day: date | None) -> Path:
    """The Parquet file asmm writes for one partition of the hive dataset:
    ``<root>/kind=<kind>/coin=<COIN>/date=<YYYY-MM-DD>/part-0.parquet``, or for ``day``
    None (gaps: one file per coin) ``<root>/kind=<kind>/coin=<COIN>/part-0.parquet``."""
    base = Path(root) / f"kind={kind}" / f"coin={coin}"
    return (base if day is None else base / f"date={day.isoformat()}") / PART_NAME


def expected_names(kind: str, coin: str) -> str:
    """The file names a reader looks for, for messages."""
    return (f"{kind}_{coin}_YYYY-MM-DD.csv, {kind}_{coin}.csv or "
            f"kind={kind}/coin={coin}/date=YYYY-MM-DD/*.parquet")


def collector_types(table: pa.Table) -> pa.Table:
    """``table`` (numbers read as float64, as the readers read them) in the collector's
    column types: integers (:data:`INT_COLUMNS`) as int64, a missing or non-finite value
    null, a fractional one truncated as the readers do."""
    for i, name in enumerate(table.column_names):
        if name in INT_COLUMNS and not pa.types.is_integer(table.schema.field(i).type):
            v = table.column(i).to_numpy(zero_copy_only=False).astype(np.float64)
            ok = np.isfinite(v)
            table = table.set_column(i, name, pa.array(np.where(ok, v, 0).astype(np.int64),
                                                       mask=~ok))
    return table


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
    one cannot be. A day in the hive tree yields its part files instead (a lone part file
    with the flat file of that day, preferably the CSV, as its fallback); part files
    beside the coin's ``date=`` folders (gaps) count as the single-file layout.
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
    files = {day: [DataFile(kind, coin, day, by_ext.get("parquet", by_ext.get("csv")),
                            by_ext["csv"] if len(by_ext) == 2 else None)]
             for day, by_ext in found.items()}
    for day, parts in _hive_parts(folder, kind, coin).items():
        flat = files.get(day)
        if day is None:
            files[None] = (flat or []) + [DataFile(kind, coin, None, p) for p in parts]
            continue
        fallback = (flat[0].fallback or flat[0].path) if flat and len(parts) == 1 else None
        files[day] = [DataFile(kind, coin, day, p, fallback) for p in parts]
    daily = [f for d in sorted(d for d in files if d is not None) for f in files[d]]
    return daily + files.get(None, [])


def _visible_parquet(entry: os.DirEntry) -> bool:
    """A data file of a hive tree: what DuckDB, Dask and Spark read (a temp file being
    written is hidden, ``.name.tmp``; ``_`` files are metadata)."""
    return (entry.name.endswith(".parquet") and not entry.name.startswith((".", "_"))
            and entry.is_file())


def _hive_parts(folder: Path, kind: str, coin: str) -> dict[date | None, list[Path]]:
    """The hive tree's Parquet files of one kind and coin by day (None: beside the days)."""
    base = folder / f"kind={kind}" / f"coin={coin}"
    out: dict[date | None, list[Path]] = {}
    try:
        entries = list(os.scandir(base))
    except (FileNotFoundError, NotADirectoryError):
        return out
    for e in entries:
        if _visible_parquet(e):
            out.setdefault(None, []).append(Path(e.path))
        elif e.name.startswith("date=") and e.is_dir():
            try:
                day = date.fromisoformat(e.name[5:])
            except ValueError:
                continue
            parts = sorted(Path(p.path) for p in os.scandir(e.path) if _visible_parquet(p))
            if parts:
                out[day] = parts
    if None in out:
        out[None].sort()
    return out


def list_coins(folder: str | Path) -> list[str]:
    """Coins with any collector file in ``folder`` (flat names or the hive tree)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist")
    coins = set()
    for e in os.scandir(folder):
        if m := _FILE_RE.match(e.name):
            coins.add(m["coin"])
        elif e.name.startswith("kind=") and e.name[5:] in KINDS and e.is_dir():
            coins.update(c.name[5:] for c in os.scandir(e.path)
                         if c.name.startswith("coin=") and c.is_dir())
    return sorted(coins)


def available_days(folder: str | Path, coin: str) -> list[date]:
    """UTC days that have both a prices and a trades file (daily layout)."""
    p = {f.day for f in list_files(folder, "prices", coin) if f.day}
    t = {f.day for f in list_files(folder, "trades", coin) if f.day}
    return sorted(p & t)


def write_table(table: pa.Table, path: str | Path, *, durable: bool = False) -> None:
    """Write a table as CSV or Parquet by the path's extension, atomically (``durable``:
    fsync'd before the rename, :func:`asmm.core.io.atomic_path`)."""
    with atomic_path(path, durable=durable) as tmp:
        if Path(path).suffix == ".parquet":
            # zstd: a third smaller than snappy at the same speed; every reader has it.
            pq.write_table(table, tmp, compression="zstd")
        else:
            opts = pacsv.WriteOptions(quoting_style="none", quoting_header="none")
            pacsv.write_csv(table, tmp, opts)


def files_in_window(folder: str | Path, kind: str, coin: str, start: float | None,
                    end: float | None) -> list[DataFile]:
    """The files of :func:`list_files` whose day meets ``[start, end)`` (epoch seconds; None
    is open), single-layout ones always; a :class:`DataError` saying what is on disk when
    none does."""
    files = list_files(folder, kind, coin)
    if not files:
        raise DataError(f"no {kind} files for {coin} in {folder} "
                        f"(expected {expected_names(kind, coin)})")
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


def check_layouts(spans: list[tuple[DataFile, Path, float, float]], kind: str) -> None:
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
