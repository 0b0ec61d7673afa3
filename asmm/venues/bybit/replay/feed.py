"""The Bybit face of a replayed market: Bybit v5 REST answers and WebSocket messages at the
replay's position. No networking here (the aiohttp adapter is
:mod:`asmm.venues.bybit.replay.server`), so every answer can be checked directly.

The market, its clock and the position in its events are venue-independent
(:class:`asmm.venues.hyperliquid.replay.feed.Exchange`, :class:`~.Replay`): the same data
replays as Hyperliquid's ``BTC`` or as Bybit's ``BTCUSDT``, on the same published times.
Prices are served as recorded (USDT per coin, whatever the data's quote currency was);
``tick`` and ``qty_step`` only describe the instrument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from asmm.core.errors import InfoError
from asmm.venues.bybit import protocol as bp
from asmm.venues.hyperliquid.replay.feed import Exchange, Replay
from asmm.venues.hyperliquid.replay.market import BBO, L2, TRADES, candles

DAY_MS, HOUR_MS = 86_400_000, 3_600_000
# Risk-limit tiers served for every symbol: (position value up to, USDT; maintenance
# margin, fraction). Bybit's BTCUSDT starts at 2 M USDT with 0.5 %; initial margin and the
# leverage cap of a tier follow from BybitConfig.max_leverage.
RISK_TIERS = ((2_000_000.0, 0.005), (10_000_000.0, 0.01), (50_000_000.0, 0.025))


class RequestError(InfoError):
    """A Bybit REST request the replay refuses: ``code`` is Bybit's ``retCode``."""

    def __init__(self, message: str, code: int = bp.BAD_PARAM):
        super().__init__(message)
        self.code = int(code)


