"""The Hyperliquid data collector: websocket -> bounded queue -> one writer -> day files.

- :mod:`.config`  settings from environment variables and flags (stdlib only: cheap to import)
- :mod:`.feed`    one SDK websocket session with confirmed subscriptions
- :mod:`.service` :class:`~.service.Collector`: supervisor (connect, reconnect, backoff,
  gaps) and the websocket side
- :mod:`.quiet`   staleness per coin: a coin quiet while the others stream is resubscribed
  and gets a gap of its own
- :mod:`.writer_thread` the one thread that writes: queue -> files, gaps recorded, write
  failures retried, heartbeat
- :mod:`.writer`  line-atomic day files, UTC-day rotation, Parquet, gaps file
- :mod:`.health`  counters, status line, heartbeat
"""
