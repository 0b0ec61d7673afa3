"""The strategy fails closed: whatever goes wrong inside a hook, the hook answers the value
that opens nothing, and the cause is logged once.

The real strategy class, loaded as Freqtrade loads it, is driven hook by hook. Freqtrade's
DataProvider and Wallets stand behind an exchange; here a small stand-in serves the order
book (the only market input the hooks read), which is what lets a test make it fail. The
same faults against a real Freqtrade dry-run are in test_freqtrade.py.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("freqtrade")

from freqtrade.enums import RunMode
from freqtrade.persistence import init_db

from asmm.core.enums import ExitReason
from asmm.core.params import Params, SideIntensity, write_params
from asmm.freqtrade import quotes

ROOT = Path(__file__).resolve().parents[1]
PAIR = "BTC/USDC:USDC"
NOW = datetime.now(UTC)


def load_strategy_class():
    spec = importlib.util.spec_from_file_location(
        "avellaneda_under_test", ROOT / "user_data" / "strategies" / "avellaneda.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Avellaneda


Avellaneda = load_strategy_class()


def test_the_file_freqtrade_loads_adds_nothing_to_the_packages_strategy():
    """The strategy's code is the package's; the file only names the class for Freqtrade's
    resolver, which takes a class only from the file it loads."""
    from asmm.freqtrade.strategy import Avellaneda as Packaged

    assert Avellaneda.__bases__ == (Packaged,)
    # Beyond what Python and ABCMeta put into every class: nothing of its own. (Python
    # creates an empty __annotations__ the first time it is read, as constructing a
    # strategy does: it is there once any earlier test has started one.)
    assert set(vars(Avellaneda)) <= {"__module__", "__doc__", "__abstractmethods__", "_abc_impl",
                                     "__annotations__"}
    assert not getattr(Avellaneda, "__annotations__", {})


class Market:
    """Stands in for Freqtrade's DataProvider (order book, market, candles) and Wallets."""

    runmode = RunMode.DRY_RUN

    def __init__(self, bid=99_999.0, ask=100_001.0):
        self.bid, self.ask = bid, ask
        self.bid_size = self.ask_size = 1.0
        self.fail: Exception | None = None

    def orderbook(self, pair, depth):
        if self.fail:
            raise self.fail
        return {"bids": [[self.bid, self.bid_size]], "asks": [[self.ask, self.ask_size]]}

    def market(self, pair):
        return {"precision": {"price": 1.0}, "maker": 0.00015}

    def get_analyzed_dataframe(self, pair, timeframe):
        return pd.DataFrame(), None

    def get_starting_balance(self):
        return 10_000.0


def good_params(path: Path, **over) -> Params:
    kw = dict(coin="BTC", model="glft", computed_at=NOW - timedelta(minutes=5),
              valid_until=NOW + timedelta(hours=2),
              data_window=(NOW - timedelta(days=1), NOW - timedelta(minutes=5)),
              mid_price=100_000.0, sigma=6.8, gamma=0.05, bid=SideIntensity(0.5, 0.5),
              ask=SideIntensity(0.5, 0.5))
    kw.update(over)
    p = Params(**kw)
    write_params(path, p)
    return p


@pytest.fixture
def strategy(tmp_path, monkeypatch):
    """A started strategy (bot_start ran against an empty trade database) on a live book."""
    monkeypatch.chdir(tmp_path)
    init_db("sqlite://")
    params_file = tmp_path / "params.json"
    good_params(params_file)
    config = {"stake_currency": "USDC", "dry_run": True, "trading_mode": "futures",
              "exchange": {"pair_whitelist": [PAIR]},
              "asmm": {"params_file": str(params_file),
                       "kill_switch_file": str(tmp_path / "KILL")}}
    s = Avellaneda(config)
    market = Market()
    s.dp = market
    s.wallets = market
    s.bot_start()
    s.params_file = params_file
    s.market = market
    return s


def loop(s, now=None):
    s.bot_loop_start(current_time=now or datetime.now(UTC))


def entry_kwargs(rate, side="long"):
    return dict(pair=PAIR, order_type="limit", amount=0.001, rate=rate, time_in_force="GTC",
                current_time=datetime.now(UTC), entry_tag=None, side=side)


