"""One websocket session to Bybit's v5 public stream of USDT perpetuals, with confirmed
subscriptions (aiohttp, :class:`~asmm.venues.collector_common.ws.AiohttpTransport`).

Per coin ``C`` (symbol ``CUSDT``) the session subscribes ``orderbook.1.CUSDT``,
``orderbook.50.CUSDT`` and ``publicTrade.CUSDT``, one ``{"op":"subscribe","req_id":N,
"args":[topic]}`` each, so that each answer ``{"success":..,"ret_msg":..,"req_id":N,
"op":"subscribe"}`` confirms (or refuses) exactly one topic. A refused subscription other
than "already subscribed" means Bybit does not list the symbol: :class:`UnknownCoinError`
(``asmm collect`` exits 2). Keep-alive: ``{"op":"ping"}`` every 20 s, as Bybit advises
(it cuts a connection without ping or data after 10 minutes).

Data frames go to ``on_data(channel, t_recv, frame)`` undecoded (the writer decodes,
:mod:`.decode`); ``channel`` is ``orderbook.1``, ``orderbook.50`` or ``publicTrade``. The
attributes the shared supervisor and :mod:`asmm.venues.collector_common.quiet` read are
:class:`~asmm.venues.collector_common.session.SessionState`'s, as for Hyperliquid; the
book channels are ``orderbook.1`` and ``orderbook.50`` (on a live linear perp level 1
changes constantly, and Bybit re-sends its snapshot every 3 s when it does not). Times:
``t`` epoch seconds from ``clock``, the ``*_mono`` ones ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
from collections.abc import Callable

from asmm.core.errors import ProtocolError, UnknownCoinError
from asmm.venues.bybit.collector import parse
from asmm.venues.bybit.symbols import symbol_of
from asmm.venues.collector_common.session import SessionState
from asmm.venues.collector_common.ws import AiohttpTransport

log = logging.getLogger(__name__)

PING_SECONDS = 20.0  # Bybit: "send the ping heartbeat packet every 20 seconds"
_TOPIC_STR = re.compile(r'"topic"\s*:\s*"([^"\\]*)"')
_DATA_PREFIX = '{"topic":"'


class BybitSession(AiohttpTransport, SessionState):
    """A session on ``ws_url`` for ``symbols`` (coins); dead once :meth:`alive` is False."""

    book_label = "orderbook.1/orderbook.50"
    ping_seconds = PING_SECONDS

    def __init__(self, ws_url: str, symbols, on_data, on_malformed,
                 clock: Callable[[], float] = time.time):
        self._init_transport(ws_url, "collector-ws-bybit")
        self.clock = clock
        self.on_data = on_data
        self.on_malformed = on_malformed
        self.coins = {symbol_of(c): c for c in symbols}
        self.topics = [tp for c in symbols for tp in parse.topics(c)]
        self._ids = itertools.count(1)
        self._requests: dict[str, tuple[str, str]] = {}  # req_id -> (op, topic)
        self._confirmed: set[str] = set()
        self.refused: dict[str, str] = {}  # topic -> Bybit's ret_msg
        self._init_state()
        # Besides the resubscriptions of quiet coins (resub_confirmed), those of coins whose
        # book lost its sequence: (receive time, monotonic) of the last confirmation.
        self.resync_confirmed: dict[str, tuple[float, float]] = {}
        self._pending: dict[str, dict[str, set[str]]] = {"resub": {}, "resync": {}}

    # ----------------------------------------------------------------- requests

    def _request(self, op: str, topic: str) -> dict:
        req_id = str(next(self._ids))
        self._requests[req_id] = (op, topic)
        return {"op": op, "req_id": req_id, "args": [topic]}

    def _ping_payload(self) -> str:
        return json.dumps({"op": "ping", "req_id": str(next(self._ids))})

    ping_text = '{"op":"ping"}'  # non-empty: the keep-alive runs (payload above)

    async def _on_open(self, ws) -> None:
        for topic in self.topics:
            await ws.send_str(json.dumps(self._request("subscribe", topic)))

    def _check_refused(self) -> None:
        """:class:`UnknownCoinError` when Bybit refused a subscription (it does not list the
        symbol): :meth:`wait_confirmed` raises it."""
        if self.refused:
            topic, why = next(iter(self.refused.items()))
            raise UnknownCoinError(f"{self.ws_url} refused {topic} ({why}); check SYMBOLS "
                                   "(coins of USDT perpetuals, e.g. BTC for BTCUSDT)")

    def _resend_unconfirmed(self) -> None:
        for topic in self.topics:
            if topic not in self._confirmed:
                log.info("re-sending unconfirmed subscription %s", topic)
                self._send(self._request("subscribe", topic))

    def resubscribe(self, coin: str) -> None:
        """Unsubscribe and subscribe again ``coin``'s book topics (a quiet coin); the
        confirmation appears in :attr:`resub_confirmed`."""
        self._resend_books(coin, "resub", self.resub_confirmed)

    def resync(self, coin: str) -> None:
        """The same for a coin whose book lost its sequence: Bybit answers the subscription
        with a snapshot; the confirmation appears in :attr:`resync_confirmed`."""
        self._resend_books(coin, "resync", self.resync_confirmed)

    def _resend_books(self, coin: str, purpose: str, confirmed: dict) -> None:
        topics = parse.book_topics(coin)
        confirmed.pop(coin, None)
        self._pending[purpose][coin] = set(topics)
        for op in ("unsubscribe", "subscribe"):
            for topic in topics:
                self._send(self._request(op, topic))

    # ----------------------------------------------------------------- frames

    def _route(self, topic: str | None, t: float, frame) -> bool:
        """Hand a data frame on; False when ``topic`` is not a collected one."""
        try:
            channel, symbol = parse.split_topic(topic)
        except ProtocolError:
            return False
        self.last_data_mono = mono = time.monotonic()
        if channel != parse.TRADES_CHANNEL:
            self._on_book(self.coins.get(symbol), t, mono)
        self.on_data(channel, t, frame)
        return True

    def _on_frame(self, text: str | bytes) -> None:
        t = self.clock()
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if text.startswith(_DATA_PREFIX):  # Bybit's data messages start with their topic
            m = _TOPIC_STR.match(text, 1)
            if m and self._route(m.group(1), t, text):
                return
        try:
            msg = parse.parse_message(text)
        except ProtocolError as e:
            self.on_malformed(str(e))
            return
        if "topic" in msg:  # a data message spelt differently: passed decoded
            if not self._route(msg.get("topic"), t, msg):
                self.on_malformed(f"topic not subscribed: {str(msg.get('topic'))[:80]!r}")
            return
        if "op" in msg or "success" in msg:
            self._on_answer(msg, t)
            return
        self.on_malformed(f"neither data nor an answer: {text[:80]!r}")

    def _on_answer(self, msg: dict, t: float) -> None:
        op, topic = self._requests.pop(str(msg.get("req_id")), (msg.get("op"), None))
        if op == "ping" or msg.get("ret_msg") == "pong":
            return
        if op != "subscribe" or topic is None:
            if msg.get("success") is False:
                log.warning("Bybit says: %s", str(msg.get("ret_msg"))[:200])
            return
        if msg.get("success") is not True:
            why = str(msg.get("ret_msg"))
            if "already" not in why.lower():
                self.refused[topic] = why[:200]
                log.warning("Bybit refused %s: %s", topic, why[:200])
                return
        self._confirmed.add(topic)
        coin = self.coins.get(parse.split_topic(topic)[1])
        for purpose, confirmed in (("resub", self.resub_confirmed),
                                   ("resync", self.resync_confirmed)):
            pending = self._pending[purpose].get(coin)
            if pending is not None and topic in pending:
                pending.discard(topic)
                if not pending:
                    del self._pending[purpose][coin]
                    confirmed[coin] = (t, time.monotonic())
        if self._confirmed >= set(self.topics):
            self._all_confirmed_at(t)
