"""One websocket session to Hyperliquid, with confirmed subscriptions; two transports.

:class:`Session` (``WS_CLIENT=sdk``) uses hyperliquid-python-sdk 0.24.0:
``Info`` and its ``WebsocketManager`` thread (websocket-client; pings every 50 s;
subscriptions queued until the socket opens). The SDK does not do what a collector needs:
it never reconnects, it swallows ``subscriptionResponse`` (a lost subscribe goes unnoticed)
and an undecodable frame raises inside its callback. So :class:`_Manager` subclasses the
SDK's manager and takes every frame *before* the SDK's routing.

:class:`AiohttpSession` (``WS_CLIENT=aiohttp``, the default) speaks the same protocol over aiohttp's
websocket client, whose frame reader is compiled and reads the socket in large chunks;
websocket-client makes three ``recv`` calls (each a GIL hand-off) and a ``poll`` per frame
and parses frames in Python. It handles about 1.5x the messages per CPU-second
(benchmarks/README.md). Both use the SDK's ``Info`` for the exchange's coin list.

Both hand data to ``on_data(channel, t_recv, frame)`` (the frame's text, or the decoded
message when it does not start the usual way; the writer decodes) and bad frames to
``on_malformed(reason)`` on their own thread, one frame at a time; the supervisor in
:mod:`asmm.venues.collector_common.supervisor` builds a new session after each drop.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable

from hyperliquid.info import Info
from hyperliquid.websocket_manager import WebsocketManager

from asmm.core.errors import UnknownCoinError
from asmm.venues.collector_common.session import SessionState
from asmm.venues.collector_common.ws import AiohttpTransport
from asmm.venues.hyperliquid import protocol as hlproto

log = logging.getLogger(__name__)

COLLECTED_CHANNELS = ("bbo", "trades", "l2Book")
# The channels a coin's staleness is judged on and that a stale coin is resubscribed to:
# Hyperliquid pushes them as the book changes, so a live market never leaves them quiet for
# long, and each message is a whole state, so a repeat after resubscribing is a valid row.
# (Trades are neither: an illiquid perp trades rarely, and a trades subscription may start
# with recent trades, which would be written twice.)
BOOK_CHANNELS = ("bbo", "l2Book")
PING_SECONDS = 50.0  # as the SDK: Hyperliquid closes connections silent for 60 s
_CONNECTED = (hlproto.CONNECTED_TEXT, hlproto.CONNECTED_TEXT.encode())
# How Hyperliquid (and the replay exchange) start a data message. Matching frames go to the
# writer undecoded: a queued frame is then its text (~2 KB for a 20-level book) instead of
# its decoded objects (~14 KB), which is most of the collector's memory under load.
_DATA_PREFIXES = [(f'{{"channel":"{ch}"', f'{{"channel":"{ch}"'.encode(), ch)
                  for ch in COLLECTED_CHANNELS]


# The coin of a bbo or l2Book frame without decoding it: the value of its "coin" key, which
# Hyperliquid (and the replay exchange) put first in ``data``, so the search stops early.
_COIN_STR = re.compile(r'"coin"\s*:\s*"([^"\\]*)"')
_COIN_BYTES = re.compile(rb'"coin"\s*:\s*"([^"\\]*)"')


def frame_coin(text: str | bytes) -> str | None:
    """The coin a bbo or l2Book frame is about, or None when it has none (the writer then
    reports the frame as malformed)."""
    if isinstance(text, bytes):
        m = _COIN_BYTES.search(text)
        return m.group(1).decode("utf-8", "replace") if m else None
    m = _COIN_STR.search(text)
    return m.group(1) if m else None


def subscriptions(symbols) -> list[dict]:
    """The subscriptions of a collector: bbo, trades and l2Book per coin."""
    return [{"type": ch, "coin": c} for c in symbols for ch in COLLECTED_CHANNELS]


def _key(sub: dict) -> tuple[str, str]:
    return sub.get("type"), sub.get("coin")


class _BaseSession(SessionState):
    """Frame routing, subscription confirmation and liveness shared by both transports
    (the state every venue's session keeps: :class:`SessionState`).

    Subclasses implement :meth:`start`, :meth:`alive`, :meth:`close`, :meth:`_ready` (the
    socket is open) and :meth:`_send`.
    """

    def __init__(self, api_url: str, symbols, on_data, on_malformed,
                 clock: Callable[[], float] = time.time, http_timeout: float = 10.0):
        self.api_url = api_url.rstrip("/")
        self.clock = clock
        self.on_data = on_data
        self.on_malformed = on_malformed
        self.subs = subscriptions(symbols)
        # Info's constructor asks /info for spotMeta and meta: an unreachable API fails here,
        # and a coin the exchange does not list is caught before subscribing.
        self.info = Info(self.api_url, skip_ws=True, timeout=http_timeout)
        unknown = [c for c in symbols if c not in self.info.name_to_coin]
        if unknown:
            raise UnknownCoinError(f"{api_url} does not list {unknown}; check SYMBOLS")
        self._wanted = {_key(s) for s in self.subs}
        self._confirmed: set[tuple[str, str]] = set()
        self._init_state()
        # coin -> its bbo and l2Book resubscriptions not confirmed yet
        self._resub: dict[str, set[tuple[str, str]]] = {}

    def start(self) -> None:
        raise NotImplementedError

    def alive(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _send(self, payload: dict) -> None:
        raise NotImplementedError

    def _resend_unconfirmed(self) -> None:
        # A subscribe issued just as the socket opens can be lost (inside the SDK).
        for sub in self.subs:
            if _key(sub) not in self._confirmed:
                log.info("re-sending unconfirmed subscription %s", sub)
                self._send({"method": "subscribe", "subscription": sub})

    def resubscribe(self, coin: str) -> None:
        """Unsubscribe and subscribe again ``coin``'s bbo and l2Book on this connection; its
        confirmation appears in :attr:`resub_confirmed` (the supervisor waits for it)."""
        subs = [{"type": ch, "coin": coin} for ch in BOOK_CHANNELS]
        self.resub_confirmed.pop(coin, None)
        self._resub[coin] = {_key(s) for s in subs}
        for method in ("unsubscribe", "subscribe"):
            for sub in subs:
                self._send({"method": method, "subscription": sub})

    def _on_frame(self, text: str | bytes) -> None:
        t = self.clock()
        for as_str, as_bytes, channel in _DATA_PREFIXES:
            if text.startswith(as_str if isinstance(text, str) else as_bytes):
                self.last_data_mono = mono = time.monotonic()
                if channel != "trades":
                    self._on_book(frame_coin(text), t, mono)
                self.on_data(channel, t, text)
                return
        if text in _CONNECTED:
            return
        try:
            msg = hlproto.parse_message(text)
        except hlproto.ProtocolError as e:
            self.on_malformed(str(e))
            return
        channel = msg["channel"]
        if channel in COLLECTED_CHANNELS:  # a data message spelt differently: passed decoded
            self.last_data_mono = mono = time.monotonic()
            if channel != "trades":
                data = msg.get("data")
                coin = data.get("coin") if isinstance(data, dict) else None
                self._on_book(coin if isinstance(coin, str) else None, t, mono)
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
        key = _key(sub)
        self._confirmed.add(key)
        pending = self._resub.get(key[1])
        if pending is not None and key in pending:
            pending.discard(key)
            if not pending:
                del self._resub[key[1]]
                self.resub_confirmed[key[1]] = (t, time.monotonic())
        if self._wanted <= self._confirmed:
            self._all_confirmed_at(t)


# --------------------------------------------------------------------------- SDK transport


class _Manager(WebsocketManager):
    """The SDK's manager with frames handed to ``handler`` instead of its own routing."""

    def __init__(self, base_url: str, handler: Callable[[bytes], None]):
        super().__init__(base_url)
        self._handler = handler
        # The SDK's threads are non-daemon: one left behind by a failed session must not
        # keep the process alive at exit.
        self.daemon = True
        self.ping_sender.daemon = True

    def run(self):
        self.ping_sender.start()
        # websocket-client checks each text frame's UTF-8 in pure Python (unless the optional
        # wsaccel is installed): most of this thread's time per message. Skipped, frames come
        # as bytes and json.loads decodes them with CPython's strict UTF-8 decoder, so bad
        # UTF-8 is still caught, as a malformed message.
        self.ws.run_forever(skip_utf8_validation=True)

    def on_message(self, _ws, message):
        self._handler(message)


class Session(_BaseSession):
    """A session over the SDK's ``Info`` + ``WebsocketManager``; dead once :meth:`alive` is
    False."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.manager = _Manager(self.info.base_url, self._on_frame)
        self.info.ws_manager = self.manager

    def start(self) -> None:
        self.manager.start()
        for sub in self.subs:
            # The callback is never called: _Manager takes frames before the SDK routes them.
            self.info.subscribe(dict(sub), _unused_callback)

    def alive(self) -> bool:
        return self.manager.is_alive()

    def _ready(self) -> bool:
        return self.manager.ws_ready

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


def _unused_callback(_msg) -> None:
    """The SDK requires a callback per subscription; frames are routed in _on_frame."""


# --------------------------------------------------------------------------- aiohttp transport


class AiohttpSession(AiohttpTransport, _BaseSession):
    """A session over aiohttp's websocket client, on its own thread and event loop
    (:class:`~asmm.venues.collector_common.ws.AiohttpTransport`)."""

    ping_text = '{"method":"ping"}'
    ping_seconds = PING_SECONDS

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._init_transport("ws" + self.api_url[len("http"):] + "/ws")

    async def _on_open(self, ws) -> None:
        for sub in self.subs:
            await ws.send_str(json.dumps({"method": "subscribe", "subscription": sub}))


TRANSPORTS = {"sdk": Session, "aiohttp": AiohttpSession}
