"""The Hyperliquid data collector: websocket -> bounded queue -> one writer -> day files.

- :mod:`.feed`    one websocket session with confirmed subscriptions (SDK or aiohttp)
- :mod:`.decode`  bbo, trades, l2Book messages -> rows of the collector files
- :mod:`.service` :class:`~.service.Collector`: the shared supervisor with the two above

The venue-independent parts (settings, supervisor, per-coin staleness, writer thread, day
files, health) are :mod:`asmm.venues.collector_common`; ``.config``, ``.quiet``,
``.writer_thread``, ``.writer`` and ``.health`` here are those same modules under their old
names.
"""
