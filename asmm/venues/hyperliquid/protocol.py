"""Hyperliquid message shapes, in one place: built by the replay exchange, parsed by the collector.

Shapes follow Hyperliquid's public API as used by hyperliquid-python-sdk 0.24.0 and ccxt 4.5
(see ``/work/shared/notes/hyperliquid-freqtrade-facts.md``). Prices and sizes travel as
decimal strings; times are exchange epoch milliseconds (int).

WebSocket (``/ws``)::

    bbo      {"channel":"bbo","data":{"coin":"BTC","time":ms,"bbo":[level|null, level|null]}}
    trades   {"channel":"trades","data":[{"coin","side":"B"|"A","px","sz","time","hash","tid",
                                           "users"}, ...]}   B = buy aggressor, A = sell aggressor
    l2Book   {"channel":"l2Book","data":{"coin":"BTC","time":ms,"levels":[[bids], [asks]]}}
    candle   {"channel":"candle","data":{"t","T","s","i","o","c","h","l","v","n"}}
    level    {"px":"100706.0","sz":"0.5","n":1}

Parsers return rows in the collector's column order (:mod:`asmm.data.files`):
``PRICES_COLUMNS`` (one row per present BBO side), ``TRADES_COLUMNS`` (one row per fill) and
``orderbook_columns(depth)`` (one row per snapshot, missing levels ``None``). A message that
is not what it claims to be raises :class:`ProtocolError`; nothing is half-parsed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from asmm.core.errors import ProtocolError
from asmm.data import files
from asmm.venues.fields import json_object, positive_int, positive_number

CONNECTED_TEXT = "Websocket connection established."
DATA_CHANNELS = ("bbo", "trades", "l2Book", "candle")

# Candle intervals Hyperliquid serves with a fixed length (1M is calendar-based: not served).
INTERVAL_MS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "8h": 28_800_000,
    "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
}
MAX_CANDLES = 5000  # Hyperliquid answers at most the latest 5000 candles of a snapshot
ZERO_ADDRESS = "0x" + "0" * 40

Level = tuple[float, float, int]  # (px, sz, number of orders)


# --------------------------------------------------------------------------- formatting


def fmt_num(x: float) -> str:
    """Shortest decimal string that parses back to the same float, never in exponent form.

    ``float(fmt_num(x)) == x`` for every finite x, so a value survives the wire exactly.
    """
    s = repr(float(x))
    if "e" in s:
        s = np.format_float_positional(float(x), unique=True, trim="0")
    return s


def dumps(msg: Any) -> str:
    """Compact JSON, as the exchange sends it."""
    return json.dumps(msg, separators=(",", ":"))


# --------------------------------------------------------------------------- WS builders


def level(px: float, sz: float, n: int = 1) -> dict:
    return {"px": fmt_num(px), "sz": fmt_num(sz), "n": int(n)}


def bbo_msg(coin: str, time_ms: int, bid: Level | None, ask: Level | None) -> dict:
    """A ``bbo`` message; a side without a level is ``null`` as on Hyperliquid."""
    return {"channel": "bbo", "data": {
        "coin": coin, "time": int(time_ms),
        "bbo": [level(*bid) if bid else None, level(*ask) if ask else None]}}


def trade_hash(tid: int) -> str:
    """A stable, well-formed transaction hash for a replayed fill (0x + 64 hex)."""
    return f"0x{int(tid) & (2**256 - 1):064x}"


def trades_msg(coin: str, fills: Iterable[tuple[float, float, int, int, int]]) -> dict:
    """A ``trades`` message from ``(px, sz, side, time_ms, tid)`` fills; side +1 is a buy
    aggressor (``"B"``), -1 a sell aggressor (``"A"``)."""
    data = [{"coin": coin, "side": "B" if side > 0 else "A", "px": fmt_num(px),
             "sz": fmt_num(sz), "time": int(t), "hash": trade_hash(tid), "tid": int(tid),
             "users": [ZERO_ADDRESS, ZERO_ADDRESS]}
            for px, sz, side, t, tid in fills]
    return {"channel": "trades", "data": data}


def l2book_data(coin: str, time_ms: int, bids: Iterable[Level], asks: Iterable[Level]) -> dict:
    """The l2Book body; also the ``POST /info {"type":"l2Book"}`` answer. Bids best first
    (descending), asks best first (ascending)."""
    return {"coin": coin, "time": int(time_ms),
            "levels": [[level(*b) for b in bids], [level(*a) for a in asks]]}


def l2book_msg(coin: str, time_ms: int, bids: Iterable[Level], asks: Iterable[Level]) -> dict:
    return {"channel": "l2Book", "data": l2book_data(coin, time_ms, bids, asks)}


def candle(coin: str, interval: str, t_open: int, o: float, h: float, low: float, c: float,
           v: float, n: int) -> dict:
    """One candle as in ``candleSnapshot`` answers and ``candle`` messages; ``T`` is the last
    millisecond of the interval."""
    return {"t": int(t_open), "T": int(t_open) + INTERVAL_MS[interval] - 1, "s": coin,
            "i": interval, "o": fmt_num(o), "c": fmt_num(c), "h": fmt_num(h),
            "l": fmt_num(low), "v": fmt_num(v), "n": int(n)}


def candle_msg(c: dict) -> dict:
    return {"channel": "candle", "data": c}


# Text builders for the replay exchange's hot path: the same JSON as ``dumps(<dict builder>)``
# (a test holds them equal), written directly because building dicts first halves the rate.


def _level_text(px: float, sz: float, n: int) -> str:
    return f'{{"px":"{fmt_num(px)}","sz":"{fmt_num(sz)}","n":{int(n)}}}'


def bbo_text(coin: str, time_ms: int, bid: Level | None, ask: Level | None) -> str:
    b = _level_text(*bid) if bid else "null"
    a = _level_text(*ask) if ask else "null"
    return (f'{{"channel":"bbo","data":{{"coin":{json.dumps(coin)},"time":{int(time_ms)},'
            f'"bbo":[{b},{a}]}}}}')


def trades_text(coin: str, fills: Iterable[tuple[float, float, int, int, int]]) -> str:
    c = json.dumps(coin)
    users = f'["{ZERO_ADDRESS}","{ZERO_ADDRESS}"]'
    body = ",".join(
        f'{{"coin":{c},"side":"{"B" if side > 0 else "A"}","px":"{fmt_num(px)}",'
        f'"sz":"{fmt_num(sz)}","time":{int(t)},"hash":"{trade_hash(tid)}","tid":{int(tid)},'
        f'"users":{users}}}'
        for px, sz, side, t, tid in fills)
    return f'{{"channel":"trades","data":[{body}]}}'


def l2book_text(coin: str, time_ms: int, bids: Iterable[Level], asks: Iterable[Level]) -> str:
    b = ",".join(_level_text(*x) for x in bids)
    a = ",".join(_level_text(*x) for x in asks)
    return (f'{{"channel":"l2Book","data":{{"coin":{json.dumps(coin)},"time":{int(time_ms)},'
            f'"levels":[[{b}],[{a}]]}}}}')


def subscription_response(subscription: dict, method: str = "subscribe") -> dict:
    return {"channel": "subscriptionResponse",
            "data": {"method": method, "subscription": subscription}}


def pong() -> dict:
    return {"channel": "pong"}


def ws_error(text: str) -> dict:
    return {"channel": "error", "data": text}


# --------------------------------------------------------------------------- /info answers


def meta(coins: Sequence[tuple[str, int, int]]) -> dict:
    """``meta``: ``coins`` as ``(name, szDecimals, maxLeverage)``."""
    return {"universe": [{"name": name, "szDecimals": int(szd), "maxLeverage": int(lev),
                          "onlyIsolated": False} for name, szd, lev in coins]}


def asset_ctx(mark: float, mid: float, bid: float, ask: float, funding: float,
              prev_day: float, open_interest: float, day_volume: float) -> dict:
    """A perp asset context. ccxt reads the price tick from ``markPx`` (5 significant
    figures) and the ticker's bid/ask from ``impactPxs``."""
    return {"markPx": fmt_num(mark), "midPx": fmt_num(mid),
            "impactPxs": [fmt_num(bid), fmt_num(ask)], "funding": fmt_num(funding),
            "oraclePx": fmt_num(mark), "openInterest": fmt_num(open_interest),
            "dayNtlVlm": fmt_num(day_volume), "premium": "0.0", "prevDayPx": fmt_num(prev_day),
            "dayBaseVlm": fmt_num(day_volume / mark if mark > 0 else 0.0)}


