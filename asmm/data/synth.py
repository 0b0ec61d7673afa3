"""A synthetic market with stated truth, written in the collector's format.

The generative model (every parameter is in the units of docs/design.md):

- **Mid.** A latent arithmetic Brownian motion ``dS = sigma dW`` sampled at BBO update
  times (a Bernoulli process on the millisecond grid with ``bbo_rate`` updates per second).
  The published book is ``bid = floor(S / tick) * tick``, ``ask = bid + spread_ticks * tick``.
- **Market orders.** Per side a Poisson process of rate ``A`` (orders per second). Each
  order has a reach ``delta ~ Exponential(k)`` beyond the published mid it saw (the last BBO
  strictly before it — the collector-format convention of :mod:`asmm.data.readers`), so the
  rate of orders reaching depth ``>= delta`` is exactly ``A exp(-k delta)``. A buy sweeps
  the ask levels ``ask + j tick`` with ``ask + j tick <= mid + delta`` and always at least
  the best ask (a market order trades at the touch even when its reach is shorter); a sell
  mirrors it on the bid. Each level prints ``1 + Poisson(extra_fills)`` fills; all fills of
  a sweep share one exchange timestamp.
- **Tape conventions** (options, so estimators meet tapes they were not written for):
  ``rounding`` "floor" prints a sweep's last fill at the deepest level within its reach
  (above), "ceil" at the first level at or beyond it (a size-driven order taking the next
  tick); ``touch_only`` a share of sweeps that print at the touch only, whatever their
  reach — on real Hyperliquid BTC 80-90 % of sweeps do.
- **Informed flow.** A share ``informed`` of market orders is followed, 1 ms later, by a
  mid move of ``impact`` (price) in their direction (a BBO update is published then): the
  adverse selection a maker filled by them suffers, with a known expected markout of
  ``-informed * impact`` per fill at any horizon past the move. With ``informed_lead`` > 0
  the book gives the informed away first, as thinning liquidity does on a real book: a BBO
  update ``informed_lead`` seconds before the order, and every update until it, shows the
  touch it will take at :data:`INFORMED_THIN` of its size — the signal the microprice
  (:mod:`asmm.calibrate.microprice`) reads. Off (0) by default: then the book's sizes say
  nothing about the flow.
- **Moves that print** (``move_prints``, off by default): when the published bid falls
  through price levels, the levels it left were consumed — each prints as a sell at its price
  at the update's time (one sweep per move), except a cancellation share ``1 -
  move_prints`` of them that vanish without a trade; a rising ask mirrors it with buys. On
  an exchange the book does not move through a level without trading it; these sweeps are
  flow the ``A e^{-k delta}`` law does not describe, so ``A`` and ``k`` truth holds only
  with the option off.
- **Book.** L2 snapshots every ``l2_interval`` seconds, ``depth`` levels per side on the
  tick grid around the current BBO, random sizes.
- **Receive times.** ``timestamp`` = exchange time + a latency of about ``latency`` seconds
  with jitter, kept non-decreasing as a real single-socket collector receives them.

Apart from informed orders, trades do not move the book (the market is exogenous): that keeps
the truth exact, which is the point of this module. ``truth.json`` states what a
convention-free estimator recovers: ``tape.A_grid``, the fill rate on the price grid
(:data:`asmm.calibrate.days.FILL_RATE_CONVENTION`) — ``A`` under floor rounding, ``A e^{k
tick}`` under ceil, times ``1 - touch_only`` — beside the law's ``A`` and ``k``.
Deterministic for a given seed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from asmm.data.files import (
    PRICES_COLUMNS,
    TRADES_COLUMNS,
    day_bounds,
    day_path,
    orderbook_columns,
    write_table,
)

log = logging.getLogger(__name__)

# The share of its size the touch an informed order will take keeps during the lead.
INFORMED_THIN = 0.25


@dataclass(frozen=True)
class SynthConfig:
    """Truth and shape of a synthetic market. Units: docs/design.md."""

    coin: str = "BTC"
    days: int = 2
    start: date = date(2025, 9, 1)
    seed: int = 1
    mid: float = 100_000.0        # price at the start
    sigma: float = 6.8            # price / sqrt(s): about 2 % a day at 100k
    A_bid: float = 0.5            # sell market orders per second (they hit the bid)
    k_bid: float = 0.5            # 1 / price
    A_ask: float = 0.5            # buy market orders per second (they lift the ask)
    k_ask: float = 0.5
    tick: float = 1.0
    spread_ticks: int = 1
    depth: int = 10               # L2 levels per side
    bbo_rate: float = 5.0         # BBO updates per second
    l2_interval: float = 2.0      # seconds between L2 snapshots
    extra_fills: float = 0.6      # mean extra fills per level swept
    fill_size: float = 0.05       # mean fill size (coin)
    latency: float = 0.05         # receive latency (s)
    size_decimals: int = 5
    fmt: str = "csv"              # csv | parquet
    rounding: str = "floor"       # floor | ceil: the level a sweep's last fill prints at
    touch_only: float = 0.0       # share of sweeps printing at the touch only
    informed: float = 0.0         # share of market orders followed by a mid move
    impact: float = 0.0           # price: the size of that move, in the order's direction
    informed_lead: float = 0.0    # s: the touch an informed order takes thins this long before
    move_prints: float = 0.0      # share of levels a moving book passes that print a trade

    def A_grid(self, A: float, k: float) -> float:
        """The fill rate on the price grid (intercept of the curve through levels >= 1)."""
        ceil = np.exp(k * self.tick) if self.rounding == "ceil" else 1.0
        return float(A * (1.0 - self.touch_only) * ceil)

    def truth(self) -> dict:
        """The parameters an estimator should recover, with units."""
        return {
            "coin": self.coin,
            "sigma": self.sigma,
            "bid": {"A": self.A_bid, "k": self.k_bid},
            "ask": {"A": self.A_ask, "k": self.k_ask},
            "tape": {"rounding": self.rounding, "touch_only": self.touch_only,
                     "move_prints": self.move_prints,
                     "A_grid": {"bid": self.A_grid(self.A_bid, self.k_bid),
                                "ask": self.A_grid(self.A_ask, self.k_ask)},
                     "note": "A_grid: the fill rate on the price grid a convention-free "
                             "estimator recovers (A under floor rounding, A e^(k tick) under "
                             "ceil, times 1 - touch_only); k is the law's whatever the tape"},
            "informed": {"share": self.informed, "impact": self.impact,
                         "lead_seconds": self.informed_lead, "thin": INFORMED_THIN,
                         "expected_markout": -self.informed * self.impact,
                         "expected_markout_bp": -self.informed * self.impact / self.mid * 1e4,
                         "note": "per maker fill, at horizons past the 1 ms move; price units "
                                 "and bp of the starting mid; negative = against the maker. "
                                 "lead_seconds before an informed order the touch it takes "
                                 "shows thin times its size (0: no signal in the book)"},
            "mid0": self.mid,
            "tick": self.tick,
            "spread_ticks": self.spread_ticks,
            "units": {"sigma": "USDC/sqrt(s)", "A": "1/s", "k": "1/USDC", "price": "USDC"},
            "notes": "bid side: sell market orders hitting bids; ask side: buys lifting asks",
            "config": {k: (v.isoformat() if isinstance(v, date) else v)
                       for k, v in asdict(self).items()},
        }


def _event_ms(rng: np.random.Generator, rate: float, n_ms: int) -> np.ndarray:
    """Millisecond offsets of a Bernoulli(rate/1000) process on [0, n_ms): ~Poisson(rate)."""
    p = min(rate / 1000.0, 1.0)
    n = rng.binomial(n_ms, p)
    return np.sort(rng.choice(n_ms, size=n, replace=False)).astype(np.int64)


def _recv_times(rng: np.random.Generator, t_ms: np.ndarray, latency: float) -> np.ndarray:
    """Receive times (s) for sorted exchange times (ms): rows with one exchange time arrive
    in one message, and a single socket delivers in order."""
    uniq, inv = np.unique(t_ms, return_inverse=True)
    jitter = rng.gamma(4.0, latency / 4.0, size=uniq.size)
    return np.maximum.accumulate(uniq / 1000.0 + jitter)[inv]


def _sizes(rng: np.random.Generator, mean: float, n: int, decimals: int) -> np.ndarray:
    step = 10.0 ** -decimals
    return np.maximum(np.round(rng.exponential(mean, n), decimals), step)


def _sweeps(rng, cfg: SynthConfig, side: int, t_ms: np.ndarray, bbo_t: np.ndarray,
            bbo_bid: np.ndarray, carry_bid: float):
    """Fills of one side's market orders at times ``t_ms`` (ms offsets in the day).

    ``side`` +1 = buy aggressor (lifts asks), -1 = sell aggressor (hits bids). Returns arrays
    (t_ms, price, level, sweep_no) per fill.
    """
    k = cfg.k_ask if side > 0 else cfg.k_bid
    # The book a sweep meets is the last BBO strictly before it.
    i = np.searchsorted(bbo_t, t_ms, side="left") - 1
    bid = np.where(i >= 0, bbo_bid[np.maximum(i, 0)], carry_bid)
    ask = bid + cfg.spread_ticks * cfg.tick
    mid = 0.5 * (bid + ask)
    reach = rng.exponential(1.0 / k, size=t_ms.size)
    # Levels past the touch within (floor) or up to the first at or beyond (ceil) the reach.
    beyond = (mid + reach - ask) / cfg.tick if side > 0 else (bid - (mid - reach)) / cfg.tick
    touch = ask if side > 0 else bid
    extra = np.ceil(beyond - 1e-9) if cfg.rounding == "ceil" else np.floor(beyond + 1e-9)
    extra[rng.random(t_ms.size) < cfg.touch_only] = 0
    levels = (np.maximum(extra, 0) + 1).astype(np.int64)
    sweep_of_level = np.repeat(np.arange(t_ms.size), levels)
    level_no = np.arange(sweep_of_level.size) - np.repeat(np.cumsum(levels) - levels, levels)
    fills_per_level = 1 + rng.poisson(cfg.extra_fills, size=level_no.size)
    lvl = np.repeat(np.arange(level_no.size), fills_per_level)
    sweep = sweep_of_level[lvl]
    price = touch[sweep] + side * level_no[lvl] * cfg.tick
    return t_ms[sweep], price, sweep


def _move_prints(rng, cfg: SynthConfig, bbo_t: np.ndarray, bid: np.ndarray,
                 carry_bid: float):
    """Trades of the levels a moving book consumed (see the module docstring): arrays
    (t_ms, price, side, move_no) per print, in the day's ms offsets."""
    empty = np.zeros(0)
    if cfg.move_prints <= 0 or bbo_t.size == 0:
        return empty.astype(np.int64), empty, empty.astype(np.int8), empty.astype(np.int64)
    prev = np.concatenate([[carry_bid], bid[:-1]])
    steps = np.rint((bid - prev) / cfg.tick).astype(np.int64)
    # A falling bid consumed the bids from the old one down to one tick above the new one;
    # a rising book the asks from the old ask up to one tick below the new one.
    n = np.abs(steps)
    move = np.repeat(np.arange(bbo_t.size), n)
    k = np.arange(move.size) - np.repeat(np.cumsum(n) - n, n)
    down = steps[move] < 0
    old_bid = prev[move]
    old_ask = old_bid + cfg.spread_ticks * cfg.tick
    price = np.where(down, old_bid - k * cfg.tick, old_ask + k * cfg.tick)
    side = np.where(down, -1, 1).astype(np.int8)
    keep = rng.random(move.size) < cfg.move_prints
    return bbo_t[move][keep], price[keep], side[keep], move[keep]


