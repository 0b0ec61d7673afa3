"""show_PnL on a Freqtrade trades database built with Freqtrade's own persistence layer.

The figures are computed by hand below from three trades (all fees 1 bp = 0.0001):

T1 long : buy 0.01 @ 100000 (t0), sell 0.01 @ 100020 (t0+60 s), funding paid 0.02
          gross 0.2, fees 0.0001*(1000 + 1000.2) = 0.20002, PnL -0.02002 (a loss)
T2 short: sell 0.02 @ 100030 (t0+120 s), buy 0.02 @ 99990 (t0+300 s), funding received 0.01
          gross 0.8, fees 0.0001*(2000.6 + 1999.8) = 0.40004, PnL 0.40996 (a win)
T3 long, open: buy 0.01 @ 99950 (t0+3600 s), fee 0.09995; marked at 100000 -> +0.5

realised = -0.02002 + 0.40996 - 0.09995 = 0.28999, total = 0.78999, fees 0.70001,
funding -0.01; captured spread T1 20/100000 = 2.0 bp, T2 40/100030 = 3.9988 bp.
Inventory after each fill +0.01, 0, -0.02, 0, +0.01: now 0.01, largest 0.02.
Equity after each fill (open inventory at the last fill price): -0.1, -0.02002, -0.22008,
0.38994, 0.28999, then 0.78999 at the mark: max drawdown 0.22008 from the start (peak 0).
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from asmm.core.errors import PnLError
from asmm.core.settings import (
    FREQTRADE_DRY_RUN_FILL_REACTION_MS,
    FREQTRADE_DRY_RUN_REQUOTE_GAP_MS,
    FREQTRADE_FILL_REACTION_MS,
    FREQTRADE_REQUOTE_GAP_MS,
)
from asmm.report.comparison import compare_with_backtest
from asmm.report.ledger import BotBook, Fill, TradeRec, cagr, merge_books, summarize
from asmm.report.rendering import comparison_title, plot, write_html
from asmm.report.sources import load_db

ROOT = Path(__file__).resolve().parents[1]
PAIR = "BTC/USDC:USDC"
T0 = datetime(2025, 9, 1, 0, 0, 0)
FEE = 0.0001


def _order(n: int, side: str, amount: float, price: float, when: datetime, is_entry: bool,
           trade_side: str):
    from freqtrade.persistence import Order

    ft_side = trade_side if is_entry else ("sell" if trade_side == "buy" else "buy")
    assert ft_side == side
    # Freqtrade names its dry-run orders so; the report tells a dry-run bot by it.
    return Order(ft_order_side=side, ft_pair=PAIR, ft_is_open=False, ft_amount=amount,
                 ft_price=price, order_id=f"dry_run_{side}_{PAIR}_{n}", status="closed",
                 symbol=PAIR, order_type="limit", side=side, price=price, average=price,
                 amount=amount, filled=amount, remaining=0.0, cost=amount * price,
                 order_date=when, order_filled_date=when)


def _trade(is_short: bool, amount: float, entry: float, exit_: float | None, t_in: float,
           t_out: float | None, funding: float, n: int):
    """A futures trade the way the bot records it: orders appended, then update_trade."""
    from freqtrade.enums import TradingMode
    from freqtrade.persistence import Trade

    side = "sell" if is_short else "buy"
    opened = T0 + timedelta(seconds=t_in)
    trade = Trade(pair=PAIR, base_currency="BTC", stake_currency="USDC", exchange="hyperliquid",
                  stake_amount=amount * entry, amount=amount, amount_requested=amount,
                  open_rate=entry, fee_open=FEE, fee_close=FEE, open_date=opened, is_open=True,
                  is_short=is_short, leverage=1.0, trading_mode=TradingMode.FUTURES,
                  interest_rate=0.0, strategy="AvellanedaStoikov", timeframe=1)
    Trade.session.add(trade)
    o = _order(n, side, amount, entry, opened, True, side)
    trade.orders.append(o)
    trade.update_trade(o)
    if exit_ is not None:
        trade.funding_fee_running = funding
        o = _order(n + 1, "buy" if is_short else "sell", amount, exit_,
                   T0 + timedelta(seconds=t_out), False, side)
        trade.orders.append(o)
        trade.update_trade(o)
    Trade.commit()
    return trade


@pytest.fixture(scope="module")
def trades_db(tmp_path_factory) -> Path:
    from freqtrade.persistence import KeyValueStore, Trade, init_db

    path = tmp_path_factory.mktemp("ftdb") / "tradesv3.dryrun.sqlite"
    init_db(f"sqlite:///{path}")
    try:
        # The bot started quoting 5 minutes before its first fill.
        KeyValueStore.store_value("bot_start_time", T0 - timedelta(minutes=5))
        _trade(False, 0.01, 100000.0, 100020.0, 0, 60, -0.02, 1)
        _trade(True, 0.02, 100030.0, 99990.0, 120, 300, 0.01, 3)
        _trade(False, 0.01, 99950.0, None, 3600, None, 0.0, 5)
        # Freqtrade's own profit of the closed trades agrees with the hand figures above.
        closed = {t.id: t.close_profit_abs for t in Trade.get_trades([Trade.is_open.is_(False)])}
        assert closed == {1: pytest.approx(-0.02002), 2: pytest.approx(0.40996)}
    finally:
        Trade.session.remove()
    return path


def _hand_cagr(days: float) -> float:
    return (1000.78999 / 1000.0) ** (365.25 / days) - 1.0


def test_summary_matches_hand_figures(trades_db):
    book = load_db(trades_db)
    book.marks = {PAIR: 100000.0}
    book.capital = 1000.0
    now = (T0 + timedelta(days=1)).replace(tzinfo=UTC).timestamp()
    s = summarize(book, now)
    assert s.realised == pytest.approx(0.28999, abs=1e-9)
    assert s.unrealised == pytest.approx(0.5, abs=1e-9)
    assert s.total == pytest.approx(0.78999, abs=1e-9)
    assert s.fees == pytest.approx(0.70001, abs=1e-9)
    assert s.funding == pytest.approx(-0.01, abs=1e-12)
    assert (s.round_trips_long, s.round_trips_short) == (1, 1)
    assert s.win_rate == 0.5
    assert s.captured_bp == pytest.approx((2.0 + 40 / 100030 * 1e4) / 2, rel=1e-12)
    assert s.inventory_now == pytest.approx(0.01)
    assert s.inventory_max == pytest.approx(0.02)
    assert s.max_drawdown == pytest.approx(0.22008, abs=1e-9)
    assert s.max_drawdown_pct == pytest.approx(0.22008 / 1000.0, rel=1e-9)
    assert s.days_running == pytest.approx(1.0)
    assert s.cagr == pytest.approx(_hand_cagr(1.0), rel=1e-9)
    assert list(s.curves.equity) == pytest.approx(
        [-0.1, -0.02002, -0.22008, 0.38994, 0.28999, 0.78999], abs=1e-9)
    # Our per-trade PnL reproduces Freqtrade's close_profit_abs.
    for rt, t in zip(s.round_trips, sorted(book.trades, key=lambda t: t.trade_id), strict=False):
        assert rt.pnl == pytest.approx(t.ft_profit, abs=1e-9)


def test_marks_default_to_last_fill(trades_db):
    s = summarize(load_db(trades_db), 0.0)
    assert s.unrealised == 0.0  # T3 marked at its own entry price
    assert math.isnan(s.cagr)  # no capital, no CAGR


def test_two_bots_are_one_book_with_net_inventory(trades_db):
    a = load_db(trades_db, name="a")
    b = load_db(trades_db, name="b")
    s = summarize(merge_books([a, b]), 0.0)
    assert s.inventory_now == pytest.approx(0.02)
    assert s.round_trips_long == 2 and s.fills == 10
    assert s.total == pytest.approx(2 * 0.28999, abs=1e-9)


def _cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "show_PnL.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_cli_table_json_and_png(trades_db, tmp_path):
    png = tmp_path / "pnl.png"
    r = _cli("--db", str(trades_db), "--capital", "1000", "--mark", "100000",
             "--now", "2025-09-02T00:00:00", "--png", str(png), "--json")
    assert r.returncode == 0, r.stderr
    (fig,) = json.loads(r.stdout)
    assert fig["total"] == pytest.approx(0.78999, abs=1e-9)
    assert fig["cagr"] == pytest.approx(_hand_cagr(1.0), rel=1e-9)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = _cli("--db", str(trades_db), "--capital", "1000", "--mark", "100000", "--no-plot")
    assert r.returncode == 0, r.stderr
    for label in ("realised PnL", "unrealised PnL", "fees paid", "funding", "round trips",
                  "win rate", "captured spread", "inventory now", "inventory max",
                  "max drawdown", "CAGR", "days running", "0.7900"):
        assert label in r.stdout, label


def test_plot_keeps_previous_png_on_failure(trades_db, tmp_path, monkeypatch):
    s = summarize(load_db(trades_db), 0.0)
    png = plot(s, tmp_path / "p.png")
    before = png.read_bytes()
    import matplotlib.figure

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", boom)
    with pytest.raises(OSError):
        plot(s, png)
    assert png.read_bytes() == before
    assert list(tmp_path.iterdir()) == [png]


def test_html_keeps_previous_page_on_failure(trades_db, tmp_path, monkeypatch):
    s = summarize(load_db(trades_db), 0.0)
    page = write_html([s], tmp_path / "r.html")
    before = page.read_bytes()

    def boom(self, *a, **k):  # the disk fills up half way through the page
        with open(self, "w") as f:
            f.write("<!doctype html>")
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", boom)
    with pytest.raises(OSError):
        write_html([s], page)
    assert page.read_bytes() == before
    assert list(tmp_path.iterdir()) == [page]


def test_empty_db_is_a_clear_error(tmp_path):
    from freqtrade.persistence import Trade, init_db

    path = tmp_path / "empty.sqlite"
    init_db(f"sqlite:///{path}")
    Trade.session.remove()
    r = _cli("--db", str(path))
    assert r.returncode == 2
    assert "no filled trades" in r.stderr


def test_missing_and_foreign_db(tmp_path):
    r = _cli("--db", str(tmp_path / "nope.sqlite"))
    assert r.returncode == 2 and "does not exist" in r.stderr
    assert not (tmp_path / "nope.sqlite").exists()  # the report never creates a database
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database")
    r = _cli("--db", str(junk))
    assert r.returncode == 2 and "not a Freqtrade trades database" in r.stderr
    assert junk.read_text() == "not a database"


@pytest.fixture
def unused_port() -> int:
    """A port nothing listens on: bound once by us, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_api(unused_port):
    r = _cli("--url", f"http://127.0.0.1:{unused_port}", "--timeout", "5")
    assert r.returncode == 2
    assert "cannot reach the Freqtrade API" in r.stderr


