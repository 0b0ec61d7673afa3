"""What every venue's session keeps for the supervisor (:mod:`.supervisor`) and the per-coin
staleness rules (:mod:`.quiet`), whatever its transport: whether and when its subscriptions
were confirmed, when data last came, and per coin when its book last came and whether it is
judged quiet.

A venue's session mixes in :class:`SessionState`, calls :meth:`SessionState._init_state` in
its constructor, :meth:`SessionState._on_book` for each book message and
:meth:`SessionState._all_confirmed_at` once the exchange confirmed every subscription, and
gives :meth:`SessionState._resend_unconfirmed` (and, where the exchange can refuse a
subscription, :meth:`SessionState._check_refused`). The attributes are written by the
socket's thread and read by the supervisor: single dict and set operations, atomic under
the GIL. Times: ``t`` epoch seconds (receive time), ``*_mono`` ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import threading
import time


class SessionState:
    """Confirmation, liveness and per-coin book times of one connection."""

    def _init_state(self) -> None:
        self._all_confirmed = threading.Event()
        # When every subscription was confirmed (receive time; monotonic), None before.
        self.confirmed_at: float | None = None
        self.confirmed_mono: float | None = None
        # The newest data message (or the confirmation): the connection's liveness.
        self.last_data_mono = time.monotonic()
        # Per coin: its newest book message (monotonic and receive time), whether the
        # supervisor judged it quiet and the receive time of its first book message after
        # that, and its confirmed resubscriptions ((receive time, monotonic) of the last).
        self.book_mono: dict[str, float] = {}
        self.book_t: dict[str, float] = {}
        self.quiet: set[str] = set()
        self.resumed: dict[str, float] = {}
        self.resub_confirmed: dict[str, tuple[float, float]] = {}

    # ----------------------------------------------------------------- venue hooks
    # (and the transport's ``alive()`` and ``_ready()``, not declared here, so that a mixin
    # order never hides the transport's own)

    def _resend_unconfirmed(self) -> None:
        """Send again the subscriptions not confirmed yet (the socket is open)."""
        raise NotImplementedError

    def _check_refused(self) -> None:
        """Raise when the exchange refused a subscription (it does not list a coin)."""

    # ----------------------------------------------------------------- the socket's thread

    def _on_book(self, coin: str | None, t: float, mono: float) -> None:
        """A book message of ``coin`` (None: no coin it could name) came at ``t``/``mono``."""
        if coin is None:
            return
        self.book_mono[coin] = mono
        self.book_t[coin] = t
        if coin in self.quiet:
            self.quiet.discard(coin)
            self.resumed.setdefault(coin, t)

    def _all_confirmed_at(self, t: float) -> None:
        """Every subscription is confirmed, the last at receive time ``t`` (the first time
        only)."""
        if self._all_confirmed.is_set():
            return
        self.confirmed_at = t
        self.confirmed_mono = self.last_data_mono = time.monotonic()
        self._all_confirmed.set()

    # ----------------------------------------------------------------- the supervisor's

    def wait_confirmed(self, timeout: float, stop: threading.Event,
                       resend_every: float = 1.0) -> bool:
        """Wait until the exchange confirmed every subscription, re-sending unconfirmed ones
        every ``resend_every`` s (a subscribe sent just as the socket opens can be lost);
        False on ``timeout`` (s), ``stop`` or a dead socket."""
        deadline = time.monotonic() + timeout
        while not self._all_confirmed.wait(min(resend_every, max(deadline - time.monotonic(),
                                                                 0.0))):
            self._check_refused()
            if stop.is_set() or not self.alive() or time.monotonic() >= deadline:
                return False
            if self._ready():
                self._resend_unconfirmed()
        return True