def generate_day(cfg: SynthConfig, day_index: int, state: dict, out: Path) -> dict:
    """Simulate and write one UTC day; ``state`` carries the mid, trade id and sequence."""
    rng = np.random.default_rng([cfg.seed, day_index])
    day = cfg.start + timedelta(days=day_index)
    t0_ms = int(day_bounds(day)[0] * 1000)
    n_ms = 86_400_000

    # Order times first: informed ones move the mid 1 ms after them, with a BBO update then.
    buy_t_ms, sell_t_ms = _event_ms(rng, cfg.A_ask, n_ms), _event_ms(rng, cfg.A_bid, n_ms)
    inf_buy = buy_t_ms[rng.random(buy_t_ms.size) < cfg.informed]
    inf_sell = sell_t_ms[rng.random(sell_t_ms.size) < cfg.informed]
    # Mid at BBO times: the latent ABM. One extra increment for the step from the previous
    # day's last update (or the start) keeps the path continuous across files.
    bbo_t = _event_ms(rng, cfg.bbo_rate, n_ms)
    inf_all = np.concatenate([inf_buy, inf_sell])
    lead_ms = round(cfg.informed_lead * 1000.0)
    if inf_all.size:
        bbo_t = np.union1d(bbo_t, np.minimum(inf_all + 1, n_ms - 1))
        if lead_ms > 0:
            bbo_t = np.union1d(bbo_t, np.maximum(inf_all - lead_ms, 0))
    dt = np.diff(bbo_t, prepend=state["last_t"] - t0_ms) / 1000.0
    S = state["S"] + np.cumsum(cfg.sigma * np.sqrt(dt) * rng.standard_normal(bbo_t.size))
    if inf_buy.size or inf_sell.size:
        # The moves of informed orders before each update (strictly: the order comes first).
        S = S + cfg.impact * (np.searchsorted(inf_buy, bbo_t, side="left")
                              - np.searchsorted(inf_sell, bbo_t, side="left"))
    bid = np.floor(S / cfg.tick) * cfg.tick
    ask = bid + cfg.spread_ticks * cfg.tick
    bid_sz = _sizes(rng, 2.0, bbo_t.size, cfg.size_decimals)
    ask_sz = _sizes(rng, 2.0, bbo_t.size, cfg.size_decimals)
    if lead_ms > 0:
        step = 10.0 ** -cfg.size_decimals
        for inf, sz in ((inf_buy, ask_sz), (inf_sell, bid_sz)):
            nxt = np.searchsorted(inf, bbo_t, side="right")  # next informed order after
            ahead = np.full(bbo_t.size, np.iinfo(np.int64).max)
            has = nxt < inf.size
            ahead[has] = inf[nxt[has]] - bbo_t[has]
            thin = ahead <= lead_ms
            sz[thin] = np.maximum(np.round(sz[thin] * INFORMED_THIN, cfg.size_decimals), step)

    carry_bid = state["bid"]
    buy_t, buy_px, buy_sw = _sweeps(rng, cfg, +1, buy_t_ms, bbo_t, bid, carry_bid)
    sell_t, sell_px, sell_sw = _sweeps(rng, cfg, -1, sell_t_ms, bbo_t, bid, carry_bid)
    mv_t, mv_px, mv_side, mv_sw = _move_prints(rng, cfg, bbo_t, bid, carry_bid)
    mv_sw = -1 - mv_sw  # negative sweep keys: never shared with the orders' (>= 0)
    tr_t = np.concatenate([buy_t, sell_t, mv_t])
    tr_px = np.concatenate([buy_px, sell_px, mv_px])
    tr_side = np.concatenate([np.ones(buy_t.size, np.int8), -np.ones(sell_t.size, np.int8),
                              mv_side])
    # Fills of one sweep stay together, best price first; sweeps ordered by time.
    sweep_key = np.concatenate([buy_sw * 2, sell_sw * 2 + 1, mv_sw * 2])
    order = np.lexsort((np.arange(tr_t.size), sweep_key, tr_t))
    tr_t, tr_px, tr_side = tr_t[order], tr_px[order], tr_side[order]
    n_tr = tr_t.size
    tr_ids = state["trade_id"] + np.arange(n_tr, dtype=np.int64)
    tr_sz = _sizes(rng, cfg.fill_size, n_tr, cfg.size_decimals)

    # prices: one bid row and one ask row per BBO message.
    n_bbo = bbo_t.size
    p_t = np.repeat(bbo_t + t0_ms, 2)
    p_px = np.empty(2 * n_bbo)
    p_px[0::2], p_px[1::2] = bid, ask
    p_sz = np.empty(2 * n_bbo)
    p_sz[0::2], p_sz[1::2] = bid_sz, ask_sz
    p_side = np.tile(np.array([0, 1], dtype=np.int8), n_bbo)
    p_recv = np.repeat(_recv_times(rng, bbo_t + t0_ms, cfg.latency), 2)
    side_dict = pa.DictionaryArray.from_arrays(pa.array(p_side), pa.array(["bid", "ask"]))
    prices = pa.table({
        "timestamp": p_recv, "price": p_px, "size": p_sz,
        "side": side_dict.cast(pa.string()), "exchange_timestamp": p_t,
    }).select(PRICES_COLUMNS)

    tr_side_str = pa.DictionaryArray.from_arrays(pa.array((tr_side < 0).astype(np.int8)),
                                                 pa.array(["buy", "sell"]))
    trades = pa.table({
        "timestamp": _recv_times(rng, tr_t + t0_ms, cfg.latency), "price": tr_px,
        "size": tr_sz, "side": tr_side_str.cast(pa.string()), "trade_id": tr_ids,
        "exchange_timestamp": tr_t + t0_ms,
    }).select(TRADES_COLUMNS)

    # L2 snapshots around the BBO in force at each snapshot time.
    snap_t = np.arange(0, n_ms, int(cfg.l2_interval * 1000), dtype=np.int64)
    j = np.searchsorted(bbo_t, snap_t, side="right") - 1
    sb = np.where(j >= 0, bid[np.maximum(j, 0)], carry_bid)
    sa = sb + cfg.spread_ticks * cfg.tick
    cols = {"timestamp": _recv_times(rng, snap_t + t0_ms, cfg.latency),
            "sequence": state["sequence"] + np.arange(snap_t.size, dtype=np.int64),
            "exchange_timestamp": snap_t + t0_ms}
    for lvl in range(cfg.depth):
        cols[f"bid_price_{lvl}"] = sb - lvl * cfg.tick
        cols[f"bid_size_{lvl}"] = _sizes(rng, 1.0 + lvl, snap_t.size, cfg.size_decimals)
        cols[f"ask_price_{lvl}"] = sa + lvl * cfg.tick
        cols[f"ask_size_{lvl}"] = _sizes(rng, 1.0 + lvl, snap_t.size, cfg.size_decimals)
    books = pa.table(cols).select(orderbook_columns(cfg.depth))

    for kind, table in (("prices", prices), ("trades", trades), ("orderbooks", books)):
        write_table(table, day_path(out, kind, cfg.coin, day, cfg.fmt))

    state.update(S=float(S[-1]), bid=float(bid[-1]), last_t=int(bbo_t[-1]) + t0_ms,
                 trade_id=int(state["trade_id"] + n_tr),
                 sequence=int(state["sequence"] + snap_t.size))
    return {"day": day.isoformat(), "bbo_updates": int(n_bbo), "trades": int(n_tr),
            "sweeps_buy": int(np.unique(buy_sw).size), "sweeps_sell": int(np.unique(sell_sw).size),
            "orderbooks": int(snap_t.size)}