def test_no_source_given():
    r = _cli(env={"PATH": ""})
    assert r.returncode == 2 and "give either --url" in r.stderr


def test_every_option_has_help():
    from asmm.cli.pnl import build_parser

    for action in build_parser()._actions:
        if action.dest != "help":
            assert action.help, action.option_strings


@pytest.fixture(scope="module")
def ft_webserver(tmp_path_factory):
    """Freqtrade's real REST API (`freqtrade webserver`: the API without a trading bot) on a
    free 127.0.0.1 port, with credentials made up for this test."""
    import secrets
    import time

    folder = tmp_path_factory.mktemp("ftweb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    password = secrets.token_urlsafe(12)
    cfg = {
        "stake_currency": "USDC", "stake_amount": 100, "dry_run": True,
        "trading_mode": "futures", "margin_mode": "isolated",
        "exchange": {"name": "hyperliquid", "pair_whitelist": [PAIR]},
        "pairlists": [{"method": "StaticPairList"}], "entry_pricing": {}, "exit_pricing": {},
        "db_url": f"sqlite:///{folder / 'web.sqlite'}", "user_data_dir": str(folder),
        "api_server": {"enabled": True, "listen_ip_address": "127.0.0.1", "listen_port": port,
                       "username": "tester", "password": password,
                       "jwt_secret_key": secrets.token_hex(32),
                       "ws_token": secrets.token_urlsafe(24), "CORS_origins": []},
    }
    (folder / "config.json").write_text(json.dumps(cfg))
    log = (folder / "webserver.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "freqtrade"), "webserver",
                             "--config", str(folder / "config.json")],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    def up() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/api/v1/ping", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        while not up():
            assert proc.poll() is None, (folder / "webserver.log").read_text()
            assert time.monotonic() < deadline, "freqtrade webserver did not come up"
            time.sleep(0.2)  # polling interval of the readiness condition above
        yield url, "tester", password
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_bad_credentials(ft_webserver):
    url, user, _ = ft_webserver
    r = _cli("--url", url, "--user", user, "--password", "wrong-password")
    assert r.returncode == 2
    assert "refused the credentials" in r.stderr


def test_api_without_a_trading_bot(ft_webserver):
    url, user, password = ft_webserver
    env = {**os.environ, "FREQTRADE_API_URL": url, "FREQTRADE_API_USER": user,
           "FREQTRADE_API_PASSWORD": password}
    r = _cli(env=env)
    assert r.returncode == 2
    assert "Bot is not in the correct state" in r.stderr


@pytest.mark.slow
def test_rest_from_a_real_dry_run_bot(trades_db, small_market, replay_exchange, tmp_path):
    """A real Freqtrade dry-run bot (stopped: it serves its API but places no orders) over the
    hand-built database, against the replay exchange: the REST report gives the hand figures
    for everything the bot fixed, and marks the open trade at the price the bot quotes."""
    import secrets
    import time

    from asmm.cli.demo_steps import freqtrade_config
    from asmm.freqtrade.userdir import replay_config

    data, _ = small_market
    rp = replay_exchange(data)
    db = tmp_path / "bot.sqlite"
    # Freqtrade's database is in WAL mode: copy through SQLite, not the main file alone.
    with sqlite3.connect(trades_db) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    password = secrets.token_urlsafe(12)
    cfg = freqtrade_config(replay_config(), replay_url=rp.url, api_port=port, user="tester",
                           password=password, db=db, params_file=tmp_path / "no-params.json")
    cfg["initial_state"] = "stopped"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "ud").mkdir()
    log = tmp_path / "freqtrade.log"
    out = (tmp_path / "freqtrade.out").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "freqtrade"), "trade", "--config",
         str(tmp_path / "config.json"), "--userdir", str(tmp_path / "ud"), "--strategy-path",
         str(ROOT / "user_data" / "strategies"), "--logfile", str(log)],
        stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    env = {**os.environ, "FREQTRADE_API_USER": "tester", "FREQTRADE_API_PASSWORD": password}
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            r = _cli("--url", url, "--json", "--png", str(tmp_path / "pnl.png"), env=env)
            if r.returncode == 0:
                break
            assert proc.poll() is None, (tmp_path / "freqtrade.out").read_text()[-3000:]
            assert time.monotonic() < deadline, r.stderr
            time.sleep(0.5)  # polling interval of the readiness condition above
        (fig,) = json.loads(r.stdout)
        from freqtrade_client import FtRestClient

        (open_trade,) = FtRestClient(url, "tester", password).status()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        out.close()
    mark = open_trade["current_rate"]
    assert fig["realised"] == pytest.approx(0.28999, abs=1e-9)
    assert fig["fees"] == pytest.approx(0.70001, abs=1e-9)
    assert fig["funding"] == pytest.approx(-0.01, abs=1e-12)
    assert (fig["round_trips_long"], fig["round_trips_short"]) == (1, 1)
    assert fig["win_rate"] == 0.5
    assert fig["inventory_now"] == pytest.approx(0.01)
    assert fig["inventory_max"] == pytest.approx(0.02)
    assert fig["unrealised"] == pytest.approx(0.01 * (mark - 99950.0), abs=1e-9)
    assert fig["total"] == pytest.approx(0.28999 + 0.01 * (mark - 99950.0), abs=1e-9)
    # Freqtrade's starting balance is the wallet times tradable_balance_ratio.
    assert fig["capital"] == pytest.approx(cfg["dry_run_wallet"] * cfg["tradable_balance_ratio"])


