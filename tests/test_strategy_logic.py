"""Unit tests of asmm.freqtrade, the strategy's rules (no Freqtrade process here)."""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from asmm.core.errors import ConfigError, SharedStateError
from asmm.core.model import quotes as model_quotes
from asmm.core.params import Params, ParamsExpiredError, SideIntensity
from asmm.freqtrade import config, guards, indicators, policy, quotes, shared_state

NOW = datetime(2025, 9, 1, 12, 0, 0, tzinfo=UTC)


def make_params(model="glft", gamma=0.05, valid_hours=24.0) -> Params:
    return Params(coin="BTC", model=model, computed_at=NOW - timedelta(hours=1),
                  valid_until=NOW + timedelta(hours=valid_hours),
                  data_window=(NOW - timedelta(days=1), NOW - timedelta(hours=1)),
                  mid_price=100_000.0, sigma=6.8, gamma=gamma,
                  bid=SideIntensity(0.5, 0.5), ask=SideIntensity(0.4, 0.3))


# ------------------------------------------------------------------ config

def test_config_defaults_are_valid_and_unknown_keys_rejected():
    cfg = config.MMConfig.from_dict(None)
    assert cfg.mode == "pingpong" and cfg.leverage == 1.0 and cfg.max_leverage == 3.0
    with pytest.raises(ConfigError, match=r"unknown asmm config keys.*lot_szie"):
        config.MMConfig.from_dict({"lot_szie": 1})


@pytest.mark.parametrize("doc, match", [
    ({"mode": "both"}, "asmm.mode"),
    ({"flat_side_rule": "random"}, "flat_side_rule"),
    ({"lot_size": 0}, "lot_size"),
    ({"leverage": 5.0}, "leverage"),
    ({"mode": "long"}, "shared_state_dir"),
    ({"max_improve_ticks": -1}, "max_improve_ticks"),
    ({"liquidation_buffer": float("nan")}, "liquidation_buffer"),
])
def test_config_rejects_bad_values_naming_the_key(doc, match):
    with pytest.raises(ConfigError, match=match):
        config.MMConfig.from_dict(doc)


def test_config_fee_tier_must_name_a_known_tier():
    assert config.MMConfig.from_dict({"fee_tier": "hyperliquid:2+gold"}).fee_tier == \
        "hyperliquid:2+gold"
    with pytest.raises(ConfigError, match=r"asmm.fee_tier: unknown fee tier 'hyperliquid:9'"
                                          r".*hyperliquid:0..6.*bybit:vip0"):
        config.MMConfig.from_dict({"fee_tier": "hyperliquid:9"})
    with pytest.raises(ConfigError, match=r"asmm\.fee_tier = 2 must be a tier name"):
        config.MMConfig.from_dict({"fee_tier": 2})


@pytest.mark.parametrize("doc, fee, source", [
    # asmm.maker_fee first, even beside a tier (and the log says it overrides the tier)
    ({"maker_fee": 0.0001, "fee_tier": "hyperliquid:2"}, 0.0001,
     "asmm.maker_fee; overrides asmm.fee_tier hyperliquid:2"),
    ({"maker_fee": 0.0}, 0.0, "asmm.maker_fee"),  # 0 is a fee, not "unset"
    # then the tier's rate
    ({"fee_tier": "hyperliquid:2"}, 0.00008, "asmm.fee_tier hyperliquid:2"),
    ({"fee_tier": "hyperliquid:0+mm1"}, -0.00001, "asmm.fee_tier hyperliquid:0+mm1"),
    # then the exchange's market["maker"], as before fee_tier existed
    ({}, 0.00015, 'the exchange\'s market["maker"]'),
])
def test_maker_fee_precedence(doc, fee, source):
    cfg = config.MMConfig.from_dict(doc)
    assert quotes.maker_fee(cfg, 0.00015) == (pytest.approx(fee, abs=1e-15), source)


def test_maker_fee_without_one_from_the_exchange_is_zero():
    assert quotes.maker_fee(config.MMConfig(), None)[0] == 0.0


# ------------------------------------------------------------------ sides and signals

def test_inventory_lots_sign_and_scale():
    assert policy.inventory_lots(0.002, False, 0.001) == pytest.approx(2.0)
    assert policy.inventory_lots(0.001, True, 0.001) == pytest.approx(-1.0)