def meta_and_asset_ctxs(meta_: dict, ctxs: list[dict]) -> list:
    return [meta_, ctxs]


USDC_TOKEN = {"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
              "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "isCanonical": True,
              "evmContract": None, "fullName": None}


def spot_meta() -> dict:
    """No spot markets: only the USDC collateral token."""
    return {"tokens": [dict(USDC_TOKEN)], "universe": []}


def spot_meta_and_asset_ctxs() -> list:
    return [spot_meta(), []]


def perp_dexs() -> list:
    # The first entry is the original dex; ccxt needs a list here, null crashes it.
    return [None]


def exchange_status(time_ms: int) -> dict:
    return {"specialStatuses": None, "time": int(time_ms)}


def all_mids(mids: dict[str, float]) -> dict:
    return {coin: fmt_num(m) for coin, m in mids.items()}


def funding_history(coin: str, times_ms: Iterable[int], rate: float) -> list:
    return [{"coin": coin, "fundingRate": fmt_num(rate), "premium": "0.0", "time": int(t)}
            for t in times_ms]


def clearinghouse_state(time_ms: int, account_value: float) -> dict:
    """An account with no positions."""
    summary = {"accountValue": fmt_num(account_value), "totalMarginUsed": "0.0",
               "totalNtlPos": "0.0", "totalRawUsd": fmt_num(account_value)}
    return {"marginSummary": dict(summary), "crossMarginSummary": dict(summary),
            "crossMaintenanceMarginUsed": "0.0", "assetPositions": [],
            "withdrawable": fmt_num(account_value), "time": int(time_ms)}


