"""Invariants of the backtester on random small markets (hypothesis), under each fill rule.

Markets are built in memory (``asmm.sim.merge`` over ``asmm.data.readers`` arrays): a
random walk of the touch on a 1.0 tick grid and random trades at, inside or through it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asmm.data.readers import BBO, Trades
from asmm.sim import BacktestConfig, merge, run_grid
from asmm.sim.records import HOW_BOOK_THROUGH, HOW_DRY_RUN_CROSS, HOW_TRADE

T0_MS = 1_756_684_800_000


def market(seed: int, n_bbo: int, n_trades: int, feed_ms: int):
    rng = np.random.default_rng(seed)
    t_bbo = T0_MS + np.sort(rng.choice(600_000, n_bbo, replace=False))
    bid = 100.0 + np.cumsum(rng.integers(-2, 3, n_bbo)).astype(float)
    ask = bid + rng.integers(1, 4, n_bbo)
    bbo = BBO(t_bbo, t_bbo / 1000.0 + feed_ms / 1000.0, bid, ask,
              rng.uniform(0.1, 3.0, n_bbo), rng.uniform(0.1, 3.0, n_bbo))
    t_tr = T0_MS + np.sort(rng.integers(0, 600_000, n_trades))
    i = np.clip(np.searchsorted(t_bbo, t_tr, side="left") - 1, 0, n_bbo - 1)
    side = rng.choice(np.array([-1, 1], np.int8), n_trades)
    # Prints from one tick inside the touch to four ticks through it.
    px = np.where(side > 0, ask[i], bid[i]) + side * rng.integers(-1, 5, n_trades)
    trades = Trades(t_tr, t_tr / 1000.0, px.astype(float), rng.uniform(0.01, 2.0, n_trades),
                    side, np.arange(n_trades, dtype=np.int64))
    return merge("P", bbo, trades)


configs = st.builds(
    dict,
    depth=st.sampled_from([0.5, 1.0, 2.0, 3.5]),
    refresh=st.sampled_from([0.05, 0.5, 2.0]),
    latency=st.sampled_from([0.0, 30.0, 400.0]),
    queue=st.sampled_from(["none", "prob"]),
    size=st.sampled_from([0.1, 1.0, 5.0]),
    qmax=st.sampled_from([1.0, 3.0, 50.0]),
    fee=st.sampled_from([0.0, 0.0002, -0.0001]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), n_bbo=st.integers(2, 400), n_trades=st.integers(1, 600),
       feed_ms=st.sampled_from([0, 20, 300]), c=configs)
def test_invariants(seed, n_bbo, n_trades, feed_ms, c):
    ev = market(seed, n_bbo, n_trades, feed_ms)
    # fill_rule="trades": the checks below are that rule's (every fill from a trade);
    # tests/test_backtest_rules.py checks the other rules on the same markets.
    base = BacktestConfig(model="fixed", fixed_depth=c["depth"], refresh_seconds=c["refresh"],
                          latency_ms=c["latency"], queue=c["queue"], order_size=c["size"],
                          max_inventory=c["qmax"], maker_fee=c["fee"], tick=1.0,
                          fill_rule="trades")
    modes = ("two-sided", "freqtrade", "freqtrade-pair")
    results = run_grid(ev, [base.with_(execution=m) for m in modes], sample_seconds=1.0,
                       record_fills=True)
    trade = ev.kind == 1
    for mode, r in zip(modes, results, strict=True):
        s, f = r.stats, r.fills
        # Sums of at most ~1e3 terms of size ~1e2: float64 rounding stays far below 1e-7.
        assert abs(s["pnl"] - (s["realised"] - s["fees"] + s["unrealised"])) < 1e-7
        np.testing.assert_allclose(f["fee"], c["fee"] * f["price"] * f["qty"], atol=1e-12)
        for t in np.unique(f["t"]):
            for side in (1, -1):
                mine = (f["t"] == t) & (f["side"] == side)
                if not mine.any():
                    continue
                theirs = trade & (ev.t == t) & (ev.side == -side)
                # Only prices the market traded at or through, never more than it traded.
                assert np.all(f["price"][mine] * side >= (ev.price[theirs] * side).min())
                assert f["qty"][mine].sum() <= ev.size[theirs].sum() + 1e-9
        if mode == "freqtrade":
            assert s["max_resting_orders"] <= 1
        if mode != "two-sided":
            assert np.all(np.abs(f["position"]) <= c["size"] + 1e-9)
        assert s["fills_bid"] + s["fills_ask"] == f["t"].size


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), n_bbo=st.integers(2, 400), n_trades=st.integers(1, 600),
       feed_ms=st.sampled_from([0, 20, 300]), c=configs,
       mode=st.sampled_from(["two-sided", "freqtrade", "freqtrade-pair"]))
def test_every_rule_fills_each_order_at_most_once_at_its_price(seed, n_bbo, n_trades, feed_ms,
                                                               c, mode):
    ev = market(seed, n_bbo, n_trades, feed_ms)
    base = BacktestConfig(model="fixed", fixed_depth=c["depth"], refresh_seconds=c["refresh"],
                          latency_ms=c["latency"], queue=c["queue"], order_size=c["size"],
                          max_inventory=c["qmax"], maker_fee=c["fee"], tick=1.0,
                          execution=mode)
    rules = ("exchange", "trades", "freqtrade-dry-run")
    results = run_grid(ev, [base.with_(fill_rule=r) for r in rules], record_fills=True)
    trade = ev.kind == 1
    bbo_t, bbo_bid, bbo_ask = ev.t[~trade], ev.bid[~trade], ev.ask[~trade]
    allowed = {"exchange": {HOW_TRADE, HOW_BOOK_THROUGH}, "trades": {HOW_TRADE},
               "freqtrade-dry-run": {HOW_DRY_RUN_CROSS}}
    for rule, r in zip(rules, results, strict=True):
        s, f = r.stats, r.fills
        assert s["fills_bid"] + s["fills_ask"] == f["t"].size
        assert set(f["how"].tolist()) <= allowed[rule]
        assert abs(s["pnl"] - (s["realised"] - s["fees"] + s["unrealised"])) < 1e-7
        for order in np.unique(f["order"]):
            mine = np.flatnonzero(f["order"] == order)
            # One order: one side, one price (its own), never more than its size, and a
            # book-through or dry-run fill takes all that is left: nothing fills after it.
            assert np.unique(f["side"][mine]).size == 1
            assert np.unique(f["price"][mine]).size == 1
            assert f["qty"][mine].sum() <= c["size"] * (1 + 1e-9)
            assert not np.isin(f["how"][mine[:-1]], [HOW_BOOK_THROUGH, HOW_DRY_RUN_CROSS]).any()
            if rule == "freqtrade-dry-run":
                assert mine.size == 1 and f["qty"][mine[0]] == pytest.approx(c["size"])
        for t, side, px, how in zip(f["t"], f["side"], f["price"], f["how"], strict=True):
            # Never better than the market allowed: we bought at or above what a seller
            # traded or the best ask offered (sold at or below, mirrored).
            if how == HOW_TRADE:
                theirs = trade & (ev.t == t) & (ev.side == -side)
                assert np.any(ev.price[theirs] * side <= px * side)
            elif how == HOW_BOOK_THROUGH:
                at = bbo_t == t
                opposite = bbo_ask[at] if side > 0 else bbo_bid[at]
                assert np.any(opposite * side <= px * side)
            else:
                # Dry-run: the book in force at the bot's loop (or at the order's arrival,
                # a latency after a loop) crossed it; loops are on the refresh grid.
                i = np.searchsorted(bbo_t, t, side="right") - 1
                opposite = bbo_ask[i] if side > 0 else bbo_bid[i]
                assert opposite * side <= px * side
                loops = np.array([t, t - c["latency"] / 1000.0]) / c["refresh"]
                assert np.min(np.abs(loops - np.round(loops))) < 1e-6