def test_stake_for_lot_and_touch():
    # 0.001 BTC at 100,000 USDC with 2x leverage needs 50 USDC of margin.
    assert policy.stake_for_lot(0.001, 100_000.0, 2.0) == pytest.approx(50.0)
    assert quotes.touch([[99.0, 1.0], [98.0, 2.0]], [[101.0, 1.0]]) == (100.0, 99.0, 101.0)


def test_flat_side_alternates_after_each_entry():
    assert policy.flat_side("alternate", None) == "long"
    assert policy.flat_side("alternate", "long") == "short"
    assert policy.flat_side("alternate", "short") == "long"
    assert policy.flat_side("short", "short") == "short"
    assert policy.flat_side("long", "long") == "long"


def test_entry_signals_offer_exactly_one_side_per_candle_in_pingpong():
    long_, short = policy.entry_signals(7, "pingpong", "short")
    assert np.all(long_ + short == 1)  # Freqtrade ignores a candle with both signals
    assert long_[-1] == 0 and short[-1] == 1  # the latest candle carries the wanted side
    assert set(long_[:-1].tolist()) == {0, 1}  # history offers both sides
    long_, short = policy.entry_signals(3, "long", "short")
    assert long_.tolist() == [1, 1, 1] and short.tolist() == [0, 0, 0]
    long_, short = policy.entry_signals(3, "short", "long")
    assert long_.tolist() == [0, 0, 0] and short.tolist() == [1, 1, 1]
    assert policy.entry_signals(0, "pingpong", "long")[0].size == 0
    adx = np.array([np.nan, 10.0, 30.0, 25.0])
    long_, short = policy.entry_signals(4, "long", "long", adx=adx, adx_threshold=25.0)
    assert long_.tolist() == [1, 1, 0, 1] and short.tolist() == [0, 0, 0, 0]
    long_, short = policy.entry_signals(4, "pingpong", "long", adx=adx, adx_threshold=25.0)
    assert (long_ + short).tolist() == [1, 1, 0, 1]


# ------------------------------------------------------------------ quotes

def test_tau_is_seconds_to_the_end_of_the_utc_day():
    assert policy.tau_seconds(NOW, 86400.0) == pytest.approx(12 * 3600.0)
    assert policy.tau_seconds(NOW + timedelta(minutes=30), 3600.0) == pytest.approx(1800.0)
    midnight = datetime(2025, 9, 2, tzinfo=UTC)
    assert policy.tau_seconds(midnight, 86400.0) == pytest.approx(86400.0)


@pytest.mark.parametrize("model", ["glft", "as"])
def test_model_quote_is_exactly_asmm_model(model):
    p = make_params(model)
    cfg = config.MMConfig(min_spread_ticks=2, max_improve_ticks=0)
    got = quotes.model_quote(p, cfg, mid=100_000.5, q=1.0, now=NOW, tick=1.0, maker_fee=0.00015,
                         gamma_multiplier=2.0, max_inventory=3.0, best_bid=100_000.0,
                         best_ask=100_001.0)
    ref = model_quotes(model, 100_000.5, 1.0, sigma=6.8, gamma=0.1, A_bid=0.5, k_bid=0.5, A_ask=0.4,
                 k_ask=0.3, tau=12 * 3600.0, maker_fee=0.00015, tick=1.0, max_inventory=3.0,
                 min_spread=2.0, best_bid=100_000.0, best_ask=100_001.0, max_improve_ticks=0)
    assert (got.bid, got.ask) == (float(ref.bid), float(ref.ask))
    assert got.gamma == pytest.approx(0.1) and got.q == 1.0
    # A long inventory skews both quotes down relative to flat.
    flat = quotes.model_quote(p, cfg, mid=100_000.5, q=0.0, now=NOW, tick=1.0, maker_fee=0.00015,
                          gamma_multiplier=2.0, max_inventory=3.0)
    assert got.ask <= flat.ask
    assert quotes.entry_price(got, "long") == got.bid
    assert quotes.entry_price(got, "short") == got.ask
    assert quotes.exit_price(got, is_short=False) == got.ask
    assert quotes.exit_price(got, is_short=True) == got.bid


def test_inventory_bound_blocks_the_side_that_would_exceed_it():
    q = quotes.model_quote(make_params(), config.MMConfig(), mid=100_000.0, q=1.0, now=NOW,
                           tick=1.0, maker_fee=0.0, max_inventory=1.0)
    assert math.isnan(quotes.entry_price(q, "long"))      # a second long lot would make q = 2
    assert math.isfinite(quotes.exit_price(q, is_short=False))  # reducing is always allowed


