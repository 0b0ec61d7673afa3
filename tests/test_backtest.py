"""The tick-level backtester: fills, accounting, latency, queue, execution modes, bad input.

Hand-built markets are written in the collector's single-file layout with
``asmm.data.files.write_table``; statistical checks use ``asmm.data.synth`` markets with
known truth.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from asmm.cli import main as cli_main
from asmm.core.errors import DataError
from asmm.core.model import quotes
from asmm.core.params import Params, SideIntensity, write_params
from asmm.data.files import orderbook_columns, write_table
from asmm.data.synth import SynthConfig, generate
from asmm.sim import BacktestConfig, load_events, run_backtest, run_grid

T0 = 1756684800.0  # 2025-09-01 00:00:00 UTC
COIN = "TST"


def write_market(folder, bbo, trades, coin=COIN):
    """``bbo``: rows (t, bid, ask, bid_size, ask_size); ``trades``: rows (t, price, size,
    side 'buy'|'sell'). Times in epoch seconds; receive time = exchange time."""
    pt, pp, ps, pside = [], [], [], []
    for t, b, a, bs, as_ in bbo:
        pt += [t, t]
        pp += [b, a]
        ps += [bs, as_]
        pside += ["bid", "ask"]
    ms = [round(t * 1000) for t in pt]
    write_table(pa.table({"timestamp": pt, "price": pp, "size": ps, "side": pside,
                          "exchange_timestamp": ms}), folder / f"prices_{coin}.csv")
    write_table(pa.table({
        "timestamp": [r[0] for r in trades], "price": [float(r[1]) for r in trades],
        "size": [float(r[2]) for r in trades], "side": [r[3] for r in trades],
        "trade_id": list(range(1, len(trades) + 1)),
        "exchange_timestamp": [round(r[0] * 1000) for r in trades]}),
        folder / f"trades_{coin}.csv")
    return folder


def fixed(depth, **kw):
    base = dict(model="fixed", fixed_depth=depth, order_size=0.5, queue="none",
                latency_ms=0.0, refresh_seconds=0.5, tick=1.0)
    base.update(kw)
    return BacktestConfig(**base)


@pytest.fixture(scope="module")
def small_events(small_market):
    folder, _ = small_market
    return load_events(folder, "BTC")


@pytest.fixture(scope="module")
def glft_cfg(small_market):
    truth = small_market[1]
    return BacktestConfig(model="glft", sigma=truth["sigma"], gamma=0.05,
                          A_bid=truth["bid"]["A"], k_bid=truth["bid"]["k"],
                          A_ask=truth["ask"]["A"], k_ask=truth["ask"]["k"], order_size=0.01,
                          latency_ms=50.0, refresh_seconds=1.0, maker_fee=0.0,
                          queue="prob")


# ------------------------------------------------------------------ hand-built markets


def test_latency_delays_a_fill(tmp_path):
    # One book (bid 99 / ask 101); sells through our 99 bid at +50 ms and +250 ms. Decided
    # at T0, the bid rests from T0 without latency and from T0 + 100 ms with it.
    write_market(tmp_path, [(T0, 99, 101, 1, 1), (T0 + 2, 99, 101, 1, 1)],
                 [(T0 + 0.05, 98, 1, "sell"), (T0 + 0.25, 98, 1, "sell")])
    ev = load_events(tmp_path, COIN)
    now, late = run_grid(ev, [fixed(1.0), fixed(1.0, latency_ms=100.0)], record_fills=True)
    assert now.fills["t"].tolist() == [pytest.approx(T0 + 0.05, abs=1e-6)]
    assert late.fills["t"].tolist() == [pytest.approx(T0 + 0.25, abs=1e-6)]
    # Through-trades fill at our price, never at the trade's.
    assert now.fills["price"].tolist() == late.fills["price"].tolist() == [99.0]


def test_fill_reaction_delays_the_bots_next_order(tmp_path):
    # A Freqtrade bot's long entry (bid 99) fills at T0 + 1. An ideal bot places its exit
    # (ask 101) at its next decision, T0 + 1.5, a buy at T0 + 2 fills it, and the buy at
    # T0 + 3.2 its next entry, a short; a bot that sees its fill 2 s late decides at T0 + 3,
    # off the 0.5 s refresh grid (Freqtrade's loop runs when its requests are done), and
    # only the buy at T0 + 3.2 fills its exit.
    write_market(tmp_path, [(T0, 99, 101, 1, 1), (T0 + 10, 99, 101, 1, 1)],
                 [(T0 + 1, 98, 1, "sell"), (T0 + 2, 102, 1, "buy"),
                  (T0 + 3.2, 102, 1, "buy")])
    ev = load_events(tmp_path, COIN)
    ideal, late = run_grid(ev, [fixed(1.0, execution="freqtrade"),
                                fixed(1.0, execution="freqtrade", fill_reaction_ms=2000.0)],
                           record_fills=True)
    assert ideal.fills["t"].tolist() == [pytest.approx(T0 + x, abs=1e-6) for x in (1, 2, 3.2)]
    assert ideal.fills["position"].tolist() == [0.5, 0.0, -0.5]
    assert late.fills["t"].tolist() == [pytest.approx(T0 + x, abs=1e-6) for x in (1, 3.2)]
    assert late.fills["position"].tolist() == [0.5, 0.0]
    assert late.fills["price"].tolist() == [99.0, 101.0]


def test_a_requote_gap_takes_the_order_off_the_book(tmp_path):
    # The book moves up a tick at T0 + 1: the bot re-prices its bid from 99 to 100. Replaced
    # at once, the new bid takes the sell at T0 + 1.7; cancelled first and replaced 1 s
    # later, nothing rests then, and only the sell at T0 + 3.5 fills it.
    write_market(tmp_path, [(T0, 99, 101, 1, 1), (T0 + 1, 100, 102, 1, 1),
                            (T0 + 10, 100, 102, 1, 1)],
                 [(T0 + 1.7, 100, 1, "sell"), (T0 + 3.5, 100, 1, "sell")])
    ev = load_events(tmp_path, COIN)
    atomic, gap = run_grid(ev, [fixed(1.0, execution="freqtrade"),
                                fixed(1.0, execution="freqtrade", requote_gap_ms=1000.0)],
                           record_fills=True)
    assert atomic.fills["t"].tolist() == [pytest.approx(T0 + 1.7, abs=1e-6)]
    assert gap.fills["t"].tolist() == [pytest.approx(T0 + 3.5, abs=1e-6)]
    assert atomic.fills["price"].tolist() == gap.fills["price"].tolist() == [100.0]


def test_queue_prob_waits_for_the_volume_ahead(tmp_path):
    # We join a bid of 5 at 99; 3 trade at 99 (2 still ahead), the touch shows 2 left, then
    # 3 more trade at 99: 2 clear the queue and 1 reaches us (capped by our 0.5).
    write_market(tmp_path, [(T0, 99, 101, 5, 5), (T0 + 1.5, 99, 101, 2, 5),
                            (T0 + 5, 99, 101, 5, 5)],
                 [(T0 + 1, 99, 3, "sell"), (T0 + 2, 99, 3, "sell")])
    ev = load_events(tmp_path, COIN)
    none, prob = run_grid(ev, [fixed(1.0), fixed(1.0, queue="prob")], record_fills=True)
    # Without a queue the bid fills at once, and again after it is re-placed at T0 + 1.5.
    assert none.fills["t"].tolist() == [pytest.approx(T0 + 1, abs=1e-6),
                                        pytest.approx(T0 + 2, abs=1e-6)]
    assert prob.fills["t"].tolist() == [pytest.approx(T0 + 2, abs=1e-6)]
    assert prob.fills["qty"].tolist() == [0.5]


def test_queue_behind_the_touch_comes_from_the_l2_snapshot(tmp_path):
    # Our bid at 98 is one level behind the 99 touch; the L2 snapshot shows 4 queued at 98.
    # A sell sweeping to 98 prints 3 there (1 left ahead), a second prints 2: we get 0.5.
    write_market(tmp_path, [(T0, 99, 101, 1, 1), (T0 + 9, 99, 101, 1, 1)],
                 [(T0 + 1, 99, 1, "sell"), (T0 + 1, 98, 3, "sell"), (T0 + 2, 98, 2, "sell")])
    cols = {"timestamp": [T0], "sequence": [1], "exchange_timestamp": [round(T0 * 1000)]}
    for i in range(3):
        cols |= {f"bid_price_{i}": [99.0 - i], f"bid_size_{i}": [1.0 + 3 * i],
                 f"ask_price_{i}": [101.0 + i], f"ask_size_{i}": [1.0]}
    write_table(pa.table(cols).select(orderbook_columns(3)), tmp_path / f"orderbooks_{COIN}.csv")
    ev = load_events(tmp_path, COIN)
    assert ev.book_t.size == 1
    none, prob = run_grid(ev, [fixed(2.0, refresh_seconds=5.0),
                               fixed(2.0, refresh_seconds=5.0, queue="prob")],
                          record_fills=True)
    assert none.fills["t"].tolist() == [pytest.approx(T0 + 1, abs=1e-6)]
    assert prob.fills["t"].tolist() == [pytest.approx(T0 + 2, abs=1e-6)]
    assert prob.fills["price"].tolist() == [98.0]


def test_fill_is_capped_by_the_aggressor_size(tmp_path):
    write_market(tmp_path, [(T0, 99, 101, 1, 1), (T0 + 2, 99, 101, 1, 1)],
                 [(T0 + 0.1, 98, 0.2, "sell")])
    r = run_backtest(load_events(tmp_path, COIN), fixed(1.0))
    assert r.fills["qty"].tolist() == [pytest.approx(0.2)]


def test_quotes_are_those_of_asmm_model(tmp_path):
    # A still book (99/101) and no fills: every resting quote is the model's at q = 0.
    write_market(tmp_path, [(T0, 99, 101, 1, 1), (T0 + 600, 99, 101, 1, 1)],
                 [(T0 + 599, 101, 1, "buy")])
    ev = load_events(tmp_path, COIN)
    kw = dict(sigma=0.5, gamma=0.1, A_bid=0.5, k_bid=0.3, A_ask=0.4, k_ask=0.35,
              maker_fee=0.0, latency_ms=0.0, refresh_seconds=60.0, tick=0.1,
              order_size=100.0)
    glft, as_ = run_grid(ev, [BacktestConfig(model="glft", **kw),
                              BacktestConfig(model="as", horizon=3600.0, **kw)])
    want = quotes("glft", 100.0, 0.0, sigma=0.5, gamma=0.1, A_bid=0.5, k_bid=0.3, A_ask=0.4,
                  k_ask=0.35, tick=0.1, best_bid=99.0, best_ask=101.0)
    s = glft.samples
    assert s["bid"][1] == float(want.bid) and s["ask"][1] == float(want.ask)
    # A-S: the quote resting at the sample at T0 + 300 s was decided at T0 + 240 s
    # (samples come before arrivals at equal times), so tau = 3600 - 240.
    j = int(np.flatnonzero(np.abs(as_.samples["t"] - (T0 + 300)) < 1e-6)[0])
    want = quotes("as", 100.0, 0.0, tau=3600.0 - 240.0, sigma=0.5, gamma=0.1, k_bid=0.3,
                  k_ask=0.35, tick=0.1, best_bid=99.0, best_ask=101.0)
    assert as_.samples["bid"][j] == float(want.bid)
    assert as_.samples["ask"][j] == float(want.ask)


def test_unsorted_rows_are_resorted_and_reported(tmp_path):
    rows = [(T0 + 0.25, 98, 1, "sell"), (T0 + 0.05, 98, 1, "sell"), (T0 + 3, 102, 1, "buy")]
    write_market(tmp_path / "a", [(T0, 99, 101, 1, 1), (T0 + 4, 99, 101, 1, 1)], rows)
    write_market(tmp_path / "b", [(T0, 99, 101, 1, 1), (T0 + 4, 99, 101, 1, 1)],
                 sorted(rows))
    ev_a, ev_b = load_events(tmp_path / "a", COIN), load_events(tmp_path / "b", COIN)
    assert any("out-of-order" in n for n in ev_a.quality.notes)
    assert np.all(np.diff(ev_a.t) >= 0)
    ra, rb = run_backtest(ev_a, fixed(1.0)), run_backtest(ev_b, fixed(1.0))
    assert ra.fills["t"].tolist() == rb.fills["t"].tolist()
    assert ra.stats == rb.stats


def test_parquet_and_csv_give_the_same_backtest(tmp_path):
    cfg = SynthConfig(days=1, seed=3, bbo_rate=0.5, A_bid=0.1, A_ask=0.1, l2_interval=30.0)
    generate(cfg, tmp_path / "csv")
    generate(SynthConfig(**{**cfg.__dict__, "fmt": "parquet"}), tmp_path / "pq")
    a, b = load_events(tmp_path / "csv", "BTC"), load_events(tmp_path / "pq", "BTC")
    np.testing.assert_array_equal(a.t, b.t)
    np.testing.assert_array_equal(a.book_bid_sz, b.book_bid_sz)
    ra, rb = (run_backtest(e, fixed(2.0, queue="prob"), record_fills=False) for e in (a, b))
    assert ra.stats == rb.stats and ra.stats["fills_bid"] > 0


# ------------------------------------------------------------------ accounting


def test_never_quoting_makes_exactly_zero(small_events):
    # Q = 0.5 lot suppresses both sides; a depth of 1e6 quotes but is never reached.
    silent = fixed(1.0, max_inventory=0.5)
    far = fixed(1e6)
    for r in run_grid(small_events, [silent, far]):
        s = r.summary()
        assert s["pnl"] == 0.0 and s["fees"] == 0.0 and s["max_drawdown"] == 0.0
        assert s["fills_bid"] == s["fills_ask"] == 0
        assert math.isnan(s["sharpe"])
        assert np.all(r.samples["equity"][np.isfinite(r.samples["mid"])] == 0.0)
    assert run_grid(small_events, [silent])[0].stats["quote_updates"] > 0


def test_cash_plus_inventory_equals_pnl_at_every_fill(small_events, glft_cfg):
    # fill_rule="trades": the last check below (every fill from a trade) is that rule's;
    # tests/test_backtest_rules.py checks the other rules' fills.
    r = run_backtest(small_events, glft_cfg.with_(maker_fee=0.0002, fill_rule="trades"))
    f = r.fills
    assert f["t"].size > 100
    cum_fees = np.cumsum(f["fee"])
    lhs = f["cash"] + f["position"] * f["mid"]
    rhs = f["realised"] - cum_fees + f["position"] * (f["mid"] - f["avg_cost"])
    # Both sides are sums of a few thousand terms of size ~1e3 (price x 0.01 lot): float64
    # rounding stays below 1e-12 * 1e3 * 1e4 = 1e-5.
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-5)
    s = r.summary()
    assert s["pnl"] == pytest.approx(s["realised"] - s["fees"] + s["unrealised"], abs=1e-6)
    assert s["fees"] == pytest.approx(cum_fees[-1], rel=1e-12)
    # Never a fill at a price the market did not trade: at each fill's time a trade of the
    # opposite aggressor printed at our price or through it.
    tr = small_events.kind == 1
    for t, side, px in zip(f["t"], f["side"], f["price"], strict=True):
        at = tr & (small_events.t == t) & (small_events.side == -side)
        assert np.any(small_events.price[at] * side <= px * side)


def test_maker_fee_is_charged_on_every_fill(small_events):
    # The fixed-depth baseline does not widen for fees, so both runs have the same fills.
    free, paid = run_grid(small_events, [fixed(2.0, maker_fee=0.0),
                                         fixed(2.0, maker_fee=0.001)], record_fills=True)
    f = paid.fills
    assert f["t"].size > 100
    np.testing.assert_allclose(f["fee"], 0.001 * f["price"] * f["qty"], rtol=1e-12)
    np.testing.assert_array_equal(free.fills["price"], f["price"])
    assert free.stats["fees"] == 0.0
    assert free.stats["pnl"] - paid.stats["pnl"] == pytest.approx(f["fee"].sum(), rel=1e-9)


def test_grid_equals_separate_runs(small_events, glft_cfg):
    cfgs = [glft_cfg, glft_cfg.with_(gamma=0.5), fixed(3.0, execution="freqtrade")]
    grid = run_grid(small_events, cfgs)
    for cfg, g in zip(cfgs, grid, strict=True):
        alone = run_backtest(small_events, cfg, record_fills=False)
        assert g.stats == alone.stats
        np.testing.assert_array_equal(g.samples["equity"], alone.samples["equity"])


def test_chunked_progress_gives_the_same_result(small_events, glft_cfg, monkeypatch):
    import asmm.sim.engine as engine

    monkeypatch.setattr(engine, "_CHUNK", 10_000)  # many resumptions of the kernel state
    calls = []
    chunked = run_backtest(small_events, glft_cfg, progress=lambda d, n: calls.append((d, n)))
    whole = run_backtest(small_events, glft_cfg)
    assert len(calls) > 10 and calls[-1] == (small_events.t.size, small_events.t.size)
    assert np.all(np.diff([d for d, _ in calls]) > 0)
    assert chunked.stats == whole.stats
    np.testing.assert_array_equal(chunked.fills["t"], whole.fills["t"])


def test_hourly_pnl_sums_to_pnl(small_events, glft_cfg):
    r = run_backtest(small_events, glft_cfg)
    h = r.hourly_pnl()
    assert len(h) == 48  # two UTC days
    assert h.sum() == pytest.approx(r.stats["pnl"], abs=1e-6)
    assert math.isfinite(r.summary()["sharpe"])


# ------------------------------------------------------------------ execution modes


def test_freqtrade_mode_has_one_resting_order(small_events):
    cfgs = [fixed(1.0, execution=m, latency_ms=100.0, refresh_seconds=1.0, queue="prob")
            for m in ("two-sided", "freqtrade", "freqtrade-pair")]
    two, ft, pair = run_grid(small_events, cfgs, sample_seconds=1.0, record_fills=True)
    # Counted by the kernel each time an order starts resting, i.e. at every step.
    assert ft.stats["max_resting_orders"] == 1
    assert two.stats["max_resting_orders"] == pair.stats["max_resting_orders"] == 2
    s = ft.samples
    assert not np.any(np.isfinite(s["bid"]) & np.isfinite(s["ask"]))
    assert np.isfinite(s["bid"]).any() and np.isfinite(s["ask"]).any()
    # One bot, one lot: an entry then its exit, so |position| never exceeds one lot.
    assert np.max(np.abs(ft.fills["position"])) <= 0.5 + 1e-12
    assert ft.stats["fills_bid"] > 20 and ft.stats["fills_ask"] > 20
    # Two bots of one lot each: net within one lot, but both orders can rest at once.
    assert np.max(np.abs(pair.fills["position"])) <= 0.5 + 1e-12
    assert np.any(np.isfinite(pair.samples["bid"]) & np.isfinite(pair.samples["ask"]))
    assert two.stats["inventory_max_abs"] > 1.0
    # A flat bot enters opposite to its last entry, long first (asmm.freqtrade.policy.flat_side).
    pos = ft.fills["position"]
    prev = np.concatenate([[0.0], pos[:-1]])
    entries = ft.fills["side"][prev == 0.0]
    assert entries[0] == 1.0 and np.all(entries[1:] == -entries[:-1])


def test_pair_of_bots_ladders_its_two_lots(small_events, glft_cfg):
    """With model quotes the pair's second lot on a side rests one inventory step deeper
    (asmm.freqtrade.policy.pricing_q), so no sweep fills both bots at one price; priced alike
    they did,
    swinging the pair from +1 to -1 lot at the inner quote (4x the fills of two-sided)."""
    two, pair = run_grid(small_events, [glft_cfg, glft_cfg.with_(execution="freqtrade-pair")],
                         record_fills=True)
    f = pair.fills
    # One order can fill in pieces from several prints of one sweep at its price. Beyond one
    # lot at one time and price only the crumbs of a partly filled entry can add (both
    # orders pinned at the touch by the no-crossing clamp); never two whole lots.
    key = np.stack([f["t"], f["side"], f["price"]], axis=1)
    _, group = np.unique(key, axis=0, return_inverse=True)
    per_price = np.bincount(group.ravel(), weights=f["qty"])
    lot = glft_cfg.order_size
    assert per_price.max() < 1.5 * lot
    assert np.mean(per_price > lot + 1e-12) < 0.01
    assert np.max(np.abs(f["position"])) <= glft_cfg.order_size + 1e-12
    n_two = two.stats["fills_bid"] + two.stats["fills_ask"]
    assert pair.stats["fills_bid"] + pair.stats["fills_ask"] < 2 * n_two


def test_freqtrade_flat_side_rule(small_events):
    long_only, short_only = run_grid(small_events, [
        fixed(1.0, execution="freqtrade", flat_side=side, refresh_seconds=1.0)
        for side in ("long", "short")], record_fills=True)
    assert long_only.fills["position"].min() == 0.0 < long_only.fills["position"].max()
    assert short_only.fills["position"].max() == 0.0 > short_only.fills["position"].min()


def test_queue_and_latency_have_a_cost(small_events):
    # On the same market the queue can only delay or remove touch fills, and quotes that
    # arrive 500 ms late are stale more often, so more of them would cross and are rejected.
    touch, queue, late = run_grid(small_events, [
        fixed(2.0, refresh_seconds=1.0), fixed(2.0, refresh_seconds=1.0, queue="prob"),
        fixed(2.0, refresh_seconds=1.0, latency_ms=500.0)])
    fills = [r.stats["fills_bid"] + r.stats["fills_ask"] for r in (touch, queue)]
    assert fills[0] > 100 and fills[1] < fills[0]
    assert late.stats["rejected_post_only"] > touch.stats["rejected_post_only"]


# ------------------------------------------------------------------ statistics


@pytest.fixture(scope="module")
def calm_market(tmp_path_factory):
    """One full day with a nearly still mid (sigma 0.02/sqrt(s): about 1400 tick changes a
    day) and no receive latency, so a fixed quote's depth from the mid is known exactly."""
    out = tmp_path_factory.mktemp("calm")
    cfg = SynthConfig(days=1, seed=11, sigma=0.02, bbo_rate=1.0, latency=0.0, A_bid=0.5,
                      A_ask=0.5, k_bid=0.5, k_ask=0.5, tick=1.0, l2_interval=60.0,
                      start=date(2025, 9, 1))
    generate(cfg, out)
    return load_events(out, "BTC"), cfg


