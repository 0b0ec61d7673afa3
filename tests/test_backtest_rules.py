"""The backtester's fill rules (exchange, trades, freqtrade-dry-run) and markouts.

Hand-built markets (``test_backtest.write_market``, or in memory through ``asmm.sim.merge``)
show each rule on one move of the book; a synthetic market with informed flow checks the
measured markout against its stated truth. Invariants on random markets are in
tests/test_backtest_properties.py.
"""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pytest
from test_backtest import COIN, T0, fixed, write_market

from asmm.cli import main as cli_main
from asmm.data.readers import BBO, Trades
from asmm.data.synth import SynthConfig, generate
from asmm.sim import BacktestConfig, load_events, merge, run_backtest, run_grid
from asmm.sim.markouts import HORIZONS, markouts
from asmm.sim.records import HOW_BOOK_THROUGH, HOW_DRY_RUN_CROSS, HOW_NAMES, HOW_TRADE

RULES = ("exchange", "trades", "freqtrade-dry-run")


def in_memory(bbo_rows, trade_rows):
    """Events from ``bbo_rows`` (t, t_known, bid, ask) and ``trade_rows`` (t, price, side
    +1 buy aggressor), times in epoch seconds; sizes 1."""
    t = np.array([r[0] for r in bbo_rows])
    ms = np.round(t * 1000).astype(np.int64)
    bbo = BBO(ms, np.array([r[1] for r in bbo_rows]), np.array([r[2] for r in bbo_rows]),
              np.array([r[3] for r in bbo_rows]), np.ones(t.size), np.ones(t.size))
    tt = np.array([r[0] for r in trade_rows])
    tms = np.round(tt * 1000).astype(np.int64)
    trades = Trades(tms, tt, np.array([float(r[1]) for r in trade_rows]), np.ones(tt.size),
                    np.array([r[2] for r in trade_rows], np.int8),
                    np.arange(tt.size, dtype=np.int64))
    return merge(COIN, bbo, trades)


def test_exchange_is_the_default():
    assert BacktestConfig(model="fixed", fixed_depth=1.0).fill_rule == "exchange"
    with pytest.raises(ValueError, match="backtest config: fill_rule"):
        BacktestConfig(model="fixed", fixed_depth=1.0, fill_rule="candles")


def test_book_walking_through_a_bid_fills_it_once_at_its_price(tmp_path):
    # Our bid rests at 99 (1 below the 100 mid, joining the bid). The book then moves to
    # 97/99: the best ask reaches our bid with no trade at 99. On an exchange someone sold to
    # us: exactly one fill, at 99, attributed to the book moving through; trades alone see
    # nothing. The only trade (a buy at 101 at T0) prints before our orders exist.
    write_market(tmp_path, [(T0, 99, 101, 1, 1), (T0 + 1, 97, 99, 1, 1),
                            (T0 + 10, 97, 99, 1, 1)],
                 [(T0, 101, 1, "buy")])
    ev = load_events(tmp_path, COIN)
    exch, trades = run_grid(ev, [fixed(1.0), fixed(1.0, fill_rule="trades")],
                            record_fills=True)
    f = exch.fills
    assert f["t"].tolist() == [pytest.approx(T0 + 1, abs=1e-6)]
    assert f["price"].tolist() == [99.0] and f["side"].tolist() == [1.0]
    assert f["how"].tolist() == [HOW_BOOK_THROUGH]
    assert f["qty"].tolist() == [0.5]  # the whole order
    s = exch.summary()
    assert s["fills_book_through"] == 1 and s["fills_trade"] == 0
    assert s["fills_bid"] == 1 and s["fills_ask"] == 0
    assert trades.fills["t"].size == 0 and trades.summary()["fills_book_through"] == 0
    # Bought at 99 with the mid at 98 from T0 + 1 on: -1/99 of the price at every horizon
    # the data covers (it ends at T0 + 10: no 10 s or 60 s markout).
    assert s["markout_1s_bp"] == pytest.approx(-1 / 99 * 1e4)
    assert s["markout_1s_bp_book_through"] == s["markout_1s_bp_bid"] == s["markout_1s_bp"]
    assert math.isnan(s["markout_10s_bp"]) and math.isnan(s["markout_1s_bp_ask"])