def model_entry_price(s, side="long") -> float:
    q = s._quote(PAIR, datetime.now(UTC), 100_000.0, entry=True)
    assert q is not None
    return quotes.entry_price(q, side)


class Trade_:
    """The fields of a Freqtrade Trade the exit hooks read."""

    pair = PAIR
    is_short = False
    liquidation_price = None
    amount = 0.001


class Order_:
    safe_price = 100_010.0


# (hook, arguments, the value that opens nothing). Exits are managed, not dropped:
# custom_exit asks for the exit, custom_exit_price falls back to Freqtrade's exit rate, a
# resting exit keeps resting.
HOOKS = [
    ("confirm_trade_entry", lambda: entry_kwargs(99_990.0), False),
    ("custom_entry_price",
     lambda: dict(pair=PAIR, trade=None, current_time=datetime.now(UTC), proposed_rate=123.0,
                  entry_tag=None, side="long"), 123.0),
    ("custom_stake_amount",
     lambda: dict(pair=PAIR, current_time=datetime.now(UTC), current_rate=1e5,
                  proposed_stake=50.0, min_stake=1.0, max_stake=1e4, leverage=1.0,
                  entry_tag=None, side="long"), 0.0),
    ("leverage",
     lambda: dict(pair=PAIR, current_time=datetime.now(UTC), current_rate=1e5,
                  proposed_leverage=3.0, max_leverage=10.0, entry_tag=None, side="long"), 1.0),
    ("adjust_order_price",
     lambda: dict(trade=Trade_(), order=Order_(), pair=PAIR, current_time=datetime.now(UTC),
                  proposed_rate=1e5, current_order_rate=99_990.0, entry_tag=None, side="long",
                  is_entry=True), None),
    ("adjust_order_price",
     lambda: dict(trade=Trade_(), order=Order_(), pair=PAIR, current_time=datetime.now(UTC),
                  proposed_rate=1e5, current_order_rate=100_010.0, entry_tag=None,
                  side="long", is_entry=False), 100_010.0),
    ("check_entry_timeout",
     lambda: dict(pair=PAIR, trade=Trade_(), order=Order_(), current_time=datetime.now(UTC)),
     True),
    ("check_exit_timeout",
     lambda: dict(pair=PAIR, trade=Trade_(), order=Order_(), current_time=datetime.now(UTC)),
     False),
    ("custom_exit",
     lambda: dict(pair=PAIR, trade=Trade_(), current_time=datetime.now(UTC), current_rate=1e5,
                  current_profit=0.0), ExitReason.QUOTE),
    ("custom_exit_price",
     lambda: dict(pair=PAIR, trade=Trade_(), current_time=datetime.now(UTC),
                  proposed_rate=100_002.0, current_profit=0.0, exit_tag=None), 100_002.0),
    ("bot_loop_start", lambda: dict(current_time=datetime.now(UTC)), None),
    ("order_filled",
     lambda: dict(pair=PAIR, trade=Trade_(), order=Order_(), current_time=datetime.now(UTC)),
     None),
]


@pytest.mark.parametrize("hook, kwargs, safe", HOOKS,
                         ids=[f"{h}-{i}" for i, (h, _, _) in enumerate(HOOKS)])
def test_a_hook_that_cannot_work_answers_the_value_that_opens_nothing(hook, kwargs, safe,
                                                                       caplog):
    # Never started: every attribute the hooks use is missing, so each one raises inside.
    s = Avellaneda({"stake_currency": "USDC", "dry_run": True,
                    "exchange": {"pair_whitelist": [PAIR]}})
    with caplog.at_level(logging.WARNING):
        assert getattr(s, hook)(**kwargs()) == safe
    lines = [r.getMessage() for r in caplog.records if "no new entries" in r.getMessage()]
    assert lines == [f"asmm: no new entries: {hook} raised AttributeError: "
                     f"{lines[0].split('AttributeError: ', 1)[1]}"]
    assert s.faults.blocking


