"""What every venue's replay exchange shares: the WebSocket stream loop that paces a
replayed market's events to the subscribed connections, fault injection on those
connections, the record file, and the test endpoints under ``/_replay/``.

A venue's replay server (:class:`asmm.venues.hyperliquid.replay.server.ReplayServer`,
:class:`asmm.venues.bybit.replay.server.BybitReplayServer`) subclasses
:class:`~asmm.venues.replay_common.stream.StreamServer` with its own HTTP routes, its own
subscription messages and its own event messages. The market, its clock and its position
(:class:`asmm.venues.hyperliquid.replay.feed.Exchange`) are venue-independent state.
"""

from asmm.venues.replay_common.stream import Connection, StreamServer, serve_forever

__all__ = ["Connection", "StreamServer", "serve_forever"]
