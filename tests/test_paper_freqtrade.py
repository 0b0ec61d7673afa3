"""Real Freqtrade in live mode (`dry_run: false`) against the paper exchange: `asmm replay
--ledger` serving Hyperliquid's private API, `user_data/config.paper.json`, a throw-away key
from the environment. Orders are signed, placed, re-priced, cancelled and filled by the
paper exchange's matching; fills are checked in its own ledger (`/info userFills`), not only
in Freqtrade's. One bot run serves the tests below in file order (the kill switch gets a
second bot, on its own account on the same exchange); two fast tests first pin down the
paper exchange's fixes they needed.

Nothing here reaches beyond 127.0.0.1 (the overlay points ccxt at the replay and turns
WebSockets off, as tests/test_freqtrade.py does).
"""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("freqtrade")

from eth_account import Account
from test_freqtrade import (
    PAIR,
    ROOT,
    STRATEGIES,
    credentials,
    error_lines,
    foreign_hosts,
    free_port,
    freqtrade_cmd,
    ft_env,
    is_entry,
    make_params,
    overlay,
    quote_lines,
    wait_until,
)

from asmm.core.params import Params, SideIntensity, write_params
from asmm.data.synth import SynthConfig, generate
from asmm.venues.hyperliquid.replay.process import ReplayProcess, start_replay

CONFIG = ROOT / "user_data" / "config.paper.json"
MAX_LEVERAGE = 40  # the replay's default --max-leverage
# A line Freqtrade logs when a request to the exchange fails on the network.
OUTAGE = re.compile(r"(Cannot connect|Connect call failed|Connection refused|"
                    r"NetworkError|RequestTimeout|ExchangeNotAvailable)")


