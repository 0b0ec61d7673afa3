"""One websocket session to Hyperliquid through hyperliquid-python-sdk, with confirmation.

The SDK (0.24.0) gives the connection (``Info`` + its ``WebsocketManager`` thread, pings
every 50 s, subscription queueing until the socket opens) but not what a collector needs:
it never reconnects, it swallows ``subscriptionResponse`` (so a lost subscribe goes
unnoticed), and an undecodable frame raises inside its callback. So :class:`_Manager`
subclasses the SDK's manager and takes every frame *before* the SDK's routing: data goes to
``on_data`` with its receive time, confirmations are tracked here, bad frames go to
``on_malformed``. The supervisor in :mod:`asmm.collector.service` builds a new
:class:`Session` after each drop.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from hyperliquid.info import Info
from hyperliquid.websocket_manager import WebsocketManager

from asmm import hlproto

log = logging.getLogger(__name__)

COLLECTED_CHANNELS = ("bbo", "trades", "l2Book")


class UnknownCoinError(Exception):
    """A configured coin is not listed by the exchange (not worth retrying)."""


def subscriptions(symbols) -> list[dict]:
    """The subscriptions of a collector: bbo, trades and l2Book per coin."""
    return [{"type": ch, "coin": c} for c in symbols for ch in COLLECTED_CHANNELS]


def _key(sub: dict) -> tuple[str, str]:
    return sub.get("type"), sub.get("coin")


class _Manager(WebsocketManager):
    """The SDK's manager with frames handed to ``handler`` instead of its own routing."""

    def __init__(self, base_url: str, handler: Callable[[str], None]):
        super().__init__(base_url)
        self._handler = handler
        # The SDK's threads are non-daemon: one left behind by a failed session must not
        # keep the process alive at exit.
        self.daemon = True
        self.ping_sender.daemon = True

    def on_message(self, _ws, message):
        self._handler(message)


class Session:
    """Subscriptions on one websocket; dead once :meth:`alive` is False.

    ``on_data(channel, t_recv, msg)`` and ``on_malformed(reason)`` are called on the SDK's
    websocket thread, one frame at a time, ``t_recv`` from ``clock`` (epoch s).
    """

    def __init__(self, api_url: str, symbols, on_data, on_malformed,
                 clock: Callable[[], float] = time.time, http_timeout: float = 10.0):
        self.clock = clock
        self.on_data = on_data
        self.on_malformed = on_malformed
        self.subs = subscriptions(symbols)
        # Info's constructor asks /info for spotMeta and meta: an unreachable API fails here.
        self.info = Info(api_url.rstrip("/"), skip_ws=True, timeout=http_timeout)
        unknown = [c for c in symbols if c not in self.info.name_to_coin]
        if unknown:
            raise UnknownCoinError(f"{api_url} does not list {unknown}; check SYMBOLS")
        self.manager = _Manager(self.info.base_url, self._on_frame)
        self.info.ws_manager = self.manager
        self._wanted = {_key(s) for s in self.subs}
        self._confirmed: set[tuple[str, str]] = set()
        self._all_confirmed = threading.Event()
        self.confirmed_at: float | None = None
        self.last_data_mono = time.monotonic()

    def start(self) -> None:
        self.manager.start()
        for sub in self.subs:
            # The callback is never called: _Manager takes frames before the SDK routes them.
            self.info.subscribe(dict(sub), _unused_callback)

    def alive(self) -> bool:
        return self.manager.is_alive()

    def wait_confirmed(self, timeout: float, stop: threading.Event,
                       resend_every: float = 1.0) -> bool:
        """Wait until the server confirmed every subscription; re-send unconfirmed ones.

        A subscribe issued just as the socket opens can be lost inside the SDK, so what has
        no ``subscriptionResponse`` after ``resend_every`` s is sent again.
        """
        deadline = time.monotonic() + timeout
        while not self._all_confirmed.wait(min(resend_every, max(deadline - time.monotonic(),
                                                                 0.0))):
            if stop.is_set() or not self.alive() or time.monotonic() >= deadline:
                return False
            if self.manager.ws_ready:
                for sub in self.subs:
                    if _key(sub) not in self._confirmed:
                        log.info("re-sending unconfirmed subscription %s", sub)
                        self._send({"method": "subscribe", "subscription": sub})
        return True

    def close(self) -> None:
        """Close the socket and end the SDK's threads (what its ``stop()`` does, with a short
        close handshake: its reader thread, not ``close()``, usually gets the server's reply,
        so ``close()`` would otherwise wait out websocket-client's default 3 s)."""
        m = self.manager
        m.stop_event.set()
        try:
            m.ws.close(timeout=0.5)
        except Exception as e:  # the socket may already be gone; closing is best effort
            log.debug("closing websocket: %s", e)
        if m.ping_sender.is_alive():
            m.ping_sender.join(timeout=2.0)
        if m.is_alive():
            m.join(timeout=2.0)

    def _send(self, payload: dict) -> None:
        try:
            self.manager.ws.send(json.dumps(payload))
        except Exception as e:  # the socket died meanwhile; the supervisor will notice
            log.info("send failed: %s", e)

    def _on_frame(self, text: str) -> None:
        t = self.clock()
        if text == hlproto.CONNECTED_TEXT:
            return
        try:
            msg = hlproto.parse_message(text)
        except hlproto.HLProtoError as e:
            self.on_malformed(str(e))
            return
        channel = msg["channel"]
        if channel in COLLECTED_CHANNELS:
            self.last_data_mono = time.monotonic()
            self.on_data(channel, t, msg)
        elif channel == "subscriptionResponse":
            self._on_confirmation(msg, t)
        elif channel == "error":
            log.warning("exchange says: %s", str(msg.get("data"))[:200])
        # pong and channels not subscribed to need nothing

    def _on_confirmation(self, msg: dict, t: float) -> None:
        data = msg.get("data")
        sub = data.get("subscription") if isinstance(data, dict) else None
        if not isinstance(sub, dict) or data.get("method") != "subscribe":
            return
        self._confirmed.add(_key(sub))
        if self._wanted <= self._confirmed and not self._all_confirmed.is_set():
            self.confirmed_at = t
            self.last_data_mono = time.monotonic()
            self._all_confirmed.set()


def _unused_callback(_msg) -> None:
    """The SDK requires a callback per subscription; frames are routed in Session._on_frame."""
