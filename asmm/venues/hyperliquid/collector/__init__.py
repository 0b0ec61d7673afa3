"""The Hyperliquid data collector: websocket -> bounded queue -> one writer -> day files.

- :mod:`.config`  settings from environment variables and flags (stdlib only: cheap to import)
- :mod:`.feed`    one SDK websocket session with confirmed subscriptions
- :mod:`.service` :class:`~.service.Collector`: supervisor (reconnect, backoff, gaps) and
  the writer thread
- :mod:`.writer`  line-atomic day files, UTC-day rotation, Parquet, gaps file
- :mod:`.health`  counters, status line, heartbeat
"""
