"""Hyperliquid messages -> rows of the collector files, on the writer thread.

``bbo`` -> ``prices`` rows, ``trades`` -> ``trades`` rows, ``l2Book`` -> one ``orderbooks``
row (parsers: :mod:`asmm.venues.hyperliquid.protocol`). Hyperliquid has no book sequence
number: the ``sequence`` column is the collector's own count of each coin's l2Book messages
(1, 2, ...; from 1 again each run). Times: ``timestamp`` the receive time (epoch s),
``exchange_timestamp`` Hyperliquid's ``time`` (epoch ms).
"""

from __future__ import annotations

from asmm.venues.collector_common.writer_thread import Decoder
from asmm.venues.hyperliquid import protocol as hlproto


class HyperliquidDecoder(Decoder):
    """Rows of ``bbo``, ``trades`` and ``l2Book`` messages for ``symbols``, ``depth`` levels."""

    def __init__(self, symbols, depth: int):
        self.depth = depth
        self._sequence = {c: 0 for c in symbols}

    def rows(self, channel: str, t: float, msg) -> tuple[str, str, list]:
        if not isinstance(msg, dict):  # the frame's text, decoded here (see feed.py)
            msg = hlproto.parse_message(msg)
        if channel == "bbo":
            return "prices", msg["data"]["coin"], hlproto.parse_bbo(msg, t)
        if channel == "trades":
            rows = hlproto.parse_trades(msg, t)
            return "trades", (msg["data"][0]["coin"] if rows else None), rows
        coin = msg["data"]["coin"]
        if coin in self._sequence:
            self._sequence[coin] += 1
        return "orderbooks", coin, [hlproto.parse_l2book(msg, self.depth, t,
                                                         self._sequence.get(coin, 0))]
