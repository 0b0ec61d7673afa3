"""The collector's files as typed arrays: :func:`read_trades`, :func:`read_bbo`,
:func:`read_orderbooks`, :func:`read_gaps`, and :func:`iter_days` for day-by-day work.

Conventions every consumer shares:

- **Ordering.** Rows are ordered by exchange time (stable sort; out-of-order rows are
  counted in :class:`~asmm.data.rows.Quality`). At equal exchange time, **trades come before
  book updates**: Hyperliquid stamps a block's trades and the book *after* that block with
  the same time, so the book a trade executed against is the last one strictly before it.
- **Bad rows** are dropped and counted (:mod:`asmm.data.rows`). A crossed or locked BBO is
  kept in the arrays (it happened) but flagged; estimators leave it out.
- **Bad files** are a :class:`DataError` naming the file. An unreadable Parquet file with a
  CSV of the same day beside it is replaced by that CSV (logged, and noted in ``quality``).
- **Layouts** (daily or single file, and the hive-partitioned dataset's
  ``kind=/coin=/date=`` folders) are merged, or refused when a single file overlaps daily
  ones (:mod:`asmm.data.files`). A window reads only the days (partitions) that meet it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from asmm.core.errors import DataError
from asmm.data.files import (
    GAPS_COLUMNS,
    PRICES_COLUMNS,
    TEXT_COLUMNS,
    TRADES_COLUMNS,
    DataFile,
    available_days,
    check_layouts,
    day_bounds,
    files_in_window,
    list_files,
    orderbook_columns,
)
from asmm.data.rows import Quality, column_array, first_line, read_rows, sort_by_exchange_time

log = logging.getLogger(__name__)

T = TypeVar("T")


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
    for f in files_in_window(folder, "trades", coin, start, end):
        path, tbl = _read_file(f, lambda p: read_rows(p, TRADES_COLUMNS, types, quality),
                               quality)
        side_txt = tbl.column("side").cast(pa.string())
        is_buy = pc.equal(side_txt, "buy").fill_null(False).to_numpy(zero_copy_only=False)
        is_sell = pc.equal(side_txt, "sell").fill_null(False).to_numpy(zero_copy_only=False)
        side = (is_buy.astype(np.int8) - is_sell.astype(np.int8))
        ex = column_array(tbl, "exchange_timestamp", np.float64)
        tid = column_array(tbl, "trade_id", np.float64)
        ts_null = ~np.isfinite(ex)  # missing, or "inf": no time to place the row at
        arr = {
            "exchange_timestamp": np.where(ts_null, 0, ex).astype(np.int64),
            "timestamp": column_array(tbl, "timestamp", np.float64),
            "price": column_array(tbl, "price", np.float64),
            "size": column_array(tbl, "size", np.float64),
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
    check_layouts(spans, "trades")
    arr = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    arr = sort_by_exchange_time(arr, quality, "trades")
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
    for f in files_in_window(folder, "prices", coin, start, end):
        path, tbl = _read_file(f, lambda p: read_rows(p, PRICES_COLUMNS, types, quality),
                               quality)
        side_txt = tbl.column("side").cast(pa.string())
        is_bid = pc.equal(side_txt, "bid").fill_null(False).to_numpy(zero_copy_only=False)
        is_ask = pc.equal(side_txt, "ask").fill_null(False).to_numpy(zero_copy_only=False)
        ex = column_array(tbl, "exchange_timestamp", np.float64)
        arr = {"timestamp": column_array(tbl, "timestamp", np.float64),
               "price": column_array(tbl, "price", np.float64),
               "size": column_array(tbl, "size", np.float64),
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
    check_layouts(spans, "prices")
    arr = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    arr = sort_by_exchange_time(arr, quality, "prices")
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
    for f in files_in_window(folder, "orderbooks", coin, start, end):
        path, (d, tbl) = _read_file(f, lambda p: _read_orderbook_file(p, quality), quality)
        if depth is not None and d != depth:
            raise DataError(f"{path}: depth {d} differs from earlier files' {depth}")
        depth = d
        ex = column_array(tbl, "exchange_timestamp", np.float64)
        spans += _span(f, path, ex[np.isfinite(ex)])
        keep = np.isfinite(ex) & _window(np.nan_to_num(ex), start, end)
        quality.drop("orderbooks: missing exchange_timestamp", np.count_nonzero(~np.isfinite(ex)))

        def grid(prefix, tbl=tbl, d=d, keep=keep):
            return np.stack([column_array(tbl, f"{prefix}_{i}", np.float64)[keep]
                             for i in range(d)], axis=1)

        parts.append({
            "exchange_timestamp": ex[keep].astype(np.int64),
            "timestamp": column_array(tbl, "timestamp", np.float64)[keep],
            "bid_px": grid("bid_price"), "bid_sz": grid("bid_size"),
            "ask_px": grid("ask_price"), "ask_sz": grid("ask_size"),
        })
    check_layouts(spans, "orderbooks")
    arr = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    arr = sort_by_exchange_time(arr, quality, "orderbooks")
    _log_quality("orderbooks", coin, quality)
    return OrderBooks(arr["exchange_timestamp"], arr["timestamp"], arr["bid_px"], arr["bid_sz"],
                      arr["ask_px"], arr["ask_sz"], quality)


def read_table(path: Path, kind: str, quality: Quality) -> pa.Table:
    """One file of ``kind`` with exactly its collector columns, rows as the typed readers
    take them (bad rows dropped and counted in ``quality``, :mod:`asmm.data.rows`): numbers
    as float64 (integers too, so a missing one is NaN, not a lost file), text as string."""
    if kind == "orderbooks":
        return _read_orderbook_file(path, quality)[1]
    cols = {"prices": PRICES_COLUMNS, "trades": TRADES_COLUMNS, "gaps": GAPS_COLUMNS}[kind]
    types = {c: pa.string() if c in TEXT_COLUMNS else pa.float64() for c in cols}
    return read_rows(path, cols, types, quality)


def _read_orderbook_file(path: Path, quality: Quality) -> tuple[int, pa.Table]:
    """``(depth, table)`` of one orderbooks file, the depth from its header."""
    try:
        if path.suffix == ".parquet":
            names = pq.read_schema(path).names
        else:
            with open(path, "rb") as fh:
                names = fh.readline().decode("utf-8", errors="replace").strip().split(",")
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"{path}: cannot read it ({first_line(e)})") from None
    d = sum(1 for c in names if c.startswith("bid_price_"))
    if d == 0:
        raise DataError(f"{path}: no bid_price_0 column; not an orderbooks file")
    cols = orderbook_columns(d)
    return d, read_rows(path, cols, {c: pa.float64() for c in cols}, quality)


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
        _, tbl = _read_file(f, lambda p: read_rows(p, GAPS_COLUMNS, types, quality), quality)
        s, e = column_array(tbl, "start", np.float64), column_array(tbl, "end", np.float64)
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
