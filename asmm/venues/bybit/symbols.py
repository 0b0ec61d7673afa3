"""Bybit's names of the coins: coin ``BTC`` is the USDT linear perpetual ``BTCUSDT``.

One mapping for the replay exchange (:mod:`asmm.venues.bybit.protocol`), the collector
(:mod:`asmm.venues.bybit.collector`) and the collector's settings (``SYMBOLS``). Standard
library only, so the settings module that imports it stays cheap to import.
"""

from __future__ import annotations

QUOTE = "USDT"  # the quote and settle coin of Bybit's linear perpetuals served and collected


def symbol_of(coin: str) -> str:
    """Bybit's linear symbol of a coin: ``BTC`` → ``BTCUSDT``."""
    return f"{coin}{QUOTE}"


def coin_of(symbol: str) -> str | None:
    """The coin of a linear USDT symbol (``BTCUSDT`` → ``BTC``; the suffix in any case, as a
    user may type it in ``SYMBOLS``), else None."""
    if isinstance(symbol, str) and symbol.upper().endswith(QUOTE) and len(symbol) > len(QUOTE):
        return symbol[:-len(QUOTE)]
    return None
