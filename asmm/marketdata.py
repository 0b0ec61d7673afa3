"""The collector's file format: names, columns, writing, and reading into typed arrays.

Layouts (both read, CSV or Parquet with the same columns)::

    DIR/<kind>_<COIN>_<YYYY-MM-DD>.csv   one file per UTC day (what the collector writes)
    DIR/<kind>_<COIN>.csv                one file (existing archives)

Kinds and columns (DESIGN.md):

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
- **Bad rows** (unparseable, a truncated last line, NaN, non-positive price or size, unknown
  side) are dropped and counted, never silently used. A crossed or locked BBO is kept in
  the arrays (it happened) but flagged; estimators leave it out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

PRICES_COLUMNS = ["timestamp", "price", "size", "side", "exchange_timestamp"]
TRADES_COLUMNS = ["timestamp", "price", "size", "side", "trade_id", "exchange_timestamp"]
GAPS_COLUMNS = ["start", "end", "reason"]
KINDS = ("prices", "trades", "orderbooks", "gaps")
_FILE_RE = re.compile(
    r"^(?P<kind>prices|trades|orderbooks|gaps)_(?P<coin>[A-Za-z0-9@:\-]+?)"
    r"(?:_(?P<day>\d{4}-\d{2}-\d{2}))?\.(?P<ext>csv|parquet)$"
)


class DataError(Exception):
    """The data cannot support what was asked of it (missing files, columns, no rows)."""


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


def list_files(folder: str | Path, kind: str, coin: str) -> list[DataFile]:
    """Files of one kind and coin, daily ones sorted by day, then any single-file one.

    A folder holding the same day as both CSV and Parquet yields the Parquet one (faster,
    and written from the same rows).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist")
    found: dict[date | None, DataFile] = {}
    for p in folder.iterdir():
        m = _FILE_RE.match(p.name)
        if not m or m["kind"] != kind or m["coin"] != coin:
            continue
        day = date.fromisoformat(m["day"]) if m["day"] else None
        if day in found and found[day].path.suffix == ".parquet":
            continue
        found[day] = DataFile(kind, coin, day, p)
    daily = sorted((f for d, f in found.items() if d is not None), key=lambda f: f.day)
    single = [f for d, f in found.items() if d is None]
    return daily + single


def available_days(folder: str | Path, coin: str) -> list[date]:
    """UTC days that have both a prices and a trades file (daily layout)."""
    p = {f.day for f in list_files(folder, "prices", coin) if f.day}
    t = {f.day for f in list_files(folder, "trades", coin) if f.day}
    return sorted(p & t)


# --------------------------------------------------------------------------- writing