def test_dataframe_hooks_fail_to_no_signal():
    s = Avellaneda({"stake_currency": "USDC", "dry_run": True,
                    "exchange": {"pair_whitelist": [PAIR]}})
    df = pd.DataFrame({"date": pd.date_range("2025-09-01", periods=3, freq="1min", tz=UTC),
                       "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0})
    out = s.populate_entry_trend(s.populate_indicators(df.copy(), {"pair": PAIR}),
                                 {"pair": PAIR})
    assert out["enter_long"].tolist() == [0, 0, 0] and out["enter_short"].tolist() == [0, 0, 0]
    assert math.isinf(out["adx"].iloc[-1])  # reads as trending, if the ADX filter is on


def test_control_a_healthy_strategy_enters_at_the_models_price_only(strategy):
    s = strategy
    loop(s)
    price = model_entry_price(s)
    assert s.custom_entry_price(pair=PAIR, trade=None, current_time=datetime.now(UTC),
                                proposed_rate=100_000.0, entry_tag=None, side="long") == price
    assert s.confirm_trade_entry(**entry_kwargs(price)) is True
    # Freqtrade's own proposed rate (what it sends when custom_entry_price failed) or a
    # price its distance clamp moved is not the model's: refused.
    assert s.confirm_trade_entry(**entry_kwargs(100_000.0)) is False
    assert s.confirm_trade_entry(**entry_kwargs(price - 2.0)) is False


def test_an_exchange_error_in_the_loop_blocks_entries_then_clears(strategy, caplog):
    s = strategy
    loop(s)
    price = model_entry_price(s)
    s.market.fail = ConnectionError("order book request timed out")
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            loop(s)
            assert s.confirm_trade_entry(**entry_kwargs(price)) is False
            assert s.custom_stake_amount(**HOOKS[2][1]()) == 0.0
            assert s.check_entry_timeout(**HOOKS[6][1]()) is True
        s.market.fail = None
        loop(s)  # the loop after a fault still blocks: every hook of it agrees
        assert s.confirm_trade_entry(**entry_kwargs(price)) is False
        loop(s)
        assert s.confirm_trade_entry(**entry_kwargs(price)) is True
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # One line for the cause, naming it, however many loops it lasted: the entry hooks
    # after it see the block and never reach the failing call.
    assert warnings == ["asmm: no new entries: bot_loop_start raised ConnectionError: "
                        "order book request timed out"]
    assert any("entries no longer blocked by faults" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("damage, cause", [
    (lambda p: p.write_bytes(b"\xff\xfe junk"), "is not UTF-8"),
    (lambda p: (p.unlink(), p.mkdir()), "is a folder, not a file"),
    (lambda p: p.write_text("{"), "is not valid JSON"),
    (lambda p: good_params(p, coin="ETH", mid_price=4000.0, sigma=0.3, gamma=1.0,
                           bid=SideIntensity(0.5, 10.0), ask=SideIntensity(0.5, 10.0)),
     "parameter file is for ETH, the bot trades BTC"),
    (lambda p: good_params(p, mid_price=106_000.0), "% from the live mid"),
    (lambda p: good_params(p, computed_at=NOW - timedelta(days=3),
                           data_window=(NOW - timedelta(days=4), NOW - timedelta(days=3)),
                           valid_until=NOW + timedelta(hours=1)),
     "is the collector running?"),
    (lambda p: good_params(p, valid_until=NOW - timedelta(seconds=1),
                           computed_at=NOW - timedelta(hours=1),
                           data_window=(NOW - timedelta(days=1), NOW - timedelta(hours=1))),
     "expired at"),
])
def test_a_good_file_replaced_by_an_unusable_one_stops_entries_and_says_why(strategy, caplog,
                                                                            damage, cause):
    s = strategy
    loop(s)
    price = model_entry_price(s)
    assert s.confirm_trade_entry(**entry_kwargs(price)) is True  # the good file, cached
    damage(s.params_file)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            loop(s)
            assert s.confirm_trade_entry(**entry_kwargs(price)) is False
            assert s.check_entry_timeout(**HOOKS[6][1]()) is True
            assert s.adjust_order_price(**HOOKS[4][1]()) is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("asmm: no new entries: ") \
        and cause in lines[0], lines
    # Nothing raised: the faults record is untouched, the block is the guard's own.
    assert not s.faults.blocking
    # Exits are still priced (passive fallback at our own touch without usable parameters).
    assert s.custom_exit_price(**HOOKS[9][1]()) == 100_001.0


def test_microprice_reference_centres_the_quote_and_needs_the_files_table(strategy, caplog):
    """asmm.reference microprice: the quote centres on mid + the file's adjustment for the
    touch's imbalance; a file without a microprice blocks entries (never the mid instead)."""
    s = strategy
    loop(s)
    at_mid = s._quote(PAIR, datetime.now(UTC), 100_000.0, entry=True)
    s.mm = dataclasses.replace(s.mm, reference="microprice")
    with caplog.at_level(logging.WARNING):
        loop(s)
        assert s.confirm_trade_entry(**entry_kwargs(at_mid.bid)) is False
    assert any("has none" in r.getMessage() for r in caplog.records)
    table = {"horizon_seconds": 10.0, "buckets": 2, "adjustment": [-0.4, 0.4],
             "se": [0.1, 0.1], "n": [100, 100], "spread_ticks": 1}
    good_params(s.params_file, microprice=table)
    s.market.bid_size, s.market.ask_size = 9.0, 1.0  # bid-heavy: the upper bucket, +0.4
    loop(s)
    shifted = s._quote(PAIR, datetime.now(UTC), 100_000.0, entry=True)
    assert shifted.mid == at_mid.mid + 0.4
    assert s.confirm_trade_entry(**entry_kwargs(quotes.entry_price(shifted, "long"))) is True


VERDICT = {"execution": "two-sided", "maker_fee": 0.00015, "taker_fee": 0.00045,
           "gamma_source": "walk-forward", "tested_hours": 24.0, "in_sample": False,
           "expected_fills_per_hour": 3.1, "expected_pnl_per_hour": -0.04,
           "markout_10s_bp": -0.2, "profitable": False, "break_even_maker_fee": -2e-05}


@pytest.mark.parametrize("dry_run, verdict, blocked_by", [
    (False, None, "has no verdict"),
    (False, VERDICT, "verdict is unprofitable at maker fee 1.5 bp (-0.04 USDC/h at 3.1 "
                     "fills/h; break-even maker fee -0.2 bp)"),
    (False, {**VERDICT, "expected_pnl_per_hour": 0.5, "profitable": True}, None),
    (True, VERDICT, None),  # dry-run: off by default, to watch why it loses
])
def test_a_live_bot_requires_a_profitable_verdict(strategy, caplog, dry_run, verdict,
                                                  blocked_by):
    s = strategy
    s.mm = s.mm.__class__.from_dict({**s.config["asmm"]}).resolved(dry_run)
    good_params(s.params_file, verdict=verdict)
    with caplog.at_level(logging.WARNING):
        loop(s)
        allowed = s.confirm_trade_entry(**entry_kwargs(model_entry_price(s)
                                                       if blocked_by is None else 1.0))
    if blocked_by is None:
        assert allowed is True
    else:
        assert allowed is False
        assert any(blocked_by in r.getMessage() for r in caplog.records), caplog.text


@pytest.mark.parametrize("asmm, fee, said", [
    ({}, 0.00015, "1.5 bp (the exchange's market[\"maker\"])"),
    ({"fee_tier": "hyperliquid:2"}, 0.00008, "0.8 bp (asmm.fee_tier hyperliquid:2)"),
    ({"fee_tier": "hyperliquid:2", "maker_fee": 0.0}, 0.0,
     "0 bp (asmm.maker_fee; overrides asmm.fee_tier hyperliquid:2)"),
])
def test_the_bot_says_at_start_which_maker_fee_it_quotes_with(strategy, caplog, asmm, fee,
                                                              said):
    s = strategy
    s.config["asmm"].update(asmm)
    with caplog.at_level(logging.INFO):
        s.bot_start()
    assert [r.getMessage() for r in caplog.records if "maker fee" in r.getMessage()] == \
        [f"asmm: quoting with maker fee {said}"]
    loop(s)
    assert s._quote(PAIR, datetime.now(UTC), 100_000.0, entry=True).maker_fee == fee


def test_the_bots_inventory_bound_is_the_calibrators_and_the_backtesters():
    from asmm.calibrate.config import CalibrationConfig
    from asmm.core.settings import MAX_INVENTORY_LOTS
    from asmm.sim.config import BacktestConfig

    def default(cls):
        return next(f.default for f in dataclasses.fields(cls) if f.name == "max_inventory")

    p = Avellaneda.max_inventory_lots
    assert p.value == MAX_INVENTORY_LOTS == default(BacktestConfig) == default(CalibrationConfig)
    assert p.low <= p.value <= p.high