def _params_file(path: Path, truth: dict, **extra) -> Path:
    from asmm.core.params import Params, SideIntensity, write_params

    t0 = T0.replace(tzinfo=UTC)
    write_params(path, Params(
        coin="BTC", model="glft", computed_at=t0, valid_until=t0 + timedelta(days=2),
        data_window=(t0 - timedelta(days=1), t0), mid_price=truth["mid0"],
        sigma=truth["sigma"], gamma=0.01, bid=SideIntensity(**truth["bid"]),
        ask=SideIntensity(**truth["ask"]), **extra))
    return path


def test_compare_with_backtest_over_the_live_window(trades_db, small_market, tmp_path):
    """The hand-built trades fall on the first synthetic day (2025-09-01, 00:00 to 01:00):
    the comparison backtests exactly [bot start, end] with the live lot and fee rate, the
    bot's loop and quoting settings, and the fill rule of a dry-run bot."""
    from asmm.core.params import load_params
    from asmm.report.comparison import BotSettings, fill_rule_for
    from asmm.report.markouts import fill_markouts, load_mids
    from asmm.sim import BacktestConfig, load_events, run_backtest

    data, truth = small_market
    params = _params_file(tmp_path / "p.json", truth)
    book = load_db(trades_db)
    rule, why = fill_rule_for([book])
    assert rule == "freqtrade-dry-run" and "dry-run orders (dry_run_...)" in why
    end = (T0 + timedelta(hours=2)).replace(tzinfo=UTC).timestamp()
    s = summarize(book, end)
    marked = fill_markouts(book, load_mids(data, "BTC", [book]))
    c = compare_with_backtest(s, data, "BTC", params, BotSettings(5.0, 1.0, 0.0),
                              fill_rule=rule, fill_rule_why=why, marked=marked)
    live = {label: v for label, v, _ in c.rows}
    bt = {label: v for label, _, v in c.rows}
    assert live["fills, our bid (buys)"] == 3 and live["fills, our ask (sells)"] == 2
    # Freqtrade fills a dry-run order when the book crosses it, never from a trade.
    assert (live["fills by a trade"], live["fills by the book reaching our price"]) == (0, 5)
    assert live["volume (base)"] == pytest.approx(0.07)
    assert live["inventory max |q| (lots)"] == pytest.approx(2.0)  # 0.02 BTC in 0.01 lots
    assert live["markout 10 s, sells (bp)"] == pytest.approx(marked.means(-1)["markout_10s_bp"])
    start = T0.replace(tzinfo=UTC).timestamp() - 300.0
    assert book.started == start
    assert c.window == (start, end)
    assert (c.fill_rule, c.loop_seconds) == ("freqtrade-dry-run", 5.0)
    events = load_events(data, "BTC", start, end)
    cfg = BacktestConfig.from_params(load_params(params, check_fresh=False), order_size=0.01,
                                     maker_fee=FEE, execution="freqtrade",
                                     fill_rule="freqtrade-dry-run", refresh_seconds=5.0,
                                     tick=1.0, min_spread=1.0, max_improve_ticks=0.0,
                                     fill_reaction_ms=FREQTRADE_DRY_RUN_FILL_REACTION_MS,
                                     requote_gap_ms=FREQTRADE_DRY_RUN_REQUOTE_GAP_MS)
    expected = run_backtest(events, cfg).summary()
    assert bt["fills, our bid (buys)"] == expected["fills_bid"]
    assert bt["fills by the book reaching our price"] == expected["fills_dry_run_cross"] > 0
    assert bt["PnL after fees, marked (USDC)"] == pytest.approx(expected["pnl"])
    assert bt["markout 1 s, buys (bp)"] == pytest.approx(expected["markout_1s_bp_bid"])
    assert expected["fills_bid"] + expected["fills_ask"] > 0  # the window has fills to compare
    # Each bot's window is backtested with Freqtrade's cadence as that kind of bot (a fill
    # seen late, a re-priced order off the book a while): a dry-run's, a live bot's.
    assert c.cadence == {"fill_reaction_ms": FREQTRADE_DRY_RUN_FILL_REACTION_MS,
                         "requote_gap_ms": FREQTRADE_DRY_RUN_REQUOTE_GAP_MS}
    lc = compare_with_backtest(s, data, "BTC", params, BotSettings(5.0, 1.0, 0.0),
                               fill_rule="exchange", fill_rule_why="live", marked=marked)
    assert lc.cadence == {"fill_reaction_ms": FREQTRADE_FILL_REACTION_MS,
                          "requote_gap_ms": FREQTRADE_REQUOTE_GAP_MS}
    live_cfg = cfg.with_(fill_rule="exchange", **lc.cadence)
    assert {label: v for label, _, v in lc.rows}["fills, our bid (buys)"] == \
        run_backtest(events, live_cfg).summary()["fills_bid"]
    assert "a fill seen 2.3 s later" in comparison_title(lc)
    assert "a fill seen 0.84 s later" in comparison_title(c)


