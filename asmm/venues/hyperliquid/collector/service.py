"""The Hyperliquid collector: the shared supervisor and writer
(:mod:`asmm.venues.collector_common.supervisor`) with Hyperliquid's sessions
(:mod:`.feed`: ``bbo``, ``trades`` and ``l2Book`` per coin) and rows (:mod:`.decode`).

The names this module had before the shared code moved out are still importable here.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from asmm.core.errors import ConfigError, UnknownCoinError
from asmm.venues.collector_common.config import CollectorConfig
from asmm.venues.collector_common.supervisor import BaseCollector
from asmm.venues.collector_common.writer_thread import STOP, Gap, WriterThread, backoff_delay
from asmm.venues.hyperliquid.collector.decode import HyperliquidDecoder
from asmm.venues.hyperliquid.collector.feed import TRANSPORTS

__all__ = ["STOP", "Collector", "Gap", "UnknownCoinError", "WriterThread", "backoff_delay"]


class Collector(BaseCollector):
    """Collects ``bbo``, ``trades`` and ``l2Book`` of ``config.symbols`` into ``output_dir``.

    ``clock`` (epoch seconds) stamps receive times and decides the UTC day of each file;
    ``session_factory`` builds a session (default: the ``ws_client`` transport of
    :mod:`asmm.venues.hyperliquid.collector.feed`), given ``config.api_url``.
    Call :meth:`run` (blocks until :meth:`stop`); it returns a process exit code.
    """

    def __init__(self, config: CollectorConfig, *, clock: Callable[[], float] = time.time,
                 session_factory=None, rng: random.Random | None = None):
        if config.venue != "hyperliquid":  # its files would be marked and named wrongly
            raise ConfigError(f"this is the Hyperliquid collector, the config is for "
                              f"{config.venue}: use asmm collect --venue {config.venue}")
        super().__init__(config, session_factory=session_factory or TRANSPORTS[config.ws_client],
                         decoder=HyperliquidDecoder(config.symbols, config.orderbook_depth),
                         endpoint=config.api_url, clock=clock, rng=rng)
