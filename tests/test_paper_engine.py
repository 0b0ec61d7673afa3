"""The paper exchange's engine event by event: the backtester's fill rule (queue, trades
through, the book moving through), Hyperliquid's order rules, fees, margin, funding,
liquidation, and the ledger across a restart. Hand-built events, known answers."""

from __future__ import annotations

import pytest

from asmm.core.fees import fee_tier
from asmm.venues.hyperliquid.paper.engine import CoinSpec, PaperEngine
from asmm.venues.hyperliquid.paper.ledger import Ledger

A = "0x" + "a" * 40
T = 1_756_684_800_000  # ms
TIER = fee_tier("hyperliquid:0")  # maker 1.5 bp, taker 4.5 bp


def engine(ledger=None, funding=0.0, balance=10_000.0) -> PaperEngine:
    e = PaperEngine(ledger or Ledger(), [CoinSpec("BTC", 0, 5, 40)], TIER,
                    starting_balance=balance, funding=lambda coin: funding)
    e.account_of(A, T)
    e.on_bbo("BTC", 100.0, 2.0, 101.0, 3.0, T)
    return e


def fills(e):
    return e.ledger.fills(A)[::-1]


def test_a_bid_at_the_touch_waits_for_the_queue_ahead_of_it():
    e = engine()
    oid = e.place(A, "BTC", True, 100.0, 0.5, "Alo", False, None, T)["resting"]["oid"]
    assert e.orders[oid].ahead == 2.0  # the touch's size when it joined
    for _ in range(4):  # 4 x 0.5 sold at our price: the queue ahead, exactly
        e.on_trades("BTC", [(100.0, 0.5, -1)], T + 1)
    assert fills(e) == [] and e.orders[oid].ahead == 0.0
    e.on_trades("BTC", [(100.0, 0.3, -1)], T + 2)  # now ours, up to the trade's size
    (f,) = fills(e)
    assert (f.px, f.sz, f.how, f.crossed) == (100.0, 0.3, "trade", False)
    assert f.fee == pytest.approx(TIER.maker * 100.0 * 0.3)
    assert e.orders[oid].remaining == pytest.approx(0.2)


def test_a_trade_through_the_price_fills_whatever_the_queue():
    e = engine()
    e.place(A, "BTC", True, 100.0, 0.5, "Alo", False, None, T)
    e.on_trades("BTC", [(99.0, 0.2, -1)], T + 1)
    (f,) = fills(e)
    assert (f.px, f.sz) == (100.0, 0.2)  # at our price, capped by the trade


def test_the_book_moving_through_an_order_fills_it_whole_as_a_maker():
    e = engine()
    e.place(A, "BTC", True, 99.0, 0.5, "Alo", False, None, T)
    e.on_bbo("BTC", 98.0, 1.0, 99.0, 1.0, T + 1)  # the ask came down to our bid
    (f,) = fills(e)
    assert (f.px, f.sz, f.how, f.crossed) == (99.0, 0.5, "book-through", False)
    assert e.position(A, "BTC").szi == 0.5 and e.orders == {}


def test_cancellations_ahead_follow_the_backtesters_queue_model():
    e = engine()
    oid = e.place(A, "BTC", True, 100.0, 0.5, "Alo", False, None, T)["resting"]["oid"]
    # The level shrinks from 2 to 1 without a trade: cancellations, split front/back by
    # front^3 / (front^3 + back^3) with nobody behind us (back 0): all from ahead.
    e.on_bbo("BTC", 100.0, 1.0, 101.0, 3.0, T + 1)
    assert e.orders[oid].ahead == pytest.approx(1.0)


def test_post_only_across_the_book_is_refused_a_limit_takes_the_book():
    e = engine()
    e.on_l2("BTC", ([(100.0, 2.0, 1), (99.0, 5.0, 1)], [(101.0, 3.0, 1), (102.0, 5.0, 1)]))
    err = e.place(A, "BTC", True, 102.0, 1.0, "Alo", False, None, T)
    assert err == {"error": "Post only order would have immediately matched, bbo was "
                            "100@101. asset=0"}
    got = e.place(A, "BTC", True, 102.0, 4.0, "Gtc", False, None, T)
    assert got["filled"]["totalSz"] == "4"
    taken = fills(e)
    assert [(f.px, f.sz, f.crossed) for f in taken] == [(101.0, 3.0, True), (102.0, 1.0, True)]
    assert sum(f.fee for f in taken) == pytest.approx(TIER.taker * (303.0 + 102.0))


