"""The Bybit data collector (USDT perpetuals, v5 public WebSocket) into the collector format.

- :mod:`.parse`   Bybit's orderbook and publicTrade messages -> rows; the book from snapshot
  and deltas (pure, no I/O)
- :mod:`.decode`  the writer thread's side: books per topic, a sequence gap -> a gap and a
  resubscription
- :mod:`.feed`    one websocket session with confirmed subscriptions (aiohttp)
- :mod:`.service` :class:`~.service.BybitCollector`: the shared supervisor
  (:mod:`asmm.venues.collector_common`) with the three above

Files, columns and rules are the Hyperliquid collector's (docs/collector.md, "Bybit").
"""
