"""The paper exchange through the real ccxt client: `asmm replay` serving POST /exchange,
signatures verified, orders matched against the replayed market by the backtester's rule,
accounts kept in a SQLite ledger across a restart."""

from __future__ import annotations

from datetime import date

import ccxt
import pytest
from eth_account import Account

from asmm.data.synth import SynthConfig, generate

SYMBOL = "BTC/USDC:USDC"


@pytest.fixture(scope="module")
def lively(tmp_path_factory):
    """One busy synthetic day: a book update every 0.2 s, a sweep per side every 0.5 s."""
    out = tmp_path_factory.mktemp("paper_market")
    generate(SynthConfig(days=1, seed=21, bbo_rate=5.0, A_bid=2.0, A_ask=2.0,
                         l2_interval=5.0, start=date(2025, 9, 1)), out)
    return out


def client(url: str, key=None, wallet: str | None = None) -> ccxt.hyperliquid:
    key = key or Account.create()
    return ccxt.hyperliquid({
        "urls": {"api": {"public": url, "private": url}},
        "walletAddress": wallet or key.address, "privateKey": key.key.hex(),
        "options": {"fetchMarkets": {"types": ["swap"]}, "hip3TokensByName": {},
                    "cachedCurrenciesById": {}},
        "has": {"fetchCurrencies": False},
    })


def touch(ex) -> tuple[float, float]:
    book = ex.fetch_order_book(SYMBOL, 1)
    return book["bids"][0][0], book["asks"][0][0]


def test_orders_rest_cancel_fill_and_hold_a_position(lively, replay_exchange, tmp_path):
    ledger = tmp_path / "paper.sqlite"
    rp = replay_exchange(lively, "--ledger", str(ledger))
    key = Account.create()
    ex = client(rp.url, key)
    ex.load_markets()
    assert ex.fetch_balance()["USDC"]["total"] == pytest.approx(10_000)
    bid, ask = touch(ex)

    # Post-only across the book: refused as Hyperliquid refuses it.
    with pytest.raises(ccxt.BaseError, match="Post only order would have immediately matched"):
        ex.create_order(SYMBOL, "limit", "buy", 0.001, ask + 20, params={"postOnly": True})

    # Rests, is listed, is cancelled.
    far = ex.create_order(SYMBOL, "limit", "buy", 0.001, bid - 500, params={"postOnly": True})
    assert [o["id"] for o in ex.fetch_open_orders(SYMBOL)] == [far["id"]]
    ex.cancel_order(far["id"], SYMBOL)
    assert ex.fetch_open_orders(SYMBOL) == []
    assert ex.fetch_order(far["id"], SYMBOL)["status"] == "canceled"

    # Near the touch it fills once the book moves through it (three ticks under the bid: the
    # market moves on while the order travels, and a post-only order the ask reached by
    # then would be refused).
    bid = touch(ex)[0] - 3
    near = ex.create_order(SYMBOL, "limit", "buy", 0.001, bid, params={"postOnly": True})
    rp.wait_for(lambda _: ex.fetch_order(near["id"], SYMBOL)["status"] == "closed",
                timeout=60)
    (pos,) = ex.fetch_positions([SYMBOL])
    assert pos["side"] == "long" and pos["contracts"] == pytest.approx(0.001)
    assert pos["entryPrice"] == pytest.approx(bid)
    (fill,) = ex.fetch_my_trades(SYMBOL)
    assert fill["price"] == pytest.approx(bid) and fill["amount"] == pytest.approx(0.001)
    # A maker fill at tier 0: 1.5 bp of the notional (ccxt's builder fee comes on top).
    assert float(fill["info"]["fee"]) == pytest.approx(0.00015 * bid * 0.001, rel=1e-6)

    # The ledger outlives the process: the same position and fill after a restart.
    rp.stop()
    rp2 = replay_exchange(lively, "--ledger", str(ledger))
    ex2 = client(rp2.url, key)
    (pos2,) = ex2.fetch_positions([SYMBOL])
    assert pos2["contracts"] == pytest.approx(0.001) and pos2["entryPrice"] == pytest.approx(bid)
    assert [t["id"] for t in ex2.fetch_my_trades(SYMBOL)] == [fill["id"]]


