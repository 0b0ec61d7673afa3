"""Staleness per coin: one coin going quiet while the others stream on the same connection.

The supervisor (:mod:`asmm.venues.collector_common.supervisor`) replaces a connection on
which nothing at all came for ``STALE_SECONDS``: a reconnect, and a gap for every coin. That
rule cannot see one coin of twenty stop (a subscription the exchange stopped serving, a
market halted): the connection keeps streaming the others. :class:`CoinWatch` judges each
coin on its own, on the book channels (``bbo``, ``l2Book``), which Hyperliquid pushes as the
book changes, so a live market never leaves them quiet for long; trades are not judged, since
an illiquid perp may not trade for minutes.

A coin with no bbo/l2Book message for ``STALE_SECONDS`` (counted from its newest one, or from
the confirmation of its subscription) while the connection streams (it received something
within the last ``STALE_SECONDS / 2``; a whole feed stopping is the connection's fault):

- is logged once (a warning naming it) and counted (heartbeat, status line);
- gets a gap of its own, in its ``gaps_<COIN>.csv`` only, from its newest bbo/l2Book
  message until the first one after it went quiet (the rows in between may be incomplete);
  the other coins get nothing;
- is resubscribed on the same connection (unsubscribe + subscribe its bbo and l2Book; no
  reconnect, which would cost every other coin a gap). While it stays quiet it is
  resubscribed again after ``STALE_SECONDS`` plus the reconnect back-off
  (``BACKOFF_MIN`` doubling up to ``BACKOFF_MAX``, jittered): a coin that is merely
  quiet costs a few small messages a minute, never a reconnect storm;
- a resubscription the exchange does not confirm within ``SUBSCRIBE_TIMEOUT`` means the
  connection itself is broken: the supervisor reconnects (gaps for every coin).

On a reconnect the quiet coin's gap stays open (the new connection subscribes it again); on
stop it is closed at the stop.

The rules are the same for every venue; what the book channels are is the session's
``book_label`` (Hyperliquid ``bbo/l2Book``, Bybit ``orderbook.1/orderbook.50``), used in the
gap's reason and the log lines. Times are seconds (``time.monotonic()`` for judging, epoch
seconds for the gap's start and end).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from asmm.venues.collector_common.config import CollectorConfig
from asmm.venues.collector_common.health import Stats
from asmm.venues.collector_common.writer_thread import Gap, backoff_delay

log = logging.getLogger(__name__)


@dataclass
class _Quiet:
    """A coin judged quiet, until its next bbo/l2Book message."""

    gap: Gap
    began: float             # monotonic time it was judged quiet
    since: float             # monotonic reference of the next judgement (last confirmation)
    attempts: int = 0        # resubscriptions sent
    wait: float = 0.0        # extra seconds of quiet, beyond STALE_SECONDS, before the next
    pending: float | None = None  # monotonic time a resubscription was sent, unconfirmed


class CoinWatch:
    """The supervisor's per-coin judgement; call :meth:`attach` with each new confirmed
    session, :meth:`check` on every watch step, :meth:`close` on stop.

    ``open_gap(start, reason, coins)`` opens a gap the writer records once its end is set
    and it is handed over with ``put(gap)``.
    """

    def __init__(self, cfg: CollectorConfig, stats: Stats, rng: random.Random,
                 open_gap: Callable[..., Gap], put: Callable[[Gap], None]):
        self.cfg, self.stats, self.rng = cfg, stats, rng
        self._open_gap, self._put = open_gap, put
        self.quiet: dict[str, _Quiet] = {}

    # ----------------------------------------------------------------- supervisor

    def attach(self, session) -> None:
        """A new connection confirmed every subscription, the quiet coins' included: their
        next judgement counts from now; their gaps stay open until their data comes (the
        session was told which coins are quiet before it started)."""
        now = time.monotonic()
        for q in self.quiet.values():
            q.pending, q.since = None, now

    def check(self, session) -> str | None:
        """Judge every coin now; the reason the connection must be replaced, or None."""
        now = time.monotonic()
        stale = self.cfg.stale_seconds
        # A coin is judged only while the connection streams (something came within half
        # of STALE_SECONDS): when the whole feed stops, every coin goes quiet a little
        # before the connection is judged dead, and that is the connection's fault.
        streaming = now - session.last_data_mono <= stale / 2
        for coin in self.cfg.symbols:
            q = self.quiet.get(coin)
            if q is None:
                last = max(session.book_mono.get(coin, 0.0), session.confirmed_mono)
                if streaming and now - last > stale:
                    self._begin(session, coin, now - last, now)
                continue
            resumed = session.resumed.pop(coin, None)
            if resumed is not None:
                self._end(coin, q, resumed)
                continue
            if q.pending is not None:
                confirmed = session.resub_confirmed.pop(coin, None)
                if confirmed is not None:
                    q.pending, q.since = None, confirmed[1]
                elif now - q.pending > self.cfg.subscribe_timeout:
                    return (f"resubscription of {coin} not confirmed within "
                            f"{self.cfg.subscribe_timeout:g} s")
                continue
            if streaming and now - q.since > stale + q.wait:
                self._resubscribe(session, coin, q, now)
                log.info("%s still quiet after %d resubscriptions (%.0f s); resubscribed "
                         "again", coin, q.attempts - 1, now - q.began)
        self.stats.last_book = dict(session.book_t)
        return None

    def close(self, end: float) -> None:
        """Stopping: the quiet coins' gaps end now (nothing came for them until the stop)."""
        for coin, q in list(self.quiet.items()):
            q.gap.end = end
            self._put(q.gap)
            del self.quiet[coin]
        self.stats.quiet = ()

    # ----------------------------------------------------------------- steps

    def _begin(self, session, coin: str, silent: float, now: float) -> None:
        # Where this coin's rows were last known complete: its newest book message, or the
        # confirmation of its subscriptions when none came on this connection.
        start = max(session.book_t.get(coin, 0.0), session.confirmed_at)
        label = _label(session)
        reason = f"no {label} for {coin} while the connection streamed; resubscribed"
        q = _Quiet(self._open_gap(start, reason, [coin]), began=now, since=now)
        self.quiet[coin] = q
        self.stats.stale[coin] = self.stats.stale.get(coin, 0) + 1
        self.stats.quiet = tuple(sorted(self.quiet))
        # Watched before resubscribing: the first book message after it ends the gap.
        session.quiet.add(coin)
        log.warning("%s: no %s for %.1f s while the connection streams the other "
                    "coins; resubscribing %s (a gap for %s only)", coin, label, silent, coin,
                    coin)
        self._resubscribe(session, coin, q, now)

    def _resubscribe(self, session, coin: str, q: _Quiet, now: float) -> None:
        q.wait = backoff_delay(q.attempts, self.cfg.backoff_min, self.cfg.backoff_max,
                               self.rng)
        q.attempts += 1
        q.pending = now
        self.stats.resubscriptions[coin] = self.stats.resubscriptions.get(coin, 0) + 1
        session.resubscribe(coin)

    def _end(self, coin: str, q: _Quiet, resumed: float) -> None:
        q.gap.end = resumed
        self._put(q.gap)
        del self.quiet[coin]
        self.stats.quiet = tuple(sorted(self.quiet))
        log.info("%s: book messages again after %.1f s without (%d resubscriptions)", coin,
                 resumed - q.gap.start, q.attempts)


def _label(session) -> str:
    """The session's name for its book channels (Hyperliquid's when it has none)."""
    return getattr(session, "book_label", "bbo/l2Book")