def test_book_through_fills_behind_the_queue(tmp_path):
    # With a queue of 5 ahead at the bid, trades at 99 never reach us; the ask reaching 99
    # still fills us: the level was emptied.
    write_market(tmp_path, [(T0, 99, 101, 5, 5), (T0 + 1, 97, 99, 1, 1),
                            (T0 + 10, 97, 99, 1, 1)],
                 [(T0, 101, 1, "buy"), (T0 + 0.5, 99, 1, "sell")])
    ev = load_events(tmp_path, COIN)
    exch, trades = run_grid(ev, [fixed(1.0, queue="prob"),
                                 fixed(1.0, queue="prob", fill_rule="trades")],
                            record_fills=True)
    assert exch.fills["how"].tolist() == [HOW_BOOK_THROUGH]
    assert exch.fills["price"].tolist() == [99.0]
    assert trades.fills["t"].size == 0


def test_dry_run_fills_on_a_cross_at_the_loop(tmp_path):
    # The book crosses our 99 bid at T0 + 1.2 and uncrosses at T0 + 1.3, before the bot's
    # next loop (refresh 0.5 s: T0 + 1.5): Freqtrade's dry-run never sees it. It crosses
    # again at T0 + 3.2 and stays: the loop at T0 + 3.5 fills the whole order at 99 at the
    # maker fee. The exchange rule fills at both crossings, when they happen.
    write_market(tmp_path, [(T0, 99, 101, 1, 1), (T0 + 1.2, 97, 99, 1, 1),
                            (T0 + 1.3, 99, 101, 1, 1), (T0 + 3.2, 97, 99, 1, 1),
                            (T0 + 10, 97, 99, 1, 1)],
                 [(T0, 101, 1, "buy"), (T0 + 2, 98, 1, "sell")])
    ev = load_events(tmp_path, COIN)
    exch, trades, dry = run_grid(ev, [fixed(1.0, fill_rule=r, maker_fee=0.0001)
                                      for r in RULES], record_fills=True)
    assert dry.fills["t"].tolist() == [pytest.approx(T0 + 3.5, abs=1e-6)]
    assert dry.fills["price"].tolist() == [99.0]
    assert dry.fills["how"].tolist() == [HOW_DRY_RUN_CROSS]
    assert dry.fills["qty"].tolist() == [0.5]
    assert dry.fills["fee"].tolist() == [pytest.approx(0.0001 * 99 * 0.5)]
    assert dry.summary()["fills_dry_run_cross"] == 1
    # The sell through our bid at T0 + 2 fills it under the exchange and trades rules,
    # never under dry-run.
    assert exch.fills["t"].tolist() == [pytest.approx(T0 + x, abs=1e-6) for x in (1.2, 2, 3.2)]
    assert exch.fills["how"].tolist() == [HOW_BOOK_THROUGH, HOW_TRADE, HOW_BOOK_THROUGH]
    assert trades.fills["t"].tolist() == [pytest.approx(T0 + 2, abs=1e-6)]


def test_dry_run_order_crossing_when_placed_fills_at_once_at_the_taker_fee():
    # The bot learns of the 97/99 book (exchange time T0 + 1.2) only at T0 + 2.4. The loop at
    # T0 + 1.5 fills its resting 99 bid (maker) and, quoting from the stale 99/101, places
    # 99 again: crossed when placed, Freqtrade fills it at once at the taker fee
    # (create_dry_run_order -> check_dry_limit_order_filled(immediate=True)); so again at
    # T0 + 2.0. From T0 + 2.5 it quotes 97 and nothing crosses.
    ev = in_memory([(T0, T0, 99, 101), (T0 + 1.2, T0 + 2.4, 97, 99), (T0 + 10, T0 + 10, 97, 99)],
                   [(T0, 101, 1)])
    cfg = fixed(1.0, fill_rule="freqtrade-dry-run", maker_fee=0.0001, taker_fee=0.0005,
                order_size=0.1)
    f = run_backtest(ev, cfg).fills
    assert f["t"].tolist() == [pytest.approx(T0 + x, abs=1e-6) for x in (1.5, 1.5, 2.0)]
    assert f["price"].tolist() == [99.0] * 3 and f["side"].tolist() == [1.0] * 3
    rates = f["fee"] / (f["price"] * f["qty"])
    np.testing.assert_allclose(rates, [0.0001, 0.0005, 0.0005])
    assert len(set(f["order"])) == 3  # three orders, each filled once, whole
    # Post-only orders on an exchange are rejected instead.
    exch = run_backtest(ev, cfg.with_(fill_rule="exchange"))
    assert exch.fills["t"].size == 1 and exch.stats["rejected_post_only"] >= 2