def test_the_fill_rule_is_the_bots_own(trades_db, tmp_path):
    """A database of exchange order ids is a live bot's: compared with the exchange rule; a
    database of both kinds does not say, and the report asks for the rule."""
    from asmm.report.comparison import fill_rule_for

    live, mixed = tmp_path / "live.sqlite", tmp_path / "mixed.sqlite"
    for path, where in ((live, ""), (mixed, " WHERE id > 1")):
        with sqlite3.connect(trades_db) as src, sqlite3.connect(path) as dst:
            src.backup(dst)
            dst.execute(f"UPDATE orders SET order_id = '0x' || id{where}")
    rule, why = fill_rule_for([load_db(live)])
    assert rule == "exchange" and "exchange order ids" in why
    with pytest.raises(PnLError, match="--fill-rule"):
        fill_rule_for([load_db(mixed)])
    with pytest.raises(PnLError, match="dry-run or live"):
        fill_rule_for([load_db(trades_db), load_db(live)])


def test_cli_comparison_says_which_fill_rule_and_why(trades_db, small_market, tmp_path):
    data, truth = small_market
    args = ("--db", str(trades_db), "--no-plot", "--now", "2025-09-01T02:00:00",
            "--data-dir", str(data), "--params", str(_params_file(tmp_path / "p.json", truth)))
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())  # rich wraps the title and caption
    assert "fill rule 'freqtrade-dry-run'" in text and "a decision every 5 s" in text
    assert "because the bot is a Freqtrade dry-run" in text
    assert "dry-run orders (dry_run_...)" in text
    r = _cli(*args, "--json", "--fill-rule", "exchange", "--loop-seconds", "1")
    assert r.returncode == 0, r.stderr
    (fig,) = json.loads(r.stdout)
    bt = fig["backtest"]
    assert (bt["fill_rule"], bt["loop_seconds"]) == ("exchange", 1.0)
    assert bt["fill_rule_why"] == "named on the command line (--fill-rule)"
    # A live bot's records do not say what filled an order.
    assert bt["figures"]["fills by a trade"]["live"] is None
    assert bt["figures"]["markout 10 s, sells (bp)"]["live"] == pytest.approx(
        fig["markouts"]["sides"]["sells"]["markout_10s_bp"])