@pytest.mark.parametrize("depth", [2.0, 4.0])
def test_fill_rate_is_A_exp_minus_k_delta(calm_market, depth):
    ev, truth = calm_market
    # The book is bid b, ask b + 1, mid b + 0.5; a quote D below the mid rounds down to the
    # tick: b - ceil(D - 0.5), so the effective depth is 0.5 + ceil(D - 0.5) (2.5 for D = 2,
    # 4.5 for D = 4). A sell reaching depth r trades down to b - floor(r - 0.5), so it
    # reaches our level iff r >= the effective depth: rate A exp(-k delta_eff) per side.
    # An order far larger than any trade never leaves the book, so each sweep that
    # reaches it fills it once (fills of one sweep share a timestamp).
    delta = 0.5 + math.ceil(depth - 0.5)
    cfg = fixed(depth, order_size=1e9, max_inventory=1e12, refresh_seconds=0.1)
    r = run_backtest(ev, cfg)
    seconds = ev.end - ev.start
    for side, A, k in ((1, truth.A_bid, truth.k_bid), (-1, truth.A_ask, truth.k_ask)):
        n = np.unique(r.fills["t"][r.fills["side"] == side]).size
        expect = A * math.exp(-k * delta) * seconds
        # Sweeps are Poisson: sd = sqrt(expect) (111 for D = 2, 67 for D = 4). 4 sd bounds
        # a false failure at 6e-5; the ~1400 tick changes a day, during which a quote is up
        # to 0.1 s stale, move at most ~1400 * 0.1 s * 0.5/s = 70 sweeps either way, well
        # inside 4 sd + 1 %.
        assert abs(n - expect) <= 4 * math.sqrt(expect) + 0.01 * expect, (n, expect)


