"""The replay exchange: a recorded or synthetic market served over the subset of
Hyperliquid's ``POST /info`` and WebSocket ``/ws`` protocol that ccxt, Freqtrade and the
Hyperliquid SDK use. Message shapes live in :mod:`asmm.venues.hyperliquid.protocol`.

- :mod:`.market`: collector data as an event timeline and the market state after any event.
- :mod:`.feed`: the replay clock, the position, and every answer at that position.
- :mod:`.faults`: fault injection (drops, stalls, malformed messages).
- :mod:`.server`: the aiohttp adapter.
"""

from asmm.venues.hyperliquid.replay.faults import Faults
from asmm.venues.hyperliquid.replay.feed import Exchange, InfoError, Replay, ReplayConfig
from asmm.venues.hyperliquid.replay.market import Market, load_market
from asmm.venues.hyperliquid.replay.server import ReplayServer

__all__ = ["Exchange", "Faults", "InfoError", "Market", "Replay", "ReplayConfig", "ReplayServer",
           "load_market"]