def test_compare_without_data_is_a_clear_error(trades_db, small_market, tmp_path):
    _, truth = small_market
    r = _cli("--db", str(trades_db), "--no-plot", "--data-dir", str(tmp_path / "empty"),
             "--params", str(_params_file(tmp_path / "p.json", truth)))
    assert r.returncode == 2
    # The markouts read the data first, and say so.
    assert "cannot read the BBO" in r.stderr and "empty does not exist" in r.stderr


def _bbo_dir(folder: Path) -> Path:
    """A collector folder whose mid is 100000 from T0 - 30 s to T0 + 3630 s, except 99990
    from T0 + 0.5 s to T0 + 9 s (one BBO message per state, bid and ask 1 from the mid)."""
    t0 = T0.replace(tzinfo=UTC).timestamp()
    rows = ["timestamp,price,size,side,exchange_timestamp"]
    for dt, mid in ((-30, 100000), (0.5, 99990), (9, 100000), (3630, 100000)):
        ms = round((t0 + dt) * 1000)
        rows += [f"{ms / 1000},{mid - 1},1.0,bid,{ms}", f"{ms / 1000},{mid + 1},1.0,ask,{ms}"]
    folder.mkdir()
    (folder / "prices_BTC.csv").write_text("\n".join(rows) + "\n")
    return folder


def _bp(side: int, mid: float, price: float) -> float:
    return side * (mid - price) / price * 1e4