def generate(cfg: SynthConfig, out: str | Path, progress=None) -> dict:
    """Write ``cfg.days`` daily files of each kind plus ``truth.json`` into ``out``.

    ``progress``, if given, is called with each finished day's summary. Returns the truth
    document, which also lists the per-day counts.
    """
    if cfg.days < 1:
        raise ValueError("days must be >= 1")
    for name in ("sigma", "A_bid", "k_bid", "A_ask", "k_ask", "tick", "mid", "bbo_rate",
                 "l2_interval", "fill_size"):
        v = getattr(cfg, name)
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {v}")
    if cfg.rounding not in ("floor", "ceil"):
        raise ValueError(f"rounding must be 'floor' or 'ceil', got {cfg.rounding!r}")
    for name in ("touch_only", "informed", "move_prints"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ValueError(f"{name} must be a share in [0, 1], got {getattr(cfg, name)}")
    if not (np.isfinite(cfg.impact) and cfg.impact >= 0):
        raise ValueError(f"impact must be a finite price >= 0, got {cfg.impact}")
    if not (np.isfinite(cfg.informed_lead) and 0 <= cfg.informed_lead <= 3600):
        raise ValueError(f"informed_lead must be 0 to 3600 s, got {cfg.informed_lead}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bid0 = np.floor(cfg.mid / cfg.tick) * cfg.tick
    state = {"S": cfg.mid, "bid": float(bid0), "trade_id": 1, "sequence": 1,
             "last_t": int(day_bounds(cfg.start)[0] * 1000)}
    days = []
    for d in range(cfg.days):
        summary = generate_day(cfg, d, state, out)
        days.append(summary)
        log.info("synth %s: %d BBO updates, %d trades", summary["day"], summary["bbo_updates"],
                 summary["trades"])
        if progress:
            progress(summary)
    truth = cfg.truth()
    truth["days"] = days
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return truth