class LiveBot:
    """One `freqtrade trade` in live mode (``config``, by default config.paper.json, plus an
    overlay of ports, files and the exchange's URL) with a fresh throw-away key, its log and
    its REST client. ``exchange()`` gives the paper exchange it trades on (replaced when
    restarted)."""

    def __init__(self, work: Path, name: str, exchange, params_file: Path,
                 config: Path = CONFIG, **asmm):
        from freqtrade_client import FtRestClient

        self.work, self.name, self.exchange = work, name, exchange
        (work / "user_data").mkdir(parents=True, exist_ok=True)
        api_port = free_port()
        ov = overlay(work, exchange().url, params_file, api_port, name, **asmm)
        key = Account.create()  # the paper exchange opens an account for it
        self.wallet = key.address
        creds = credentials()
        env = ft_env(creds)
        env["FREQTRADE__EXCHANGE__WALLET_ADDRESS"] = key.address
        env["FREQTRADE__EXCHANGE__PRIVATE_KEY"] = key.key.hex()
        self.log, self.db = work / f"{name}.log", work / f"{name}.sqlite"
        cmd = freqtrade_cmd("trade", "-c", str(config), "-c", str(ov), "--userdir",
                            str(work / "user_data"), "--strategy-path", str(STRATEGIES),
                            "--logfile", str(self.log))
        with open(work / f"{name}.console", "wb") as f:
            self.proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=f,
                                         stderr=subprocess.STDOUT)
        self.client = FtRestClient(f"http://127.0.0.1:{api_port}",
                                   creds["FREQTRADE__API_SERVER__USERNAME"],
                                   creds["FREQTRADE__API_SERVER__PASSWORD"], timeout=10)
        self.wait(self._pong, 120, "the REST API to answer")

    def _pong(self):
        try:
            return self.client.ping() == {"status": "pong"}
        except Exception:  # not up yet: any connection error
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, pred, timeout: float, what: str):
        return wait_until(pred, timeout, what, self.proc, self.log)

    def info(self, kind: str, **kw):
        """A user ``/info`` request for the bot's wallet, answered by the paper exchange."""
        return self.exchange().info({"type": kind, "user": self.wallet, **kw})

    def fills(self) -> list[dict]:
        """The wallet's fills in the exchange's ledger, newest first."""
        return self.info("userFills")

    def trades(self) -> list[dict]:
        open_ = self.client.status()
        seen = {t["trade_id"] for t in open_}
        return open_ + [t for t in self.client.trades()["trades"] if t["trade_id"] not in seen]

    def ft_orders(self) -> list[tuple]:
        """Every order Freqtrade recorded (cancelled ones too, which its REST API leaves
        out): (order_id, trade_id, side, price, status), from its database, read-only."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as db:
            return db.execute("SELECT order_id, ft_trade_id, ft_order_side, price, status "
                              "FROM orders WHERE order_id IS NOT NULL").fetchall()


@dataclass
class PaperRun:
    """A paper exchange on a fixed port and ledger, and the ping-pong bot trading it."""

    work: Path
    market: Path
    ledger: Path
    port: int
    rp: ReplayProcess
    truth: dict
    params_file: Path
    bot: LiveBot | None = None

    def start_exchange(self) -> ReplayProcess:
        self.rp = start_replay(self.market, "--start-at", "now", "--history", "600",
                               "--ledger", str(self.ledger), log_dir=self.work, port=self.port)
        return self.rp


def test_a_builder_fee_approved_once_outlives_an_exchange_restart(tmp_path):
    """ccxt approves its builder once per process and then attaches it to every order;
    Freqtrade keeps running across an exchange restart, so the approval must outlive it."""
    import ccxt

    generate(SynthConfig(days=1, seed=5, bbo_rate=1.0, A_bid=0.2, A_ask=0.2,
                         l2_interval=10.0, start=date(2025, 9, 1)), tmp_path / "m")
    ledger, port = tmp_path / "ledger.sqlite", free_port()
    key = Account.create()

    def exchange():
        return start_replay(tmp_path / "m", "--ledger", str(ledger), log_dir=tmp_path,
                            port=port)

    rp = exchange()
    try:
        ex = ccxt.hyperliquid({
            "urls": {"api": {"public": rp.url, "private": rp.url}},
            "walletAddress": key.address, "privateKey": key.key.hex(),
            "options": {"fetchMarkets": {"types": ["swap"]}, "hip3TokensByName": {},
                        "cachedCurrenciesById": {}},
            "has": {"fetchCurrencies": False}})
        ex.load_markets()
        bid = ex.fetch_order_book(PAIR, 1)["bids"][0][0]
        first = ex.create_order(PAIR, "limit", "buy", 0.001, bid - 500, params={"postOnly": True})
        assert ex.options["approvedBuilderFee"] is True
        rp.stop()
        rp = exchange()
        second = ex.create_order(PAIR, "limit", "buy", 0.001, bid - 501,
                                 params={"postOnly": True})
        assert {o["id"] for o in ex.fetch_open_orders(PAIR)} == {first["id"], second["id"]}
    finally:
        rp.stop()


def test_isolated_positions_are_margined_and_liquidated_on_their_own():
    """Freqtrade's config trades isolated (`updateLeverage` with isCross false) and reads
    each trade's liquidation price from the position: Hyperliquid's for an isolated one
    (Freqtrade's dry-run formula, which it checked against Hyperliquid's answers), not the
    whole account's."""
    from asmm.core.fees import fee_tier
    from asmm.venues.hyperliquid.paper.api import PaperApi
    from asmm.venues.hyperliquid.paper.engine import CoinSpec, PaperEngine
    from asmm.venues.hyperliquid.paper.ledger import Ledger

    a, b, t = "0x" + "a" * 40, "0x" + "b" * 40, 1_756_684_800_000
    e = PaperEngine(Ledger(), [CoinSpec("BTC", 0, 5, 40)], fee_tier("hyperliquid:0"))
    e.on_bbo("BTC", 100.0, 5.0, 101.0, 5.0, t)
    for user, lev, is_buy, px in ((a, 1, False, 100.0), (b, 3, True, 101.0)):
        e.account_of(user, t)
        e.set_leverage(user, "BTC", lev, cross=False)
        assert "filled" in e.place(user, "BTC", is_buy, px, 1.0, "Gtc", False, None, t)
    ll = 1 / (2 * 40)  # maintenance: half the initial margin at the maximum leverage
    assert e.liquidation_px(a, "BTC") == pytest.approx(2 * 100.0 / (1 + ll))  # 1x short
    liq_b = 101.0 * (1 - 1 / 3) / (1 - ll)  # 3x long: not the 10,000 USDC account's
    assert e.liquidation_px(b, "BTC") == pytest.approx(liq_b)
    (pos,) = PaperApi(e, lambda: t).info({"type": "clearinghouseState", "user": b})[
        "assetPositions"]
    assert pos["position"]["leverage"]["type"] == "isolated"
    assert float(pos["position"]["liquidationPx"]) == pytest.approx(liq_b)
    # Its own money: the entry margin plus the PnL at the mid (100.5).
    assert float(pos["position"]["marginUsed"]) == pytest.approx(101.0 / 3 - 0.5)
    # The mark through b's price liquidates b's position only.
    e.on_bbo("BTC", liq_b - 2, 1.0, liq_b - 1, 1.0, t + 1)
    assert e.position(b, "BTC").szi == 0.0 and e.position(a, "BTC").szi == -1.0
    assert e.ledger.fills(b)[0].how == "liquidation"


