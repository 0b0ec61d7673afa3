"""Bybit v5 message shapes for USDT linear perpetuals, in one place: built by the replay
exchange (:mod:`asmm.venues.bybit.replay`). Coin ``BTC`` is symbol ``BTCUSDT``
(:mod:`asmm.venues.bybit.symbols`, the collector's mapping too).

Shapes follow Bybit's v5 public API as ccxt 4.5's ``bybit`` client (REST) and ``ccxt.pro``
(WebSocket) read it. Units, everywhere below:

- prices (``p``, ``b[i][0]``, ``a[i][0]``, ``*Price``, ``tickSize``): USDT per coin, as decimal
  strings;
- sizes (``v``, ``b[i][1]``, ``a[i][1]``, ``volume``, ``qtyStep``, ``minOrderQty``,
  ``openInterest``, ``volume24h``): coin (BTC for BTCUSDT), decimal strings;
- notionals (``turnover``, ``turnover24h``, ``openInterestValue``, ``riskLimitValue``): USDT;
- times (``time``, ``ts``, ``T``, ``cts``, ``start``, ``end``, kline row [0],
  ``fundingRateTimestamp``, ``nextFundingTime``): epoch milliseconds (the REST ones as
  strings where Bybit sends strings); ``fundingInterval``: minutes;
- rates (``fundingRate``): fraction per funding interval (0.0001 = 1 bp per 8 h);
  ``maintenanceMargin``, ``initialMargin``: fraction of notional; ``price24hPcnt``: fraction.

REST (``GET /v5/...``): every answer is the envelope
``{"retCode":0,"retMsg":"OK","result":{...},"retExtInfo":{},"time":ms}``; a refusal has a
non-zero ``retCode`` (10001 = bad parameter) and ``result`` ``{}``.

WebSocket (``/v5/public/linear``): client ``{"op":"subscribe","req_id":ID,"args":[topics]}``
→ ``{"success":true,"ret_msg":"","conn_id":C,"req_id":ID,"op":"subscribe"}``; client
``{"op":"ping","req_id":ID}`` → ``{"success":true,"ret_msg":"pong","conn_id":C,"req_id":ID,
"op":"ping"}``. Data messages ``{"topic":T,"type":"snapshot"|"delta","ts":ms,"data":...}``
with topics ``orderbook.{1|50|200|500}.SYMBOL`` (depth 1: snapshots only; deeper: a snapshot,
then deltas where a size ``"0"`` removes the level), ``publicTrade.SYMBOL``,
``tickers.SYMBOL`` and ``kline.{interval}.SYMBOL``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from asmm.venues.bybit.symbols import QUOTE, coin_of, symbol_of
from asmm.venues.hyperliquid.protocol import dumps, fmt_num

__all__ = ["QUOTE", "coin_of", "dumps", "fmt_num", "symbol_of"]

CATEGORY = "linear"
# WebSocket orderbook depths Bybit serves for linear contracts.
BOOK_DEPTHS = (1, 50, 200, 500)
# Bybit kline interval names (REST ``interval``, WS ``kline.{interval}.SYMBOL``) -> ms.
INTERVAL_MS = {
    "1": 60_000, "3": 180_000, "5": 300_000, "15": 900_000, "30": 1_800_000,
    "60": 3_600_000, "120": 7_200_000, "240": 14_400_000, "360": 21_600_000,
    "720": 43_200_000, "D": 86_400_000, "W": 604_800_000,
}
MAX_KLINES = 1000         # rows per kline answer (Bybit: limit 1..1000, default 200)
DEFAULT_KLINES = 200
MAX_FUNDING_ROWS = 200    # rows per funding/history answer (limit 1..200)
MAX_BOOK_LIMIT = 500      # REST orderbook limit for linear (1..500, default 25)
DEFAULT_BOOK_LIMIT = 25

BAD_PARAM = 10001         # retCode of a request with a missing or invalid parameter
NOT_FOUND = 10404         # retCode this replay gives a path it does not serve

Level = tuple[float, float]  # (price USDT, size coin)


# --------------------------------------------------------------------------- REST


def envelope(result: dict, time_ms: int) -> dict:
    """A successful REST answer around ``result`` (``time``: server time, ms)."""
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
            "time": int(time_ms)}


def error(code: int, message: str, time_ms: int) -> dict:
    """A refused REST request: ``retCode`` non-zero, ``retMsg`` says why."""
    return {"retCode": int(code), "retMsg": message, "result": {}, "retExtInfo": {},
            "time": int(time_ms)}


def server_time(time_ms: int) -> dict:
    """``/v5/market/time``'s result: seconds and nanoseconds, as strings."""
    return {"timeSecond": str(int(time_ms) // 1000), "timeNano": str(int(time_ms) * 1_000_000)}


def instrument(coin: str, tick: float, qty_step: float, min_qty: float, max_qty: float,
               max_leverage: float, funding_interval_min: int, launch_ms: int) -> dict:
    """One linear perpetual of ``/v5/market/instruments-info``: ``tick`` (USDT) is ccxt's
    price precision, ``qty_step`` (coin) its amount precision, ``min_qty``/``max_qty`` (coin)
    its amount limits, ``max_leverage`` its leverage limit; funding every
    ``funding_interval_min`` minutes."""
    return {
        "symbol": symbol_of(coin), "contractType": "LinearPerpetual", "status": "Trading",
        "baseCoin": coin, "quoteCoin": QUOTE, "settleCoin": QUOTE,
        "launchTime": str(int(launch_ms)), "deliveryTime": "0", "deliveryFeeRate": "",
        "priceScale": str(_decimals(tick)),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": fmt_num(max_leverage),
                           "leverageStep": "0.01"},
        "priceFilter": {"minPrice": fmt_num(tick), "maxPrice": fmt_num(tick * 10_000_000),
                        "tickSize": fmt_num(tick)},
        "lotSizeFilter": {"maxOrderQty": fmt_num(max_qty), "minOrderQty": fmt_num(min_qty),
                          "qtyStep": fmt_num(qty_step), "postOnlyMaxOrderQty": fmt_num(max_qty),
                          "maxMktOrderQty": fmt_num(max_qty), "minNotionalValue": "5"},
        "unifiedMarginTrade": True, "fundingInterval": int(funding_interval_min),
        "copyTrading": "both", "upperFundingRate": "0.005", "lowerFundingRate": "-0.005",
        "isPreListing": False, "preListingInfo": None,
    }


def instruments(category: str, items: list[dict]) -> dict:
    """``/v5/market/instruments-info``'s result (one page: no cursor)."""
    return {"category": category, "list": items, "nextPageCursor": ""}


def book_levels(levels: Iterable[Level]) -> list[list[str]]:
    """``[[price, size], ...]`` as Bybit sends a book side (best first)."""
    return [[fmt_num(px), fmt_num(sz)] for px, sz in levels]


def orderbook(symbol: str, bids: Sequence[Level], asks: Sequence[Level], ts_ms: int,
              update_id: int, seq: int) -> dict:
    """A book (REST result, or a WS message's ``data``): ``b`` bids best (highest) first,
    ``a`` asks best (lowest) first; ``ts`` (REST) the book's time; ``u`` update id; ``seq``
    the matching engine's sequence; ``cts`` the matching engine's time (ms)."""
    return {"s": symbol, "b": book_levels(bids), "a": book_levels(asks), "ts": int(ts_ms),
            "u": int(update_id), "seq": int(seq), "cts": int(ts_ms)}


def kline_row(open_ms: int, o: float, h: float, low: float, c: float, volume: float,
              turnover: float) -> list[str]:
    """One ``/v5/market/kline`` row: ``[start ms, open, high, low, close, volume (coin),
    turnover (USDT)]``, all strings (rows come newest first)."""
    return [str(int(open_ms)), fmt_num(o), fmt_num(h), fmt_num(low), fmt_num(c),
            fmt_num(volume), fmt_num(turnover)]


def price_kline_row(open_ms: int, o: float, h: float, low: float, c: float) -> list[str]:
    """One ``/v5/market/mark-price-kline`` (or index) row: ``[start ms, open, high, low,
    close]``."""
    return [str(int(open_ms)), fmt_num(o), fmt_num(h), fmt_num(low), fmt_num(c)]


def klines(symbol: str, rows: list[list[str]]) -> dict:
    return {"symbol": symbol, "category": CATEGORY, "list": rows}


def ticker(symbol: str, last: float, mark: float, bid: Level, ask: Level, prev_24h: float,
           high_24h: float, low_24h: float, prev_1h: float, volume_24h: float,
           turnover_24h: float, open_interest: float, funding_rate: float,
           next_funding_ms: int) -> dict:
    """A linear ticker (``/v5/market/tickers`` row, WS ``tickers`` data): prices USDT,
    ``volume24h``/``openInterest`` coin, ``turnover24h``/``openInterestValue`` USDT,
    ``fundingRate`` per funding interval, ``nextFundingTime`` ms (string)."""
    pcnt = (last - prev_24h) / prev_24h if prev_24h else 0.0
    return {
        "symbol": symbol, "tickDirection": "ZeroPlusTick", "lastPrice": fmt_num(last),
        "indexPrice": fmt_num(mark), "markPrice": fmt_num(mark),
        "prevPrice24h": fmt_num(prev_24h), "price24hPcnt": fmt_num(round(pcnt, 6)),
        "highPrice24h": fmt_num(high_24h), "lowPrice24h": fmt_num(low_24h),
        "prevPrice1h": fmt_num(prev_1h), "openInterest": fmt_num(open_interest),
        "openInterestValue": fmt_num(round(open_interest * mark, 2)),
        "turnover24h": fmt_num(round(turnover_24h, 4)), "volume24h": fmt_num(volume_24h),
        "fundingRate": fmt_num(funding_rate), "nextFundingTime": str(int(next_funding_ms)),
        "predictedDeliveryPrice": "", "basisRate": "", "deliveryFeeRate": "",
        "deliveryTime": "0", "bid1Price": fmt_num(bid[0]), "bid1Size": fmt_num(bid[1]),
        "ask1Price": fmt_num(ask[0]), "ask1Size": fmt_num(ask[1]),
    }


def funding_row(symbol: str, rate: float, time_ms: int) -> dict:
    """One ``/v5/market/funding/history`` row: the rate (per interval) settled at
    ``time_ms``."""
    return {"symbol": symbol, "fundingRate": fmt_num(rate),
            "fundingRateTimestamp": str(int(time_ms))}


def risk_limit(tier: int, symbol: str, limit_value: float, maintenance: float,
               initial: float, max_leverage: float) -> dict:
    """One risk-limit tier (``/v5/market/risk-limit``): positions up to ``limit_value``
    USDT need ``initial`` (fraction) margin and keep ``maintenance`` (fraction)."""
    return {"id": int(tier), "symbol": symbol, "riskLimitValue": fmt_num(limit_value),
            "maintenanceMargin": fmt_num(maintenance), "initialMargin": fmt_num(initial),
            "isLowestRisk": 1 if tier == 1 else 0, "maxLeverage": fmt_num(max_leverage),
            "mmDeduction": ""}


# --------------------------------------------------------------------------- WebSocket


def op_response(op: str, req_id: str, conn_id: str, success: bool = True,
                ret_msg: str = "") -> dict:
    """The answer to a client ``op`` (``subscribe``, ``unsubscribe``; ``ping`` answers with
    ``ret_msg`` ``"pong"``)."""
    return {"success": bool(success), "ret_msg": ret_msg, "conn_id": conn_id,
            "req_id": req_id, "op": op}


def pong(req_id: str, conn_id: str) -> dict:
    return op_response("ping", req_id, conn_id, True, "pong")


def book_message(depth: int, symbol: str, kind: str, ts_ms: int, bids: Sequence[Level],
                 asks: Sequence[Level], update_id: int, seq: int) -> dict:
    """``orderbook.{depth}.SYMBOL``: ``kind`` ``snapshot`` (the whole book to ``depth``) or
    ``delta`` (changed levels; size 0 = removed)."""
    data = orderbook(symbol, bids, asks, ts_ms, update_id, seq)
    cts = data.pop("cts")
    del data["ts"]
    return {"topic": f"orderbook.{depth}.{symbol}", "type": kind, "ts": int(ts_ms),
            "data": data, "cts": cts}


def trade_row(symbol: str, time_ms: int, px: float, sz: float, side: int, trade_id: str,
              tick_direction: str, seq: int) -> dict:
    """One ``publicTrade`` row: ``S`` the aggressor (``Buy``/``Sell``), ``p`` price, ``v``
    size, ``T`` trade time, ``i`` trade id (a UUID on Bybit; here the data's trade id as a
    decimal string), ``L`` tick direction, ``BT`` block trade, ``seq`` cross sequence."""
    return {"T": int(time_ms), "s": symbol, "S": "Buy" if side > 0 else "Sell",
            "v": fmt_num(sz), "p": fmt_num(px), "L": tick_direction, "i": trade_id,
            "BT": False, "RPI": False, "seq": int(seq)}


def trades_message(symbol: str, ts_ms: int, rows: list[dict]) -> dict:
    return {"topic": f"publicTrade.{symbol}", "type": "snapshot", "ts": int(ts_ms),
            "data": rows}


def ticker_message(symbol: str, ts_ms: int, data: dict, seq: int) -> dict:
    return {"topic": f"tickers.{symbol}", "type": "snapshot", "data": data, "cs": int(seq),
            "ts": int(ts_ms)}


def kline_message(interval: str, symbol: str, ts_ms: int, open_ms: int, o: float, h: float,
                  low: float, c: float, volume: float, turnover: float) -> dict:
    """``kline.{interval}.SYMBOL``: the candle being built (``confirm`` false), ``start`` and
    ``end`` its first and last ms, ``volume`` coin, ``turnover`` USDT."""
    iv = INTERVAL_MS[interval]
    return {"topic": f"kline.{interval}.{symbol}", "type": "snapshot", "ts": int(ts_ms),
            "data": [{"start": int(open_ms), "end": int(open_ms) + iv - 1,
                      "interval": interval, "open": fmt_num(o), "close": fmt_num(c),
                      "high": fmt_num(h), "low": fmt_num(low), "volume": fmt_num(volume),
                      "turnover": fmt_num(round(turnover, 4)), "confirm": False,
                      "timestamp": int(ts_ms)}]}


def tick_direction(px: float, prev_px: float, prev_dir: str = "ZeroPlusTick") -> str:
    """Bybit's ``L``: ``PlusTick``/``MinusTick`` when the price moved up/down from the
    previous trade, else ``ZeroPlusTick``/``ZeroMinusTick`` after the last move."""
    if px > prev_px:
        return "PlusTick"
    if px < prev_px:
        return "MinusTick"
    return "ZeroMinusTick" if prev_dir in ("MinusTick", "ZeroMinusTick") else "ZeroPlusTick"


def _decimals(step: float) -> int:
    s = fmt_num(step)
    return len(s.split(".", 1)[1].rstrip("0")) if "." in s else 0
