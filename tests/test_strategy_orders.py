"""How the strategy sends its orders live: priced from a book read for each order, post-only
(a marketable exit excepted), and re-priced every loop through Freqtrade's timeout hooks.

The real strategy class driven hook by hook, with test_strategy_fail_closed's stand-in for
Freqtrade's DataProvider; the same against a real Freqtrade on the paper exchange is in
test_paper_freqtrade.py.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

pytest.importorskip("freqtrade")

from freqtrade.enums import RunMode
from freqtrade.persistence import init_db
from test_strategy_fail_closed import (
    PAIR,
    Avellaneda,
    Market,
    Order_,
    Trade_,
    entry_kwargs,
    good_params,
    loop,
)

from asmm.freqtrade import policy


class CountingMarket(Market):
    """The stand-in book, counting the order-book requests."""

    def __init__(self, runmode: RunMode):
        super().__init__()
        self.runmode = runmode
        self.reads = 0

    def orderbook(self, pair, depth):
        self.reads += 1
        return super().orderbook(pair, depth)


def started(tmp_path, monkeypatch, *, live: bool, exchange: str = "hyperliquid", **asmm):
    monkeypatch.chdir(tmp_path)
    init_db("sqlite://")
    params_file = tmp_path / "params.json"
    good_params(params_file)
    config = {"stake_currency": "USDC", "dry_run": not live, "trading_mode": "futures",
              "exchange": {"name": exchange, "pair_whitelist": [PAIR]},
              "asmm": {"params_file": str(params_file), "require_profitable": False,
                       "kill_switch_file": str(tmp_path / "KILL"), **asmm}}
    s = Avellaneda(config)
    s.market = s.dp = s.wallets = CountingMarket(RunMode.LIVE if live else RunMode.DRY_RUN)
    s.bot_start()
    return s


def entry_price(s, side="long") -> float:
    return s.custom_entry_price(pair=PAIR, trade=None, current_time=datetime.now(UTC),
                                proposed_rate=100_000.0, entry_tag=None, side=side)


def test_an_entry_is_priced_from_a_book_read_for_it_and_confirmed_on_that_book(
        tmp_path, monkeypatch):
    s = started(tmp_path, monkeypatch, live=True)
    loop(s)
    before = entry_price(s)
    reads = s.market.reads
    # The touch moves between the loop's start and the order: the order follows it.
    s.market.bid, s.market.ask = 100_009.0, 100_011.0
    price = entry_price(s)
    assert s.market.reads == reads + 1
    assert price == pytest.approx(before + 10.0)
    # confirm_trade_entry checks the price against the book the price came from (no new
    # read: Freqtrade sends the order right after it).
    assert s.confirm_trade_entry(**entry_kwargs(price)) is True
    assert s.market.reads == reads + 1


@pytest.mark.parametrize("live, exchange, tif", [
    (True, "hyperliquid", "ALO"),   # ccxt's Hyperliquid client sends it as "Alo"
    (True, "bybit", "PO"),          # ccxt's unified post-only
    (False, "hyperliquid", "GTC"),  # Freqtrade's dry-run knows no post-only
])
def test_orders_rest_post_only_live(tmp_path, monkeypatch, live, exchange, tif):
    s = started(tmp_path, monkeypatch, live=live, exchange=exchange)
    assert s.order_time_in_force == {"entry": tif, "exit": tif}
    assert policy.time_in_force(exchange, live) == tif


@pytest.mark.parametrize("exchange, leverage", [
    ("hyperliquid", 2.0),  # whole numbers only
    ("bybit", 2.5),        # instruments-info's leverageStep: 0.01
])
def test_leverage_is_rounded_down_to_the_exchanges_step(tmp_path, monkeypatch, exchange,
                                                        leverage):
    s = started(tmp_path, monkeypatch, live=True, exchange=exchange, leverage=2.5,
                max_leverage=3.0)
    asked = s.leverage(pair=PAIR, current_time=datetime.now(UTC), current_rate=100_000.0,
                       proposed_leverage=1.0, max_leverage=50.0, entry_tag=None, side="long")
    assert asked == leverage


def test_post_only_can_be_turned_off(tmp_path, monkeypatch):
    s = started(tmp_path, monkeypatch, live=True, post_only=False)
    assert s.order_time_in_force == {"entry": "GTC", "exit": "GTC"}


def test_a_market_exit_is_sent_gtc_and_a_model_exit_post_only(tmp_path, monkeypatch):
    s = started(tmp_path, monkeypatch, live=True)
    loop(s)
    exit_kwargs = dict(pair=PAIR, trade=Trade_(), current_time=datetime.now(UTC),
                       proposed_rate=100_001.0, current_profit=0.0, exit_tag=None)
    s.custom_exit_price(**exit_kwargs)
    assert s.order_time_in_force["exit"] == "ALO"
    (tmp_path / "KILL").touch()
    s.mm = type(s.mm)(**{**vars(s.mm), "kill_timeout_seconds": 1e-9})
    loop(s)
    price = s.custom_exit_price(**{**exit_kwargs, "current_time": datetime.now(UTC)})
    assert price < 99_999.0  # through the bid: it must cross
    assert s.order_time_in_force == {"entry": "ALO", "exit": "GTC"}
    # Back to the model's price: post-only again.
    (tmp_path / "KILL").unlink()
    loop(s)
    s.custom_exit_price(**exit_kwargs)
    assert s.order_time_in_force["exit"] == "ALO"


@pytest.mark.parametrize("runmode_live", [True, False])
def test_a_resting_entry_is_re_priced_every_loop_when_the_model_moved(tmp_path, monkeypatch,
                                                                      caplog, runmode_live):
    s = started(tmp_path, monkeypatch, live=runmode_live)
    loop(s)
    resting = Order_()
    resting.safe_price = entry_price(s)
    kwargs = dict(pair=PAIR, trade=Trade_(), order=resting, current_time=datetime.now(UTC))
    assert s.check_entry_timeout(**kwargs) is False  # the price still stands
    s.market.bid, s.market.ask = 100_004.0, 100_006.0
    loop(s)
    with caplog.at_level(logging.INFO):
        assert s.check_entry_timeout(**kwargs) is True
    (line,) = [r.getMessage() for r in caplog.records if "asmm requote" in r.getMessage()]
    assert f"from={resting.safe_price:.10g} to={resting.safe_price + 5:.10g}" in line


def test_a_resting_exit_is_re_priced_when_the_model_moved(tmp_path, monkeypatch):
    s = started(tmp_path, monkeypatch, live=True)
    loop(s)
    exit_kwargs = dict(pair=PAIR, trade=Trade_(), current_time=datetime.now(UTC),
                       proposed_rate=100_001.0, current_profit=0.0, exit_tag=None)
    resting = Order_()
    resting.safe_price = s.custom_exit_price(**exit_kwargs)
    kwargs = dict(pair=PAIR, trade=Trade_(), order=resting, current_time=datetime.now(UTC))
    assert s.check_exit_timeout(**kwargs) is False
    s.market.bid, s.market.ask = 99_989.0, 99_991.0
    loop(s)
    assert s.check_exit_timeout(**kwargs) is True
    assert s.custom_exit_price(**exit_kwargs) == pytest.approx(resting.safe_price - 10.0)