def requoted(log_text: str) -> list[tuple[int, float, float]]:
    """(order id, old price, new price) of each resting entry the bot cancelled to re-quote:
    the order is the latest one Freqtrade created before the ``asmm requote`` line."""
    out, last = [], None
    for line in log_text.splitlines():
        if m := re.search(r" - Order (\S+) was created for ", line):
            last = int(m.group(1))
        elif (m := re.search(r"asmm requote .*kind=entry .*from=(\S+) to=(\S+)", line)) \
                and last is not None:
            out.append((last, float(m.group(1)), float(m.group(2))))
    return out


def _closed(bot: LiveBot, short: bool) -> int:
    return sum(1 for t in bot.trades() if not t["is_open"] and t["is_short"] == short)


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    """A lively synthetic day on the replay exchange with a paper ledger, and one ping-pong
    bot trading it live (no maker fee in the quotes, so orders a tick or two from the mid
    fill within seconds)."""
    work = tmp_path_factory.mktemp("ft_paper")
    market = work / "market"
    truth = generate(SynthConfig(days=1, seed=11, start=date(2025, 9, 1)), market)
    port = free_port()
    params_file = work / "params.json"
    now = datetime.now(UTC)
    make_params(params_file, truth, now - timedelta(minutes=5), now + timedelta(hours=2))
    run = PaperRun(work, market, work / "ledger.sqlite", port, None, truth, params_file)
    run.start_exchange()
    try:
        run.bot = LiveBot(work, "paper", lambda: run.rp, params_file, maker_fee=0.0)
        yield run
    finally:
        if run.bot:
            run.bot.stop()
        run.rp.stop()


@pytest.mark.slow
def test_paper_live_bot_trades_both_ways_and_the_ledger_agrees(paper_run):
    bot = paper_run.bot
    cfg = bot.client.show_config()
    assert cfg["dry_run"] is False and cfg["trading_mode"] == "futures"
    bot.wait(lambda: _closed(bot, False) >= 2 and _closed(bot, True) >= 2, 240,
             "two closed round trips each way")
    fills = bot.fills()
    by_oid: dict[int, list[dict]] = {}
    for f in fills:
        by_oid.setdefault(f["oid"], []).append(f)
    # The paper exchange booked entries and exits, long and short, for this wallet.
    assert {"Open Long", "Close Long", "Open Short", "Close Short"} <= {f["dir"] for f in fills}
    # ccxt attached the builder at 0 (config.paper.json's builderFee: false): no builder fee.
    assert not [f for f in fills if float(f.get("builderFee", 0))]
    checked = 0
    for t in bot.trades():
        if t["is_open"]:
            continue
        assert t["amount"] == pytest.approx(0.001)
        fee_cost = {True: 0.0, False: 0.0}
        for o in t["orders"]:
            if o["status"] != "closed":
                continue
            booked = by_oid[int(o["order_id"])]  # every filled order is in the ledger
            size = sum(float(f["sz"]) for f in booked)
            avg = sum(float(f["px"]) * float(f["sz"]) for f in booked) / size
            assert o["filled"] == pytest.approx(size)
            assert o["average"] == pytest.approx(avg)
            assert {f["side"] for f in booked} == {"B" if o["ft_order_side"] == "buy" else "A"}
            fee_cost[is_entry(o, t)] += sum(float(f["fee"]) for f in booked)
            checked += 1
        # Freqtrade's fees are the exchange's, maker or taker as each fill was.
        assert t["fee_open_cost"] == pytest.approx(fee_cost[True], rel=1e-6)
        assert t["fee_close_cost"] == pytest.approx(fee_cost[False], rel=1e-6)
    assert checked >= 8
    # Re-pricing: each entry the bot re-quoted is cancelled on the exchange at its old price
    # (Freqtrade deletes a fully cancelled entry's trade, so its log names the order).
    # A cancel can race the order's fill, which the exchange then reports.
    requotes = bot.wait(lambda: (lambda r: r if len(r) >= 3 else None)(
        requoted(bot.text())), 120, "three re-quoted entries")
    statuses = []
    for oid, old, new in requotes:
        status = bot.info("orderStatus", oid=oid)
        assert status["status"] == "order", status
        assert float(status["order"]["order"]["limitPx"]) == old != new
        # Live, entries rest post-only (config.paper.json leaves asmm.post_only on).
        assert status["order"]["order"]["tif"] == "Alo"
        statuses.append(status["order"]["status"])
    assert set(statuses) <= {"canceled", "filled"} and statuses.count("canceled") >= 2


