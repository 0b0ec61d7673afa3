"""What every venue's collector shares: websocket -> bounded queue -> one writer -> day files.

- :mod:`.config`  settings from environment variables and flags (stdlib only: cheap to import)
- :mod:`.supervisor` :class:`~.supervisor.BaseCollector`: connect, reconnect with back-off,
  gaps, the websocket side; a venue adds its session class and decoder
- :mod:`.quiet`   staleness per coin: a coin quiet while the others stream is resubscribed
  and gets a gap of its own
- :mod:`.writer_thread` the one thread that writes: queue -> files, gaps recorded, write
  failures retried, heartbeat; a venue's :class:`~.writer_thread.Decoder` makes the rows
- :mod:`.writer`  line-atomic day files, UTC-day rotation, Parquet, gaps file
- :mod:`.health`  counters, status line, heartbeat

The venues: :mod:`asmm.venues.hyperliquid.collector`, :mod:`asmm.venues.bybit.collector`.
"""