# The hand-built fills against that mid, at 1 s, 10 s and 60 s (None: the data ends first).
BUYS = [[_bp(1, 99990, 100000), 0.0, 0.0],                      # T1 entry, t0
        [_bp(1, 100000, 99990)] * 3,                            # T2 exit, t0 + 300
        [_bp(1, 100000, 99950)] * 2 + [None]]                   # T3 entry, t0 + 3600
SELLS = [[_bp(-1, 100000, 100020)] * 3, [_bp(-1, 100000, 100030)] * 3]


def _means(rows):
    return [pytest.approx(sum(v for v in col if v is not None)
                          / sum(v is not None for v in col)) for col in zip(*rows, strict=True)]


def test_markouts_of_the_fills_by_hand(trades_db, tmp_path):
    from asmm.report.markouts import fill_markouts, load_mids

    book = load_db(trades_db)
    m = fill_markouts(book, load_mids(_bbo_dir(tmp_path / "bbo"), "BTC", [book]))
    (_, n_buy, buy_means), (_, n_sell, sell_means), (_, n_all, _) = m.by_side()
    assert (n_buy, n_sell, n_all) == (3, 2, 5)
    assert list(buy_means.values()) == _means(BUYS)
    assert list(sell_means.values()) == _means(SELLS)
    doc = m.as_dict()
    # The mid dipped 10 just after the first buy: -1 bp at 1 s, gone by 10 s.
    assert doc["fills"][0]["markout_1s_bp"] == pytest.approx(-1.0)
    assert doc["fills"][0]["markout_10s_bp"] == 0.0
    assert doc["fills"][-1]["side"] == "buy" and doc["fills"][-1]["markout_60s_bp"] is None
    assert doc["sides"]["sells"]["fills"] == 2
    # A data shift moves the fills onto the data's clock: an hour later there is no BBO.
    with pytest.raises(PnLError, match="no BTC BBO"):
        load_mids(tmp_path / "bbo", "BTC", [book], shift=7200.0)


def test_cli_markouts_in_table_json_and_html(trades_db, tmp_path):
    data = _bbo_dir(tmp_path / "bbo")
    args = ("--db", str(trades_db), "--no-plot", "--data-dir", str(data))
    r = _cli(*args, "--json")
    assert r.returncode == 0, r.stderr
    (fig,) = json.loads(r.stdout)
    sides = fig["markouts"]["sides"]
    assert [sides["buys"][k] for k in ("markout_1s_bp", "markout_10s_bp",
                                       "markout_60s_bp")] == _means(BUYS)
    assert len(fig["markouts"]["fills"]) == 5
    assert "backtest" not in fig  # markouts need no parameter file; the comparison does
    r = _cli(*args, "--html", str(tmp_path / "r.html"))
    assert r.returncode == 0, r.stderr
    assert "Markouts" in r.stdout and "sells (our ask)" in r.stdout
    assert f"{_means(SELLS)[0].expected:+.3f}" in r.stdout
    page = json.loads((tmp_path / "r.html").read_text().split("const D = ", 1)[1]
                      .split(";\n", 1)[0])
    assert page["markouts"]["head"] == ["bot", "side", "fills", "1 s", "10 s", "60 s"]
    assert [row[1] for row in page["markouts"]["rows"]] == ["buys (our bid)",
                                                            "sells (our ask)", "all fills"]
    # The verdict needs no market data, but it needs the file.
    r = _cli("--db", str(trades_db), "--no-plot", "--params", str(tmp_path / "p.json"))
    assert r.returncode == 2 and "cannot read the parameter file" in r.stderr


def test_cagr_edges():
    assert cagr(1000.0, 100.0, 365.25) == pytest.approx(0.1)
    assert cagr(1000.0, -1000.0, 10.0) == -1.0  # ruin
    assert cagr(1000.0, 1000.0, 0.001) == math.inf  # 2^365250 overflows a float
    assert math.isnan(cagr(1000.0, 1.0, 0.0))


def test_partial_fills_use_average_cost():
    """Long: buy 1 @ 100 and 1 @ 102 (average 101), sell 1 @ 103 (+2), sell 1 @ 100 (-1);
    fee 0.001 on 405 of notional = 0.405; no funding. Round trip: entry 101, exit 101.5,
    captured 0.5/101 = 49.50495 bp, PnL 1 - 0.405 = 0.595."""
    fills = tuple(Fill(time=float(i), bot="b", trade_id=1, pair="X/USDC:USDC",
                       is_short=False, is_entry=e, amount=1.0, price=p, fee_rate=0.001)
                  for i, (e, p) in enumerate([(True, 100.0), (True, 102.0), (False, 103.0),
                                              (False, 100.0)]))
    book = BotBook("b", [TradeRec("b", 1, "X/USDC:USDC", False, False, 0.0, fills)])
    s = summarize(book, 10.0)
    (rt,) = s.round_trips
    assert (rt.entry, rt.exit, rt.amount) == (101.0, 101.5, 2.0)
    assert rt.captured_bp == pytest.approx(0.5 / 101 * 1e4)
    assert s.realised == pytest.approx(0.595) and s.unrealised == 0.0
    assert list(s.curves.inventory) == [1, 2, 1, 0, 0]
    # Equity after each fill, open lots marked at the last fill price: -0.1 (fee);
    # -0.202 + 2 lots * (102 - 101) = 1.798; 2 - 0.305 + 1 lot * (103 - 101) = 3.695;
    # 1 - 0.405 = 0.595; and at the end 0.595.
    assert list(s.curves.equity) == pytest.approx([-0.1, 1.798, 3.695, 0.595, 0.595])


