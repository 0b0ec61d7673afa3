"""The collector: websocket session(s) -> bounded queue -> one writer thread -> day files.

Threads::

    websocket thread  --(channel, t_recv, frame)-->  queue (bounded)  -->  writer thread
    supervisor (caller of run()): connects, confirms subscriptions, watches for a dead feed,
                                  reconnects with backoff + jitter, hands gaps to the writer;
                                  judges each coin too (a coin quiet while the others
                                  stream is resubscribed, with a gap of its own: .quiet)

Nothing is lost silently: a full queue blocks the websocket reader (``on_full="block"``,
back-pressure) or drops the message, counting and logging every drop and recording the
period as a gap (``"drop"``); a malformed message is logged, counted and skipped; the
writer flushes every ``flush_seconds`` and on :meth:`Collector.stop` drains the queue
before closing.

Every row received is in the files or inside a gap of ``gaps_<COIN>.csv``. This module is
the supervisor and the websocket side; the writer thread, which alone writes files (gaps
included, handed to it by the supervisor) and rides out write failures, is
:mod:`asmm.venues.collector_common.writer_thread`.

The same for every venue: a venue gives a session class (connects, subscribes, confirms,
routes frames; Hyperliquid :mod:`asmm.venues.hyperliquid.collector.feed`, Bybit
:mod:`asmm.venues.bybit.collector.feed`) and a :class:`~.writer_thread.Decoder`; its
``Collector`` is :class:`BaseCollector` with those two.

A session, built as ``session_factory(endpoint, symbols, on_data, on_malformed,
clock=clock)``, has ``start()``, ``alive()``, ``close()``, ``wait_confirmed(timeout, stop)``,
``resubscribe(coin)`` (its book channels) and the attributes :mod:`.quiet` reads
(``confirmed_at``/``confirmed_mono``, ``last_data_mono``, ``book_mono``/``book_t``,
``quiet``, ``resumed``, ``resub_confirmed``); receive times are epoch seconds from
``clock``, the others ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable

from asmm.core.errors import DataError, UnknownCoinError
from asmm.data.venue import claim_folder
from asmm.venues.collector_common.config import CollectorConfig
from asmm.venues.collector_common.health import (
    HeartbeatError,
    coin_complete_until,
    read_heartbeat,
)
from asmm.venues.collector_common.quiet import CoinWatch
from asmm.venues.collector_common.writer import utc_day
from asmm.venues.collector_common.writer_thread import (
    STOP,
    Decoder,
    Gap,
    WriterThread,
    backoff_delay,
)

log = logging.getLogger(__name__)


class BaseCollector(WriterThread):
    """Collects a venue's market data of ``config.symbols`` into ``output_dir``.

    ``clock`` (epoch seconds) stamps receive times and decides the UTC day of each file;
    ``session_factory`` builds a session of the venue (module docstring), ``decoder`` turns
    its messages into rows, ``endpoint`` is the URL the session is given.
    Call :meth:`run` (blocks until :meth:`stop`); it returns a process exit code.
    """

    def __init__(self, config: CollectorConfig, *, session_factory, decoder: Decoder,
                 endpoint: str, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None):
        super().__init__(config, clock, rng or random.Random(), decoder)
        self.session_factory = session_factory
        self.endpoint = endpoint
        self.connect_failures = 0  # attempts that ended before confirmed subscriptions
        self._session = None
        self._dropping: Gap | None = None  # websocket thread: messages dropped since start
        self.coins = CoinWatch(config, self.stats, self.rng, self._open_gap, self._put)

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
            claim_folder(self.cfg.output_dir, self.cfg.venue, self.venue_details())
        except DataError as e:
            log.error("%s", e)
            return 2
        except OSError as e:
            log.error("cannot write to %s: %s", self.cfg.output_dir, e)
            return 2
        try:
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
            self.coins.close(self.clock())
            self._put(STOP)
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

    def venue_details(self) -> dict:
        """What ``venue.json`` records beside the venue (:mod:`asmm.data.venue`): the coins
        and where the data comes from."""
        return {"symbols": list(self.cfg.symbols), "source": self.endpoint}

    def _restart_gap(self) -> list[Gap]:
        """The gaps since the previous run's last rows known to be on disk, open until this
        run has subscribed; none on a first run.

        That point is the previous heartbeat's ``complete_until``, kept by the writer (see
        :meth:`_flush`), rather than the last rows of the day files: the files of different
        kinds are flushed separately (a full buffer goes out at once), so the newest book on
        disk says nothing about prices, and a quiet kind's newest row can be hours old; and
        a row being on disk does not mean the rows before it are. Heartbeats of earlier
        versions have only ``last_data``, the best that is known then. A coin that was quiet
        (:mod:`.quiet`) has its own, earlier ``complete_until``; the others do not wait for it.
        """
        try:
            previous = read_heartbeat(self.cfg.heartbeat_path)
        except HeartbeatError as e:
            log.warning("%s; the time before this run cannot be recorded as a gap", e)
            return []
        if previous is None:
            return []
        start = previous.get("complete_until", previous.get("last_data"))
        if start is None:
            return []
        by_start: dict[float, list[str]] = {}
        for coin in self.cfg.symbols:
            s = coin_complete_until(previous, coin)
            by_start.setdefault(start if s is None else s, []).append(coin)
        return [self._open_gap(s, "collector restart", coins) for s, coins in by_start.items()]

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

    # ----------------------------------------------------------------- supervisor

    def _new_session(self):
        session = self.session_factory(self.endpoint, self.cfg.symbols, self._on_data,
                                       self._on_malformed, clock=self.clock)
        # Before it starts: a quiet coin's first book message on it ends the coin's gap.
        session.quiet.update(self.coins.quiet)
        return session

    def _supervise(self, gaps: list[Gap]) -> None:
        # ``gaps``: the period without data, handed to the writer once subscriptions are
        # confirmed again. A restart opens with them: the time the collector was down.
        attempt = 0
        while not self._stop.is_set():
            session, failure = self._connect()
            if session is None:
                if self._stop.is_set():
                    break
                self.connect_failures += 1
                gaps = gaps or [self._open_gap(self.stats.last_data or self.clock(), failure)]
                self._pause(attempt)
                attempt += 1
                continue
            for gap in gaps:
                gap.end = session.confirmed_at
                self._put(gap)
            gaps = []
            self.coins.attach(session)
            log.info("subscribed to %s on %s", ", ".join(self.cfg.symbols), self.endpoint)
            self.connected.set()
            began = time.monotonic()
            reason = self._watch(session)
            self.connected.clear()
            if reason is None:  # stopping
                break
            gaps = self._lost_connection_gaps(session, reason)
            self.stats.reconnects += 1
            log.warning("feed lost (%s); reconnecting", reason)
            session.close()
            self._session = None
            if time.monotonic() - began > self.cfg.stale_seconds:
                attempt = 0  # it was a working connection, not a flapping server
            self._pause(attempt)
            attempt += 1

    def _lost_connection_gaps(self, session, reason: str) -> list[Gap]:
        """The gaps of a lost connection, one per coin, each from the coin's newest bbo/l2Book
        message (or the subscriptions' confirmation when none came): a coin that was going
        quiet is not judged by the others' newest message. A quiet coin's own gap is
        already open and covers it until its data comes back."""
        gaps = []
        for coin in self.cfg.symbols:
            if coin not in self.coins.quiet:
                start = max(session.book_t.get(coin, 0.0), session.confirmed_at)
                gaps.append(self._open_gap(start, reason, [coin]))
        return gaps

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
            log.warning("connecting to %s failed: %s", self.endpoint, e)
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
            reason = self.coins.check(session)  # one coin quiet while the others stream
            if reason is None:
                reason = self._check_session(session)
            if reason is not None:
                return reason
        return None

    def _check_session(self, session) -> str | None:
        """A venue's own check of a streaming session on every watch step: the reason the
        connection must be replaced, or None (nothing by default)."""
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
