"""Bybit messages -> rows of the collector files, on the writer thread; the books kept.

``orderbook.1`` -> ``prices`` rows (best bid and ask), ``orderbook.50`` -> one ``orderbooks``
row (``ORDERBOOK_DEPTH`` levels; ``sequence`` is Bybit's ``u``), ``publicTrade`` -> ``trades``
rows (:mod:`.parse`). Each topic's book is kept here from its snapshot and deltas, in the
order the messages were received.

A delta that does not follow the kept book (its ``u`` is not the last + 1), or comes before
any snapshot, means the book is wrong from there on. Then, for that topic:

- no rows are written until the next snapshot (a wrong book is worse than none);
- a gap opens for the coin, in its ``gaps_<COIN>.csv``, from the receive time of the
  topic's last message that was applied (or of the bad delta, when none was) until the
  receive time of the next snapshot: its reason names the topic and the two ``u``;
- the supervisor is asked to resubscribe the coin's book topics on the same connection
  (Bybit then sends a snapshot), and asked again while no snapshot came for
  ``retry_seconds`` (seconds, time.monotonic) — the collector's ``STALE_SECONDS`` — with
  further deltas arriving; a resubscription the exchange does not confirm within
  ``SUBSCRIBE_TIMEOUT`` makes it reconnect (:mod:`.service`).

A new connection starts every topic with a snapshot, which also ends such a gap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from asmm.venues.bybit.collector import parse
from asmm.venues.bybit.symbols import coin_of
from asmm.venues.collector_common.writer_thread import Decoder, Gap

log = logging.getLogger(__name__)


class BybitDecoder(Decoder):
    """Rows of Bybit's ``orderbook.1``, ``orderbook.50`` and ``publicTrade`` messages.

    ``open_gap(start, reason, coins)`` opens a gap the writer records once its end is set;
    ``request_resync(coin)`` asks the supervisor to resubscribe the coin's book topics
    (called on the writer thread; must not block).
    """

    def __init__(self, depth: int, open_gap: Callable[..., Gap],
                 request_resync: Callable[[str], None], retry_seconds: float,
                 mono: Callable[[], float] = time.monotonic):
        self.depth = depth
        self._open_gap = open_gap
        self._request_resync = request_resync
        self.retry_seconds = retry_seconds
        self._mono = mono
        self.books: dict[tuple[str, str], parse.OrderBook] = {}  # (channel, coin)
        self._last_applied: dict[tuple[str, str], float] = {}    # receive time (s)
        # (channel, coin) out of sync -> its open gap and when (monotonic s) a resync was
        # last asked for.
        self._broken: dict[tuple[str, str], tuple[Gap, float]] = {}
        self.out_of_sync = 0  # deltas that did not follow their book
        self.block_trades = 0  # BT trades left out

    def rows(self, channel: str, t: float, msg) -> tuple[str, str, list]:
        if not isinstance(msg, dict):  # the frame's text, decoded here (see feed.py)
            msg = parse.parse_message(msg)
        ch, symbol = parse.split_topic(msg.get("topic"))
        # Another symbol than COINUSDT is kept as it is: it is then no coin collected.
        coin = coin_of(symbol) or symbol
        if ch == parse.TRADES_CHANNEL:
            _, rows, block = parse.parse_trades(msg, t)
            if block:
                self.block_trades += block
                log.debug("%d block trades of %s left out", block, coin)
            return "trades", coin, rows
        upd = parse.parse_book(msg)
        key = (ch, coin)
        book = self.books.setdefault(key, parse.OrderBook())
        before = book.u
        outcome = book.apply(upd)
        if outcome != "ok":
            self._lost_sync(key, t, outcome, before, upd.u)
            return parse.KIND_OF[ch], coin, []
        broken = self._broken.pop(key, None)
        if broken is not None:
            broken[0].end = t  # recorded by the writer at its next flush
            log.warning("%s %s: snapshot again (u %d); book rows resume, gap %.3f s",
                        coin, ch, upd.u, t - broken[0].start)
        self._last_applied[key] = t
        if ch == "orderbook.1":
            return "prices", coin, parse.prices_rows(book, t, upd.ts)
        return "orderbooks", coin, [parse.orderbook_row(book, self.depth, t, upd.ts)]

    def _lost_sync(self, key: tuple[str, str], t: float, outcome: str, before: int | None,
                   u: int) -> None:
        ch, coin = key
        now = self._mono()
        broken = self._broken.get(key)
        if broken is None:
            self.out_of_sync += 1
            why = (f"{ch} delta for {coin} before its snapshot" if outcome == "no snapshot"
                   else f"{ch} sequence gap for {coin} (u {before} then {u})")
            gap = self._open_gap(self._last_applied.get(key, t), f"{why}; resubscribed",
                                 [coin])
            self._broken[key] = (gap, now)
            log.warning("%s: dropping %s rows until a snapshot; resubscribing", why, ch)
            self._request_resync(coin)
        elif now - broken[1] > self.retry_seconds:
            self._broken[key] = (broken[0], now)
            log.warning("%s %s: still no snapshot %.0f s after resubscribing; resubscribing "
                        "again", coin, ch, now - broken[1])
            self._request_resync(coin)

    def close(self, t: float) -> None:
        """Stopping: the books still out of sync end their gaps now."""
        for gap, _ in self._broken.values():
            gap.end = t
        self._broken.clear()