def test_kernel_markout_sums_equal_markouts_of_the_recorded_fills(small_market):
    # A grid keeps no fill records, only the sums the kernel adds as each fill happens; they
    # must equal asmm.sim.markouts over the recorded fills, overall, per side, per how.
    folder, _ = small_market
    ev = load_events(folder, "BTC", T0, T0 + 6 * 3600)
    cfgs = [fixed(2.0, fill_rule=r, refresh_seconds=1.0, latency_ms=50.0, queue="prob")
            for r in RULES]
    summed = run_grid(ev, cfgs)
    recorded = run_grid(ev, cfgs, record_fills=True)
    mid_t, mid = ev.mids()
    for s, r in zip(summed, recorded, strict=True):
        s, f = s.summary(), r.fills
        assert s["fills_bid"] + s["fills_ask"] == f["t"].size > 100
        m = markouts(f["t"], f["price"], f["side"], mid_t, mid)
        for j, h in enumerate(HORIZONS):
            np.testing.assert_array_equal(m[:, j], f[f"markout_{h:g}s_bp"])
            key = f"markout_{h:g}s_bp"
            groups = {"": True, "_bid": f["side"] > 0, "_ask": f["side"] < 0}
            groups |= {"_" + name.replace("-", "_"): f["how"] == code
                       for code, name in enumerate(HOW_NAMES)}
            for suffix, sel in groups.items():
                col = m[:, j][sel & np.isfinite(m[:, j])]
                want = col.mean() if col.size else math.nan
                # Sums of ~1e4 terms of ~1 bp in another order: 1e-9 relative is ample.
                assert s[key + suffix] == pytest.approx(want, rel=1e-9, abs=1e-12, nan_ok=True)
        hows = np.bincount(f["how"], minlength=3)
        assert [s["fills_trade"], s["fills_book_through"], s["fills_dry_run_cross"]] == \
            hows.tolist()


@pytest.fixture(scope="module")
def informed_market(tmp_path_factory):
    """One day with informed flow: 30 % of market orders are followed 1 ms later by a 10 $
    move of the mid in their direction (truth.json: informed.expected_markout = -3 $)."""
    out = tmp_path_factory.mktemp("informed")
    cfg = SynthConfig(days=1, seed=5, bbo_rate=2.0, l2_interval=60.0, informed=0.3,
                      impact=10.0, start=date(2025, 9, 1))
    truth = generate(cfg, out)
    return load_events(out, "BTC"), cfg, truth


def test_measured_markout_of_informed_flow_matches_the_truth(informed_market):
    ev, cfg, truth = informed_market
    # A maker at the touch (0.5 from the mid on the 1 $ tick), no queue: every sweep that
    # meets its order fills it, informed or not, so a share `informed` of its trade fills is
    # followed by the `impact` move against it (book-through fills are not market orders'
    # and have no such truth: only trade fills are compared). Lots of 1e-5 coin, the
    # smallest trade, so a fill is never split between prints.
    r = run_backtest(ev, fixed(0.5, order_size=1e-5, max_inventory=1e12,
                               refresh_seconds=0.1, maker_fee=0.0))
    f = r.fills
    trade = (f["how"] == HOW_TRADE) & np.isfinite(f["markout_10s_bp"])
    # The markout is the spread captured at the fill (side * (mid - price), recorded with
    # the fill: 0.5 at the touch) plus the move of the mid in the next 10 s; the truth is the
    # move. In price units (the bp are of each fill's price).
    markout = f["markout_10s_bp"][trade] * f["price"][trade] / 1e4
    captured = f["side"][trade] * (f["mid"][trade] - f["price"][trade])
    move = markout - captured
    n = move.size
    assert n > 20_000
    # Sampling error, per fill (share F = informed, jump I = impact). The mid is a
    # martingale apart from each fill's own informed move: diffusion sigma^2 h, plus the
    # other market orders' informed moves in the window, a compound Poisson of rate 2 A F
    # with jumps +-I: 2 A F I^2 h; its own move -I with probability F adds F (1 - F) I^2
    # (a standard deviation of 28 $, as the fills' own spread shows). Windows of fills
    # overlap, but bid and ask fills come at equal rates: sum_i side_i (M(t_i + h) - M(t_i))
    # is the integral of D dM, D = bid minus ask fills in the last h seconds, E[D^2] =
    # 2 lambda h, so Var(mean) = var_per_fill / n as if the fills were independent.
    # Publishing the mid on the tick grid adds a rounding of mean zero.
    # 4 standard errors (0.42 $ for ~70,000 fills): a false failure at 6e-5.
    h, share, jump = 10.0, cfg.informed, cfg.impact
    var = (cfg.sigma**2 * h + 2 * cfg.A_bid * share * jump**2 * h
           + share * (1 - share) * jump**2)
    se = math.sqrt(var / n)
    expected = truth["informed"]["expected_markout"]
    assert expected == -3.0
    assert abs(move.mean() - expected) <= 4 * se, (move.mean(), expected, se)
    # The kernel's per-how mean is the same measurement, in bp.
    assert r.stats["markout_10s_bp_trade"] == pytest.approx(
        f["markout_10s_bp"][trade].mean(), rel=1e-9)