def test_an_order_signed_by_another_key_is_refused(lively, replay_exchange):
    owner, stranger = Account.create(), Account.create()
    rp = replay_exchange(lively, "--accounts", owner.address)
    ex = client(rp.url, stranger, wallet=owner.address)
    ex.load_markets()
    bid, _ = touch(ex)
    with pytest.raises(ccxt.BaseError, match="does not exist"):
        ex.create_order(SYMBOL, "limit", "buy", 0.001, bid - 500, params={"postOnly": True})
    assert ex.fetch_open_orders(SYMBOL) == []


def test_the_hyperliquid_sdk_signing_testnet_trades_with_signing_chain_testnet(
        lively, replay_exchange):
    from hyperliquid.exchange import Exchange

    rp = replay_exchange(lively, "--signing-chain", "testnet")
    wallet = Account.create()
    sdk = Exchange(wallet, base_url=rp.url)  # signs as testnet: the URL is not mainnet's
    bid = float(rp.info({"type": "l2Book", "coin": "BTC"})["levels"][0][0]["px"])
    first = sdk.order("BTC", True, 0.001, bid - 500, {"limit": {"tif": "Alo"}})
    oid = first["response"]["data"]["statuses"][0]["resting"]["oid"]
    # The same account on the next request (a wrong network would recover a new address
    # each time): it sees and cancels its order.
    user = wallet.address.lower()
    assert [o["oid"] for o in rp.info({"type": "openOrders", "user": user})] == [oid]
    assert sdk.cancel("BTC", oid)["response"]["data"]["statuses"] == ["success"]
    assert rp.info({"type": "openOrders", "user": user}) == []


def test_user_channels_push_order_updates_and_fills(lively, replay_exchange):
    import threading

    from hyperliquid.info import Info

    rp = replay_exchange(lively)
    key = Account.create()
    user = key.address.lower()
    got: dict[str, list] = {"orderUpdates": [], "userFills": []}
    lock = threading.Lock()

    def on(channel):
        def cb(msg):
            with lock:
                got[channel].append(msg)
        return cb

    info = Info(base_url=rp.url, skip_ws=False)
    for channel in got:
        info.subscribe({"type": channel, "user": key.address}, on(channel))
    rp.wait_for(lambda _: got["userFills"], timeout=30)  # the snapshot, empty
    assert got["userFills"][0]["data"] == {"isSnapshot": True, "user": user, "fills": []}
    ex = client(rp.url, key)
    ex.load_markets()
    bid = touch(ex)[0] - 3
    order = ex.create_order(SYMBOL, "limit", "buy", 0.001, bid, params={"postOnly": True})
    rp.wait_for(lambda _: len(got["userFills"]) > 1, timeout=60)
    with lock:
        statuses = [u["status"] for m in got["orderUpdates"] for u in m["data"]
                    if str(u["order"]["oid"]) == order["id"]]
        (fill,) = got["userFills"][1]["data"]["fills"]
    assert statuses[0] == "open"
    assert fill["oid"] == int(order["id"]) and float(fill["px"]) == bid
    rp.wait_for(lambda _: "filled" in [u["status"] for m in got["orderUpdates"]
                                       for u in m["data"]], timeout=10)
    info.disconnect_websocket()


def test_kill_9_loses_nothing_the_exchange_answered(lively, replay_exchange, tmp_path):
    """Every answered request is a committed transaction (WAL): SIGKILL right after the
    answers, and a restart on the same ledger has every order, cancel and account."""
    ledger = tmp_path / "paper.sqlite"
    rp = replay_exchange(lively, "--ledger", str(ledger))
    key = Account.create()
    ex = client(rp.url, key)
    ex.load_markets()
    bid = touch(ex)[0]
    kept = [ex.create_order(SYMBOL, "limit", "buy", 0.001, bid - 500 - i,
                            params={"postOnly": True})["id"] for i in range(3)]
    cancelled = kept.pop()
    ex.cancel_order(cancelled, SYMBOL)
    rp.proc.kill()  # SIGKILL: no shutdown, no flush
    rp.proc.wait()
    rp2 = replay_exchange(lively, "--ledger", str(ledger))
    ex2 = client(rp2.url, key)
    assert sorted(o["id"] for o in ex2.fetch_open_orders(SYMBOL)) == sorted(kept)
    assert ex2.fetch_order(cancelled, SYMBOL)["status"] == "canceled"