# Runs the page's script under Node with a minimal stand-in for the DOM: the script must
# run without error, draw three charts and answer a mouse move with a value.
_DOM_HARNESS = r"""
const fs = require('fs');
const html = fs.readFileSync(process.argv[2], 'utf8');
const js = html.split('<script>')[1].split('</script>')[0];
const els = {}; const svgs = [];
const el = () => ({innerHTML: '', style: {}, appendChild(c) { svgs.push(c); }});
global.document = {
  getElementById(id) { return els[id] || (els[id] = el()); },
  createElementNS() {
    const a = {}; const h = {};
    return {attrs: a, handlers: h, innerHTML: '', setAttribute(k, v) { a[k] = v; },
      addEventListener(k, f) { h[k] = f; },
      getBoundingClientRect() { return {left: 0, top: 0}; },
      querySelector() { return {setAttribute() {}}; }};
  }};
eval(js);
for (const s of svgs) s.handlers.mousemove({clientX: 400, clientY: 50});
console.log(JSON.stringify({
  charts: svgs.length,
  rows: (els.tables.innerHTML.match(/<tr>/g) || []).length,
  paths: svgs.map(s => (s.innerHTML.match(/<path|<circle/g) || []).length),
  tip: els.tip.textContent}));
"""


def test_interactive_html(trades_db, tmp_path):
    import shutil

    html = tmp_path / "r.html"
    r = _cli("--db", str(trades_db), "--mark", "100000", "--now", "2025-09-02T00:00:00",
             "--no-plot", "--html", str(html))
    assert r.returncode == 0, r.stderr
    text = html.read_text()
    data = json.loads(text.split("const D = ", 1)[1].split(";\n", 1)[0])
    assert data["equity"] == pytest.approx([-0.1, -0.02002, -0.22008, 0.38994, 0.28999,
                                            0.78999], abs=1e-9)
    assert ["total PnL", ["0.7900 USDC"]] in data["rows"]
    assert "<script src" not in text  # self-contained
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not installed: the page's script was not executed")
    (tmp_path / "h.js").write_text(_DOM_HARNESS)
    out = subprocess.run([node, str(tmp_path / "h.js"), str(html)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["charts"] == 3 and got["paths"] == [1, 1, 2]
    assert got["tip"].endswith("UTC: 3.99880")  # the short round trip under the mouse


def test_cli_two_databases_are_shown_apart_and_as_one_book(trades_db, tmp_path):
    paths = []
    for name in ("long_bot", "short_bot"):
        with sqlite3.connect(trades_db) as src, sqlite3.connect(tmp_path / f"{name}.sqlite") \
                as dst:
            src.backup(dst)
        paths += ["--db", str(tmp_path / f"{name}.sqlite")]
    r = _cli(*paths, "--json", "--no-plot")
    assert r.returncode == 0, r.stderr
    a, b, book = json.loads(r.stdout)
    assert (a["name"], b["name"], book["name"]) == ("long_bot", "short_bot",
                                                    "long_bot + short_bot")
    assert book["inventory_now"] == pytest.approx(a["inventory_now"] + b["inventory_now"])
    assert book["realised"] == pytest.approx(2 * 0.28999, abs=1e-9)


# A verdict as the calibrator writes it (asmm.calibrate.verdict), for its default lot.
VERDICT = {"execution": "freqtrade", "maker_fee": 0.00015, "taker_fee": 0.00045,
           "gamma_source": "walk-forward", "tested_hours": 24.0, "in_sample": False,
           "expected_fills_per_hour": 3.1, "expected_pnl_per_hour": -0.04,
           "markout_10s_bp": -0.2, "profitable": False, "break_even_maker_fee": -2e-05}
CALIBRATED = {"config": {"order_size": 0.001, "fee_tier": "hyperliquid:0"}}
TRUTH = {"mid0": 100_000.0, "sigma": 6.8, "bid": {"A": 0.5, "k": 0.5},
         "ask": {"A": 0.5, "k": 0.5}}
# The hand-built book over [bot start T0 - 5 min, T0 + 2 h]: 5 fills, total PnL 0.28999
# (T3 marked at its own price), lot 0.01 (the median fill), every fee 1 bp.
LIVE_HOURS = 2 + 5 / 60


def test_the_verdict_beside_the_live_figures_by_hand(trades_db, tmp_path):
    from asmm.core.verdict_text import sentence
    from asmm.report.verdict import NO_VERDICT, verdict_view

    s = summarize(load_db(trades_db), (T0 + timedelta(hours=2)).replace(tzinfo=UTC).timestamp())
    v = verdict_view(s, _params_file(tmp_path / "p.json", TRUTH, verdict=VERDICT,
                                     diagnostics=CALIBRATED))
    assert v.live_hours == pytest.approx(LIVE_HOURS)
    assert v.lot_scale == pytest.approx(10.0)  # live lot 0.01 over the file's 0.001
    rows = {label: (exp, live) for label, exp, live in v.rows}
    assert rows["fills per hour"] == (3.1, pytest.approx(5 / LIVE_HOURS))
    assert rows["PnL per hour (USDC)"] == (pytest.approx(-0.4),
                                           pytest.approx(0.28999 / LIVE_HOURS))
    exp, live = rows["markout 10 s (bp)"]
    assert exp == -0.2 and math.isnan(live)  # no collector data given
    assert rows["maker fee (bp)"] == (pytest.approx(1.5), pytest.approx(1.0))
    assert v.tier == "hyperliquid:0" and v.said == sentence(VERDICT, "hyperliquid:0")
    assert "no gamma is profitable" in v.said and "<= -0.2 bp (a rebate tier)" in v.said
    # A file that does not record its lot: the expected PnL is left as written, and said so.
    v = verdict_view(s, _params_file(tmp_path / "q.json", TRUTH, verdict=VERDICT))
    assert v.lot_scale is None and dict((r[0], r[1]) for r in v.rows)[
        "PnL per hour (USDC)"] == -0.04
    assert any("does not record its lot" in n for n in v.notes)
    assert v.said == sentence(VERDICT, "the calibrator's fees")
    v = verdict_view(s, _params_file(tmp_path / "old.json", TRUTH))
    assert (v.block, v.said, v.rows) == (None, NO_VERDICT, ())


def test_cli_verdict_in_table_json_and_html(trades_db, tmp_path):
    import shutil

    params = _params_file(tmp_path / "p.json", TRUTH, verdict=VERDICT, diagnostics=CALIBRATED)
    args = ("--db", str(trades_db), "--no-plot", "--now", "2025-09-01T02:00:00",
            "--params", str(params))
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())  # rich wraps the title and caption
    assert "Expected (the calibrator's verdict: execution 'freqtrade', gamma by walk-forward, " \
           "tested over 24 h out of sample) vs live" in text
    assert "At hyperliquid:0 (maker 1.5 bp) no gamma is profitable here" in text
    assert "scaled linearly from the file's lot 0.001 to the live lot 0.01" in text
    assert "no backtest of the live window" in text  # that one needs --data-dir
    r = _cli(*args, "--json", "--html", str(tmp_path / "r.html"))
    assert r.returncode == 0, r.stderr
    (fig,) = json.loads(r.stdout)
    v = fig["verdict"]
    assert v["block"] == VERDICT and v["fee_tier"] == "hyperliquid:0"
    assert v["figures"]["PnL per hour (USDC)"] == {
        "expected": pytest.approx(-0.4), "live": pytest.approx(0.28999 / LIVE_HOURS)}
    assert v["figures"]["markout 10 s (bp)"] == {"expected": -0.2, "live": None}
    assert v["live_hours"] == pytest.approx(LIVE_HOURS) and v["lot_scale"] == 10.0
    assert "backtest" not in fig
    page = json.loads((tmp_path / "r.html").read_text().split("const D = ", 1)[1]
                      .split(";\n", 1)[0])
    assert page["verdict"]["rows"][0] == ["fills per hour", "3.1", "2.4"]
    assert page["verdict"]["said"] == v["sentence"]
    node = shutil.which("node")
    if node is not None:  # the page's script draws the verdict's table after the summary's
        (tmp_path / "h.js").write_text(_DOM_HARNESS)
        out = subprocess.run([node, str(tmp_path / "h.js"), str(tmp_path / "r.html")],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["rows"] == (len(page["rows"]) + 1) + (4 + 1)


def test_cli_verdict_markout_is_the_live_fills_and_a_file_without_one_says_so(
        trades_db, small_market, tmp_path):
    data, truth = small_market
    args = ("--db", str(trades_db), "--no-plot", "--now", "2025-09-01T02:00:00",
            "--data-dir", str(data), "--json")
    r = _cli(*args, "--params", str(_params_file(tmp_path / "p.json", truth, verdict=VERDICT,
                                                 diagnostics=CALIBRATED)))
    assert r.returncode == 0, r.stderr
    (fig,) = json.loads(r.stdout)
    assert fig["verdict"]["figures"]["markout 10 s (bp)"]["live"] == pytest.approx(
        fig["markouts"]["sides"]["all"]["markout_10s_bp"])
    assert "backtest" in fig  # with the data, the comparison as before
    r = _cli("--db", str(trades_db), "--no-plot", "--params",
             str(_params_file(tmp_path / "old.json", truth)))
    assert r.returncode == 0, r.stderr
    assert "the parameter file has no verdict (written by an older calibrator)" in \
        " ".join(r.stdout.split())
