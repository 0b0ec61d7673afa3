"""The strategy's prices: the parameters it may quote with, the model's quote for an inventory
(only through :func:`asmm.core.model.quotes`), and entry and exit prices from it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from asmm.core.enums import Reference, Side
from asmm.core.errors import ConfigError, ParamsMismatchError
from asmm.core.fees import fee_tier
from asmm.core.model import quotes
from asmm.core.params import Params, ParamsCache
from asmm.core.reference import microprice
from asmm.freqtrade.config import MMConfig
from asmm.freqtrade.policy import tau_seconds


def coin_of_pair(pair: str) -> str:
    """The base coin of a ccxt symbol: ``BTC`` for ``BTC/USDC:USDC``."""
    return pair.split("/", 1)[0]


def usable_params(cache: ParamsCache, cfg: MMConfig, *, pair: str, mid: float,
                  now: datetime) -> Params:
    """The parameters to quote ``pair`` with at ``now``, or a :class:`ParamsError` saying why
    not: the file must be valid, fresh (also by the age of its data, ``cache.max_data_age``),
    for this coin, and near the live ``mid`` (USDC; NaN when unknown, e.g. in backtesting).
    """
    params = cache.get(now)
    params.check_market(coin_of_pair(pair), mid, cfg.max_mid_distance)
    if cfg.require_profitable:
        v = params.verdict
        if v is None:
            raise ParamsMismatchError(
                f"asmm.require_profitable is on and {cfg.params_file} has no verdict: "
                "re-calibrate with this asmm version", kind="no_verdict")
        if not v["profitable"]:
            be = v["break_even_maker_fee"]
            raise ParamsMismatchError(
                f"the parameter file's verdict is unprofitable at maker fee "
                f"{v['maker_fee'] * 1e4:.3g} bp ({v['expected_pnl_per_hour']:+.4g} USDC/h at "
                f"{v['expected_fills_per_hour']:.3g} fills/h; break-even maker fee "
                + ("none down to -5 bp" if be is None else f"{be * 1e4:.2g} bp")
                + ") and asmm.require_profitable is on", kind="unprofitable")
    if cfg.reference == Reference.MICROPRICE and params.microprice is None:
        raise ParamsMismatchError(
            f"asmm.reference is microprice but {cfg.params_file} has none (too little book "
            "data when it was calibrated?): re-calibrate, or quote around the mid",
            kind="no_microprice")
    return params


def params_cache(cfg: MMConfig) -> ParamsCache:
    """The cache the strategy reads ``cfg.params_file`` through, with the data-age limit."""
    return ParamsCache(cfg.params_file, timedelta(seconds=cfg.max_data_age_seconds))


def reference_price(cfg: MMConfig, params: Params, mid: float, bid_size: float,
                    ask_size: float) -> float:
    """The price the quotes centre on (USDC): the mid, or with ``asmm.reference:
    microprice`` the mid plus the file's expected move for the touch's imbalance (sizes in
    coin; NaN sizes, as in backtesting, leave the mid)."""
    if cfg.reference != Reference.MICROPRICE or params.microprice is None:
        return mid
    return microprice(mid, bid_size, ask_size, params.microprice)


def touch_sizes(bids: list, asks: list) -> tuple[float, float]:
    """Sizes (coin) at the best bid and ask of ccxt order-book sides."""
    return float(bids[0][1]), float(asks[0][1])


def touch(bids: list, asks: list) -> tuple[float, float, float]:
    """``(mid, best_bid, best_ask)`` from ccxt order-book sides (``[[price, size], ...]``)."""
    bid, ask = float(bids[0][0]), float(asks[0][0])
    return 0.5 * (bid + ask), bid, ask


@dataclass(frozen=True)
class Quote:
    """One quote computation with its inputs, so a log line can be replayed exactly."""

    bid: float
    ask: float
    mid: float        # the price the quote centres on: the mid, or the microprice
    q: float
    tau: float
    gamma: float
    tick: float
    best_bid: float
    best_ask: float
    maker_fee: float
    max_inventory: float

    def log_fields(self) -> str:
        # repr() of a float round-trips exactly, so a test can recompute the quote bit for bit.
        return (f"bid={self.bid!r} ask={self.ask!r} mid={self.mid!r} q={self.q!r} "
                f"tau={self.tau!r} gamma={self.gamma!r} tick={self.tick!r} "
                f"best_bid={self.best_bid!r} best_ask={self.best_ask!r} "
                f"maker_fee={self.maker_fee!r} max_inventory={self.max_inventory!r}")


def model_quote(params: Params, cfg: MMConfig, *, mid: float, q: float, now: datetime,
                tick: float, maker_fee: float, gamma_multiplier: float = 1.0,
                max_inventory: float = 1.0, best_bid: float = math.nan,
                best_ask: float = math.nan) -> Quote:
    """The model's bid and ask for inventory ``q`` (lots) at ``now``; NaN on a blocked side.

    ``gamma = params.gamma * gamma_multiplier`` (1/USDC per lot). ``best_bid``/``best_ask``
    NaN when no book is known (backtesting), which disables the touch clamps.
    """
    gamma = params.gamma * gamma_multiplier
    tau = tau_seconds(now, cfg.horizon_seconds)
    qt = quotes(params.model, mid, q, sigma=params.sigma, gamma=gamma,
                A_bid=params.bid.A, k_bid=params.bid.k, A_ask=params.ask.A, k_ask=params.ask.k,
                tau=tau, maker_fee=maker_fee, tick=tick, max_inventory=max_inventory,
                min_spread=cfg.min_spread_ticks * tick, best_bid=best_bid, best_ask=best_ask,
                max_improve_ticks=cfg.max_improve_ticks)
    return Quote(float(qt.bid), float(qt.ask), float(mid), float(q), tau, gamma, tick,
                 float(best_bid), float(best_ask), float(maker_fee), float(max_inventory))


def entry_price(quote: Quote, side: str) -> float:
    """A long enters on the bid, a short on the ask (NaN: side blocked by the bound)."""
    return quote.bid if side == Side.LONG else quote.ask


def exit_price(quote: Quote, is_short: bool) -> float:
    """A long exits on the ask, a short on the bid: the reducing side."""
    return quote.bid if is_short else quote.ask


# Live, a market exit goes this fraction of the mid (in whole ticks) through the touch the
# loop read. The book is read once a loop, so by the time the order reaches the exchange the
# touch has often moved on, and a limit at it exactly would rest instead of crossing (on the
# paper exchange, a kill-switch exit did). The exchange fills at the book's prices, as it
# fills ccxt's market orders (an IOC at +-5 %); 1 % stays inside Freqtrade's 2 % clamp on
# custom prices.
LIVE_MARKET_BAND = 0.01


def market_through(mid: float, tick: float, live: bool) -> float:
    """How far a market exit crosses the touch (price units, whole ticks): live
    :data:`LIVE_MARKET_BAND` of the mid; 0 in dry-run, where Freqtrade fills a limit at its
    own price."""
    return round(LIVE_MARKET_BAND * mid / tick) * tick if live and math.isfinite(mid) else 0.0


def market_exit_price(is_short: bool, best_bid: float, best_ask: float,
                      through: float = 0.0) -> float:
    """A marketable limit at the opposite touch, ``through`` beyond it: fills now, and
    Freqtrade's dry-run (``through`` 0) fills it at this price (a limit crossing by > 1 %
    would become a market order)."""
    return best_ask + through if is_short else best_bid - through


# The exits choose_exit_price makes marketable: sent to cross the book, never post-only.
CROSSING_EXITS = ("liquidation", "market")


def choose_exit_price(quote: Quote | None, is_short: bool, *, kill: str, near_liquidation: bool,
                      best_bid: float, best_ask: float, fallback: float, through: float = 0.0
                      ) -> tuple[float, Quote | None, str]:
    """Exit price and why: ``liquidation``/``market`` (marketable: the opposite touch, live
    ``through`` beyond it, :func:`market_through`),
    ``model`` (the model's reducing-side quote), or ``passive`` (no usable parameters: rest at
    our own touch so the position still gets worked down).

    ``fallback`` (the candle price in backtesting) stands in for an unknown touch.
    """
    def pick(x: float) -> float:
        return x if math.isfinite(x) else fallback

    if near_liquidation:
        return pick(market_exit_price(is_short, best_bid, best_ask, through)), quote, \
            "liquidation"
    if kill == "market":
        return pick(market_exit_price(is_short, best_bid, best_ask, through)), quote, "market"
    if quote is not None:
        price = exit_price(quote, is_short)
        if math.isfinite(price):
            return price, quote, "model"
    return pick(best_bid if is_short else best_ask), quote, "passive"


def tick_from_precision(precision_price: float | None, fallback: float | None) -> float:
    """Price tick from ccxt's ``market["precision"]["price"]`` (TICK_SIZE mode)."""
    if fallback is not None:
        return float(fallback)
    if precision_price is None or not precision_price > 0:
        raise ConfigError("the exchange reports no price tick for this market; "
                          "set asmm.tick in the config")
    return float(precision_price)


def maker_fee(cfg: MMConfig, market_maker: float | None) -> tuple[float, str]:
    """The maker fee the strategy quotes with (fraction of notional; negative: a rebate) and
    where it came from: ``asmm.maker_fee`` if set, else the rate of the tier
    ``asmm.fee_tier`` names, else the exchange's ``market["maker"]`` (0 when it reports
    none)."""
    if cfg.maker_fee is not None:
        also = f"; overrides asmm.fee_tier {cfg.fee_tier}" if cfg.fee_tier else ""
        return float(cfg.maker_fee), f"asmm.maker_fee{also}"
    if cfg.fee_tier is not None:
        return fee_tier(cfg.fee_tier).maker, f"asmm.fee_tier {cfg.fee_tier}"
    return float(market_maker or 0.0), "the exchange's market[\"maker\"]"


def entry_price_is_the_models(rate: float, quote: Quote | None, side: str) -> bool:
    """True when ``rate`` (the entry price Freqtrade is about to send) is the model's price
    for ``side`` to within half a tick — not Freqtrade's proposed rate, nor a clamped one."""
    if quote is None:
        return False
    price = entry_price(quote, side)
    return math.isfinite(price) and abs(rate - price) <= 0.5 * quote.tick