def test_log_fields_round_trip_reproduces_the_quote():
    p = make_params()
    q = quotes.model_quote(p, config.MMConfig(), mid=100_000.5, q=-1.0, now=NOW, tick=1.0,
                       maker_fee=0.00015, best_bid=100_000.0, best_ask=100_001.0,
                       max_inventory=2.0)
    fields = {k: float(v) for k, v in (kv.split("=") for kv in q.log_fields().split())}
    ref = model_quotes(p.model, fields["mid"], fields["q"], sigma=p.sigma, gamma=fields["gamma"],
                 A_bid=0.5, k_bid=0.5, A_ask=0.4, k_ask=0.3, tau=fields["tau"],
                 tick=fields["tick"], maker_fee=fields["maker_fee"],
                 best_bid=fields["best_bid"], best_ask=fields["best_ask"],
                 max_improve_ticks=0.0, min_spread=1.0, max_inventory=fields["max_inventory"])
    assert math.isfinite(fields["ask"])
    assert fields["bid"] == float(ref.bid) and fields["ask"] == float(ref.ask)


def test_needs_requote_threshold_in_ticks():
    assert not policy.needs_requote(100.0, 100.5, 1.0, 1)
    assert policy.needs_requote(100.0, 101.0, 1.0, 1)
    assert not policy.needs_requote(100.0, 101.0, 1.0, 2)
    assert policy.needs_requote(100.0, 100.0 + 0.1 * 3, 0.1, 3)  # float noise must not block it
    assert policy.needs_requote(100.0, 100.0, 1.0, 0) is True
    assert not policy.needs_requote(100.0, math.nan, 1.0, 1)


def test_choose_exit_price_by_situation():
    p = make_params()
    quote = quotes.model_quote(p, config.MMConfig(), mid=100_000.5, q=1.0, now=NOW, tick=1.0,
                           maker_fee=0.0, best_bid=100_000.0, best_ask=100_001.0)
    kw = dict(best_bid=100_000.0, best_ask=100_001.0, fallback=99_000.0)
    assert quotes.choose_exit_price(quote, False, kill="off", near_liquidation=False, **kw)[:1] == \
        (quote.ask,)
    assert quotes.choose_exit_price(quote, False, kill="work", near_liquidation=False, **kw)[2] == \
        "model"
    # Market: a long sells at the best bid, a short buys at the best ask (marketable limits).
    assert quotes.choose_exit_price(quote, False, kill="market", near_liquidation=False,
                                    **kw)[:3:2] \
        == (100_000.0, "market")
    assert quotes.choose_exit_price(quote, True, kill="off", near_liquidation=True, **kw)[:3:2] \
        == (100_001.0, "liquidation")
    # No usable parameters: rest at our own touch so the position is still worked down.
    assert quotes.choose_exit_price(None, False, kill="off", near_liquidation=False, **kw)[:3:2] \
        == (100_001.0, "passive")
    # Backtesting has no book: the candle price stands in.
    assert quotes.choose_exit_price(None, True, kill="market", near_liquidation=False,
                                best_bid=math.nan, best_ask=math.nan, fallback=99_000.0)[0] \
        == 99_000.0
    # Live, a market exit goes 1 % of the mid through the touch, in whole ticks: the book it
    # read is a loop old when the order arrives, and the exchange fills at the book's prices.
    through = quotes.market_through(100_000.5, 1.0, live=True)
    assert through == 1_000.0 and quotes.market_through(100_000.5, 1.0, live=False) == 0.0
    assert quotes.market_through(math.nan, 1.0, live=True) == 0.0
    assert quotes.choose_exit_price(quote, False, kill="market", near_liquidation=False,
                                    through=through, **kw)[0] == 99_000.0
    assert quotes.choose_exit_price(quote, True, kill="off", near_liquidation=True,
                                    through=through, **kw)[0] == 101_001.0
    # The model's own exits are never pushed through.
    assert quotes.choose_exit_price(quote, False, kill="work", near_liquidation=False,
                                    through=through, **kw)[0] == quote.ask


def test_tick_from_precision():
    assert quotes.tick_from_precision(1.0, None) == 1.0
    assert quotes.tick_from_precision(1.0, 0.5) == 0.5
    with pytest.raises(ConfigError, match=r"asmm\.tick"):
        quotes.tick_from_precision(None, None)