def test_cli_json_has_fill_rule_counts_and_markouts(small_market, capsys):
    folder, _ = small_market
    rc = cli_main(["backtest", "--data-dir", str(folder), "--coin", "BTC", "--fixed-depth",
                   "2", "--to", "2025-09-01T03:00", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fill_rule"] == "exchange"
    assert out["fills_book_through"] > 0
    assert out["fills_trade"] + out["fills_book_through"] == out["fills_bid"] + out["fills_ask"]
    for h in ("1s", "10s", "60s"):
        assert isinstance(out[f"markout_{h}_bp"], float)
    rc = cli_main(["backtest", "--data-dir", str(folder), "--coin", "BTC", "--fixed-depth",
                   "2", "--to", "2025-09-01T03:00", "--fill-rule", "freqtrade-dry-run"])
    table = capsys.readouterr().out
    assert rc == 0
    # Rich wraps the labels at the 80 columns of a captured terminal.
    assert "fill rule freqtrade-dry-run" in table and "dry-run" in table
    assert "markout" in table and "of bid fills" in table


def test_cli_fee_tier_sets_both_fees_and_explicit_fees_override_it(small_market, capsys):
    from asmm.core.fees import MAKER_FEE, TAKER_FEE

    folder, _ = small_market
    base = ["backtest", "--data-dir", str(folder), "--coin", "BTC", "--fixed-depth", "2",
            "--to", "2025-09-01T01:00", "--json"]

    def run(*extra):
        assert cli_main([*base, *extra]) == 0
        return json.loads(capsys.readouterr().out)

    plain = run()
    assert (plain["fee_tier"], plain["maker_fee"], plain["taker_fee"]) == (None, MAKER_FEE,
                                                                           TAKER_FEE)
    tier = run("--fee-tier", "hyperliquid:2")
    assert (tier["fee_tier"], tier["maker_fee"], tier["taker_fee"]) == ("hyperliquid:2",
                                                                        0.00008, 0.00035)
    # The fee is charged on every fill: the same fills (fixed depth) at 8/15 of the fees.
    assert tier["fills_bid"] + tier["fills_ask"] == plain["fills_bid"] + plain["fills_ask"] > 0
    assert tier["fees"] == pytest.approx(plain["fees"] * 0.00008 / MAKER_FEE)
    mixed = run("--fee-tier", "hyperliquid:2", "--maker-fee", "0.0001")
    assert (mixed["maker_fee"], mixed["taker_fee"]) == (0.0001, 0.00035)
    named = run("--fee-tier", "hyperliquid:2", "--taker-fee", "0.0005", "--maker-fee",
                str(MAKER_FEE))  # the default's value, given explicitly, still wins
    assert (named["maker_fee"], named["taker_fee"]) == (MAKER_FEE, 0.0005)
    assert cli_main([*base, "--fee-tier", "hyperliquid:9"]) == 2
    assert "unknown fee tier 'hyperliquid:9'" in capsys.readouterr().err