@dataclass(frozen=True)
class BybitConfig:
    """The instrument as Bybit describes it: ``tick`` (USDT, ``priceFilter.tickSize``),
    ``qty_step`` (coin, ``lotSizeFilter.qtyStep``), ``min_qty``/``max_qty`` (coin, the
    order size limits; ``min_qty`` 0 = one step), ``max_leverage``, and funding every
    ``funding_interval_min`` minutes (Bybit's BTCUSDT: 480)."""

    tick: float = 0.1
    qty_step: float = 0.001
    min_qty: float = 0.0
    max_qty: float = 1190.0
    max_leverage: float = 100.0
    funding_interval_min: int = 480

    def __post_init__(self):
        for name in ("tick", "qty_step", "max_qty", "max_leverage"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be > 0, got {v}")
        if self.min_qty < 0:
            raise ValueError(f"min_qty must be >= 0, got {self.min_qty}")
        if self.funding_interval_min <= 0:
            raise ValueError(f"funding interval must be > 0 minutes, got "
                             f"{self.funding_interval_min}")

    @property
    def order_min(self) -> float:
        return self.min_qty or self.qty_step


class BybitFeed:
    """Bybit v5 over an :class:`Exchange`: ``rest(path, query, wall)`` answers a public
    ``GET /v5/...``; the ``*_message`` methods build the WebSocket messages of an event."""

    def __init__(self, exchange: Exchange, cfg: BybitConfig):
        self.exchange, self.cfg = exchange, cfg
        self.symbols = {bp.symbol_of(c): r for c, r in exchange.replays.items()}

    # ------------------------------------------------------------------ REST

    def rest(self, path: str, query: dict, wall: float) -> dict:
        """The ``result`` of ``GET /v5/<path>`` with ``query`` (strings); raises
        :class:`RequestError` for a request Bybit would refuse or a path not served."""
        handler = getattr(self, "_get_" + path.strip("/").replace("/", "_").replace("-", "_"),
                          None)
        if handler is None:
            raise RequestError(f"path /v5/{path} is not served by this replay", bp.NOT_FOUND)
        return handler(query, wall)

    def now_ms(self, wall: float) -> int:
        return self.exchange.now_ms(wall)

    def _replay(self, query: dict, required: bool = True) -> Replay | None:
        symbol = query.get("symbol")
        if symbol is None and not required:
            return None
        if symbol not in self.symbols:
            raise RequestError(f"params error: symbol invalid ({symbol!r}; this replay "
                               f"serves {', '.join(self.symbols)})")
        return self.symbols[symbol]

    @staticmethod
    def _linear(query: dict) -> bool:
        category = query.get("category")
        if category not in ("linear", "inverse", "spot", "option"):
            raise RequestError(f"params error: category invalid ({category!r})")
        return category == bp.CATEGORY

    @staticmethod
    def _int(query: dict, key: str, default: int | None, lo: int | None = None,
             hi: int | None = None) -> int | None:
        v = query.get(key)
        if v is None or v == "":
            return default
        try:
            n = int(v)
        except ValueError:
            raise RequestError(f"params error: {key} must be an integer, got {v!r}") from None
        if (lo is not None and n < lo) or (hi is not None and n > hi):
            raise RequestError(f"params error: {key} must be in [{lo}, {hi}], got {n}")
        return n

    def _get_market_time(self, query, wall):
        return bp.server_time(self.now_ms(wall))

    def _get_market_instruments_info(self, query, wall):
        category = query.get("category")
        if not self._linear(query) or query.get("status") not in (None, "", "Trading"):
            return bp.instruments(category, [])
        cfg = self.cfg
        items = [bp.instrument(r.market.coin, cfg.tick, cfg.qty_step, cfg.order_min,
                               cfg.max_qty, cfg.max_leverage, cfg.funding_interval_min,
                               r.pub_first_ms())
                 for s, r in self.symbols.items() if query.get("symbol") in (None, s)]
        return bp.instruments(category, items)

    def _get_market_orderbook(self, query, wall):
        self._linear(query)
        r = self._replay(query)
        limit = self._int(query, "limit", bp.DEFAULT_BOOK_LIMIT, 1, bp.MAX_BOOK_LIMIT)
        p, loop = r.state_pos()
        bids, asks = r.market.book(p, limit)
        return bp.orderbook(bp.symbol_of(r.market.coin), _pxsz(bids), _pxsz(asks),
                            self.now_ms(wall), self.update_id(r, p, loop, limit),
                            self.update_id(r, p, loop, limit))

    def _klines(self, query, wall, price_only: bool):
        self._linear(query)
        r = self._replay(query)
        interval = query.get("interval")
        if interval not in bp.INTERVAL_MS:
            raise RequestError(f"params error: interval invalid ({interval!r}; one of "
                               f"{', '.join(bp.INTERVAL_MS)})")
        iv = bp.INTERVAL_MS[interval]
        limit = self._int(query, "limit", bp.DEFAULT_KLINES, 1, bp.MAX_KLINES)
        now = self.now_ms(wall)
        end = min(self._int(query, "end", now), now)
        start = self._int(query, "start", None)
        first = r.pub_first_ms()
        if start is None:  # the latest `limit` candles up to `end`
            lo = (end // iv - limit + 1) * iv
        else:  # `limit` candles from the one containing `start`
            lo = (start // iv) * iv
            end = min(end, lo + limit * iv - 1)
        lo = max(lo, (first // iv) * iv)
        if lo > end:
            return bp.klines(bp.symbol_of(r.market.coin), [])
        t, px, sz, prev = r.published_trades(max(lo, first), end)
        rows = candles(t, px, sz, iv, max(lo, first), end, prev)
        out = []
        for t0, o, h, low, c, v, _ in reversed(rows):
            if price_only:
                out.append(bp.price_kline_row(t0, o, h, low, c))
            else:
                m = (t >= t0) & (t < t0 + iv)
                turnover = float(np.dot(px[m], sz[m]))
                out.append(bp.kline_row(t0, o, h, low, c, round(v, 10), round(turnover, 4)))
        return bp.klines(bp.symbol_of(r.market.coin), out)

    def _get_market_kline(self, query, wall):
        return self._klines(query, wall, price_only=False)

    def _get_market_mark_price_kline(self, query, wall):
        # The replay's mark is the traded price: no separate mark series is recorded.
        return self._klines(query, wall, price_only=True)

    _get_market_index_price_kline = _get_market_mark_price_kline

    def _get_market_tickers(self, query, wall):
        category = query.get("category")
        if not self._linear(query):
            return {"category": category, "list": []}
        one = self._replay(query, required=False)
        rs = [one] if one is not None else list(self.symbols.values())
        now = self.now_ms(wall)
        return {"category": category, "list": [self.ticker(r, *self._state(r), now)
                                                for r in rs]}

    def _get_market_funding_history(self, query, wall):
        self._linear(query)
        r = self._replay(query)
        limit = self._int(query, "limit", bp.MAX_FUNDING_ROWS, 1, bp.MAX_FUNDING_ROWS)
        now = self.now_ms(wall)
        end = min(self._int(query, "endTime", now), now)
        start = max(self._int(query, "startTime", 0), r.pub_first_ms())
        iv = self.cfg.funding_interval_min * 60_000
        t0 = -(-start // iv) * iv
        times = list(range(t0, end + 1, iv))[-limit:]
        symbol = bp.symbol_of(r.market.coin)
        return {"category": bp.CATEGORY, "list": [
            bp.funding_row(symbol, self.funding_rate, t) for t in reversed(times)]}

    def _get_market_risk_limit(self, query, wall):
        self._linear(query)
        one = self._replay(query, required=False)
        rs = [one] if one is not None else list(self.symbols.values())
        rows = []
        for r in rs:
            symbol = bp.symbol_of(r.market.coin)
            for i, (value, mm) in enumerate(RISK_TIERS, start=1):
                lev = min(self.cfg.max_leverage, 1.0 / (2 * mm))
                rows.append(bp.risk_limit(i, symbol, value, mm, 1.0 / lev, lev))
        return {"category": bp.CATEGORY, "list": rows}

    # ------------------------------------------------------------------ state

    @property
    def funding_rate(self) -> float:
        """Funding per interval: the replay's hourly rate times the interval in hours."""
        return self.exchange.cfg.funding_rate * self.cfg.funding_interval_min / 60.0

    @staticmethod
    def update_id(r: Replay, pos: int, loop: int, depth: int) -> int:
        """The REST book's update id ``u`` (and ``seq``; the tickers' ``cs``) after event
        ``pos`` of pass ``loop``, for ``depth`` levels: the number of book events published
        so far (depth 1 changes with the BBO only). The WebSocket orderbook topics number
        their own messages instead (:class:`~asmm.venues.bybit.replay.server.TopicBook`)."""
        m = r.market
        n_bbo = int(m.bid.size)
        u = int(m.bbo_upto[pos]) + 1 + loop * n_bbo
        if depth > 1 and not m.l2_from_bbo:
            u += int(m.l2_upto[pos]) + 1 + loop * int(m.l2_t.size)
        return max(u, 1)

    @staticmethod
    def _state(r: Replay) -> tuple[int, bool]:
        """``(event index of the state, whether any event was published)``."""
        return r.state_pos()[0], r.sent_any

    def ticker(self, r: Replay, p: int, published: bool, now: int) -> dict:
        """The ticker after event ``p`` (``published``: that event was sent, so its trades
        count): mark = index = mid, last = the last trade published (else the mid), 24 h
        figures from the trades published in the 24 h before; ``now`` (ms) for the next
        funding time."""
        m = r.market
        bid, bsz, ask, asz = m.top(p)
        mid = 0.5 * (bid + ask)
        t = int(m.ev_t[p])
        hi = int(m.fills_upto[p]) if published else 0
        lo = int(np.searchsorted(m.tr_t[:hi], t - DAY_MS, side="right"))
        px, sz = m.tr_px[lo:hi], m.tr_sz[lo:hi]
        last = float(m.tr_px[hi - 1]) if hi else mid
        prev24 = m.mid(max(m.position_at(t - DAY_MS), 0))
        prev1 = m.mid(max(m.position_at(t - HOUR_MS), 0))
        iv = self.cfg.funding_interval_min * 60_000
        return bp.ticker(bp.symbol_of(m.coin), last, mid, (bid, bsz), (ask, asz), prev24,
                         float(px.max()) if px.size else mid,
                         float(px.min()) if px.size else mid, prev1,
                         round(float(sz.sum()), 10), float(np.dot(px, sz)),
                         self.exchange.cfg.open_interest, self.funding_rate,
                         (now // iv + 1) * iv)

    # ------------------------------------------------------------------ WebSocket

    def topics_of(self, r: Replay, pos: int) -> tuple[str, ...]:
        """Topic kinds event ``pos`` updates: ``publicTrade`` and ``kline`` for trades;
        ``orderbook`` (every depth, ``orderbook.1`` only on the BBO) and ``tickers`` for
        book events."""
        kind = int(r.market.ev_kind[pos])
        if kind == TRADES:
            return ("publicTrade", "kline")
        if kind == BBO:
            return ("orderbook.1", "orderbook", "tickers")
        assert kind == L2
        return () if r.market.l2_from_bbo else ("orderbook",)

    def trades_message(self, r: Replay, pos: int) -> tuple[dict, int]:
        """``(publicTrade message, number of fills)`` of trades event ``pos``."""
        m = r.market
        s = m.fills(int(m.ev_idx[pos]))
        t = r.pub_time(pos)
        symbol = bp.symbol_of(m.coin)
        prev = float(m.tr_px[s.start - 1]) if s.start > 0 else float(m.tr_px[s.start])
        ids = (m.tr_id[s] + r.loop * m.tid_span).tolist()
        direction, rows = "ZeroPlusTick", []
        for k, (px, sz, side) in enumerate(zip(m.tr_px[s].tolist(), m.tr_sz[s].tolist(),
                                              m.tr_side[s].tolist(), strict=True)):
            direction = bp.tick_direction(px, prev, direction)
            prev = px
            seq = s.start + k + 1 + r.loop * int(m.tr_t.size)
            rows.append(bp.trade_row(symbol, t, px, sz, side, str(int(ids[k])), direction,
                                     seq))
        return bp.trades_message(symbol, t, rows), len(rows)

    def book_at(self, r: Replay, pos: int, depth: int) -> tuple[list, list]:
        """Bids and asks ``[(px, sz), ...]`` best first, to ``depth`` levels, after event
        ``pos``."""
        bids, asks = r.market.book(pos, depth)
        return _pxsz(bids), _pxsz(asks)

    def kline_message(self, r: Replay, pos: int, interval: str) -> dict:
        """``kline.{interval}``'s update after trades event ``pos``: the candle containing
        it, from the trades of the current pass published so far."""
        iv = bp.INTERVAL_MS[interval]
        open_ms, o, h, low, c, v, _ = r.candle_at(pos, iv)
        m = r.market
        hi = int(m.grp_hi[int(m.ev_idx[pos])])
        lo = int(np.searchsorted(m.tr_t[:hi], open_ms - r.offset_ms(), side="left"))
        turnover = float(np.dot(m.tr_px[lo:hi], m.tr_sz[lo:hi]))
        return bp.kline_message(interval, bp.symbol_of(m.coin), r.pub_time(pos), open_ms,
                                o, h, low, c, v, turnover)

    def ticker_message(self, r: Replay, pos: int) -> dict:
        """``tickers``' update after book event ``pos``."""
        t = r.pub_time(pos)
        return bp.ticker_message(bp.symbol_of(r.market.coin), t, self.ticker(r, pos, True, t),
                                 self.update_id(r, pos, r.loop, 1))


def _pxsz(levels) -> list[tuple[float, float]]:
    return [(px, sz) for px, sz, _ in levels]
