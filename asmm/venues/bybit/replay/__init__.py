"""The Bybit replay exchange: a recorded or synthetic market served over the part of
Bybit's v5 public REST (``GET /v5/market/...``) and public linear WebSocket
(``/v5/public/linear``) that ccxt's ``bybit`` client, ccxt.pro and Freqtrade use. Message
shapes live in :mod:`asmm.venues.bybit.protocol`; the market, the clock and the stream loop
are shared with the Hyperliquid replay (:mod:`asmm.venues.hyperliquid.replay`,
:mod:`asmm.venues.replay_common`).

- :mod:`.feed`: the REST answers and WebSocket messages at the replay's position.
- :mod:`.server`: the aiohttp adapter.
"""

from asmm.venues.bybit.replay.feed import BybitConfig, BybitFeed, RequestError
from asmm.venues.bybit.replay.server import WS_PATH, BybitReplayServer

__all__ = ["WS_PATH", "BybitConfig", "BybitFeed", "BybitReplayServer", "RequestError"]
