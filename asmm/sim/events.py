"""Market events for the backtester: the collector's BBO, trades and L2 snapshots, merged.

Two clocks (docs/design.md, collector format):

- **exchange time** orders the market: the simulated exchange applies BBO changes and
  trades in exchange-time order, trades before book updates at equal time (the
  :mod:`asmm.data.marketdata` convention: a trade executed against the book strictly before it);
- **known time** is when the strategy could have seen a BBO: the collector's local receive
  time, but never earlier than the exchange time (a local clock running ahead of the
  exchange would otherwise let the strategy see the future).

Documented handling of imperfect data:

- rows out of exchange-time order are re-sorted by the readers and counted in ``quality``;
- the BBO as the strategy knows it is sorted by known time separately;
- crossed or locked BBO states are kept (they happened); the strategy does not re-quote on a
  crossed book it knows about;
- a window without BBO states or without trades is a :class:`~asmm.data.marketdata.DataError`:
  a backtest on it would report a meaningless zero;
- collector gaps are reported in ``gaps``; during a gap there are no trades, so no fills.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asmm.core.errors import DataError
from asmm.data.files import day_bounds, expected_names, list_files
from asmm.data.readers import read_bbo, read_gaps, read_orderbooks, read_trades
from asmm.data.rows import Quality

log = logging.getLogger(__name__)

KIND_BBO = 0
KIND_TRADE = 1


@dataclass
class Events:
    """Merged market events of one coin over ``[start, end)`` epoch seconds.

    Main stream, length ``n``, in exchange-time order:

    - ``t`` exchange time (s, float64); ``kind`` ``KIND_BBO`` or ``KIND_TRADE`` (int8);
    - BBO rows: ``bid``, ``ask`` (price), ``bid_size``, ``ask_size`` (coin) of the new state;
    - trade rows: ``price``, ``size`` (coin), ``side`` +1 buy / -1 sell aggressor (int8).

    Columns that do not apply to a row's kind hold NaN (or 0 for ``side``).

    Feed, what the strategy knows, length ``m``: ``feed_t`` (known time, s, sorted),
    ``feed_bid``, ``feed_ask`` (price), ``feed_bid_size``, ``feed_ask_size`` (coin).

    L2 snapshots (possibly none): ``book_t`` exchange time (s, sorted), ``book_bid_px``,
    ``book_bid_sz``, ``book_ask_px``, ``book_ask_sz`` of shape ``(n_book, depth)``, NaN where
    a level is missing.
    """

    coin: str
    start: float
    end: float
    t: np.ndarray
    kind: np.ndarray
    side: np.ndarray
    price: np.ndarray
    size: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    feed_t: np.ndarray
    feed_bid: np.ndarray
    feed_ask: np.ndarray
    feed_bid_size: np.ndarray
    feed_ask_size: np.ndarray
    book_t: np.ndarray
    book_bid_px: np.ndarray
    book_bid_sz: np.ndarray
    book_ask_px: np.ndarray
    book_ask_sz: np.ndarray
    gaps: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    quality: Quality = field(default_factory=Quality)

    def __len__(self) -> int:
        """Market events: BBO states, trades and L2 snapshots."""
        return int(self.t.size + self.book_t.size)

    @property
    def n_trades(self) -> int:
        return int(np.count_nonzero(self.kind == KIND_TRADE))

    @property
    def n_bbo(self) -> int:
        return int(np.count_nonzero(self.kind == KIND_BBO))

    def mids(self) -> tuple[np.ndarray, np.ndarray]:
        """The exchange mid as a step function: the time (s) of each BBO state and the mid
        (price) from then on — what :func:`asmm.sim.markouts.markouts` marks fills against."""
        bbo = self.kind == KIND_BBO
        return self.t[bbo], 0.5 * (self.bid[bbo] + self.ask[bbo])


def _empty_book(depth: int = 0) -> tuple[np.ndarray, ...]:
    return (np.zeros(0), *(np.zeros((0, depth)) for _ in range(4)))


def merge(coin: str, bbo, trades, books=None, start: float | None = None,
          end: float | None = None, gaps: np.ndarray | None = None) -> Events:
    """Merge reader outputs (:class:`~asmm.data.marketdata.BBO`, ``Trades``, ``OrderBooks``) into
    :class:`Events`. ``start``/``end`` default to the first and last event time."""
    if len(bbo) == 0:
        raise DataError(f"{coin}: no BBO states in the window; nothing to quote against")
    if len(trades) == 0:
        raise DataError(f"{coin}: no trades in the window; a backtest would fill nothing")
    nb, nt = len(bbo), len(trades)
    t_ms = np.concatenate([trades.t, bbo.t])
    # Trades first at equal exchange time: key 2*t + (0 trade | 1 BBO).
    key = t_ms * 2 + np.concatenate([np.zeros(nt, np.int64), np.ones(nb, np.int64)])
    order = np.argsort(key, kind="stable")
    nan_t, nan_b = np.full(nt, np.nan), np.full(nb, np.nan)

    def col(tr_part, bbo_part):
        return np.concatenate([tr_part, bbo_part])[order]

    kind = col(np.full(nt, KIND_TRADE, np.int8), np.full(nb, KIND_BBO, np.int8))
    t = t_ms[order] / 1000.0
    known = np.maximum(bbo.t_local, bbo.t / 1000.0)
    forder = np.argsort(known, kind="stable")
    if books is not None and len(books):
        book = (books.t / 1000.0, books.bid_px, books.bid_sz, books.ask_px, books.ask_sz)
    else:
        book = _empty_book()
    quality = Quality()
    for part in (bbo, trades, books):
        if part is not None:
            quality.merge(part.quality)
    return Events(
        coin=coin,
        start=float(t[0] if start is None else start),
        end=float(t[-1] if end is None else end),
        t=t, kind=kind,
        side=col(trades.side.astype(np.int8), np.zeros(nb, np.int8)),
        price=col(trades.price, nan_b), size=col(trades.size, nan_b),
        bid=col(nan_t, bbo.bid), ask=col(nan_t, bbo.ask),
        bid_size=col(nan_t, bbo.bid_size), ask_size=col(nan_t, bbo.ask_size),
        feed_t=known[forder], feed_bid=bbo.bid[forder], feed_ask=bbo.ask[forder],
        feed_bid_size=bbo.bid_size[forder], feed_ask_size=bbo.ask_size[forder],
        book_t=book[0], book_bid_px=book[1], book_bid_sz=book[2], book_ask_px=book[3],
        book_ask_sz=book[4],
        gaps=np.zeros((0, 2)) if gaps is None else gaps,
        quality=quality,
    )


def _files_cover(data_dir, kind: str, coin: str, start: float | None,
                 end: float | None) -> bool:
    """Whether any ``kind`` file could hold rows in ``[start, end)`` (a single-file layout
    always could). Raises DataError if there are no such files at all."""
    for f in list_files(data_dir, kind, coin):
        if f.day is None:
            return True
        lo, hi = day_bounds(f.day)
        if (end is None or lo < end) and (start is None or hi > start):
            return True
    if not list_files(data_dir, kind, coin):
        raise DataError(f"no {kind} files for {coin} in {data_dir} "
                        f"(expected {expected_names(kind, coin)})")
    return False


def load_events(data_dir: str | Path, coin: str, start: float | None = None,
                end: float | None = None, *, with_book: bool = True) -> Events:
    """Read and merge one coin's BBO, trades and (if present) L2 snapshots.

    ``start``/``end`` are epoch seconds of exchange time, ``[start, end)``; ``None`` takes
    everything. Either collector layout, CSV or Parquet. Raises
    :class:`~asmm.data.marketdata.DataError` with a message naming the problem when files are
    missing or the window holds no BBO or no trades.
    """
    if start is not None and end is not None and end <= start:
        raise DataError(f"empty window: end {end} is not after start {start}")
    for kind in ("prices", "trades"):
        if not _files_cover(data_dir, kind, coin, start, end):
            raise DataError(f"no {kind} files for {coin} in {data_dir} overlap the window "
                            f"[{start}, {end}) (epoch seconds)")
    bbo = read_bbo(data_dir, coin, start, end)
    trades = read_trades(data_dir, coin, start, end)
    books = None
    if with_book:
        try:
            books = read_orderbooks(data_dir, coin, start, end)
        except DataError as e:
            # L2 is optional: without it the queue model knows only the touch's size.
            log.info("no L2 snapshots used: %s", e)
    ev = merge(coin, bbo, trades, books, start, end, read_gaps(data_dir, coin))
    log.info("%s: %d BBO states, %d trades, %d L2 snapshots", coin, ev.n_bbo, ev.n_trades,
             ev.book_t.size)
    return ev
