"""Indicators of the regime filter: Wilder's ADX (TA-Lib's values), on a higher timeframe
without look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd


def adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's Average Directional Index, 0–100, NaN until ``2 * period - 1`` bars exist.

    Inputs are 1-d float arrays of one length (one bar each); the output has that length.
    Wilder smoothing is ``x_t = x_{t-1} - x_{t-1} / period + v_t`` for the sums of true range
    and directional movement, the recursive mean for ADX itself.
    """
    high, low, close = (np.asarray(a, dtype=float) for a in (high, low, close))
    n = close.size
    out = np.full(n, np.nan)
    if n < 2 * period:
        return out
    up = np.diff(high)
    down = -np.diff(low)
    plus_dm = np.where((up > down) & (up > 0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0), down, 0.0)
    tr = np.maximum.reduce([high[1:] - low[1:], np.abs(high[1:] - close[:-1]),
                            np.abs(low[1:] - close[:-1])])
    # Seeded with period - 1 values then smoothed from the period-th on: TA-Lib's
    # initialisation, so values agree with the reference everyone charts.
    m = period - 1
    atr, pdm, mdm = tr[:m].sum(), plus_dm[:m].sum(), minus_dm[:m].sum()
    dx = np.empty(n - 1 - period + 1)
    for i in range(m, n - 1):
        atr += tr[i] - atr / period
        pdm += plus_dm[i] - pdm / period
        mdm += minus_dm[i] - mdm / period
        pdi = 100.0 * pdm / atr if atr > 0 else 0.0
        mdi = 100.0 * mdm / atr if atr > 0 else 0.0
        s = pdi + mdi
        dx[i - period + 1] = 100.0 * abs(pdi - mdi) / s if s > 0 else 0.0
    value = dx[:period].mean()
    out[2 * period - 1] = value
    for j in range(period, dx.size):
        value += (dx[j] - value) / period
        out[j + period] = value
    return out


def adx_on_timeframe(df: pd.DataFrame, timeframe: str, period: int) -> pd.Series:
    """ADX of the candles resampled to ``timeframe`` (e.g. ``5m``), aligned back to ``df``.

    ``df`` has Freqtrade's columns ``date, open, high, low, close``. A higher-timeframe bar
    is used only from its close on (no look-ahead): its value is shifted to the next bar's
    start before being forward-filled onto the base candles.
    """
    if df.empty:
        return pd.Series(np.nan, index=df.index)
    rule = pd.Timedelta(timeframe.replace("m", "min"))
    bars = (df.set_index("date")[["high", "low", "close"]]
            .resample(rule, label="left", closed="left")
            .agg({"high": "max", "low": "min", "close": "last"}).dropna())
    values = pd.Series(adx(bars["high"].to_numpy(), bars["low"].to_numpy(),
                           bars["close"].to_numpy(), period), index=bars.index + rule)
    base_step = df["date"].diff().median() if len(df) > 1 else pd.Timedelta(0)
    # A base candle is stamped at its open; it may use a bar closed by its own close.
    aligned = values.reindex(pd.DatetimeIndex(df["date"] + base_step), method="ffill")
    return pd.Series(aligned.to_numpy(), index=df.index)
