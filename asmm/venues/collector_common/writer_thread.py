"""The collector's writer thread: queue -> day files, gaps recorded, write failures retried.

The writer thread alone writes files, gaps included: the supervisor
(:class:`~asmm.venues.collector_common.supervisor.BaseCollector`) hands it each period
without data. What a message's rows are is the venue's :class:`Decoder` (Hyperliquid:
:mod:`asmm.venues.hyperliquid.collector.decode`, Bybit:
:mod:`asmm.venues.bybit.collector.decode`); everything else here is the same for every venue.

It flushes every ``flush_seconds`` and, at the :data:`STOP` sentinel, drains the queue
before closing. When the files cannot be written (full disk, unwritable folder) it drops
rows, retries with backoff and, once a row is written again, records the gap from the last
row it knew was on disk to that row. The heartbeat's ``complete_until`` is the receive time
before which every row is on disk or inside a recorded gap: a restart's gap starts there, so
rows that were only in memory at a ``kill -9`` are inside it.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from asmm.core.errors import ProtocolError
from asmm.data.files import PRICES_COLUMNS, TRADES_COLUMNS, orderbook_columns
from asmm.venues.collector_common.config import CollectorConfig
from asmm.venues.collector_common.health import Stats, status_line, write_heartbeat
from asmm.venues.collector_common.writer import DayWriter, GapLog, WriterError, format_row

log = logging.getLogger(__name__)

STOP = None  # queue sentinel: the writer drains up to here, then closes
HEARTBEAT_SECONDS = 1.0  # cheap (one small file), and lets a watcher see progress between flushes


def backoff_delay(attempt: int, lo: float, hi: float, rng: random.Random) -> float:
    """Seconds to wait before reconnect ``attempt`` (0-based): exponential, capped, jittered.

    ``min(hi, lo * 2**attempt)`` scaled by a uniform factor in [0.5, 1] ("equal jitter"), so
    many collectors cut off together do not all come back in the same instant.
    """
    d = min(hi, lo * 2.0 ** min(attempt, 60))
    return d * rng.uniform(0.5, 1.0)


@dataclass(eq=False)
class Gap:
    """A period whose rows are not (all) in the files, from ``start`` (epoch s); ``end`` is
    None until known. The writer records it in the gaps file of each of ``coins``, removing
    them as it goes (a retry after a failure does not write a coin's row twice)."""

    start: float
    reason: str
    coins: list[str]
    end: float | None = None


class Decoder:
    """A venue's message -> rows, on the writer thread (one message at a time, in order).

    :meth:`rows` returns ``(kind, coin, rows)``: the file kind (``prices``, ``trades``,
    ``orderbooks``), the coin, and the rows in that kind's column order (rows may be empty).
    A message that is not what it claims raises :class:`~asmm.core.errors.ProtocolError`
    (or KeyError, TypeError, IndexError, ValueError): it is counted and logged as malformed.
    :meth:`close` is called once when the writer stops, at ``t`` (epoch s): a decoder that
    opened gaps of its own closes them there.
    """

    def rows(self, channel: str, t: float, msg) -> tuple[str, str, list]:
        raise NotImplementedError

    def close(self, t: float) -> None:
        """Nothing to close by default."""


@dataclass
class _Outage:
    """The files cannot be written: rows are dropped until a retry writes one."""

    gap: Gap
    error: str
    attempt: int = 0
    retry_at: float = 0.0  # time.monotonic() of the next try
    dropped: int = 0  # messages dropped meanwhile
    since: float = field(default_factory=time.monotonic)


class WriterThread:
    """The state both threads of a collector share, and the writer thread's half of it.

    :meth:`_write_loop` is the writer thread; :class:`Gap` periods are opened by either
    side (:meth:`_open_gap`) and recorded by the writer. The supervisor and the websocket
    side are the subclass :class:`~asmm.venues.collector_common.supervisor.BaseCollector`.
    ``decoder`` turns a venue's messages into rows (:class:`Decoder`).
    """

    def __init__(self, config: CollectorConfig, clock: Callable[[], float],
                 rng: random.Random, decoder: Decoder):
        self.cfg = config
        self.decoder = decoder
        self.clock = clock
        self.rng = rng
        self.stats = Stats()
        self.queue: queue.Queue = queue.Queue(maxsize=config.queue_size)
        self.writer = DayWriter(config.output_dir, {
            "prices": PRICES_COLUMNS, "trades": TRADES_COLUMNS,
            "orderbooks": orderbook_columns(config.orderbook_depth)}, parquet=config.parquet,
            parquet_layout=config.parquet_layout)
        self.gaps = GapLog(config.output_dir)
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._fatal: str | None = None
        self._symbols = set(config.symbols)
        # Gaps known but not yet in every gaps file: opened by the supervisor (feed down) or
        # the writer (files unwritable), removed by the writer once recorded.
        self._gaps: list[Gap] = []
        self._gaps_lock = threading.Lock()
        # Writer thread only. Receive times (s) of the newest row handed to the writer and
        # of the newest row known to be in the files with every row before it (start values:
        # nothing of this run was received before it began).
        self._last_t = self._on_disk = clock()
        self._outage: _Outage | None = None
        self._gap_retry: tuple[int, float] | None = None  # (attempt, monotonic) after a failure
        self._heartbeat_error: str | None = None

    def _open_gap(self, start: float, reason: str, coins=None) -> Gap:
        """A gap of ``coins`` (default: every coin) from ``start``; its end is set later."""
        gap = Gap(start, reason, list(self.cfg.symbols if coins is None else coins))
        with self._gaps_lock:
            self._gaps.append(gap)
        return gap

    def _complete_until(self) -> float:
        """Receive time (s) before which every row is in the files or a recorded gap."""
        with self._gaps_lock:
            return min([self._on_disk] + [g.start for g in self._gaps])

    def _complete_until_by_coin(self) -> dict[str, float]:
        """:meth:`_complete_until` of each coin: a gap of one coin (it went quiet) holds back
        only that coin's."""
        with self._gaps_lock:
            gaps = [(g.start, set(g.coins)) for g in self._gaps]
        return {c: min([self._on_disk] + [s for s, coins in gaps if c in coins])
                for c in self.cfg.symbols}

    def _on_malformed(self, reason: str) -> None:
        n = self.stats.count_malformed()
        log.warning("malformed message #%d skipped: %s", n, reason)

    # ----------------------------------------------------------------- writer thread

    def _write_loop(self) -> None:
        cfg = self.cfg
        now = time.monotonic()
        next_flush = now + cfg.flush_seconds
        next_heartbeat = now
        next_status = now + cfg.status_seconds
        prev, prev_t = self.stats.snapshot(), now
        try:
            while True:
                try:
                    item = self.queue.get(timeout=min(0.25, cfg.flush_seconds))  # wake to flush
                except queue.Empty:
                    item = ()
                if item is STOP:
                    break
                if isinstance(item, Gap):
                    if self._gap_retry is None:  # else it waits for the scheduled retry
                        self._record_gaps()
                elif item:
                    self._take(*item)
                now = time.monotonic()
                if now >= next_flush:
                    if self._flush():
                        next_heartbeat = now  # publish the new complete_until at once
                    if self._gap_retry is None:  # gaps closed without a queue item (drops)
                        self._record_gaps()
                    next_flush = now + cfg.flush_seconds
                if self._gap_retry is not None and now >= self._gap_retry[1]:
                    self._record_gaps()
                if now >= next_heartbeat:
                    self._heartbeat()
                    next_heartbeat = now + HEARTBEAT_SECONDS
                if now >= next_status:
                    cur = self.stats.snapshot()
                    log.info("%s", status_line(prev, cur, now - prev_t, self.queue.qsize(),
                                               self.writer.rows_written))
                    prev, prev_t = cur, now
                    next_status = now + cfg.status_seconds
            self.decoder.close(self.clock())  # gaps the decoder opened end at the stop
            self._record_gaps()  # those closed since, and a last try for any still failing
        except WriterError as e:
            self._fatal = f"writer: {e}"
            self._stop.set()
            return
        finally:
            try:
                self.writer.close()
                self._on_disk = self._last_t
            except OSError as e:
                self._begin_outage(e)
        self._heartbeat()

    def _take(self, channel: str, t: float, msg) -> None:
        """Write one message's rows, or drop them while the files cannot be written."""
        out = self._outage
        if out is not None and time.monotonic() < out.retry_at:
            out.dropped += 1
            return
        try:
            n = self._write_item(channel, t, msg)
            if out is not None and n:
                self.writer.flush()  # writing works again only once rows are in the file
        except OSError as e:
            if out is None:
                self._begin_outage(e)
            else:
                self._retry_failed(e)
            return
        if n:
            self._last_t = t
            if out is not None:
                self._end_outage(t)

    def _flush(self) -> bool:
        """Hand every buffered row to the OS; True if done.

        Only here does ``_on_disk`` advance: a flush of every file, after the rows of all
        messages taken so far, puts every row received up to the newest of them on disk.
        (A file flushed alone because its buffer is full proves nothing about the others.)
        """
        if self._outage is not None:
            return False
        try:
            self.writer.flush()
        except OSError as e:
            self._begin_outage(e)
            return False
        self._on_disk = self._last_t
        return True

    def _begin_outage(self, e: OSError) -> None:
        lost = self.writer.abandon()
        self._last_t = self._on_disk  # the rows after it were just dropped
        gap = self._open_gap(self._on_disk, f"cannot write files: {e.strerror or e}")
        self._outage = out = _Outage(gap, str(e))
        out.retry_at = time.monotonic() + (delay := self._retry_delay(0))
        log.error("cannot write to %s: %s; %d buffered rows lost, dropping rows until writing "
                  "works again (next try in %.2f s); the gap will start at %.3f",
                  self.cfg.output_dir, e, lost, delay, gap.start)

    def _retry_failed(self, e: OSError) -> None:
        out = self._outage
        self.writer.abandon()  # what this try buffered
        out.dropped += 1
        out.attempt += 1
        out.error = str(e)
        out.retry_at = time.monotonic() + (delay := self._retry_delay(out.attempt))
        log.warning("still cannot write: %s; %d messages dropped so far, next try in %.2f s",
                    e, out.dropped, delay)

    def _end_outage(self, t: float) -> None:
        out, self._outage = self._outage, None
        out.gap.end = t
        self._on_disk = t
        log.warning("writing works again after %.1f s; %d messages dropped meanwhile",
                    time.monotonic() - out.since, out.dropped)
        if self._gap_retry is None:
            self._record_gaps()

    def _retry_delay(self, attempt: int) -> float:
        return backoff_delay(attempt, self.cfg.backoff_min, self.cfg.backoff_max, self.rng)

    def _record_gaps(self) -> None:
        """Write every gap whose end is known to the gaps files; on failure keep them and
        schedule a retry with backoff (rows still go to the day files meanwhile)."""
        with self._gaps_lock:
            ready = [g for g in self._gaps if g.end is not None]
        for gap in ready:
            while gap.coins:
                try:
                    self.gaps.record(gap.coins[0], gap.start, gap.end, gap.reason)
                except OSError as e:
                    attempt = 0 if self._gap_retry is None else self._gap_retry[0] + 1
                    delay = self._retry_delay(attempt)
                    self._gap_retry = (attempt, time.monotonic() + delay)
                    log.log(logging.ERROR if attempt == 0 else logging.WARNING,
                            "cannot record a gap in %s: %s; kept in memory, next try in "
                            "%.2f s", self.gaps.path(gap.coins[0]), e, delay)
                    return
                gap.coins.pop(0)
            with self._gaps_lock:
                self._gaps.remove(gap)
            if gap.end > gap.start:
                self.stats.gaps += 1
        if self._gap_retry is not None:
            log.warning("gaps recorded again after %d failed tries", self._gap_retry[0] + 1)
            self._gap_retry = None

    def _write_item(self, channel: str, t: float, msg) -> int:
        """Hand the message's rows to the writer; how many (0 for a bad message)."""
        try:
            kind, coin, rows = self.decoder.rows(channel, t, msg)
        except (ProtocolError, KeyError, TypeError, IndexError, ValueError) as e:
            self._on_malformed(f"{channel}: {e}")
            return 0
        if not rows:  # an empty trades batch; a Bybit delta while its book is out of sync
            return 0
        if coin not in self._symbols:
            self._on_malformed(f"{channel} message for {coin!r}, not subscribed")
            return 0
        for row in rows:
            self.writer.write(kind, coin, t, format_row(row))
        return len(rows)

    def _heartbeat(self, raise_errors: bool = False) -> None:
        snap = self.stats.snapshot()
        until = self._complete_until_by_coin()
        snap.update(time=self.clock(), connected=self.connected.is_set(),
                    queue=self.queue.qsize(), rows=dict(self.writer.rows_written),
                    symbols=list(self.cfg.symbols), complete_until=self._complete_until(),
                    write_error=self._outage.error if self._outage else None,
                    coins=self.stats.coins(self.cfg.symbols, until))
        try:
            write_heartbeat(self.cfg.heartbeat_path, snap)
        except OSError as e:
            if raise_errors:
                raise
            if self._heartbeat_error is None:  # once, not every second
                log.warning("cannot write heartbeat %s: %s; the healthcheck sees it go "
                            "stale", self.cfg.heartbeat_path, e)
            self._heartbeat_error = str(e)
            return
        if self._heartbeat_error is not None:
            log.info("heartbeat written again")
            self._heartbeat_error = None
