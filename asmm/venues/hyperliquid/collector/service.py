"""The collector: websocket session(s) -> bounded queue -> one writer thread -> day files.

Threads::

    websocket thread  --(channel, t_recv, frame)-->  queue (bounded)  -->  writer thread
    supervisor (caller of run()): connects, confirms subscriptions, watches for a dead feed,
                                  reconnects with backoff + jitter, hands gaps to the writer

Nothing is lost silently: a full queue blocks the websocket reader (``on_full="block"``,
back-pressure) or drops the message, counting and logging every drop and recording the
period as a gap (``"drop"``); a malformed message is logged, counted and skipped; the
writer flushes every ``flush_seconds`` and on :meth:`Collector.stop` drains the queue
before closing.

Every row received is in the files or inside a gap of ``gaps_<COIN>.csv``. The writer thread
alone writes files, gaps included: the supervisor hands it each period without data. When
the files cannot be written (full disk, unwritable folder) the writer drops rows, retries
with backoff and, once a row is written again, records the gap from the last row it knew
was on disk to that row. The heartbeat's ``complete_until`` is the receive time before
which every row is on disk or inside a recorded gap: a restart's gap starts there, so rows
that were only in memory at a ``kill -9`` are inside it.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from asmm.data.files import PRICES_COLUMNS, TRADES_COLUMNS, orderbook_columns
from asmm.venues.hyperliquid import protocol as hlproto
from asmm.venues.hyperliquid.collector.config import CollectorConfig
from asmm.venues.hyperliquid.collector.feed import TRANSPORTS, UnknownCoinError
from asmm.venues.hyperliquid.collector.health import (
    HeartbeatError,
    Stats,
    read_heartbeat,
    status_line,
    write_heartbeat,
)
from asmm.venues.hyperliquid.collector.writer import (
    DayWriter,
    GapLog,
    WriterError,
    format_row,
    utc_day,
)

log = logging.getLogger(__name__)

_STOP = None  # queue sentinel: the writer drains up to here, then closes
HEARTBEAT_SECONDS = 1.0  # cheap (one small file), and lets a watcher see progress between flushes


def backoff_delay(attempt: int, lo: float, hi: float, rng: random.Random) -> float:
    """Seconds to wait before reconnect ``attempt`` (0-based): exponential, capped, jittered.

    ``min(hi, lo * 2**attempt)`` scaled by a uniform factor in [0.5, 1] ("equal jitter"), so
    many collectors cut off together do not all come back in the same instant.
    """
    d = min(hi, lo * 2.0 ** min(attempt, 60))
    return d * rng.uniform(0.5, 1.0)


@dataclass(eq=False)
class _Gap:
    """A period whose rows are not (all) in the files, from ``start`` (epoch s); ``end`` is
    None until known. The writer records it in the gaps file of each of ``coins``, removing
    them as it goes (a retry after a failure does not write a coin's row twice)."""

    start: float
    reason: str
    coins: list[str]
    end: float | None = None


@dataclass
class _Outage:
    """The files cannot be written: rows are dropped until a retry writes one."""

    gap: _Gap
    error: str
    attempt: int = 0
    retry_at: float = 0.0  # time.monotonic() of the next try
    dropped: int = 0  # messages dropped meanwhile
    since: float = field(default_factory=time.monotonic)


class Collector:
    """Collects ``bbo``, ``trades`` and ``l2Book`` of ``config.symbols`` into ``output_dir``.

    ``clock`` (epoch seconds) stamps receive times and decides the UTC day of each file;
    ``session_factory`` builds a session (default: the ``ws_client`` transport of
    :mod:`asmm.venues.hyperliquid.collector.feed`).
    Call :meth:`run` (blocks until :meth:`stop`); it returns a process exit code.
    """

    def __init__(self, config: CollectorConfig, *, clock: Callable[[], float] = time.time,
                 session_factory=None, rng: random.Random | None = None):
        self.cfg = config
        self.clock = clock
        self.session_factory = session_factory or TRANSPORTS[config.ws_client]
        self.rng = rng or random.Random()
        self.stats = Stats()
        self.queue: queue.Queue = queue.Queue(maxsize=config.queue_size)
        self.writer = DayWriter(config.output_dir, {
            "prices": PRICES_COLUMNS, "trades": TRADES_COLUMNS,
            "orderbooks": orderbook_columns(config.orderbook_depth)}, parquet=config.parquet)
        self.gaps = GapLog(config.output_dir)
        self.connected = threading.Event()
        self.connect_failures = 0  # attempts that ended before confirmed subscriptions
        self._stop = threading.Event()
        self._fatal: str | None = None
        self._session = None
        self._sequence = {c: 0 for c in config.symbols}
        self._symbols = set(config.symbols)
        # Gaps known but not yet in every gaps file: opened by the supervisor (feed down) or
        # the writer (files unwritable), removed by the writer once recorded.
        self._gaps: list[_Gap] = []
        self._gaps_lock = threading.Lock()
        self._dropping: _Gap | None = None  # websocket thread: messages dropped since start
        # Writer thread only. Receive times (s) of the newest row handed to the writer and
        # of the newest row known to be in the files with every row before it (start values:
        # nothing of this run was received before it began).
        self._last_t = self._on_disk = clock()
        self._outage: _Outage | None = None
        self._gap_retry: tuple[int, float] | None = None  # (attempt, monotonic) after a failure
        self._heartbeat_error: str | None = None

    # ----------------------------------------------------------------- public

    def stop(self) -> None:
        """Ask :meth:`run` to finish: close the feed, write every queued row, return."""
        self._stop.set()

    @property
    def fatal(self) -> str | None:
        return self._fatal

    def run(self) -> int:
        try:
            self.cfg.output_dir.mkdir(parents=True, exist_ok=True)
            restart = self._restart_gap()
            self._heartbeat(raise_errors=True)  # an unwritable folder fails now, not later
            self.writer.convert_earlier_days(
                utc_day(self.clock()),
                [(k, c) for k in self.writer.columns for c in self.cfg.symbols])
        except OSError as e:
            log.error("cannot write to %s: %s", self.cfg.output_dir, e)
            return 2
        writer = threading.Thread(target=self._write_loop, name="collector-writer", daemon=True)
        writer.start()
        try:
            self._supervise(restart)
        except UnknownCoinError as e:
            self._fatal = str(e)
        finally:
            if self._session is not None:
                self._session.close()
            self._put(_STOP)
            writer.join()
        if self._fatal:
            log.error("collector stopped: %s", self._fatal)
            return 2
        if self._outage or any(g.end is not None for g in self._gaps):
            log.error("collector stopped with rows received since %.3f neither all written "
                      "nor inside a recorded gap; the next run's gap starts there",
                      self._complete_until())
            return 1
        log.info("collector stopped; all received rows written")
        return 0

    def _restart_gap(self) -> _Gap | None:
        """The gap since the previous run's last row known to be on disk, open until this
        run has subscribed; None on a first run.

        That point is the previous heartbeat's ``complete_until``, kept by the writer (see
        :meth:`_flush`), rather than the last rows of the day files: the files of different
        kinds are flushed separately (a full buffer goes out at once), so the newest book on
        disk says nothing about prices, and a quiet kind's newest row can be hours old; and
        a row being on disk does not mean the rows before it are. Heartbeats of earlier
        versions have only ``last_data``, the best that is known then.
        """
        try:
            previous = read_heartbeat(self.cfg.heartbeat_path)
        except HeartbeatError as e:
            log.warning("%s; the time before this run cannot be recorded as a gap", e)
            return None
        if previous is None:
            return None
        start = previous.get("complete_until", previous.get("last_data"))
        return None if start is None else self._open_gap(start, "collector restart")

    def _open_gap(self, start: float, reason: str) -> _Gap:
        gap = _Gap(start, reason, list(self.cfg.symbols))
        with self._gaps_lock:
            self._gaps.append(gap)
        return gap

    def _complete_until(self) -> float:
        """Receive time (s) before which every row is in the files or a recorded gap."""
        with self._gaps_lock:
            return min([self._on_disk] + [g.start for g in self._gaps])

    # ----------------------------------------------------------------- websocket side

    def _on_data(self, channel: str, t: float, msg) -> None:
        self.stats.count_message(channel, t)
        item = (channel, t, msg)
        if self.cfg.on_full == "drop":
            try:
                self.queue.put_nowait(item)
            except queue.Full:
                self.stats.dropped += 1
                if self._dropping is None:
                    self._dropping = self._open_gap(t, "queue full: messages dropped")
                log.warning("queue full (%d): dropped a %s message received at %.3f "
                            "(%d dropped so far)", self.cfg.queue_size, channel, t,
                            self.stats.dropped)
                return
            if self._dropping is not None:  # the writer records it at its next flush
                self._dropping.end = t
                self._dropping = None
            return
        while True:
            try:
                self.queue.put(item, timeout=1.0)
                return
            except queue.Full:
                if self._fatal:  # the writer is gone; blocking would hang the socket thread
                    return
                log.warning("queue full (%d messages): websocket reader waiting for the "
                            "writer", self.cfg.queue_size)

    def _on_malformed(self, reason: str) -> None:
        n = self.stats.count_malformed()
        log.warning("malformed message #%d skipped: %s", n, reason)

    # ----------------------------------------------------------------- supervisor

    def _new_session(self):
        return self.session_factory(self.cfg.api_url, self.cfg.symbols, self._on_data,
                                    self._on_malformed, clock=self.clock)

    def _supervise(self, gap: _Gap | None) -> None:
        # ``gap``: the period without data, handed to the writer once subscriptions are
        # confirmed again. A restart opens with one: the time the collector was down.
        attempt = 0
        while not self._stop.is_set():
            session, failure = self._connect()
            if session is None:
                if self._stop.is_set():
                    break
                self.connect_failures += 1
                gap = gap or self._open_gap(self.stats.last_data or self.clock(), failure)
                self._pause(attempt)
                attempt += 1
                continue
            if gap is not None:
                gap.end = session.confirmed_at
                self._put(gap)
                gap = None
            log.info("subscribed to %s on %s", ", ".join(self.cfg.symbols), self.cfg.api_url)
            self.connected.set()
            began = time.monotonic()
            reason = self._watch(session)
            self.connected.clear()
            if reason is None:  # stopping
                break
            gap = self._open_gap(self.stats.last_data or session.confirmed_at, reason)
            self.stats.reconnects += 1
            log.warning("feed lost (%s); reconnecting", reason)
            session.close()
            self._session = None
            if time.monotonic() - began > self.cfg.stale_seconds:
                attempt = 0  # it was a working connection, not a flapping server
            self._pause(attempt)
            attempt += 1

    def _connect(self):
        """A session with every subscription confirmed, or (None, why it failed)."""
        session = None
        try:
            session = self._new_session()
            self._session = session
            session.start()
            if session.wait_confirmed(self.cfg.subscribe_timeout, self._stop):
                return session, ""
            failure = "subscriptions not confirmed"
        except UnknownCoinError:
            raise
        except Exception as e:  # network errors of every kind: retried with backoff
            log.warning("connecting to %s failed: %s", self.cfg.api_url, e)
            failure = f"connect failed: {type(e).__name__}"
        if session is not None:
            session.close()
        self._session = None
        return None, failure

    def _pause(self, attempt: int) -> None:
        delay = backoff_delay(attempt, self.cfg.backoff_min, self.cfg.backoff_max, self.rng)
        log.warning("reconnecting in %.1f s (attempt %d)", delay, attempt + 1)
        self._stop.wait(delay)

    def _watch(self, session) -> str | None:
        """Block while the feed is healthy; the reason it died, or None when stopping."""
        step = min(0.5, self.cfg.stale_seconds / 4)
        while not self._stop.wait(step):
            if self._fatal:
                return None
            if not session.alive():
                return "connection closed"
            silent = time.monotonic() - session.last_data_mono
            if silent > self.cfg.stale_seconds:
                return f"no data for {silent:.1f} s"
        return None

    def _put(self, item) -> None:
        """Queue ``item`` for the writer, waiting for room unless the writer is gone."""
        while True:
            try:
                self.queue.put(item, timeout=1.0)
                return
            except queue.Full:
                if self._fatal:
                    return

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
                if item is _STOP:
                    break
                if isinstance(item, _Gap):
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
            if not isinstance(msg, dict):  # the frame's text, decoded here (see feed.py)
                msg = hlproto.parse_message(msg)
            if channel == "bbo":
                kind, coin = "prices", msg["data"]["coin"]
                rows = hlproto.parse_bbo(msg, t)
            elif channel == "trades":
                rows = hlproto.parse_trades(msg, t)
                if not rows:
                    return
                kind, coin = "trades", msg["data"][0]["coin"]
            else:
                kind, coin = "orderbooks", msg["data"]["coin"]
                if coin in self._sequence:
                    self._sequence[coin] += 1
                rows = [hlproto.parse_l2book(msg, self.cfg.orderbook_depth, t,
                                             self._sequence.get(coin, 0))]
        except (hlproto.ProtocolError, KeyError, TypeError, IndexError) as e:
            self._on_malformed(f"{channel}: {e}")
            return 0
        if coin not in self._symbols:
            self._on_malformed(f"{channel} message for {coin!r}, not subscribed")
            return 0
        for row in rows:
            self.writer.write(kind, coin, t, format_row(row))
        return len(rows)

    def _heartbeat(self, raise_errors: bool = False) -> None:
        snap = self.stats.snapshot()
        snap.update(time=self.clock(), connected=self.connected.is_set(),
                    queue=self.queue.qsize(), rows=dict(self.writer.rows_written),
                    symbols=list(self.cfg.symbols), complete_until=self._complete_until(),
                    write_error=self._outage.error if self._outage else None)
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