def info_error(msg: str, code: int = 400) -> dict:
    """HTTP 400 body; the SDK reads ``code`` and ``msg``."""
    return {"code": code, "msg": msg, "data": None}


# --------------------------------------------------------------------------- parsers


def parse_message(text: str | bytes) -> dict:
    """Decode one WebSocket text frame into a message with a ``channel``."""
    msg = json_object(text)
    if not isinstance(msg.get("channel"), str):
        raise ProtocolError(f"no channel in message: {str(text)[:80]!r}")
    return msg


def _data(msg: Any, channel: str) -> Any:
    if not isinstance(msg, dict) or msg.get("channel") != channel or "data" not in msg:
        got = msg.get("channel") if isinstance(msg, dict) else type(msg).__name__
        raise ProtocolError(f"expected a {channel!r} message, got {got!r}")
    return msg["data"]


def _coin(d: Any) -> str:
    coin = d.get("coin") if isinstance(d, dict) else None
    if not isinstance(coin, str) or not coin:
        raise ProtocolError(f"missing coin in {str(d)[:80]}")
    return coin


def _level(lv: Any, what: str) -> tuple[float, float]:
    if not isinstance(lv, dict):
        raise ProtocolError(f"{what} is not a level object: {lv!r}")
    return positive_number(lv.get("px"), f"{what} px"), positive_number(lv.get("sz"), f"{what} sz")