# ------------------------------------------------------------------ guards

def test_kill_phase_moves_to_market_after_the_timeout():
    assert guards.kill_phase(None, NOW, 60) == "off"
    assert guards.kill_phase(NOW, NOW + timedelta(seconds=59), 60) == "work"
    assert guards.kill_phase(NOW, NOW + timedelta(seconds=60), 60) == "market"


def test_near_liquidation_both_directions():
    # Long liquidated at 90: at 94 the price is 4.3 % away, inside a 5 % buffer.
    assert guards.near_liquidation(94.0, 90.0, False, 0.05)
    assert not guards.near_liquidation(100.0, 90.0, False, 0.05)
    assert guards.near_liquidation(106.0, 110.0, True, 0.05)
    assert not guards.near_liquidation(100.0, 110.0, True, 0.05)
    assert not guards.near_liquidation(100.0, None, True, 0.05)


def test_drawdown_guard_is_sticky():
    g = guards.DrawdownGuard(0.10)
    assert not g.update(1000.0) and not g.update(1100.0)
    assert not g.update(1000.0)         # 9.1 % below the 1100 peak
    assert g.update(989.0)              # 10.09 %
    assert g.update(2000.0)             # stays tripped
    assert not guards.DrawdownGuard(0.10).update(float("nan"))  # no equity known: no trip


def test_clamp_leverage_integer_within_limits():
    assert guards.clamp_leverage(2.7, 3.0, 40.0) == 2.0
    assert guards.clamp_leverage(3.0, 3.0, 2.0) == 2.0
    assert guards.clamp_leverage(1.0, 3.0, 40.0) == 1.0


def test_clamp_leverage_to_a_fractional_step():
    # 2.3 / 0.01 is 229.99999999999997 in floats: a bare floor would give 2.29.
    assert guards.clamp_leverage(2.3, 10.0, 100.0, 0.01) == 2.3
    assert guards.clamp_leverage(2.567, 10.0, 100.0, 0.01) == 2.56
    assert guards.clamp_leverage(12.5, 10.0, 100.0, 0.01) == 10.0
    assert guards.clamp_leverage(7.5, 10.0, 6.25, 0.01) == 6.25  # the exchange's cap
    assert guards.clamp_leverage(0.5, 3.0, 40.0, 0.01) == 1.0


def test_adx_matches_talib():
    # TA-Lib (installed with Freqtrade) is the public reference implementation of Wilder's
    # ADX; same recursion, so the values agree to float round-off.
    talib = pytest.importorskip("talib")
    rng = np.random.default_rng(3)
    close = 100 + np.cumsum(rng.normal(0, 1, 300))
    high = close + rng.uniform(0, 1, 300)
    low = close - rng.uniform(0, 1, 300)
    ours = indicators.adx(high, low, close, 14)
    ref = talib.ADX(high, low, close, timeperiod=14)
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours[~np.isnan(ours)], ref[~np.isnan(ref)], rtol=1e-9)


def test_adx_high_in_a_trend_low_in_a_range():
    n = 200
    trend = np.arange(n, dtype=float)
    assert indicators.adx(trend + 0.5, trend - 0.5, trend, 14)[-1] > 90
    rng = np.random.default_rng(0)
    flat = 100 + rng.normal(0, 0.5, n)
    assert indicators.adx(flat + 0.5, flat - 0.5, flat, 14)[-1] < 25


