"""Avellaneda–Stoikov / GLFT market making as a Freqtrade strategy (interface 3, futures).

The one module of asmm that imports Freqtrade's strategy interface. Freqtrade loads the
class through ``user_data/strategies/avellaneda.py`` (its resolver takes only a class defined
in the file it loads, so that file subclasses this one, adding nothing); the demo writes the
same file from :mod:`asmm.freqtrade.userdir`.

A thin adapter: every rule lives in :mod:`asmm.freqtrade`, every price comes from
:mod:`asmm.core.model` (through ``asmm.freqtrade.quotes.model_quote``), parameters only through
:class:`asmm.core.params.ParamsCache`. This module reads Freqtrade's state (order book,
trades, config, current_time) and hands it over. Settings: the ``"asmm"`` block of the
config (see :class:`asmm.freqtrade.config.MMConfig` and the README section "Guards").

Log lines starting ``asmm quote`` record every price sent with the exact inputs of the
model (mid, q, tau, gamma, tick, touch), so any order can be recomputed from the log.

Fails closed: every hook is wrapped by :func:`asmm.freqtrade.guards.fail_closed`, so an
exception in this module or in asmm never reaches Freqtrade (whose defaults would enter at
its own price); the hook returns the value that opens nothing, entries stay blocked for that
loop and the next, and the cause is logged once. ``bot_start`` alone is not wrapped: a bad
``asmm`` config stops the bot at start with its message.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from freqtrade.enums import RunMode
from freqtrade.persistence import Order, PairLocks, Trade
from freqtrade.strategy import DecimalParameter, IntParameter, IStrategy
from pandas import DataFrame

from asmm.core.enums import ExitReason
from asmm.core.errors import SharedStateError
from asmm.core.params import ParamsError
from asmm.core.settings import MAX_INVENTORY_LOTS
from asmm.freqtrade import guards, indicators, policy, quotes, shared_state
from asmm.freqtrade.config import MMConfig
from asmm.freqtrade.guards import fail_closed

logger = logging.getLogger(__name__)

AUTO_LOCK = "Auto lock"  # the reason Freqtrade gives its after-exit pair lock


class Avellaneda(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1m"
    can_short = True
    # Exits come from custom_exit at the model's price, never from ROI or a stop-loss; the
    # liquidation guard, the kill switch and the drawdown stop bound the risk instead.
    minimal_roi: ClassVar[dict] = {"0": 100.0}
    stoploss = -0.99
    # Freqtrade consults custom_exit only with exit signals enabled; the signal columns
    # themselves stay 0.
    use_exit_signal = True
    # The ping-pong side of the latest candle depends on the last fill, so signals are
    # recomputed every loop, not only on a new candle.
    process_only_new_candles = False
    startup_candle_count = 150
    order_types: ClassVar[dict] = {
        "entry": "limit",
        "exit": "limit",
        "emergency_exit": "market",
        "force_exit": "market",
        "stoploss": "market",
        "stoploss_on_exchange": False,
    }

    gamma_multiplier = DecimalParameter(0.25, 4.0, default=1.0, decimals=2, space="buy")
    requote_ticks = IntParameter(0, 10, default=1, space="buy")
    # One trade per bot keeps |q| <= 1 lot (net, for the pair), so the bound cannot bind yet;
    # declared for a future position-adjusting mode, not tuned. Its default is the
    # calibrator's and the backtester's, so the bot quotes as its verdict was tested.
    max_inventory_lots = IntParameter(1, max(5, int(MAX_INVENTORY_LOTS)),
                                      default=int(MAX_INVENTORY_LOTS), space="buy",
                                      optimize=False)
    adx_threshold = IntParameter(15, 40, default=25, space="buy", optimize=False)

    # ------------------------------------------------------------------ lifecycle

    def __init__(self, config: dict) -> None:
        # First, so that a hook failing even before bot_start has somewhere to say so.
        self.faults = guards.Faults("asmm", logger)
        super().__init__(config)

    def bot_start(self, **kwargs) -> None:
        # An unknown dry_run counts as live: the stricter defaults.
        self.mm = MMConfig.from_dict(self.config.get("asmm")).resolved(
            bool(self.config.get("dry_run", False)))
        self.params_cache = quotes.params_cache(self.mm)
        self.gate = guards.Gate("asmm")
        self.drawdown = guards.DrawdownGuard(self.mm.max_drawdown)
        self.kill_since: datetime | None = None
        # The ping-pong alternation survives a restart: resume from the latest filled entry.
        pair = self.config["exchange"]["pair_whitelist"][0]
        filled = [t for t in Trade.get_trades_proxy(pair=pair) if t.nr_of_successful_entries]
        latest = max(filled, key=lambda t: t.open_date_utc, default=None)
        self.last_entry_side: str | None = (None if latest is None else
                                            "short" if latest.is_short else "long")
        self.shared_error: str | None = None
        self.net_q_others = 0.0
        self.loop = 0
        self._book: tuple[int, tuple[float, float, float]] | None = None
        # Live, orders rest post-only; Freqtrade reads the time in force when it sends each
        # order, after custom_exit_price, which sets the exit's (a market exit must cross).
        live = self.dp.runmode == RunMode.LIVE and not self.config.get("dry_run", True)
        exchange = self.config["exchange"].get("name", "")
        self.resting_tif = policy.time_in_force(exchange, self.mm.post_only and live)
        self.leverage_step = policy.leverage_step(exchange)
        self.order_time_in_force = {"entry": self.resting_tif, "exit": self.resting_tif}
        logger.info("asmm: mode=%s flat_side_rule=%s params=%s lot=%g time_in_force=%s",
                    self.mm.mode, self.mm.flat_side_rule, self.mm.params_file,
                    self.mm.lot_size, self.resting_tif)
        fee, source = quotes.maker_fee(self.mm, (self.dp.market(pair) or {}).get("maker"))
        logger.info("asmm: quoting with maker fee %.4g bp (%s)", fee * 1e4, source)

    def _live(self) -> bool:
        return self.dp.runmode in (RunMode.LIVE, RunMode.DRY_RUN)

    @fail_closed(None)
    def bot_loop_start(self, current_time: datetime, **kwargs) -> None:
        self.faults.new_loop()
        self.loop += 1
        pair = self.config["exchange"]["pair_whitelist"][0]
        locks = PairLocks.get_pair_locks(pair, current_time)
        # After every exit Freqtrade locks that side until the next candle ("Auto lock") so
        # a signal strategy does not re-enter at once; a market maker re-quotes at once.
        if any(lock.reason == AUTO_LOCK for lock in locks):
            self.unlock_reason(AUTO_LOCK)
        killed = Path(self.mm.kill_switch_file).exists() or any(
            lock.reason and lock.reason.startswith(guards.KILL_LOCK_REASON) for lock in locks)
        if self.drawdown.update(self.wallets.get_starting_balance()
                                + Trade.get_total_closed_profit()):
            killed = True
        if killed and self.kill_since is None:
            self.kill_since = current_time
            logger.warning("asmm: kill switch armed (file %s, a '%s' lock or the drawdown "
                           "stop): exits at the model's price, at market after %g s",
                           self.mm.kill_switch_file, guards.KILL_LOCK_REASON,
                           self.mm.kill_timeout_seconds)
        elif not killed and self.kill_since is not None:
            self.kill_since = None
            logger.warning("asmm: kill switch released")
        if self.mm.mode != "pingpong" and self._live():
            self._share_inventory(pair, current_time)
        # Evaluated every loop so the log says at once why entries stopped, whatever the
        # bot is doing (a resting exit does not consult the entry guards).
        self._block_reason(pair, current_time)

    def _share_inventory(self, pair: str, now: datetime) -> None:
        own = self._own_q(pair)
        shared_state.write_bot_state(self.mm.shared_state_dir, self.mm.bot_id, pair, own, now)
        try:
            self.net_q_others = shared_state.read_net_inventory(
                self.mm.shared_state_dir, pair, now, self.mm.state_max_age_seconds) - own
            self.shared_error = None
        except SharedStateError as e:
            self.shared_error = str(e)

    # ------------------------------------------------------------------ inputs

    def _own_q(self, pair: str) -> float:
        trades = Trade.get_trades_proxy(pair=pair, is_open=True)
        return sum(policy.inventory_lots(t.amount, t.is_short, self.mm.lot_size)
                   for t in trades if t.nr_of_successful_entries > 0)

    def _net_q(self, pair: str) -> float:
        return self._own_q(pair) + (self.net_q_others if self.mm.mode != "pingpong" else 0.0)

    def _touch(self, pair: str, proposed_rate: float, fresh: bool = False
               ) -> tuple[float, float, float]:
        """(mid, best_bid, best_ask): the order book live (``fresh``: read now), the candle
        in backtesting."""
        if not self._live():
            return proposed_rate, math.nan, math.nan
        return self._order_book(pair, fresh)[0]

    def _touch_sizes(self, pair: str) -> tuple[float, float]:
        """Sizes at the best bid and ask (coin); NaN in backtesting (no book)."""
        return self._order_book(pair)[1] if self._live() else (math.nan, math.nan)

    def _order_book(self, pair: str, fresh: bool = False):
        # The guards read the loop's book; an order is priced from a book read for it
        # (fresh), which then stands as the loop's. The loop's first book is seconds old by
        # the time an order goes out (ccxt paces every request of the loop to the exchange's
        # rate limit), and an order priced from it often crossed the touch on arrival.
        if fresh or self._book is None or self._book[0] != self.loop:
            ob = self.dp.orderbook(pair, 1)
            self._book = (self.loop, (quotes.touch(ob["bids"], ob["asks"]),
                                      quotes.touch_sizes(ob["bids"], ob["asks"])))
        return self._book[1]

    def _market(self, pair: str) -> tuple[float, float]:
        market = self.dp.market(pair) or {}
        tick = quotes.tick_from_precision(market.get("precision", {}).get("price"), self.mm.tick)
        return tick, quotes.maker_fee(self.mm, market.get("maker"))[0]

    def _quote(self, pair: str, now: datetime, proposed_rate: float, *, entry: bool,
               fresh: bool = False) -> quotes.Quote | None:
        mid, best_bid, best_ask = self._touch(pair, proposed_rate, fresh)
        try:
            params = quotes.usable_params(self.params_cache, self.mm, pair=pair, mid=mid, now=now)
        except ParamsError:
            return None
        tick, fee = self._market(pair)
        q = policy.pricing_q(self.mm.mode, self._own_q(pair), self._net_q(pair), entry)
        reference = quotes.reference_price(self.mm, params, mid, *self._touch_sizes(pair))
        return quotes.model_quote(params, self.mm, mid=reference, q=q, now=now, tick=tick,
                                  maker_fee=fee,
                                  gamma_multiplier=float(self.gamma_multiplier.value),
                                  max_inventory=float(self.max_inventory_lots.value),
                                  best_bid=best_bid, best_ask=best_ask)

    def _block_reason(self, pair: str, now: datetime) -> str | None:
        # The live mid for the file's market checks; unknown in backtesting (checked per
        # candle in _quote instead).
        mid = self._touch(pair, math.nan)[0]
        try:
            quotes.usable_params(self.params_cache, self.mm, pair=pair, mid=mid, now=now)
            params_error = None
        except ParamsError as e:
            params_error = e
        adx_value = None
        if self.mm.adx_filter:
            df = self.dp.get_analyzed_dataframe(pair, self.timeframe)[0]
            if len(df) and "adx" in df:
                adx_value = float(df["adx"].iloc[-1])
        return self.gate.set(guards.entry_block_reason(
            params_error=params_error,
            kill=guards.kill_phase(self.kill_since, now, self.mm.kill_timeout_seconds),
            drawdown_tripped=self.drawdown.tripped, shared_state_error=self.shared_error,
            adx_value=adx_value,
            adx_threshold=float(self.adx_threshold.value) if self.mm.adx_filter else None),
            logger)

    def _log_quote(self, pair: str, kind: str, side: str, price: float, quote: quotes.Quote | None,
                   why: str) -> None:
        logger.info("asmm quote pair=%s kind=%s side=%s price=%.10g why=%s %s", pair, kind, side,
                    price, why, quote.log_fields() if quote else "")

    # ------------------------------------------------------------------ signals

    @fail_closed(guards.indicators_failed)
    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        if self.mm.adx_filter:
            dataframe["adx"] = indicators.adx_on_timeframe(dataframe, self.mm.adx_timeframe,
                                                           self.mm.adx_period)
        return dataframe

    @fail_closed(guards.no_entry_signals)
    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        desired = policy.flat_side(self.mm.flat_side_rule, self.last_entry_side)
        use_adx = self.mm.adx_filter and "adx" in dataframe
        long_, short = policy.entry_signals(
            len(dataframe), self.mm.mode, desired,
            adx=dataframe["adx"].to_numpy() if use_adx else None,
            adx_threshold=float(self.adx_threshold.value) if use_adx else None)
        dataframe["enter_long"] = long_
        dataframe["enter_short"] = short
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        dataframe["exit_short"] = 0
        return dataframe

    # ------------------------------------------------------------------ entries

    def _entry_blocked(self, pair: str, now: datetime) -> bool:
        return self.faults.blocking or self._block_reason(pair, now) is not None

    @fail_closed(False)
    def confirm_trade_entry(self, pair: str, order_type: str, amount: float, rate: float,
                            time_in_force: str, current_time: datetime, entry_tag: str | None,
                            side: str, **kwargs) -> bool:
        if self.mm.mode == "pingpong" and \
                side != policy.flat_side(self.mm.flat_side_rule, self.last_entry_side):
            return False
        if self._entry_blocked(pair, current_time):
            return False
        quote = self._quote(pair, current_time, rate, entry=True)
        if not self._live():
            # Backtesting clamps the price to the candle and re-centres the quote on it.
            return quote is not None and math.isfinite(quotes.entry_price(quote, side))
        # Live, the rate must be the model's own price for this loop's book: a price that
        # came from anywhere else (Freqtrade's proposed rate after custom_entry_price
        # failed, or its distance clamp) is refused.
        if quotes.entry_price_is_the_models(rate, quote, side):
            return True
        logger.warning("asmm: entry refused: rate %.10g is not the model's %s price (%s)",
                       rate, side, "no usable quote" if quote is None else
                       f"{quotes.entry_price(quote, side):.10g}")
        return False

    @fail_closed(0.0)
    def custom_stake_amount(self, pair: str, current_time: datetime, current_rate: float,
                            proposed_stake: float, min_stake: float | None, max_stake: float,
                            leverage: float, entry_tag: str | None, side: str,
                            **kwargs) -> float:
        if self.faults.blocking:
            return 0.0
        stake = policy.stake_for_lot(self.mm.lot_size, current_rate, leverage)
        if min_stake is not None and stake < min_stake:
            logger.error("asmm: lot_size %g is below the exchange minimum (stake %.4g < %.4g); "
                         "raise asmm.lot_size", self.mm.lot_size, stake, min_stake)
            return 0.0
        return min(stake, max_stake)

    # Freqtrade has no "no price" answer here; confirm_trade_entry refuses what follows.
    @fail_closed(lambda *_, proposed_rate, **__: proposed_rate)
    def custom_entry_price(self, pair: str, trade: Trade | None, current_time: datetime,
                           proposed_rate: float, entry_tag: str | None, side: str,
                           **kwargs) -> float:
        quote = self._quote(pair, current_time, proposed_rate, entry=True, fresh=True)
        price = quotes.entry_price(quote, side) if quote else math.nan
        if not math.isfinite(price):
            # confirm_trade_entry refuses this entry; the proposed rate is never sent.
            return proposed_rate
        self._log_quote(pair, "entry", side, price, quote, "new")
        return price

    # ------------------------------------------------------------------ exits

    def _exit_target(self, pair: str, trade: Trade, now: datetime, proposed_rate: float,
                     fresh: bool = False) -> tuple[float, quotes.Quote | None, str]:
        mid, best_bid, best_ask = self._touch(pair, proposed_rate, fresh)
        liq = guards.near_liquidation(mid, trade.liquidation_price, trade.is_short,
                                      self.mm.liquidation_buffer)
        phase = guards.kill_phase(self.kill_since, now, self.mm.kill_timeout_seconds)
        quote = self._quote(pair, now, proposed_rate, entry=False)
        # An unknown dry_run counts as live.
        through = quotes.market_through(mid, self._market(pair)[0],
                                        not self.config.get("dry_run", False))
        return quotes.choose_exit_price(quote, trade.is_short, kill=phase, near_liquidation=liq,
                                        best_bid=best_bid, best_ask=best_ask,
                                        fallback=proposed_rate, through=through)

    # An exit keeps being worked: a failure still asks for the exit at custom_exit_price.
    @fail_closed(ExitReason.QUOTE)
    def custom_exit(self, pair: str, trade: Trade, current_time: datetime, current_rate: float,
                    current_profit: float, **kwargs) -> str | None:
        mid, _, _ = self._touch(pair, current_rate)
        if guards.near_liquidation(mid, trade.liquidation_price, trade.is_short,
                                   self.mm.liquidation_buffer):
            return ExitReason.LIQUIDATION
        if self.kill_since is not None:
            return ExitReason.KILL
        return ExitReason.QUOTE

    # The documented fallback: Freqtrade's exit rate, which exit_pricing puts on our own side.
    @fail_closed(lambda *_, proposed_rate, **__: proposed_rate)
    def custom_exit_price(self, pair: str, trade: Trade, current_time: datetime,
                          proposed_rate: float, current_profit: float, exit_tag: str | None,
                          **kwargs) -> float:
        price, quote, why = self._exit_target(pair, trade, current_time, proposed_rate,
                                              fresh=True)
        self.order_time_in_force = {
            "entry": self.resting_tif,
            "exit": "GTC" if why in quotes.CROSSING_EXITS else self.resting_tif}
        self._log_quote(pair, "exit", "short" if trade.is_short else "long", price, quote, why)
        return price

    # Cancel a resting entry, keep a resting exit.
    @fail_closed(lambda *_, is_entry, current_order_rate, **__:
                 None if is_entry else current_order_rate)
    def adjust_order_price(self, trade: Trade, order: Order | None, pair: str,
                           current_time: datetime, proposed_rate: float,
                           current_order_rate: float, entry_tag: str | None, side: str,
                           is_entry: bool, **kwargs) -> float | None:
        if is_entry:
            if self._entry_blocked(pair, current_time):
                return None
            # Cancel rather than replace: Freqtrade replaces an entry with the old order's
            # stake at the new price, truncated to the amount step, so the lot would shrink a
            # step on every upward re-quote. The same loop then opens a fresh entry, a full
            # lot at the model's price (custom_stake_amount, custom_entry_price).
            return None if self._entry_requoted(pair, current_time, current_order_rate, side) \
                else current_order_rate
        new = self._exit_requote(pair, trade, current_time, current_order_rate)
        return current_order_rate if new is None else new

    def _entry_requoted(self, pair: str, now: datetime, rate: float, side: str) -> bool:
        """Whether the model's entry price (from a book read now) has moved from the resting
        entry's ``rate`` far enough to re-quote; logged when it has."""
        quote = self._quote(pair, now, rate, entry=True, fresh=True)
        new = quotes.entry_price(quote, side) if quote else math.nan
        if not policy.needs_requote(rate, new, self._market(pair)[0], self.requote_ticks.value):
            return False
        logger.info("asmm requote pair=%s kind=entry side=%s from=%.10g to=%.10g", pair,
                    side, rate, new)
        return True

    def _exit_requote(self, pair: str, trade: Trade, now: datetime, rate: float
                      ) -> float | None:
        """The exit's new price when the resting one at ``rate`` must change (it must now
        cross, or the model's price moved far enough), else None; logged when it must."""
        new, quote, why = self._exit_target(pair, trade, now, rate, fresh=True)
        if why in quotes.CROSSING_EXITS:
            if new == rate:
                return None
        elif not policy.needs_requote(rate, new, self._market(pair)[0],
                                      self.requote_ticks.value):
            return None
        self._log_quote(pair, "exit", "short" if trade.is_short else "long", new, quote, why)
        return new

    # Freqtrade calls these every loop; adjust_order_price only once it holds a candle newer
    # than the order, which at a minute boundary can be a minute away. A tripped guard must
    # not wait for that: a resting entry is cancelled, and an exit that must go at market is
    # cancelled so the same loop places it again at custom_exit_price's market price. Live,
    # the same is how the bot re-prices every loop, as the backtester's bot does: an order
    # whose model price moved is cancelled here and placed again at the new price by the
    # same loop (Freqtrade manages open orders before it exits and enters).
    @fail_closed(True)
    def check_entry_timeout(self, pair: str, trade: Trade, order: Order,
                            current_time: datetime, **kwargs) -> bool:
        if self._entry_blocked(pair, current_time):
            return True
        return self._live() and self._entry_requoted(
            pair, current_time, order.safe_price, "short" if trade.is_short else "long")

    @fail_closed(False)
    def check_exit_timeout(self, pair: str, trade: Trade, order: Order,
                           current_time: datetime, **kwargs) -> bool:
        if not self._live():
            price, _, why = self._exit_target(pair, trade, current_time, order.safe_price)
            return why in quotes.CROSSING_EXITS and price != order.safe_price
        return self._exit_requote(pair, trade, current_time, order.safe_price) is not None

    @fail_closed(None)
    def order_filled(self, pair: str, trade: Trade, order: Order, current_time: datetime,
                     **kwargs) -> None:
        if order.ft_order_side == trade.entry_side:
            self.last_entry_side = "short" if trade.is_short else "long"
        logger.info("asmm fill pair=%s side=%s order_side=%s price=%.10g amount=%g q_own=%.6g",
                    pair, "short" if trade.is_short else "long", order.ft_order_side,
                    order.safe_price, order.safe_filled, self._own_q(pair))
        if self.mm.mode != "pingpong" and self._live():
            self._share_inventory(pair, current_time)

    @fail_closed(1.0)
    def leverage(self, pair: str, current_time: datetime, current_rate: float,
                 proposed_leverage: float, max_leverage: float, entry_tag: str | None, side: str,
                 **kwargs) -> float:
        return guards.clamp_leverage(self.mm.leverage, self.mm.max_leverage, max_leverage,
                                     self.leverage_step)