@pytest.mark.slow
def test_full_size_two_days(tmp_path_factory):
    # The benchmark's job at full size: ~1.5M events; both sides trade and the accounting
    # identity holds at the end.
    out = tmp_path_factory.mktemp("full")
    generate(SynthConfig(days=2), out)
    ev = load_events(out, "BTC")
    assert len(ev) > 1_400_000
    r = run_backtest(ev, fixed(2.0, order_size=0.001, refresh_seconds=0.1, queue="prob"))
    s = r.summary()
    assert s["fills_bid"] > 10_000 and s["fills_ask"] > 10_000
    assert s["hours"] == pytest.approx(48.0, abs=0.01)
    assert s["pnl"] == pytest.approx(s["realised"] - s["fees"] + s["unrealised"], abs=1e-6)


# ------------------------------------------------------------------ bad input


def test_missing_and_empty_data_are_clear_errors(tmp_path, small_market):
    with pytest.raises(DataError, match="does not exist"):
        load_events(tmp_path / "nope", "BTC")
    with pytest.raises(DataError, match="no trades files"):
        write_table(pa.table({"timestamp": [T0], "price": [1.0], "size": [1.0],
                              "side": ["bid"], "exchange_timestamp": [int(T0 * 1000)]}),
                    tmp_path / "p" / "prices_X.csv")
        load_events(tmp_path / "p", "X")
    (tmp_path / "e").mkdir()
    write_market(tmp_path / "e", [(T0, 99, 101, 1, 1)], [(T0 + 1, 99, 1, "sell")])
    (tmp_path / "e" / f"trades_{COIN}.csv").write_text("")
    with pytest.raises(DataError, match="no trades in the window"):
        load_events(tmp_path / "e", COIN)
    # A window inside the data that holds book updates but no trade.
    write_market(tmp_path / "w", [(T0, 99, 101, 1, 1), (T0 + 150, 99, 101, 1, 1)],
                 [(T0 + 1, 99, 1, "sell")])
    with pytest.raises(DataError, match="no trades in the window"):
        load_events(tmp_path / "w", COIN, T0 + 100, T0 + 200)
    # A window after the last daily file.
    folder, _ = small_market
    later = datetime(2025, 9, 5, tzinfo=UTC).timestamp()
    with pytest.raises(DataError, match="overlap the window"):
        load_events(folder, "BTC", later, later + 3600)
    with pytest.raises(DataError, match="empty window"):
        load_events(folder, "BTC", later, later)