def test_adx_on_timeframe_has_no_lookahead():
    n = 5 * 60
    dates = pd.date_range("2025-09-01", periods=n, freq="1min", tz="UTC")
    close = np.r_[np.full(n // 2, 100.0), 100.0 + np.arange(n - n // 2)]
    df = pd.DataFrame({"date": dates, "open": close, "high": close + 0.5, "low": close - 0.5,
                       "close": close})
    a = indicators.adx_on_timeframe(df, "5m", 14)
    assert a.isna().iloc[:100].all()    # 28 five-minute bars are needed for a first value
    # Perturbing the future must not change any value up to that point.
    df2 = df.copy()
    df2.loc[200:, ["high", "close"]] += 50.0
    b = indicators.adx_on_timeframe(df2, "5m", 14)
    pd.testing.assert_series_equal(a.iloc[:200], b.iloc[:200])
    assert a.iloc[-1] > 25              # the second half trends


def test_entry_block_reason_priority():
    kw = dict(params_error=None, kill="off", drawdown_tripped=False, shared_state_error=None,
              adx_value=None, adx_threshold=None)
    assert guards.entry_block_reason(**kw) is None
    expired = ParamsExpiredError("parameters for BTC expired")
    blocked = guards.entry_block_reason(**{**kw, "kill": "work", "params_error": expired})
    assert blocked.key == "kill"
    b = guards.entry_block_reason(**{**kw, "params_error": expired})
    assert b == guards.Block("params:ParamsExpiredError", "parameters for BTC expired")
    b = guards.entry_block_reason(**{**kw, "adx_value": 30.0, "adx_threshold": 25.0})
    assert b.key == "adx" and "ADX 30.0 > 25" in b.message
    assert guards.entry_block_reason(**{**kw, "adx_value": 30.0}) is None  # filter off


def test_gate_logs_once_per_guard_not_per_changing_message(caplog):
    g = guards.Gate("asmm")
    with caplog.at_level("INFO"):
        for i in range(5):  # the message carries the clock; the guard is the same
            assert g.set(guards.Block("params:ParamsExpiredError", f"expired (now {i})")) \
                == f"expired (now {i})"
        g.set(guards.Block("kill", "kill switch active"))
        assert g.set(None) is None
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["asmm: no new entries: expired (now 0)",
                     "asmm: no new entries: kill switch active",
                     "asmm: entries allowed again"]


# ------------------------------------------------------------------ shared inventory

def test_shared_state_net_inventory(tmp_path):
    pair = "BTC/USDC:USDC"
    shared_state.write_bot_state(tmp_path, "long", pair, 1.0, NOW)
    with pytest.raises(SharedStateError, match="expected 2 bots"):
        shared_state.read_net_inventory(tmp_path, pair, NOW, 60)
    shared_state.write_bot_state(tmp_path, "short", pair, -1.0, NOW)
    # another pair: ignored
    shared_state.write_bot_state(tmp_path, "other", "ETH/USDC:USDC", 5.0, NOW)
    assert shared_state.read_net_inventory(tmp_path, pair, NOW, 60) == 0.0
    shared_state.write_bot_state(tmp_path, "short", pair, 0.0, NOW)
    assert shared_state.read_net_inventory(tmp_path, pair, NOW + timedelta(seconds=30), 60) == 1.0
    with pytest.raises(SharedStateError, match="old"):
        shared_state.read_net_inventory(tmp_path, pair, NOW + timedelta(seconds=61), 60)
    (tmp_path / "short.json").write_text("{not json")
    with pytest.raises(SharedStateError, match="unreadable"):
        shared_state.read_net_inventory(tmp_path, pair, NOW, 60)


def test_shared_state_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    for i in range(20):
        shared_state.write_bot_state(tmp_path, "long", "BTC/USDC:USDC", float(i), NOW)
    assert os.listdir(tmp_path) == ["long.json"]
    assert json.loads((tmp_path / "long.json").read_text())["q_lots"] == 19.0


def test_make_params_is_valid_for_a_synthetic_day():
    # Guards the helper the Freqtrade tests share: params valid over the window they trade.
    p = make_params()
    p.check_fresh(NOW)
    assert date(2025, 9, 1) == p.computed_at.date()


def test_pair_entries_price_one_inventory_step_behind_the_other_bots_exit():
    # Long bot holds +1 lot, short bot flat: net +1. The long bot's exit (a sell) prices
    # at q = +1; the short bot's entry (also a sell) at its own q = 0, i.e. one step deeper.
    assert policy.pricing_q("long", own_q=1.0, net_q=1.0, is_entry=False) == 1.0
    assert policy.pricing_q("short", own_q=0.0, net_q=1.0, is_entry=True) == 0.0
    params, cfg = make_params(gamma=0.05), config.MMConfig.from_dict({})
    exit_q = quotes.model_quote(params, cfg, mid=1e5, q=1.0, now=NOW, tick=1.0, maker_fee=0.0,
                            max_inventory=2.0)
    entry_q = quotes.model_quote(params, cfg, mid=1e5, q=0.0, now=NOW, tick=1.0, maker_fee=0.0,
                             max_inventory=2.0)
    assert quotes.exit_price(exit_q, is_short=False) < quotes.entry_price(entry_q, "short")
    # One bot: always its own inventory, which is the net.
    assert policy.pricing_q("pingpong", own_q=-1.0, net_q=-1.0, is_entry=True) == -1.0
