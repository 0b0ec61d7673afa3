"""The collector: websocket session(s) -> bounded queue -> one writer thread -> day files.

Threads::

    websocket thread  --(channel, t_recv, frame)-->  queue (bounded)  -->  writer thread
    supervisor (caller of run()): connects, confirms subscriptions, watches for a dead feed,
                                  reconnects with backoff + jitter, records gaps

Nothing is lost silently: a full queue blocks the websocket reader (``on_full="block"``,
back-pressure) or drops the message, counting and logging every drop (``"drop"``); a
malformed message is logged, counted and skipped; the writer flushes every
``flush_seconds`` and on :meth:`Collector.stop` drains the queue before closing.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable

from asmm import hlproto
from asmm.collector.config import CollectorConfig
from asmm.collector.feed import TRANSPORTS, UnknownCoinError
from asmm.collector.health import Stats, read_heartbeat, status_line, write_heartbeat
from asmm.collector.writer import DayWriter, GapLog, WriterError, format_row, utc_day
from asmm.marketdata import PRICES_COLUMNS, TRADES_COLUMNS, orderbook_columns

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


class Collector:
    """Collects ``bbo``, ``trades`` and ``l2Book`` of ``config.symbols`` into ``output_dir``.

    ``clock`` (epoch seconds) stamps receive times and decides the UTC day of each file;
    ``session_factory`` builds a session (default: the ``ws_client`` transport of
    :mod:`asmm.collector.feed`).
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
            previous = read_heartbeat(self.cfg.heartbeat_path)
            if previous and previous.get("last_data"):
                # The newest data on disk, kept across restarts (a crash before the first
                # message must not lose where the next gap starts).
                self.stats.last_data = float(previous["last_data"])
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
            self._supervise(previous)
        except UnknownCoinError as e:
            self._fatal = str(e)
        finally:
            if self._session is not None:
                self._session.close()
            self._put_stop()
            writer.join()
        if self._fatal:
            log.error("collector stopped: %s", self._fatal)
            return 2
        log.info("collector stopped; all received rows written")
        return 0

    # ----------------------------------------------------------------- websocket side

    def _on_data(self, channel: str, t: float, msg) -> None:
        self.stats.count_message(channel, t)
        item = (channel, t, msg)
        if self.cfg.on_full == "drop":
            try:
                self.queue.put_nowait(item)
            except queue.Full:
                self.stats.dropped += 1
                log.warning("queue full (%d): dropped a %s message received at %.3f "
                            "(%d dropped so far)", self.cfg.queue_size, channel, t,
                            self.stats.dropped)
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

    def _supervise(self, previous: dict | None) -> None:
        # The period without data, (start, reason); recorded once subscriptions are confirmed
        # again. A previous run's last message opens one: the time the collector was down.
        gap: tuple[float, str] | None = None
        if previous and previous.get("last_data"):
            gap = (float(previous["last_data"]), "collector restart")
        attempt = 0
        while not self._stop.is_set():
            session, failure = self._connect()
            if session is None:
                if self._stop.is_set():
                    break
                self.connect_failures += 1
                gap = gap or (self.stats.last_data or self.clock(), failure)
                self._pause(attempt)
                attempt += 1
                continue
            if gap is not None:
                for coin in self.cfg.symbols:
                    self.gaps.record(coin, gap[0], session.confirmed_at, gap[1])
                self.stats.gaps += 1
                gap = None
            log.info("subscribed to %s on %s", ", ".join(self.cfg.symbols), self.cfg.api_url)
            self.connected.set()
            began = time.monotonic()
            reason = self._watch(session)
            self.connected.clear()
            if reason is None:  # stopping
                break
            gap = (self.stats.last_data or session.confirmed_at, reason)
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

    def _put_stop(self) -> None:
        while True:
            try:
                self.queue.put(_STOP, timeout=1.0)
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
                if item:
                    self._write_item(*item)
                now = time.monotonic()
                if now >= next_flush:
                    self.writer.flush()
                    next_flush = now + cfg.flush_seconds
                if now >= next_heartbeat:
                    self._heartbeat()
                    next_heartbeat = now + HEARTBEAT_SECONDS
                if now >= next_status:
                    cur = self.stats.snapshot()
                    log.info("%s", status_line(prev, cur, now - prev_t, self.queue.qsize(),
                                               self.writer.rows_written))
                    prev, prev_t = cur, now
                    next_status = now + cfg.status_seconds
        except (WriterError, OSError) as e:
            self._fatal = f"writer: {e}"
            self._stop.set()
            return
        finally:
            try:
                self.writer.close()
            except OSError as e:
                self._fatal = self._fatal or f"closing files: {e}"
        self._heartbeat()

    def _write_item(self, channel: str, t: float, msg) -> None:
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
        except (hlproto.HLProtoError, KeyError, TypeError, IndexError) as e:
            self._on_malformed(f"{channel}: {e}")
            return
        if coin not in self._symbols:
            self._on_malformed(f"{channel} message for {coin!r}, not subscribed")
            return
        for row in rows:
            self.writer.write(kind, coin, t, format_row(row))

    def _heartbeat(self, raise_errors: bool = False) -> None:
        snap = self.stats.snapshot()
        snap.update(time=self.clock(), connected=self.connected.is_set(),
                    queue=self.queue.qsize(), rows=dict(self.writer.rows_written),
                    symbols=list(self.cfg.symbols))
        try:
            write_heartbeat(self.cfg.heartbeat_path, snap)
        except OSError as e:
            if raise_errors:
                raise
            log.warning("cannot write heartbeat %s: %s", self.cfg.heartbeat_path, e)