@pytest.mark.slow
def test_paper_positions_carry_the_isolated_liquidation_price(paper_run):
    """Freqtrade takes a live trade's liquidation price from the exchange's position: at 1x
    isolated, none for a long, 2 x entry / (1 + 1/(2 max leverage)) for a short (Hyperliquid's
    rule, which Freqtrade's dry-run formula reproduces), less Freqtrade's 5 % buffer."""
    bot = paper_run.bot
    shorts = [t for t in bot.trades() if t["is_short"] and t["liquidation_price"]]
    assert shorts
    for t in shorts:
        liq = 2 * t["open_rate"] / (1 + 1 / (2 * MAX_LEVERAGE))
        # Freqtrade rounds it to the price tick (1 USDC).
        assert t["liquidation_price"] == pytest.approx(liq - (liq - t["open_rate"]) * 0.05,
                                                       abs=1.0)
    assert not [t for t in bot.trades() if not t["is_short"] and t["liquidation_price"]]


@pytest.mark.slow
def test_paper_stale_params_stop_entries_and_say_why(paper_run):
    run, bot = paper_run, paper_run.bot
    now = datetime.now(UTC)
    make_params(run.params_file, run.truth, now - timedelta(minutes=5),
                now + timedelta(seconds=3))
    line = bot.wait(lambda: re.search(r"^(\S+ \S+) .*asmm: no new entries: parameters for BTC "
                                      r"expired at .*$", bot.text(), re.M), 60,
                    "the log line saying entries stopped because the parameters expired")
    stopped = datetime.strptime(line.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
    t_watch = time.monotonic()
    bot.wait(lambda: time.monotonic() - t_watch > 10 and not any(
        t["is_open"] for t in bot.trades()), 180, "the bot to be flat under stale parameters")
    late = [t for t in bot.trades()
            if datetime.fromtimestamp(t["open_timestamp"] / 1000, UTC) > stopped
            + timedelta(seconds=2)]
    assert late == [], "entries opened after the parameters expired"
    # Flat on the exchange too, with nothing resting.
    assert bot.info("clearinghouseState")["assetPositions"] == []
    assert bot.info("openOrders") == []
    now = datetime.now(UTC)
    make_params(run.params_file, run.truth, now - timedelta(minutes=5), now + timedelta(hours=2))
    bot.wait(lambda: "asmm: entries allowed again" in bot.text().split(line.group(0), 1)[1],
             60, "entries to resume with fresh parameters")


@pytest.mark.slow
def test_paper_kill_switch_flattens_with_a_taker_fill(paper_run):
    """A second bot on the same exchange, its own account, armed while it holds a position
    whose exit rests far away: with the kill timeout ~0 the switch sends the exit at market
    — live, a limit 1 % through the touch the loop read — and the exchange fills it at the
    book's prices, as a taker.

    Its parameter file keeps the exit away (long entries only, γ 0.005 and the ask side's
    k 0.001: the entry rests 3 USDC under the mid, the exit ~340 over it), so the exit the
    switch sends is the one that flattens; with both sides near the touch, the resting exit
    mostly fills before the switch acts (exits a tick or two out fill within seconds here)."""
    from asmm.freqtrade.quotes import market_through

    run = paper_run
    work = run.work / "kill"
    params_file = work / "params.json"
    work.mkdir()
    now = datetime.now(UTC)
    write_params(params_file, Params(
        coin="BTC", model="glft", computed_at=now - timedelta(minutes=5),
        valid_until=now + timedelta(hours=2),
        data_window=(now - timedelta(days=1), now - timedelta(minutes=5)),
        mid_price=run.truth["mid0"], sigma=run.truth["sigma"], gamma=0.005,
        bid=SideIntensity(run.truth["bid"]["A"], run.truth["bid"]["k"]),
        ask=SideIntensity(run.truth["ask"]["A"], 0.001)))
    bot = LiveBot(work, "kill", lambda: run.rp, params_file, maker_fee=0.0,
                  flat_side_rule="long", kill_timeout_seconds=0.001)
    try:
        def resting_exit():
            for t in bot.client.status():
                if any(o["status"] == "closed" for o in t["orders"]) and any(
                        o["is_open"] and not is_entry(o, t) for o in t["orders"]):
                    return t
            return None

        trade = bot.wait(resting_exit, 180, "a long position with its exit resting")
        assert not trade["is_short"]
        bot.client.lock_add(PAIR, (now + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%SZ"),
                            "*", "kill")
        line = bot.wait(lambda: re.search(r"^(\S+ \S+) .*asmm: kill switch armed",
                                          bot.text(), re.M), 30, "the kill switch to arm")
        armed = datetime.strptime(line.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
        bot.wait(lambda: bot.client.status() == [], 60, "the bot to be flat after the switch")
        t_flat = time.monotonic()
        bot.wait(lambda: time.monotonic() - t_flat > 5, 30, "a few more loops")
        # Flat on the exchange, nothing resting, no entry since; the exit was a taker fill.
        assert bot.info("clearinghouseState")["assetPositions"] == []
        assert bot.info("openOrders") == []
        assert not [t for t in bot.trades()
                    if datetime.fromtimestamp(t["open_timestamp"] / 1000, UTC) > armed]
        # The ledger: the long's entry, then its exit after the switch armed, as a taker.
        fills = bot.fills()
        out = [f for f in fills if f["dir"] == "Close Long"]
        assert {f["dir"] for f in fills} == {"Open Long", "Close Long"}
        assert sum(float(f["sz"]) for f in out) == pytest.approx(0.001)
        assert all(f["crossed"] for f in out), out
        assert all(datetime.fromtimestamp(f["time"] / 1000, UTC) >= armed for f in out)
        # Sent GTC: a post-only order at that price would have been refused.
        assert {bot.info("orderStatus", oid=f["oid"])["order"]["order"]["tif"]
                for f in out} == {"Gtc"}
        market = [ln for ln in quote_lines(bot.text()) if ln["why"] == "market"]
        assert market
        for ln in market:
            through = market_through(ln["mid"], ln["tick"], live=True)
            assert ln["price"] == ln["best_bid"] - through and through >= 100 * ln["tick"]
        # The exchange filled it at the book's prices, not at the limit 1 % lower.
        assert min(float(f["px"]) for f in out) > market[-1]["price"] + through / 2
        assert error_lines(bot.text()) == []
    finally:
        bot.stop()


@pytest.mark.slow
def test_paper_exchange_restart_keeps_the_bots_orders(paper_run):
    """The exchange stops and comes back on the same port and ledger while Freqtrade runs:
    its open order is still the exchange's, Freqtrade's view agrees, and it goes on trading."""
    run, bot = paper_run, paper_run.bot

    def open_order():
        for t in bot.client.status():
            for o in t["orders"]:
                if o["is_open"]:
                    return o
        return None

    order = bot.wait(open_order, 120, "an open order")
    oid = int(order["order_id"])
    tid_before = max(f["tid"] for f in bot.fills())
    seen = len(bot.text())
    run.rp.stop()
    bot.wait(lambda: OUTAGE.search(bot.text()[seen:]), 60, "Freqtrade to notice the outage")
    run.start_exchange()
    status = bot.info("orderStatus", oid=oid)
    assert status["status"] == "order", status  # the ledger kept it
    # Freqtrade reconciles: its record of the order agrees with the exchange's.
    def agrees():
        ex = bot.info("orderStatus", oid=oid)["order"]["status"]
        ft = {o[0]: o[4] for o in bot.ft_orders()}.get(str(oid))
        return (ex, ft) if ft == {"open": "open", "filled": "closed",
                                  "canceled": "canceled"}[ex] else None
    bot.wait(agrees, 60, f"Freqtrade's order {oid} to agree with the exchange")
    # And it goes on trading: new fills booked after the restart, entries and exits.
    bot.wait(lambda: len({f["dir"].split()[0] for f in bot.fills()
                          if f["tid"] > tid_before}) == 2, 180,
             "an entry and an exit filled after the restart")


@pytest.mark.slow
def test_paper_log_has_no_foreign_host_and_errors_only_from_the_outage(paper_run):
    text = paper_run.bot.text()
    assert "asmm quote" in text
    assert foreign_hosts(text) == set()
    assert "hyperliquid.xyz" not in text
    unexpected = [ln for ln in error_lines(text) if not OUTAGE.search(ln)]
    assert unexpected == []