@pytest.mark.parametrize("bad", [
    dict(model="glft", sigma=1.0, gamma=0.1, k_bid=1.0, k_ask=1.0),  # no A
    dict(model="fixed"),
    dict(model="fixed", fixed_depth=1.0, queue="fifo"),
    dict(model="fixed", fixed_depth=1.0, execution="both"),
    dict(model="fixed", fixed_depth=1.0, flat_side="up"),
    dict(model="fixed", fixed_depth=1.0, order_size=0.0),
    dict(model="fixed", fixed_depth=1.0, latency_ms=-1.0),
])
def test_bad_config_is_rejected(bad):
    with pytest.raises(ValueError, match="backtest config"):
        BacktestConfig(**bad)


# ------------------------------------------------------------------ CLI


def test_cli_json_and_plot(small_market, tmp_path, capsys):
    folder, _ = small_market
    png = tmp_path / "bt.png"
    rc = cli_main(["backtest", "--data-dir", str(folder), "--coin", "BTC", "--fixed-depth",
                   "2", "--to", "2025-09-01T06:00", "--json", "--plot", str(png)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("pnl", "fees", "sharpe", "max_drawdown", "fills_bid", "fills_ask",
                "inventory_std", "inventory_max_abs", "events", "seconds", "pnl_two_sided",
                "pnl_freqtrade", "pnl_freqtrade_pair"):
        assert key in out
    assert out["fills_bid"] + out["fills_ask"] > 0
    assert out["hours"] == pytest.approx(6.0, abs=0.01)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_table_with_params_file(small_market, tmp_path, capsys):
    folder, truth = small_market
    now = datetime(2025, 9, 1, tzinfo=UTC)
    params = Params(coin="BTC", model="glft", computed_at=now,
                    valid_until=now + timedelta(days=1), data_window=(now, now),
                    mid_price=100_000.0, sigma=truth["sigma"], gamma=0.05,
                    bid=SideIntensity(truth["bid"]["A"], truth["bid"]["k"]),
                    ask=SideIntensity(truth["ask"]["A"], truth["ask"]["k"]))
    path = tmp_path / "p.json"
    write_params(path, params)
    rc = cli_main(["backtest", "--data-dir", str(folder), "--params", str(path), "--to",
                   "2025-09-01T03:00", "--execution", "freqtrade"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "PnL gap vs freqtrade" in out and "two-sided" in out and "Sharpe" in out


@pytest.mark.parametrize("argv, message", [
    (["--data-dir", "/nonexistent/dir", "--fixed-depth", "1"], "does not exist"),
    (["--fixed-depth", "-1"], "fixed_depth"),
    (["--params", "/nonexistent/p.json"], "no parameter file"),
    (["--fixed-depth", "1", "--from", "2025-09-02", "--to", "2025-09-01"], "empty window"),
    (["--fixed-depth", "1", "--gamma", "0.1"], "--gamma applies to --params"),
])
def test_cli_bad_input_exits_nonzero(small_market, capsys, argv, message):
    folder, _ = small_market
    if "--data-dir" not in argv:
        argv = ["--data-dir", str(folder), *argv]
    assert cli_main(["backtest", *argv]) == 2
    assert message in capsys.readouterr().err
