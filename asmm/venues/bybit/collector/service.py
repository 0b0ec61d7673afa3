"""The Bybit collector: the shared supervisor and writer
(:mod:`asmm.venues.collector_common.supervisor`) with Bybit's session (:mod:`.feed`) and
rows (:mod:`.decode`), plus the one rule Hyperliquid does not need: a book that lost its
sequence is resubscribed.

Everything else is the Hyperliquid collector's, by the same code: reconnect with back-off
and a gap per coin on a lost connection, per-coin staleness on the book topics, flushes,
the heartbeat, write failures, restart gaps.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from asmm.core.errors import ConfigError
from asmm.venues.bybit.collector.decode import BybitDecoder
from asmm.venues.bybit.collector.feed import BybitSession
from asmm.venues.bybit.symbols import symbol_of
from asmm.venues.collector_common.config import CollectorConfig
from asmm.venues.collector_common.supervisor import BaseCollector

log = logging.getLogger(__name__)


class BybitCollector(BaseCollector):
    """Collects Bybit's ``orderbook.1``, ``orderbook.50`` and ``publicTrade`` of
    ``config.symbols`` (coins; symbol = coin + USDT) into ``output_dir``, from
    ``config.bybit_stream_url``.

    ``clock`` (epoch seconds) stamps receive times; ``session_factory`` defaults to
    :class:`~.feed.BybitSession`. Call :meth:`run` (blocks until :meth:`stop`); it returns
    a process exit code.
    """

    def __init__(self, config: CollectorConfig, *, clock: Callable[[], float] = time.time,
                 session_factory=None, rng: random.Random | None = None):
        if config.venue != "bybit":  # its files would be marked and named wrongly
            raise ConfigError(f"this is the Bybit collector, the config is for "
                              f"{config.venue}: set venue='bybit' (VENUE=bybit)")
        self._resync_lock = threading.Lock()
        self._resync_wanted: set[str] = set()  # coins the writer asked to resubscribe
        self._resync_sent: dict[str, float] = {}  # coin -> monotonic s of the request
        decoder = BybitDecoder(config.orderbook_depth, self._open_gap,
                               self._want_resync, retry_seconds=config.stale_seconds)
        super().__init__(config, session_factory=session_factory or BybitSession,
                         decoder=decoder, endpoint=config.bybit_stream_url, clock=clock,
                         rng=rng)

    def venue_details(self) -> dict:
        """venue.json: each coin's Bybit symbol and the WebSocket URL."""
        return {"symbols": {c: symbol_of(c) for c in self.cfg.symbols},
                "source": self.endpoint}

    def _want_resync(self, coin: str) -> None:
        """Writer thread: ask the supervisor to resubscribe ``coin``'s book topics."""
        with self._resync_lock:
            self._resync_wanted.add(coin)

    def _new_session(self):
        session = super()._new_session()
        # A new connection starts every topic with a snapshot: nothing to resend.
        with self._resync_lock:
            self._resync_wanted.clear()
        self._resync_sent.clear()
        return session

    def _check_session(self, session) -> str | None:
        """Send the resubscriptions the writer asked for; a connection that does not confirm
        one within ``subscribe_timeout`` s is replaced."""
        with self._resync_lock:
            wanted, self._resync_wanted = self._resync_wanted, set()
        now = time.monotonic()
        for coin in sorted(wanted):
            log.info("resubscribing %s's book topics to get a snapshot", coin)
            self._resync_sent[coin] = now
            session.resync(coin)
        for coin, sent in list(self._resync_sent.items()):
            if session.resync_confirmed.pop(coin, None) is not None:
                del self._resync_sent[coin]
            elif now - sent > self.cfg.subscribe_timeout:
                return (f"resubscription of {coin}'s book not confirmed within "
                        f"{self.cfg.subscribe_timeout:g} s")
        return None
