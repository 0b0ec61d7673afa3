"""Collector trades -> Freqtrade candle files, for `freqtrade backtesting` on our own data.

Freqtrade's Hyperliquid history stops at 5000 candles, so a backtest over a recorded (or
synthetic) market needs candles built from the collector's trades. Files are written with
Freqtrade's own data handler, so the layout (``<datadir>/futures/BTC_USDC_USDC-1m-futures
.feather``, the 1h mark candles, the funding-rate file) is whatever the installed Freqtrade
reads. Freqtrade is imported lazily: it is an optional extra of this package.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from asmm.data.readers import read_trades

log = logging.getLogger(__name__)


def trades_to_ohlcv(t_ms: np.ndarray, price: np.ndarray, size: np.ndarray,
                    timeframe_seconds: int) -> pd.DataFrame:
    """OHLCV candles of trades; a candle without trades repeats the last close, volume 0.

    ``t_ms`` exchange time in ms (sorted), ``price`` USDC, ``size`` coin. Returns columns
    ``date`` (UTC, candle open), ``open, high, low, close`` (USDC), ``volume`` (coin), one row
    per candle from the first trade's candle to the last's.
    """
    if len(t_ms) == 0:
        raise ValueError("no trades to build candles from")
    step = timeframe_seconds * 1000
    bucket = (np.asarray(t_ms, dtype=np.int64) // step) * step
    df = pd.DataFrame({"bucket": bucket, "price": price, "size": size})
    g = df.groupby("bucket", sort=True)
    ohlcv = pd.DataFrame({"open": g["price"].first(), "high": g["price"].max(),
                          "low": g["price"].min(), "close": g["price"].last(),
                          "volume": g["size"].sum()})
    full = np.arange(bucket[0], bucket[-1] + step, step)
    ohlcv = ohlcv.reindex(full)
    close = ohlcv["close"].ffill()
    for col in ("open", "high", "low"):
        ohlcv[col] = ohlcv[col].fillna(close)
    ohlcv["close"] = close
    ohlcv["volume"] = ohlcv["volume"].fillna(0.0)
    ohlcv.insert(0, "date", pd.to_datetime(full, unit="ms", utc=True))
    return ohlcv.reset_index(drop=True)


def write_freqtrade_futures_data(data_dir: str | Path, coin: str, datadir: str | Path,
                                 pair: str | None = None, timeframes: tuple[str, ...] = ("1m",),
                                 funding_rate: float = 0.0) -> dict[str, Path]:
    """Write futures candles for ``timeframes``, 1h mark candles and a funding-rate series.

    ``data_dir`` holds collector files of ``coin``; ``datadir`` is Freqtrade's data folder.
    Hyperliquid's mark price is its 1h futures candle in Freqtrade, so "1h" is always
    written. Returns the written paths by kind.
    """
    from freqtrade.data.history.datahandlers import get_datahandler
    from freqtrade.enums import CandleType
    from freqtrade.exchange import timeframe_to_seconds

    pair = pair or f"{coin}/USDC:USDC"
    trades = read_trades(data_dir, coin)
    Path(datadir).mkdir(parents=True, exist_ok=True)
    handler = get_datahandler(Path(datadir), "feather")
    written: dict[str, Path] = {}
    for tf in dict.fromkeys((*timeframes, "1h")):
        df = trades_to_ohlcv(trades.t, trades.price, trades.size, timeframe_to_seconds(tf))
        handler.ohlcv_store(pair, tf, df, CandleType.FUTURES)
        written[tf] = handler._pair_data_filename(Path(datadir), pair, tf, CandleType.FUTURES)
    hourly = trades_to_ohlcv(trades.t, trades.price, trades.size, 3600)
    funding = pd.DataFrame({"date": hourly["date"], "funding_rate": funding_rate})
    handler.ohlcv_store(pair, "1h", funding, CandleType.FUNDING_RATE)
    written["funding_rate"] = handler._pair_data_filename(Path(datadir), pair, "1h",
                                                          CandleType.FUNDING_RATE)
    log.info("freqtrade data for %s: %s", pair, {k: str(v) for k, v in written.items()})
    return written


def offline_exchange_config(url: str) -> dict:
    """The ``exchange`` overlay that points Freqtrade (ccxt) at a replay exchange at ``url``.

    Both ccxt objects get the URLs through ``ccxt_config`` (order-book calls use the sync one);
    WebSockets are off, so no call can leave for the real host. The ``options``/``has`` keys
    make market loading a single request (the two empty dicts are required by ccxt).
    """
    url = url.rstrip("/")
    return {
        "enable_ws": False,
        "ccxt_config": {
            "urls": {"api": {"public": url, "private": url}},
            "options": {"fetchMarkets": {"types": ["swap"]}, "hip3TokensByName": {},
                        "cachedCurrenciesById": {}},
            "has": {"fetchCurrencies": False},
        },
        "ccxt_async_config": {},
    }