def test_ioc_that_meets_nothing_is_refused_and_never_rests():
    e = engine()
    err = e.place(A, "BTC", True, 100.0, 1.0, "Ioc", False, None, T)
    assert err["error"].startswith("Order could not immediately match")
    assert e.orders == {}


def test_reduce_only_and_margin_rules():
    e = engine(balance=100.0)
    assert "Reduce only order would increase position" in \
        e.place(A, "BTC", True, 99.0, 0.1, "Alo", True, None, T)["error"]
    # 100 USDC at the default 20x carries 2,000 USDC of orders; 25 BTC at 99 is 2,475.
    assert e.place(A, "BTC", True, 99.0, 25.0, "Alo", False, None, T)["error"].startswith(
        "Insufficient margin")
    assert "resting" in e.place(A, "BTC", True, 99.0, 20.0, "Alo", False, None, T)
    with pytest.raises(ValueError, match="Invalid leverage"):
        e.set_leverage(A, "BTC", 41, True)


def test_funding_is_paid_each_hour_on_the_mark():
    e = engine(funding=0.0001)
    e.place(A, "BTC", True, 99.0, 1.0, "Alo", False, None, T)
    e.on_bbo("BTC", 98.0, 1.0, 99.0, 1.0, T + 1)  # filled: long 1 BTC
    before = e.balances[A]
    e.on_bbo("BTC", 98.0, 1.0, 99.0, 1.0, T + 3_600_000)  # the next hour
    assert e.balances[A] == pytest.approx(before - 0.0001 * 98.5)
    assert e.position(A, "BTC").cum_funding == pytest.approx(0.0001 * 98.5)


def test_an_account_under_its_maintenance_margin_is_liquidated_at_the_mid():
    e = engine(balance=100.0)
    e.set_leverage(A, "BTC", 40, True)
    e.place(A, "BTC", True, 99.0, 40.0, "Alo", False, None, T)
    e.on_bbo("BTC", 98.0, 1.0, 99.0, 1.0, T + 1)  # long 40 BTC at 99, 3,960 USDC at 40x
    assert e.position(A, "BTC").szi == 40.0
    liq = e.liquidation_px(A, "BTC")
    assert 96.0 < liq < 98.0  # 100 USDC of equity over 40 BTC, less the maintenance
    e.on_bbo("BTC", 96.0, 1.0, 97.0, 1.0, T + 2)
    assert e.position(A, "BTC").szi == 0.0
    assert fills(e)[-1].how == "liquidation" and fills(e)[-1].crossed


def test_the_ledger_keeps_everything_across_a_restart(tmp_path):
    path = tmp_path / "paper.sqlite"
    e = engine(Ledger(path))
    e.place(A, "BTC", True, 99.0, 1.0, "Alo", False, None, T)
    e.on_bbo("BTC", 98.0, 1.0, 99.0, 1.0, T + 1)
    rest = e.place(A, "BTC", False, 105.0, 0.5, "Alo", False, "0x" + "1" * 32, T + 2)
    balance, tids = e.balances[A], [f.tid for f in e.ledger.fills(A)]
    e.ledger.close()
    again = PaperEngine(Ledger(path), [CoinSpec("BTC", 0, 5, 40)], TIER)
    assert again.balances[A] == balance
    assert again.position(A, "BTC").szi == 1.0
    (o,) = again.orders.values()
    assert (o.oid, o.px, o.cloid) == (rest["resting"]["oid"], 105.0, "0x" + "1" * 32)
    assert [f.tid for f in again.ledger.fills(A)] == tids == [1]
    assert again.next_oid == e.next_oid and again.next_tid == e.next_tid