def write_table(table: pa.Table, path: str | Path) -> None:
    """Write a table as CSV or Parquet by the path's extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        opts = pacsv.WriteOptions(quoting_style="none", quoting_header="none")
        pacsv.write_csv(table, path, opts)


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


def _read_raw(path: Path, columns: list[str], types: dict[str, pa.DataType],
              quality: Quality) -> pa.Table:
    """Read one file; bad rows are skipped and counted.

    Every complete row a writer puts down ends with a newline, so a CSV file that does not
    end with one was cut mid-row (kill -9, a full disk): its last line is dropped even when
    it happens to have the right number of fields ("...,17566848" cut from a timestamp).
    Rows with the wrong number of fields are skipped too.
    """
    if path.suffix == ".parquet":
        table = pq.read_table(path)
    else:
        size = path.stat().st_size
        if size == 0:
            quality.notes.append(f"{path.name}: empty file")
            return pa.table({c: pa.array([], type=types.get(c, pa.float64())) for c in columns})
        source: Path | pa.BufferReader = path
        with open(path, "rb") as fh:
            fh.seek(size - 1)
            complete = fh.read(1) == b"\n"
        if not complete:
            data = path.read_bytes()
            data = data[: data.rfind(b"\n") + 1]
            quality.drop("truncated last line", 1)
            if not data:  # not even a whole header: a file cut as it was created
                quality.notes.append(f"{path.name}: empty file (header cut short)")
                return pa.table({c: pa.array([], type=types.get(c, pa.float64()))
                                 for c in columns})
            source = pa.BufferReader(data)
        skipped = 0

        def on_bad(row):
            nonlocal skipped
            skipped += 1
            return "skip"

        try:
            table = pacsv.read_csv(
                source,
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_bad),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: t for c, t in types.items()},
                    strings_can_be_null=True,
                ),
            )
        except pa.ArrowInvalid as e:
            raise DataError(f"{path}: cannot parse ({e}); is this a collector file?") from None
        quality.drop("malformed row", skipped)
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing columns {missing} (has {table.column_names})")
    quality.rows_read += table.num_rows
    return table.select(columns)


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
    parts = []
    for f in _files(folder, "trades", coin, start, end):
        tbl = _read_raw(f.path, TRADES_COLUMNS, types, quality)
        side_txt = tbl.column("side").cast(pa.string())
        is_buy = pc.equal(side_txt, "buy").fill_null(False).to_numpy(zero_copy_only=False)
        is_sell = pc.equal(side_txt, "sell").fill_null(False).to_numpy(zero_copy_only=False)
        side = (is_buy.astype(np.int8) - is_sell.astype(np.int8))
        ex = _num(tbl, "exchange_timestamp", np.float64)
        tid = _num(tbl, "trade_id", np.float64)
        ts_null = np.isnan(ex)
        arr = {
            "exchange_timestamp": np.where(ts_null, 0, ex).astype(np.int64),
            "timestamp": _num(tbl, "timestamp", np.float64),
            "price": _num(tbl, "price", np.float64),
            "size": _num(tbl, "size", np.float64),
            "side": side,
            "trade_id": np.where(np.isnan(tid), -1, tid).astype(np.int64),
        }
        keep = _clean_common(arr["price"], arr["size"], quality, "trades")
        bad_side = keep & (side == 0)
        quality.drop("trades: side not buy/sell", np.count_nonzero(bad_side))
        quality.drop("trades: missing exchange_timestamp", np.count_nonzero(keep & ts_null))
        keep &= (side != 0) & ~ts_null
        keep &= _window(arr["exchange_timestamp"], start, end)
        parts.append({k: v[keep] for k, v in arr.items()})
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
    parts = []
    for f in _files(folder, "prices", coin, start, end):
        tbl = _read_raw(f.path, PRICES_COLUMNS, types, quality)
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
        quality.drop("prices: missing exchange_timestamp", np.count_nonzero(keep & np.isnan(ex)))
        keep &= (is_bid | is_ask) & np.isfinite(ex)
        arr["exchange_timestamp"] = np.where(np.isfinite(ex), ex, 0).astype(np.int64)
        keep &= _window(arr["exchange_timestamp"], start, end)
        parts.append({k: v[keep] for k, v in arr.items()})
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
    parts = []
    depth = None
    for f in _files(folder, "orderbooks", coin, start, end):
        if f.path.suffix == ".parquet":
            names = pq.read_schema(f.path).names
        else:
            with open(f.path) as fh:
                names = fh.readline().strip().split(",")
        d = sum(1 for c in names if c.startswith("bid_price_"))
        if d == 0:
            raise DataError(f"{f.path}: no bid_price_0 column; not an orderbooks file")
        if depth is not None and d != depth:
            raise DataError(f"{f.path}: depth {d} differs from earlier files' {depth}")
        depth = d
        cols = orderbook_columns(d)
        types = {c: pa.float64() for c in cols}
        tbl = _read_raw(f.path, cols, types, quality)
        ex = _num(tbl, "exchange_timestamp", np.float64)
        keep = np.isfinite(ex) & _window(np.nan_to_num(ex), start, end)
        quality.drop("orderbooks: missing exchange_timestamp", np.count_nonzero(np.isnan(ex)))

        def grid(prefix, tbl=tbl, d=d, keep=keep):
            return np.stack([_num(tbl, f"{prefix}_{i}", np.float64)[keep] for i in range(d)],
                            axis=1)

        parts.append({
            "exchange_timestamp": ex[keep].astype(np.int64),
            "timestamp": _num(tbl, "timestamp", np.float64)[keep],
            "bid_px": grid("bid_price"), "bid_sz": grid("bid_size"),
            "ask_px": grid("ask_price"), "ask_sz": grid("ask_size"),
        })
    arr = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    arr = _sort_by_exchange_time(arr, quality, "orderbooks")
    return OrderBooks(arr["exchange_timestamp"], arr["timestamp"], arr["bid_px"], arr["bid_sz"],
                      arr["ask_px"], arr["ask_sz"], quality)


def read_gaps(folder: str | Path, coin: str) -> np.ndarray:
    """Collector gaps as an (n, 2) array of [start, end) epoch seconds; empty if none."""
    try:
        files = list_files(folder, "gaps", coin)
    except DataError:
        return np.zeros((0, 2))
    quality = Quality()
    out = []
    for f in files:
        tbl = _read_raw(f.path, GAPS_COLUMNS, {"start": pa.float64(), "end": pa.float64(),
                                              "reason": pa.string()}, quality)
        s, e = _num(tbl, "start", np.float64), _num(tbl, "end", np.float64)
        ok = np.isfinite(s) & np.isfinite(e) & (e > s)
        out.append(np.stack([s[ok], e[ok]], axis=1))
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