def parse_bbo(msg: dict, received: float | None = None) -> list[tuple]:
    """``bbo`` message -> ``prices`` rows ``(timestamp, price, size, side, exchange_timestamp)``.

    One row per side present (bid first); ``timestamp`` is ``received`` (epoch s, default
    now). A ``null`` side yields no row; a bid at or above the ask is kept (it happened;
    readers flag it).
    """
    d = _data(msg, "bbo")
    _coin(d)
    t = positive_int(d.get("time"), "time")
    sides = d.get("bbo")
    if not isinstance(sides, list) or len(sides) != 2:
        raise ProtocolError(f"bbo must be a [bid, ask] pair, got {sides!r}")
    ts = time.time() if received is None else float(received)
    rows = []
    for lv, side in zip(sides, ("bid", "ask"), strict=True):
        if lv is not None:
            px, sz = _level(lv, f"bbo {side}")
            rows.append((ts, px, sz, side, t))
    return rows


def parse_trades(msg: dict, received: float | None = None) -> list[tuple]:
    """``trades`` message -> ``trades`` rows
    ``(timestamp, price, size, side, trade_id, exchange_timestamp)``, side ``buy``/``sell``
    (the aggressor). All fills are checked before any row is returned."""
    d = _data(msg, "trades")
    if not isinstance(d, list):
        raise ProtocolError(f"trades data must be a list, got {type(d).__name__}")
    ts = time.time() if received is None else float(received)
    rows = []
    for i, f in enumerate(d):
        if not isinstance(f, dict):
            raise ProtocolError(f"trade {i} is not an object: {f!r}")
        _coin(f)
        side = {"B": "buy", "A": "sell"}.get(f.get("side"))
        if side is None:
            raise ProtocolError(f"trade {i}: side must be 'B' or 'A', got {f.get('side')!r}")
        tid = f.get("tid")
        if isinstance(tid, bool) or not isinstance(tid, int):
            raise ProtocolError(f"trade {i}: tid must be an integer, got {tid!r}")
        rows.append((ts, positive_number(f.get("px"), f"trade {i} px"),
                     positive_number(f.get("sz"), f"trade {i} sz"), side, tid,
                     positive_int(f.get("time"), f"trade {i} time")))
    return rows


def parse_l2book(msg: dict, depth: int, received: float | None = None,
                 sequence: int = 0) -> tuple:
    """``l2Book`` message -> one ``orderbooks`` row
    ``(timestamp, sequence, exchange_timestamp, bid_price_0, bid_size_0, ask_price_0,
    ask_size_0, ...)`` for ``depth`` levels; levels beyond the book are ``None`` (an empty
    CSV field, NaN when read). Hyperliquid has no book sequence number: ``sequence`` is the
    collector's own counter."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    d = _data(msg, "l2Book")
    _coin(d)
    t = positive_int(d.get("time"), "time")
    levels = d.get("levels") if isinstance(d, dict) else None
    if not isinstance(levels, list) or len(levels) != 2 or not all(
            isinstance(side, list) for side in levels):
        raise ProtocolError(f"l2Book levels must be [[bids], [asks]], got {str(levels)[:80]}")
    bids = [_level(lv, f"l2Book bid {i}") for i, lv in enumerate(levels[0][:depth])]
    asks = [_level(lv, f"l2Book ask {i}") for i, lv in enumerate(levels[1][:depth])]
    ts = time.time() if received is None else float(received)
    return files.orderbook_row(ts, sequence, t, bids, asks, depth)


def parse_candle(msg: dict) -> dict:
    """``candle`` message -> ``{"t", "T", "coin", "interval", "o", "h", "l", "c", "v", "n"}``
    with floats for prices and volume."""
    d = _data(msg, "candle")
    if not isinstance(d, dict) or d.get("i") not in INTERVAL_MS:
        raise ProtocolError(f"candle without a known interval: {str(d)[:80]}")
    try:
        out = {"t": positive_int(d.get("t"), "candle t"),
               "T": positive_int(d.get("T"), "candle T"),
               "coin": str(d["s"]), "interval": d["i"],
               **{k: positive_number(d.get(k), f"candle {k}") for k in ("o", "h", "l", "c")},
               "v": float(d["v"]), "n": int(d["n"])}
    except (KeyError, TypeError, ValueError) as e:
        raise ProtocolError(f"malformed candle {str(d)[:80]}: {e}") from None
    return out
