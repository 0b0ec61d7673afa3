"""The replay exchange's state machine: a clock, a position in the market's event timeline,
the WebSocket messages of each event and the ``POST /info`` answers at the current position.

No networking here (the aiohttp adapter is :mod:`asmm.venues.hyperliquid.replay.server`), so
every answer can be
checked directly.

Times: *data* time is the exchange time recorded in the files; *published* time is what the
replay exchange says, ``data + shift_ms + loop * span_ms``: ``--start-at now`` shifts the data
so its first event is published at the moment streaming starts, and each ``--loop`` pass
moves on by the data's span so published times keep increasing.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass

import numpy as np

from asmm.core.errors import InfoError
from asmm.venues.hyperliquid import protocol as hp
from asmm.venues.hyperliquid.replay.market import BBO, L2, LOOP_PAUSE_MS, TRADES, Market, candles

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
FUNDING_INTERVAL_MS = 3_600_000  # Hyperliquid pays funding hourly
MAX_FUNDING_ROWS = 500           # rows per fundingHistory answer, as on Hyperliquid


@dataclass(frozen=True)
class ReplayConfig:
    """How to replay. ``speed`` is published seconds per wall second; 0 means unpaced (as
    fast as subscribers read). ``start_at`` is ``"now"`` or ``"data"``."""

    speed: float = 1.0
    start_at: str = "now"
    loop: bool = False
    sz_decimals: int = 5
    max_leverage: int = 40
    funding_rate: float = 0.0        # per hour, fraction
    account_value: float = 10_000.0  # USDC of the empty account
    open_interest: float = 1_000.0   # coin
    history_s: float = 0.0           # data seconds already past when streaming starts

    def __post_init__(self):
        if self.history_s < 0 or not math.isfinite(self.history_s):
            raise ValueError(f"history must be >= 0 seconds, got {self.history_s}")
        if self.speed < 0 or not math.isfinite(self.speed):
            raise ValueError(f"speed must be >= 0 (0 = unpaced), got {self.speed}")
        if self.start_at not in ("now", "data"):
            raise ValueError(f"start_at must be 'now' or 'data', got {self.start_at!r}")


class ReplayClock:
    """Published time as a function of wall time (epoch seconds): starts at
    ``pub0`` when started at ``wall0`` and runs ``speed`` times real time."""

    def __init__(self, first_data_ms: int, speed: float, start_at: str, wall: float):
        # The data time that is published as "now" when streaming starts (with --start-at now).
        self.first_data_ms = int(first_data_ms)
        self.speed = float(speed)
        self.start_at = start_at
        self.start(wall)

    def start(self, wall: float) -> None:
        self.wall0 = float(wall)
        self.shift_ms = (round(wall * 1000) - self.first_data_ms) if self.start_at == "now" else 0
        self.pub0 = self.first_data_ms + self.shift_ms

    def pub_now(self, wall: float) -> float:
        return self.pub0 + (wall - self.wall0) * 1000.0 * self.speed

    def wall_at(self, pub_ms: float) -> float:
        return self.wall0 + (pub_ms - self.pub0) / (1000.0 * self.speed)


class Replay:
    """Position in a market's timeline plus the answers at that position.

    ``pos`` is the next event to send, ``loop`` the pass over the data. The market *state*
    (book, candles, volume) is the one after the last event sent; before the first event it
    is the first BBO.
    """

    def __init__(self, market: Market, cfg: ReplayConfig, wall: float,
                 clock: ReplayClock | None = None, span_ms: int | None = None):
        self.market, self.cfg = market, cfg
        if clock is None:
            clock = ReplayClock(_anchor([market], cfg), cfg.speed, cfg.start_at, wall)
        self.clock = clock
        self.span_ms = market.span_ms if span_ms is None else int(span_ms)
        # Events before the anchor are history: part of the state, never streamed.
        self.pos = int(np.searchsorted(market.ev_t, clock.first_data_ms, side="left"))
        self.loop = 0
        self.started = False
        self.finished = self.pos >= market.n_events
        self.sent_any = self.pos > 0
        # Coins replayed on the same clock; unpaced, "now" is the latest event any of them sent.
        self.peers: list[Replay] = [self]

    # ------------------------------------------------------------------ time and position

    @property
    def paced(self) -> bool:
        return self.cfg.speed > 0

    def offset_ms(self, loop: int | None = None) -> int:
        return self.clock.shift_ms + (self.loop if loop is None else loop) * self.span_ms

    def pub_time(self, pos: int | None = None) -> int:
        """Published time of event ``pos`` (default: the next one) in the current loop."""
        return int(self.market.ev_t[self.pos if pos is None else pos]) + self.offset_ms()

    def start(self, wall: float) -> None:
        self.clock.start(wall)
        self.started = True

    def state_pos(self) -> tuple[int, int]:
        """``(event index, loop)`` of the market state: the last event sent."""
        if self.finished:
            return self.market.n_events - 1, self.loop
        if self.pos > 0:
            return self.pos - 1, self.loop
        if self.loop > 0:
            return self.market.n_events - 1, self.loop - 1
        return 0, 0

    def now_ms(self, wall: float) -> int:
        """The replay clock: paced, it runs with wall time once started; unpaced, it is the
        time of the last event sent."""
        if self.paced and self.started:
            return int(self.clock.pub_now(wall))
        return max(peer.state_time() for peer in self.peers)

    def state_time(self) -> int:
        """Published time of the state's event."""
        p, loop = self.state_pos()
        return int(self.market.ev_t[p]) + self.offset_ms(loop)

    def advance(self) -> None:
        self.sent_any = True
        self.pos += 1
        if self.pos >= self.market.n_events:
            if self.cfg.loop:
                self.pos = 0
                self.loop += 1
            else:
                self.pos = self.market.n_events - 1
                self.finished = True

    # ------------------------------------------------------------------ WebSocket messages

    def event_text(self, pos: int) -> tuple[str, str, int]:
        """``(channel, JSON text, number of fills)`` of event ``pos`` in the current loop."""
        m = self.market
        kind, i = int(m.ev_kind[pos]), int(m.ev_idx[pos])
        t = self.pub_time(pos)
        if kind == TRADES:
            s = m.fills(i)
            n = s.stop - s.start
            ids = m.tr_id[s] + self.loop * m.tid_span
            fills = zip(m.tr_px[s].tolist(), m.tr_sz[s].tolist(), m.tr_side[s].tolist(),
                        [t] * n, ids.tolist(), strict=True)
            return "trades", hp.trades_text(m.coin, fills), n
        if kind == BBO:
            return "bbo", hp.bbo_text(m.coin, t, (m.bid.item(i), m.bid_sz.item(i), 1),
                                      (m.ask.item(i), m.ask_sz.item(i), 1)), 0
        assert kind == L2
        return "l2Book", hp.l2book_text(m.coin, t, *m.l2_levels(i)), 0

    def event_message(self, pos: int) -> tuple[str, dict]:
        """``(channel, message)`` of event ``pos``, decoded (for tests and fault injection)."""
        channel, text, _ = self.event_text(pos)
        return channel, json.loads(text)

    def is_trades(self, pos: int) -> bool:
        return int(self.market.ev_kind[pos]) == TRADES

    def candle_message(self, pos: int, interval: str) -> dict:
        """The ``candle`` update after trades event ``pos``: the interval that contains it,
        from the trades of the current pass published so far."""
        open_ms, o, h, lo, c, v, n = self.candle_at(pos, hp.INTERVAL_MS[interval])
        return hp.candle_msg(hp.candle(self.market.coin, interval, open_ms, o, h, lo, c, v, n))

    def candle_at(self, pos: int, interval_ms: int) -> tuple:
        """``(open_ms, open, high, low, close, volume, n_trades)`` of the ``interval_ms``
        candle that contains trades event ``pos`` (published time), from the trades of the
        current pass published up to and including that event. Volume in coin, rounded
        off its binary noise."""
        t = self.pub_time(pos)
        open_ms = (t // interval_ms) * interval_ms
        m = self.market
        off = self.offset_ms()
        hi = int(m.grp_hi[int(m.ev_idx[pos])])
        lo = int(np.searchsorted(m.tr_t[:hi], open_ms - off, side="left"))
        px, sz = m.tr_px[lo:hi], m.tr_sz[lo:hi]
        return (open_ms, float(px[0]), float(px.max()), float(px.min()), float(px[-1]),
                round(float(sz.sum()), 10), hi - lo)

    # ------------------------------------------------------------------ POST /info

    def info(self, req: dict, wall: float):
        """The answer to one ``POST /info`` body about this coin (``l2Book``,
        ``candleSnapshot``, ``fundingHistory``); raises :class:`InfoError` for a request
        Hyperliquid would reject. :class:`Exchange` answers the rest."""
        kind = _info_type(req)
        handler = getattr(self, f"_info_{kind}", None)
        if handler is None:
            raise InfoError(f"unknown info type {kind!r}")
        return handler(req, wall)

    def _coin(self, coin) -> None:
        if coin != self.market.coin:
            raise InfoError(f"unknown coin {coin!r}; this replay serves {self.market.coin!r}")

    def mid_now(self) -> float:
        return self.market.mid(self.state_pos()[0])

    def asset_ctx(self) -> dict:
        """The coin's context in ``metaAndAssetCtxs`` at the state: mark = mid, impact
        prices = BBO, 24 h volume from the trades sent."""
        m = self.market
        p, _ = self.state_pos()
        bid, _, ask, _ = m.top(p)
        mid = 0.5 * (bid + ask)
        t = int(m.ev_t[p])
        prev = m.mid(max(m.position_at(t - DAY_MS), 0))
        lo = int(np.searchsorted(m.tr_t, t - DAY_MS, side="right"))
        hi = int(m.fills_upto[p]) if self.sent_any else 0
        notional = float(np.dot(m.tr_px[lo:hi], m.tr_sz[lo:hi])) if hi > lo else 0.0
        return hp.asset_ctx(mid, mid, bid, ask, self.cfg.funding_rate, prev,
                            self.cfg.open_interest, round(notional, 2))

    def _info_l2Book(self, req, wall):
        self._coin(req.get("coin"))
        p, _ = self.state_pos()
        bids, asks = self.market.book(p)
        return hp.l2book_data(self.market.coin, self.now_ms(wall), bids, asks)

    def _info_fundingHistory(self, req, wall):
        self._coin(req.get("coin"))
        now = self.now_ms(wall)
        start = _int_field(req, "startTime", 0)
        end = min(_int_field(req, "endTime", now), now)
        first = max(start, self.pub_first_ms())
        t0 = -(-first // FUNDING_INTERVAL_MS) * FUNDING_INTERVAL_MS
        times = range(t0, end + 1, FUNDING_INTERVAL_MS)
        return hp.funding_history(self.market.coin, list(times)[:MAX_FUNDING_ROWS],
                                  self.cfg.funding_rate)

    def pub_first_ms(self) -> int:
        """Published time of the data's first event (first pass; history included)."""
        return int(self.market.ev_t[0]) + self.clock.shift_ms

    def _info_candleSnapshot(self, req, wall):
        r = req.get("req")
        if not isinstance(r, dict):
            raise InfoError("candleSnapshot needs a 'req' object")
        self._coin(r.get("coin"))
        interval = r.get("interval")
        if interval not in hp.INTERVAL_MS:
            raise InfoError(f"unsupported candle interval {interval!r}; "
                            f"one of {', '.join(hp.INTERVAL_MS)}")
        iv = hp.INTERVAL_MS[interval]
        now = self.now_ms(wall)
        start = _int_field(r, "startTime", 0)
        end = min(_int_field(r, "endTime", now), now)
        # Only the latest MAX_CANDLES intervals, and none before the market existed.
        start = max(start, (end // iv - hp.MAX_CANDLES + 1) * iv, self.pub_first_ms())
        if start > end:
            return []
        t, px, sz, prev = self.published_trades(start, end)
        rows = candles(t, px, sz, iv, start, end, prev)
        # Volumes are float sums: round off the binary noise (sizes have <= 8 decimals).
        return [hp.candle(self.market.coin, interval, t, o, h, lo, c, round(v, 10), n)
                for t, o, h, lo, c, v, n in rows]

    def published_trades(self, start: int, end: int):
        """Trades sent so far with published time in ``[start - interval, end]`` across
        loops, and the price before ``start`` (last earlier trade, else the first mid)."""
        m = self.market
        p, cur_loop = self.state_pos()
        parts_t, parts_px, parts_sz = [], [], []
        prev = m.mid(0)
        for loop in range(cur_loop + 1):
            off = self.offset_ms(loop)
            hi = int(m.fills_upto[p]) if loop == cur_loop else m.tr_t.size
            if not self.sent_any:
                hi = 0
            lo_prev = int(np.searchsorted(m.tr_t[:hi], start - off, side="left"))
            if lo_prev > 0:
                prev = float(m.tr_px[lo_prev - 1])
            b = int(np.searchsorted(m.tr_t[:hi], end - off, side="right"))
            parts_t.append(m.tr_t[lo_prev:b] + off)
            parts_px.append(m.tr_px[lo_prev:b])
            parts_sz.append(m.tr_sz[lo_prev:b])
        return (np.concatenate(parts_t), np.concatenate(parts_px), np.concatenate(parts_sz),
                prev)


COIN_INFO = {"l2Book": "coin", "fundingHistory": "coin", "candleSnapshot": "req.coin"}


class Exchange:
    """Several coins replayed on one clock: their events interleave in published time as in
    the data. Answers the ``/info`` types about the whole exchange and routes the per-coin
    ones to the coin's :class:`Replay`."""

    def __init__(self, markets: list[Market], cfg: ReplayConfig, wall: float):
        if not markets:
            raise ValueError("no markets to replay")
        coins = [m.coin for m in markets]
        if len(set(coins)) != len(coins):
            raise ValueError(f"coin listed twice: {coins}")
        self.cfg = cfg
        self.clock = ReplayClock(_anchor(markets, cfg), cfg.speed, cfg.start_at, wall)
        # One span for all coins, so a loop moves every coin on by the same time.
        span = (max(int(m.ev_t[-1]) for m in markets) - min(int(m.ev_t[0]) for m in markets)
                + LOOP_PAUSE_MS)
        self.replays = {m.coin: Replay(m, cfg, wall, self.clock, span) for m in markets}
        peers = list(self.replays.values())
        for r in peers:
            r.peers = peers

    @property
    def coins(self) -> list[str]:
        return list(self.replays)

    @property
    def first(self) -> Replay:
        return next(iter(self.replays.values()))

    @property
    def started(self) -> bool:
        return self.first.started

    @property
    def finished(self) -> bool:
        return all(r.finished for r in self.replays.values())

    @property
    def paced(self) -> bool:
        return self.cfg.speed > 0

    def start(self, wall: float) -> None:
        self.clock.start(wall)
        for r in self.replays.values():
            r.started = True

    def next_replay(self) -> Replay | None:
        """The coin whose next event is published first (None when all finished)."""
        if len(self.replays) == 1:  # the common case, once per event: skip the search
            r = self.first
            return None if r.finished else r
        live = [r for r in self.replays.values() if not r.finished]
        return min(live, key=lambda r: r.pub_time()) if live else None

    def now_ms(self, wall: float) -> int:
        return self.first.now_ms(wall)

    def info(self, req: dict, wall: float):
        """The answer to one ``POST /info`` body; raises :class:`InfoError` for a request
        Hyperliquid would reject."""
        kind = _info_type(req)
        if kind in COIN_INFO:
            body = req.get("req") if kind == "candleSnapshot" else req
            coin = body.get("coin") if isinstance(body, dict) else None
            if coin not in self.replays:
                raise InfoError(f"unknown coin {coin!r}; this replay serves "
                                f"{', '.join(self.replays)}")
            return self.replays[coin].info(req, wall)
        handler = getattr(self, f"_info_{kind}", None)
        if handler is None:
            raise InfoError(f"unknown info type {kind!r}")
        return handler(req, wall)

    def _meta(self) -> dict:
        return hp.meta([(c, self.cfg.sz_decimals, self.cfg.max_leverage) for c in self.coins])

    def _info_meta(self, req, wall):
        return self._meta()

    def _info_metaAndAssetCtxs(self, req, wall):
        return hp.meta_and_asset_ctxs(self._meta(),
                                      [r.asset_ctx() for r in self.replays.values()])

    def _info_spotMeta(self, req, wall):
        return hp.spot_meta()

    def _info_spotMetaAndAssetCtxs(self, req, wall):
        return hp.spot_meta_and_asset_ctxs()

    def _info_perpDexs(self, req, wall):
        return hp.perp_dexs()

    def _info_exchangeStatus(self, req, wall):
        return hp.exchange_status(self.now_ms(wall))

    def _info_clearinghouseState(self, req, wall):
        return hp.clearinghouse_state(self.now_ms(wall), self.cfg.account_value)

    def _info_allMids(self, req, wall):
        return hp.all_mids({c: r.mid_now() for c, r in self.replays.items()})


def _anchor(markets: list[Market], cfg: ReplayConfig) -> int:
    """Data time published as the start: the first event plus the history."""
    first = min(int(m.ev_t[0]) for m in markets)
    last = max(int(m.ev_t[-1]) for m in markets)
    anchor = first + round(cfg.history_s * 1000)
    if anchor > last:
        raise ValueError(f"history of {cfg.history_s} s is longer than the data "
                         f"({(last - first) / 1000:.0f} s)")
    return anchor


def _info_type(req) -> str:
    if not isinstance(req, dict) or not isinstance(req.get("type"), str):
        raise InfoError("request body must be a JSON object with a 'type'")
    return req["type"]


def _int_field(d: dict, key: str, default: int) -> int:
    v = d.get(key)
    if v is None:
        return int(default)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise InfoError(f"{key} must be an integer millisecond time, got {v!r}")
    return int(v)
