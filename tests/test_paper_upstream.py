"""`asmm paper --upstream`: the live market relayed, orders matched locally and never
forwarded. A replay exchange stands in for api.hyperliquid.xyz."""

from __future__ import annotations

from datetime import date

import ccxt
import pytest
from eth_account import Account

from asmm.data.synth import SynthConfig, generate
from asmm.venues.hyperliquid.replay.process import ReplayProcess, start_paper

SYMBOL = "BTC/USDC:USDC"


@pytest.fixture(scope="module")
def lively(tmp_path_factory):
    out = tmp_path_factory.mktemp("upstream_market")
    generate(SynthConfig(days=1, seed=22, bbo_rate=5.0, A_bid=2.0, A_ask=2.0,
                         l2_interval=5.0, start=date(2025, 9, 1)), out)
    return out


@pytest.fixture
def paper_relay(tmp_path):
    """Factory: start ``asmm paper --upstream URL --port 0 ARGS`` and return once it listens
    (it prints its URL); stopped at teardown."""
    started = []

    def start(upstream: str, *args: str, timeout: float = 60.0) -> ReplayProcess:
        rp = start_paper(upstream, *args, log_dir=tmp_path, timeout=timeout)
        started.append(rp)
        return rp

    yield start
    for rp in started:
        rp.stop()


def client(url: str, key) -> ccxt.hyperliquid:
    return ccxt.hyperliquid({
        "urls": {"api": {"public": url, "private": url}},
        "walletAddress": key.address, "privateKey": key.key.hex(),
        "options": {"fetchMarkets": {"types": ["swap"]}, "hip3TokensByName": {},
                    "cachedCurrenciesById": {}, "builderFee": False},
        "has": {"fetchCurrencies": False},
    })


def test_the_live_market_is_relayed_and_orders_stay_here(lively, replay_exchange,
                                                          paper_relay, tmp_path):
    upstream = replay_exchange(lively)
    relay = paper_relay(upstream.url, "--ledger", str(tmp_path / "paper.sqlite"))
    key = Account.create()
    ex = client(relay.url, key)
    ex.load_markets()  # meta and asset contexts: passed through to the upstream
    book = ex.fetch_order_book(SYMBOL, 1)
    bid = book["bids"][0][0]
    # Twenty ticks under the bid: the book fetched through the relay is the upstream's now,
    # while the relay's engine hears it over its own feed, which under load can be seconds
    # behind — a post-only order its (older) ask already reached would be refused.
    order = ex.create_order(SYMBOL, "limit", "buy", 0.001, bid - 20,
                            params={"postOnly": True})
    # The relay's own feed (bbo, trades, l2Book from the upstream) fills it.
    relay.wait_for(lambda _: ex.fetch_order(order["id"], SYMBOL)["status"] == "closed",
                   timeout=180)
    (pos,) = ex.fetch_positions([SYMBOL])
    assert pos["contracts"] == pytest.approx(0.001)
    # Never forwarded: the upstream has no fill, no order, no account for this wallet.
    user = key.address.lower()
    assert upstream.info({"type": "userFills", "user": user}) == []
    assert upstream.info({"type": "openOrders", "user": user}) == []


def test_an_unknown_coin_is_refused_at_start(lively, replay_exchange, paper_relay):
    upstream = replay_exchange(lively)
    with pytest.raises(RuntimeError, match="does not list"):
        paper_relay(upstream.url, "--coin", "DOGE")
