"""Real Freqtrade, offline: the strategy in `freqtrade backtesting` on candles made from
synthetic trades, and in `freqtrade trade --dry-run` against the replay exchange.

Nothing here reaches beyond 127.0.0.1: ccxt's URLs point at the replay exchange and
WebSockets are off (asmm.freqtrade.ftdata.offline_exchange_config); the logs are checked for any
other host. API credentials come from the environment, generated per run.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("freqtrade")

from asmm.core.model import quotes
from asmm.core.params import Params, SideIntensity, write_params
from asmm.data.synth import SynthConfig, generate
from asmm.freqtrade.ftdata import (
    offline_exchange_config,
    trades_to_ohlcv,
    write_freqtrade_futures_data,
)
from asmm.report.sources import per_side, repricing_minutes
from asmm.venues.hyperliquid.replay.process import start_replay

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "user_data" / "config.json"
STRATEGIES = ROOT / "user_data" / "strategies"
PAIR = "BTC/USDC:USDC"
GAMMA = 0.05  # 1/USDC: with the synthetic sigma and k, quotes a few ticks plus the fee out
URL_HOST = re.compile(r"\b(?:https?|wss?)://([^/:\s'\"]+)")
QUOTE_LINE = re.compile(r"^(\S+ \S+) - \S+ - INFO - asmm quote (.*)$", re.M)


# ------------------------------------------------------------------ helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def credentials() -> dict[str, str]:
    """API login and JWT secret for one run, passed the way users pass them: env vars."""
    return {"FREQTRADE__API_SERVER__USERNAME": "asmm-test",
            "FREQTRADE__API_SERVER__PASSWORD": secrets.token_hex(16),
            "FREQTRADE__API_SERVER__JWT_SECRET_KEY": secrets.token_hex(32),
            "FREQTRADE__API_SERVER__WS_TOKEN": secrets.token_hex(16)}


def ft_env(creds: dict[str, str]) -> dict[str, str]:
    # Freqtrade skips its logging setup (so --logfile too) when it sees PYTEST_VERSION.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FREQTRADE__", "PYTEST_"))}
    env.update(creds)
    return env


def make_params(path: Path, truth: dict, valid_from: datetime, valid_until: datetime) -> Params:
    p = Params(coin="BTC", model="glft", computed_at=valid_from, valid_until=valid_until,
               data_window=(valid_from - timedelta(days=1), valid_from),
               mid_price=truth["mid0"], sigma=truth["sigma"], gamma=GAMMA,
               bid=SideIntensity(truth["bid"]["A"], truth["bid"]["k"]),
               ask=SideIntensity(truth["ask"]["A"], truth["ask"]["k"]))
    write_params(path, p)
    return p


def overlay(folder: Path, url: str, params_file: Path, api_port: int, name: str,
            exchange: dict | None = None, **asmm) -> Path:
    """The per-run config layered last: ports, files, and the ``exchange`` block that points
    ccxt at the replay at ``url`` (default: Hyperliquid's, ``offline_exchange_config``)."""
    doc = {
        "bot_name": name,
        "exchange": offline_exchange_config(url) if exchange is None else exchange,
        "api_server": {"listen_port": api_port},
        "db_url": f"sqlite:///{folder / (name + '.sqlite')}",
        # A short loop makes a few minutes of dry-run lively; the default is 5 s.
        "internals": {"process_throttle_secs": 1},
        "asmm": {"params_file": str(params_file), "kill_switch_file": str(folder / "KILL"),
                 **asmm},
    }
    path = folder / f"{name}.overlay.json"
    path.write_text(json.dumps(doc, indent=1))
    return path


def freqtrade_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "freqtrade", *args]


def wait_until(pred, timeout: float, what: str, proc: subprocess.Popen | None = None,
               log: Path | None = None, interval: float = 0.5):
    """Poll ``pred()`` until truthy (returned) or the deadline passes (fail with the log)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while True:
        v = pred()
        if v:
            return v
        tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"freqtrade exited ({proc.returncode}) while waiting for {what}:\n{tail}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}:\n{tail}")
        tick.wait(interval)


def is_entry(order: dict, trade: dict) -> bool:
    return order["ft_order_side"] == ("sell" if trade["is_short"] else "buy")


def quote_lines(log_text: str) -> list[dict]:
    """``asmm quote`` log lines as dicts (time, kind, side, price, why and model inputs)."""
    out = []
    for stamp, rest in QUOTE_LINE.findall(log_text):
        d: dict = dict(kv.split("=", 1) for kv in rest.split())
        d["time"] = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
        for k in ("price", "bid", "ask", "mid", "q", "tau", "gamma", "tick", "best_bid",
                  "best_ask", "maker_fee", "max_inventory"):
            if k in d:
                d[k] = float(d[k])
        out.append(d)
    return out


def model_price(line: dict, params: Params) -> float:
    """Recompute a logged quote with asmm.core.model from the inputs the line records."""
    qt = quotes(params.model, line["mid"], line["q"], sigma=params.sigma, gamma=line["gamma"],
                A_bid=params.bid.A, k_bid=params.bid.k, A_ask=params.ask.A, k_ask=params.ask.k,
                tau=line["tau"], maker_fee=line["maker_fee"], tick=line["tick"],
                max_inventory=line["max_inventory"], min_spread=1.0 * line["tick"],
                best_bid=line["best_bid"], best_ask=line["best_ask"], max_improve_ticks=0.0)
    buys = (line["kind"] == "entry") == (line["side"] == "long")
    return float(qt.bid) if buys else float(qt.ask)


def foreign_hosts(log_text: str) -> set[str]:
    return {h for h in URL_HOST.findall(log_text) if h not in ("127.0.0.1", "localhost")}


def error_lines(log_text: str) -> list[str]:
    return [ln for ln in log_text.splitlines() if " - ERROR - " in ln or " - CRITICAL - " in ln]


def test_trades_to_ohlcv_fills_gaps_and_aggregates():
    t = np.array([0, 10_000, 59_999, 180_000], dtype=np.int64)
    df = trades_to_ohlcv(t, np.array([10.0, 12.0, 9.0, 11.0]), np.array([1.0, 2.0, 3.0, 4.0]),
                         60)
    assert df["open"].tolist() == [10.0, 9.0, 9.0, 11.0]
    assert df["high"].tolist() == [12.0, 9.0, 9.0, 11.0]
    assert df["low"].tolist() == [9.0, 9.0, 9.0, 11.0]
    assert df["close"].tolist() == [9.0, 9.0, 9.0, 11.0]
    assert df["volume"].tolist() == [6.0, 0.0, 0.0, 4.0]
    assert df["date"].diff().dropna().eq(np.timedelta64(60, "s")).all()
    with pytest.raises(ValueError, match="no trades"):
        trades_to_ohlcv(t[:0], t[:0], t[:0], 60)


# ------------------------------------------------------------------ backtesting

@dataclass
class BacktestMarket:
    folder: Path
    datadir: Path
    truth: dict
    url: str


@pytest.fixture(scope="module")
def bt_market(tmp_path_factory):
    """One synthetic day as Freqtrade candles, and a replay exchange for market metadata
    (Freqtrade loads markets before any backtest)."""
    folder = tmp_path_factory.mktemp("ft_backtest")
    cfg = SynthConfig(days=1, seed=7, bbo_rate=1.0, A_bid=0.2, A_ask=0.2, l2_interval=10.0,
                      start=date(2025, 9, 1))
    truth = generate(cfg, folder / "market")
    write_freqtrade_futures_data(folder / "market", "BTC", folder / "data")
    rp = start_replay(folder / "market", "--start-at", "data", log_dir=folder)
    try:
        yield BacktestMarket(folder, folder / "data", truth, rp.url)
    finally:
        rp.stop()


def run_backtest(m: BacktestMarket, name: str, params_valid_until: datetime,
                 extra: tuple[str, ...] = ("backtesting",), timerange="20250901-20250902",
                 **asmm):
    work = m.folder / name
    (work / "user_data").mkdir(parents=True)
    params_file = work / "params.json"
    params = make_params(params_file, m.truth, datetime(2025, 8, 31, tzinfo=UTC),
                         params_valid_until)
    ov = overlay(work, m.url, params_file, free_port(), name, **asmm)
    cmd = freqtrade_cmd(*extra, "-c", str(CONFIG), "-c", str(ov), "--userdir",
                        str(work / "user_data"), "--strategy-path", str(STRATEGIES),
                        "--datadir", str(m.datadir), "--timerange", timerange,
                        "--logfile", str(work / "freqtrade.log"))
    if extra[0] == "backtesting":
        cmd += ["--export", "trades", "--cache", "none"]
    r = subprocess.run(cmd, cwd=work, env=ft_env(credentials()), capture_output=True, text=True,
                       timeout=600, check=False)
    # The log file has one record per line; the console handler wraps long lines.
    log = (work / "freqtrade.log").read_text(errors="replace") if (work / "freqtrade.log") \
        .exists() else ""
    assert log, f"no log file: {r.stdout[-2000:]}{r.stderr[-2000:]}"
    return r, log, params, work


def load_bt_trades(work: Path):
    from freqtrade.data.btanalysis import load_backtest_data

    return load_backtest_data(work / "user_data" / "backtest_results")


def test_backtesting_trades_both_directions_at_the_models_prices(bt_market):
    r, log, params, work = run_backtest(bt_market, "bt_ok", datetime(2025, 9, 3, tzinfo=UTC))
    assert r.returncode == 0, log[-3000:]
    assert not error_lines(log)
    trades = load_bt_trades(work)
    # One trade at a time, a round trip a minute or two: a day holds hundreds.
    assert len(trades) >= 50
    assert set(trades["is_short"]) == {True, False}
    assert set(trades["exit_reason"]) <= {"mm_exit", "force_exit"}
    assert np.allclose(trades["amount"], 0.001)  # one lot, never a shrunk one
    lines = quote_lines(log)
    assert lines
    for line in lines:
        # The mid is the candle's price in backtesting; the touch is unknown (NaN).
        assert math.isnan(line["best_bid"])
        assert line["price"] == model_price(line, params)
        assert line["q"] == (0.0 if line["kind"] == "entry" else
                             (1.0 if line["side"] == "long" else -1.0))
    entry_prices = {(ln["side"], ln["price"]) for ln in lines if ln["kind"] == "entry"}
    for t in trades.itertuples():
        assert ("short" if t.is_short else "long", t.open_rate) in entry_prices


def test_backtesting_with_expired_params_opens_nothing_and_says_why(bt_market):
    r, log, _, work = run_backtest(bt_market, "bt_expired",
                                   datetime(2025, 8, 31, 12, tzinfo=UTC))
    assert r.returncode == 0, log[-3000:]
    assert "asmm: no new entries: parameters for BTC expired at 2025-08-31T12:00:00Z" in log
    assert len(load_bt_trades(work)) == 0


def test_backtesting_adx_filter_enters_only_in_calm_markets(bt_market):
    import pandas as pd
    from freqtrade.data.history.datahandlers import get_datahandler
    from freqtrade.enums import CandleType

    from asmm.freqtrade.indicators import adx_on_timeframe

    r, log, _, work = run_backtest(bt_market, "bt_adx", datetime(2025, 9, 3, tzinfo=UTC),
                                   adx_filter=True)
    assert r.returncode == 0, log[-3000:]
    trades = load_bt_trades(work)
    candles = get_datahandler(bt_market.datadir, "feather").ohlcv_load(PAIR, "1m",
                                                                         CandleType.FUTURES)
    adx = pd.Series(adx_on_timeframe(candles, "5m", 14).to_numpy(), index=candles["date"])
    # The filter had something to filter: the synthetic random walk trends at times.
    assert (adx > 25).mean() > 0.05 and (adx <= 25).mean() > 0.05
    assert len(trades) > 0
    # An entry is placed on the candle after its signal candle; that one must be calm.
    signal = adx.reindex(pd.DatetimeIndex(trades["open_date"]) - pd.Timedelta(minutes=1))
    assert (signal <= 25).all()


@pytest.mark.slow
def test_hyperopt_runs_over_the_strategys_parameters(bt_market):
    r, log, _, work = run_backtest(
        bt_market, "hyperopt",
        datetime(2025, 9, 3, tzinfo=UTC),
        extra=("hyperopt", "--hyperopt-loss", "SharpeHyperOptLoss", "--spaces", "buy",
               "-e", "3", "-j", "1", "--random-state", "1", "--print-json"),
        timerange="20250901-2025090106")
    assert r.returncode == 0, log[-3000:]
    assert "gamma_multiplier" in log and "requote_ticks" in log
    assert list((work / "user_data" / "hyperopt_results").glob("*.fthypt"))


# ------------------------------------------------------------------ dry-run

@pytest.fixture(scope="module")
def live_market(tmp_path_factory):
    """A lively synthetic day (default rates: 5 BBO updates/s, 0.5 market orders/s a side)."""
    folder = tmp_path_factory.mktemp("ft_live_market")
    truth = generate(SynthConfig(days=1, seed=11, start=date(2025, 9, 1)), folder)
    return folder, truth


class Bot:
    """One `freqtrade trade --dry-run` subprocess with its log and REST client."""

    def __init__(self, work: Path, url: str, params_file: Path, name: str, configs=(CONFIG,),
                 exchange: dict | None = None, **asmm):
        from freqtrade_client import FtRestClient

        self.work, self.name = work, name
        (work / "user_data").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        ov = overlay(work, url, params_file, self.port, name, exchange, **asmm)
        creds = credentials()
        self.log = work / f"{name}.log"
        config_args = [a for c in configs for a in ("-c", str(c))]
        cmd = freqtrade_cmd("trade", "--dry-run", *config_args, "-c", str(ov),
                            "--userdir", str(work / "user_data"),
                            "--strategy-path", str(STRATEGIES), "--logfile", str(self.log))
        with open(work / f"{name}.console", "wb") as f:
            self.proc = subprocess.Popen(cmd, cwd=work, env=ft_env(creds), stdout=f,
                                         stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        self.auth = (creds["FREQTRADE__API_SERVER__USERNAME"],
                     creds["FREQTRADE__API_SERVER__PASSWORD"])
        self.client = FtRestClient(self.url, *self.auth, timeout=10)
        self.wait(lambda: self._ping(), 120, "the REST API to answer")

    def _ping(self):
        try:
            return self.client.ping() == {"status": "pong"}
        except Exception:  # not up yet: any connection error
            return False

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, pred, timeout: float, what: str):
        return wait_until(pred, timeout, what, self.proc, self.log)

    def trades(self) -> list[dict]:
        """Open and closed trades, with their orders, from the REST API."""
        closed = self.client.trades()["trades"]
        open_ = self.client.status()
        seen = {t["trade_id"] for t in open_}
        return open_ + [t for t in closed if t["trade_id"] not in seen]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _closed(bot: Bot, short: bool) -> int:
    return sum(1 for t in bot.trades() if not t["is_open"] and t["is_short"] == short)


@pytest.fixture(scope="module")
def single_bot(live_market, tmp_path_factory):
    """One ping-pong bot against the replay exchange, shared by the dry-run tests below in
    file order: trading -> prices -> REST API -> stale parameters -> kill switch -> log."""
    folder, truth = live_market
    work = tmp_path_factory.mktemp("ft_single")
    rp = start_replay(folder, "--start-at", "now", "--history", "600", log_dir=work)
    params_file = work / "params.json"
    now = datetime.now(UTC)
    params = make_params(params_file, truth, now - timedelta(minutes=5), now + timedelta(hours=2))
    bot = None
    try:
        # No maker fee: quotes a few ticks from the mid fill within seconds on this market,
        # so a few minutes hold many round trips (with the 1.5 bp fee, about one a minute).
        # Kill timeout 0: the kill switch goes to market at once, so the run exercises that
        # path deterministically (working down at the model's price first is the normal
        # exit, exercised throughout; the phase switch is unit-tested).
        # The committed offline config; the overlay only moves ports, files and the URL.
        bot = Bot(work, rp.url, params_file, "single",
                  configs=(ROOT / "user_data" / "config.replay.json",),
                  kill_timeout_seconds=0.001, maker_fee=0.0)
        yield bot, params, params_file, truth
    finally:
        if bot:
            bot.stop()
        rp.stop()


@pytest.mark.slow
def test_dry_run_entries_and_exits_fill_in_both_directions(single_bot):
    bot, *_ = single_bot
    bot.wait(lambda: _closed(bot, False) >= 2 and _closed(bot, True) >= 2, 240,
             "two closed round trips each way")
    for t in bot.trades():
        if not t["is_open"]:
            filled = [o for o in t["orders"] if o["status"] == "closed"]
            assert [is_entry(o, t) for o in filled] == [True, False]
            assert t["amount"] == pytest.approx(0.001)


@pytest.mark.slow
def test_dry_run_order_prices_are_the_models_for_the_logged_inventory(single_bot):
    bot, params, _, _ = single_bot
    lines = quote_lines(bot.text())
    model_lines = [ln for ln in lines if ln["why"] in ("new", "model")]
    assert model_lines
    for ln in model_lines:
        assert ln["price"] == model_price(ln, params)   # the very function, bit for bit
        assert ln["best_bid"] < ln["best_ask"]           # the touch came from the book
    checked = 0
    # Orders sent at the touch (kill switch at market, or no usable parameters) are checked
    # against the touch they were logged with; every other order against the model.
    at_touch = [ln for ln in lines if ln["why"] in ("market", "liquidation", "passive")]
    for ln in at_touch:
        assert ln["price"] in (ln["best_bid"], ln["best_ask"])
    for t in bot.trades():
        direction = "short" if t["is_short"] else "long"
        for o in t["orders"]:
            if o["status"] != "closed":
                continue
            kind = "entry" if is_entry(o, t) else "exit"
            placed = datetime.fromtimestamp(o["order_timestamp"] / 1000, UTC)
            # The quote line the order was sent with: same kind and side, logged just before.
            # (A line logged after the order cannot be its quote: Freqtrade may re-quote an
            # exit in the very loop its order filled, at the then flat inventory.)
            cands = [ln for ln in model_lines + at_touch
                     if ln["kind"] == kind and ln["side"] == direction
                     and 0 <= (placed - ln["time"]).total_seconds() < 10
                     and abs(ln["price"] - o["safe_price"]) <= ln["tick"]]
            near = [(str(ln["time"]), ln["kind"], ln["side"], ln["price"]) for ln in model_lines
                    if abs((ln["time"] - placed).total_seconds()) < 10]
            assert cands, f"no model quote for {kind} {direction} {o} placed {placed}: {near}"
            ln = cands[-1]
            if ln["why"] in ("new", "model"):
                assert abs(o["safe_price"] - model_price(ln, params)) <= ln["tick"]
            # Inventory in lots: flat before an entry, one lot in the trade's direction before
            # its exit.
            assert ln["q"] == (0.0 if kind == "entry" else (-1.0 if t["is_short"] else 1.0))
            checked += 1
    assert checked >= 8


@pytest.mark.slow
def test_dry_run_rest_api_answers(single_bot):
    bot, *_ = single_bot
    assert bot.client.version()["version"].startswith("2026.9")
    cfg = bot.client.show_config()
    assert cfg["strategy"] == "Avellaneda" and cfg["dry_run"] is True
    assert cfg["trading_mode"] == "futures"
    assert bot.client.profit()["trade_count"] >= 4


@pytest.mark.slow
def test_dry_run_stale_params_stop_entries_and_say_why(single_bot):
    bot, _, params_file, truth = single_bot
    # A calibrator output that expires in 3 s, written atomically mid-run.
    now = datetime.now(UTC)
    make_params(params_file, truth, now - timedelta(minutes=5), now + timedelta(seconds=3))
    line = bot.wait(lambda: re.search(r"^(\S+ \S+) .*asmm: no new entries: parameters for BTC "
                                      r"expired at .*$", bot.text(), re.M), 60,
                    "the log line saying entries stopped because the parameters expired")
    stopped = datetime.strptime(line.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
    # Exits are still managed: whatever was open when the guard tripped gets closed, and an
    # entry still resting is cancelled. Watched for at least 10 s of bot time.
    t_watch = time.monotonic()
    bot.wait(lambda: time.monotonic() - t_watch > 10 and not any(
        t["is_open"] for t in bot.trades()), 180, "the bot to be flat under stale parameters")
    late = [t for t in bot.trades()
            if datetime.fromtimestamp(t["open_timestamp"] / 1000, UTC) > stopped
            + timedelta(seconds=2)]
    assert late == [], "entries opened after the parameters expired"
    # A fresh file lets it trade again.
    now = datetime.now(UTC)
    make_params(params_file, truth, now - timedelta(minutes=5), now + timedelta(hours=2))
    bot.wait(lambda: "asmm: entries allowed again" in bot.text().split(line.group(0), 1)[1],
             60, "entries to resume with fresh parameters")
    n = len(bot.trades())
    bot.wait(lambda: len(bot.trades()) > n, 120, "a new trade after the parameters came back")


@pytest.mark.slow
def test_dry_run_kill_switch_over_the_api_brings_the_bot_flat(single_bot):
    bot, *_ = single_bot
    # Kill while holding a position, so working it down is exercised.
    bot.wait(lambda: any(t["is_open"] and t["amount"] > 0 and
                         any(o["status"] == "closed" for o in t["orders"])
                         for t in bot.client.status()), 180, "an open position")
    until = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%SZ")
    bot.client.lock_add(PAIR, until, "*", "kill")
    line = bot.wait(lambda: re.search(r"^(\S+ \S+) .*asmm: kill switch armed", bot.text(),
                                      re.M), 30, "the kill switch to arm")
    # The bot's own clock: an order placed in the same loop just before it armed is a
    # normal exit, not one the switch sent.
    armed = datetime.strptime(line.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
    bot.wait(lambda: bot.client.status() == [], 150, "the bot to be flat after the kill switch")
    t_flat = time.monotonic()
    bot.wait(lambda: time.monotonic() - t_flat > 5, 30, "a few more loops")
    assert bot.client.status() == []
    late = [t for t in bot.trades()
            if datetime.fromtimestamp(t["open_timestamp"] / 1000, UTC) > armed]
    assert late == [], "the kill switch let a new entry through"
    # If the position was still open when the switch armed, it left at market: every exit
    # sent after arming is a marketable limit at the opposite touch.
    sent_after = {o["safe_price"] for t in bot.trades() for o in t["orders"]
                  if not is_entry(o, t) and o["status"] == "closed"
                  and datetime.fromtimestamp(o["order_timestamp"] / 1000, UTC) > armed}
    market = [ln for ln in quote_lines(bot.text()) if ln["why"] == "market"]
    assert all(ln["price"] in (ln["best_bid"], ln["best_ask"]) for ln in market)
    assert sent_after <= {ln["price"] for ln in market}


@pytest.mark.slow
def test_dry_run_log_has_no_error_and_no_foreign_host(single_bot):
    bot, *_ = single_bot
    text = bot.text()
    assert "asmm quote" in text
    assert error_lines(text) == []
    assert foreign_hosts(text) == set()
    assert "hyperliquid.xyz" not in text


def _unusable_files(truth: dict):
    """(what, how to make it, the log line's cause) for each file the bot must not trade on.

    Times are taken when each file is written: the bot runs for minutes."""
    def params(**over):
        def write(path: Path):
            if path.is_dir():
                path.rmdir()
            now = datetime.now(UTC)
            kw = dict(coin="BTC", model="glft", computed_at=now - timedelta(minutes=5),
                      valid_until=now + timedelta(hours=2),
                      data_window=(now - timedelta(days=1), now - timedelta(minutes=5)),
                      mid_price=truth["mid0"], sigma=truth["sigma"], gamma=GAMMA,
                      bid=SideIntensity(truth["bid"]["A"], truth["bid"]["k"]),
                      ask=SideIntensity(truth["ask"]["A"], truth["ask"]["k"]))
            kw.update({k: (v(now) if callable(v) else v) for k, v in over.items()})
            write_params(path, Params(**kw))
        return write

    def not_utf8(path: Path):
        path.write_bytes(b"\xff\xfe junk")

    def folder(path: Path):
        path.unlink()
        path.mkdir()

    return [
        ("not UTF-8", not_utf8, "is not UTF-8"),
        ("a folder at the path", folder, "is a folder, not a file"),
        ("another coin", params(coin="ETH", mid_price=4000.0, sigma=0.3, gamma=1.0,
                                bid=SideIntensity(0.5, 10.0), ask=SideIntensity(0.5, 10.0)),
         "parameter file is for ETH, the bot trades BTC"),
        ("expired", params(computed_at=lambda now: now - timedelta(hours=2),
                           valid_until=lambda now: now - timedelta(seconds=1),
                           data_window=lambda now: (now - timedelta(days=1),
                                                    now - timedelta(hours=2))),
         "expired at"),
        ("data window days old",
         params(computed_at=lambda now: now - timedelta(minutes=5),
                data_window=lambda now: (now - timedelta(days=4), now - timedelta(days=3))),
         "is the collector running?"),
        ("mid 6 % away", params(mid_price=truth["mid0"] * 1.06), "% from the live mid"),
    ]


@pytest.mark.slow
def test_dry_run_never_trades_on_an_unusable_file_and_says_why(live_market, tmp_path_factory):
    """One bot, started on a file it cannot read (the path that once traded on Freqtrade's
    defaults), then handed each unusable file in turn; a good file last is the control."""
    folder, truth = live_market
    work = tmp_path_factory.mktemp("ft_unusable")
    rp = start_replay(folder, "--start-at", "now", "--history", "600", log_dir=work)
    params_file = work / "params.json"
    cases = _unusable_files(truth)
    cases[0][1](params_file)
    # A heartbeat line every loop: the log then shows how many loops each file lasted.
    fast_heartbeat = work / "heartbeat.json"
    fast_heartbeat.write_text(json.dumps({"internals": {"heartbeat_interval": 0.5}}))
    bot = None
    try:
        bot = Bot(work, rp.url, params_file, "unusable",
                  configs=(ROOT / "user_data" / "config.replay.json", fast_heartbeat),
                  maker_fee=0.0)
        seen = 0
        for what, damage, cause in cases:
            if seen:
                damage(params_file)

            def blocked_for_loops(cause=cause, seen=seen):
                text = bot.text()[seen:]
                i = text.find(cause)
                line_start = text.rfind("\n", 0, i) + 1
                if i < 0 or "asmm: no new entries: " not in text[line_start:i]:
                    return None
                # Five loops after the line: the bot had time to enter, and did not.
                return seen + i if text[i:].count("Bot heartbeat") >= 5 else None

            seen = bot.wait(blocked_for_loops, 120, f"entries blocked by {what}, 5 loops on")
            assert bot.trades() == [], f"the bot traded on {what}"
        text = bot.text()
        # Not one exception reached Freqtrade's strategy wrapper.
        assert "Unexpected error" not in text
        assert "Strategy caused the following exception" not in text
        assert error_lines(text) == []
        # The control: the same bot, given a good file, quotes and trades.
        make_params(params_file, truth, datetime.now(UTC) - timedelta(minutes=5),
                    datetime.now(UTC) + timedelta(hours=2))
        bot.wait(lambda: "asmm: entries allowed again" in bot.text()[seen:], 60,
                 "entries to resume on a good file")
        bot.wait(lambda: len(bot.trades()) > 0, 180, "a trade on the good file")
    finally:
        if bot:
            bot.stop()
        rp.stop()


# ------------------------------------------------------------------ agreement with the backtester

AGREEMENT_MINUTES = 6.0  # of market; the 20: benchmarks/bench_dryrun_agreement.py
FIRST_QUOTE = re.compile(r"^(\S+ \S+) - \S+ - INFO - asmm quote ", re.M)


def first_quote_time(log_text: str) -> float | None:
    """Epoch s of the first ``asmm quote`` line (the logging module stamps local time)."""
    m = FIRST_QUOTE.search(log_text)
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() if m else None


@pytest.mark.slow
def test_dry_run_fills_agree_with_the_backtesters_dry_run_rule(live_market, tmp_path_factory):
    """Freqtrade's dry-run fills, predicted: a real dry-run bot against the replay exchange,
    then the backtester over the data the replay served meanwhile (mapped back from wall
    time to the data's) with the fill rule the PnL report picks for a bot whose config says
    ``dry_run: true`` (``freqtrade-dry-run``), ``execution="freqtrade"``, the bot's loop as
    ``refresh_seconds``, the strategy's quoting limits and the same parameter file.

    The backtester models Freqtrade's cadence as a dry-run (:func:`cadence_for`: a fill
    seen late, a re-priced order off the book meanwhile). Fills per side are compared over
    the minutes in which the bot re-priced (:func:`repricing_minutes`; the strategy
    re-prices every loop, so nearly all): within a factor of 1.5, or 4 fills
    (benchmarks/README.md)."""
    from dataclasses import replace

    from asmm.core.enums import FillRule
    from asmm.core.params import load_params
    from asmm.freqtrade.config import MMConfig
    from asmm.report.comparison import (
        BotSettings,
        cadence_for,
        compare_with_backtest,
        fill_rule_for,
    )
    from asmm.report.ledger import summarize
    from asmm.report.sources import load_rest
    from asmm.sim import BacktestConfig, load_events
    from asmm.sim import run_backtest as sim_backtest

    folder, truth = live_market
    work = tmp_path_factory.mktemp("ft_agreement")
    rp = start_replay(folder, "--start-at", "now", "--history", "600", log_dir=work)
    params_file = work / "params.json"
    now = datetime.now(UTC)
    make_params(params_file, truth, now - timedelta(minutes=5), now + timedelta(hours=2))
    bot = None
    try:
        # The committed offline config with the overlay's 1 s loop; no maker fee, so quotes
        # a few ticks out are crossed often and a few minutes hold dozens of fills.
        bot = Bot(work, rp.url, params_file, "agreement",
                  configs=(ROOT / "user_data" / "config.replay.json",), maker_fee=0.0)
        loop = json.loads((work / "agreement.overlay.json").read_text())[
            "internals"]["process_throttle_secs"]
        t0 = bot.wait(lambda: first_quote_time(bot.text()), 120, "the bot's first quote")
        end = t0 + AGREEMENT_MINUTES * 60.0
        bot.wait(lambda: time.time() >= end, AGREEMENT_MINUTES * 60.0 + 60.0,
                 f"{AGREEMENT_MINUTES:g} minutes of market from the first quote")
        book = load_rest(bot.url, *bot.auth)
        t1 = time.time()
        # The replay published data time d at wall time d + shift_ms / 1000.
        shift = -rp.clock()["shift_ms"] / 1000.0
        text = bot.text()
    finally:
        if bot:
            bot.stop()
        rp.stop()
    assert error_lines(text) == []
    rule, why = fill_rule_for([book])
    assert rule == FillRule.FREQTRADE_DRY_RUN and "dry_run: true" in why
    mm = MMConfig()
    settings = BotSettings(loop, mm.min_spread_ticks, mm.max_improve_ticks, maker_fee=0.0)
    # No fill can come before the first quote: the backtester starts quoting there too.
    summary = replace(summarize(book, t1), started=t0)
    whole = compare_with_backtest(summary, folder, "BTC", params_file, settings,
                                  fill_rule=rule, fill_rule_why=why, shift=shift)
    cfg = BacktestConfig.from_params(
        load_params(params_file, check_fresh=False), order_size=summary.lot,
        execution="freqtrade", fill_rule=rule, refresh_seconds=loop, maker_fee=0.0,
        tick=truth["tick"], min_spread=mm.min_spread_ticks * truth["tick"],
        max_improve_ticks=mm.max_improve_ticks, **cadence_for(rule))
    bt = sim_backtest(load_events(folder, "BTC", t0 + shift, t1 + shift), cfg)
    # The report's comparison is this very backtest.
    assert (whole.backtest["fills_bid"], whole.backtest["fills_ask"]) == (
        bt.stats["fills_bid"], bt.stats["fills_ask"])
    assert bt.stats["fills_dry_run_cross"] == bt.stats["fills_bid"] + bt.stats["fills_ask"]

    minutes = {m for m in repricing_minutes(work / "agreement.sqlite")
               if t0 // 60 <= m <= t1 // 60}
    fills = [f for t in book.trades for f in t.fills]
    bot_fills = per_side(np.array([f.time for f in fills]),
                         np.array([f.signed_qty > 0 for f in fills]), minutes)
    bt_fills = per_side(bt.fills["t"] - shift, bt.fills["side"] > 0, minutes)
    figures = (f"bot {bot_fills} vs backtest {bt_fills} (buys, sells) in the {len(minutes)} "
               f"minutes the bot re-priced; over all {(t1 - t0) / 60:.1f} minutes bot "
               f"{(summary.fills_buy, summary.fills_sell)} vs backtest "
               f"{(whole.backtest['fills_bid'], whole.backtest['fills_ask'])}")
    assert len(minutes) >= 2 and min(bot_fills) >= 15, f"too little to judge: {figures}"
    for live, sim in zip(bot_fills, bt_fills, strict=True):
        assert abs(live - sim) <= 4 or max(live, sim) <= 1.5 * min(live, sim), figures


# ------------------------------------------------------------------ pair of bots

@pytest.mark.slow
def test_pair_of_bots_rests_a_bid_and_an_ask_at_once_when_flat(live_market, tmp_path_factory):
    folder, truth = live_market
    work = tmp_path_factory.mktemp("ft_pair")
    rp = start_replay(folder, "--start-at", "now", "--history", "600", log_dir=work)
    params_file = work / "params.json"
    now = datetime.now(UTC)
    params = make_params(params_file, truth, now - timedelta(minutes=5), now + timedelta(hours=2))
    shared = work / "shared_state"
    bots: list[Bot] = []
    try:
        for mode in ("long", "short"):
            bots.append(Bot(work / mode, rp.url, params_file, f"pair-{mode}",
                            configs=(ROOT / "user_data" / f"config.pair-{mode}.json",),
                            shared_state_dir=str(shared),
                            kill_switch_file=str(work / "KILL"), kill_timeout_seconds=5))
        long_bot, short_bot = bots

        def resting_entry(bot: Bot):
            """The bot's open entry order when it holds no position, else None."""
            for t in bot.client.status():
                orders = t["orders"]
                if any(o["status"] == "closed" for o in orders):
                    return None
                open_entries = [o for o in orders if o["is_open"] and is_entry(o, t)]
                if open_entries:
                    return open_entries[0]
            return None

        both = long_bot.wait(lambda: (lambda a, b: (a, b) if a and b else None)(
            resting_entry(long_bot), resting_entry(short_bot)), 180,
            "both bots flat with an entry resting")
        bid, ask = both
        assert bid["ft_order_side"] == "buy" and ask["ft_order_side"] == "sell"
        assert bid["safe_price"] < ask["safe_price"]
        # Each bot priced its side with the model at the pair's net inventory.
        for bot, order in ((long_bot, bid), (short_bot, ask)):
            lines = [ln for ln in quote_lines(bot.text())
                     if ln["kind"] == "entry" and ln["price"] == order["safe_price"]]
            assert lines and lines[-1]["price"] == model_price(lines[-1], params)
            assert lines[-1]["q"] == 0.0
        states = {p.stem: json.loads(p.read_text()) for p in shared.glob("*.json")}
        assert set(states) == {"long", "short"}
        # The kill-switch file stops both: resting entries are cancelled, positions closed.
        (work / "KILL").touch()
        for bot in bots:
            bot.wait(lambda b=bot: "asmm: kill switch armed" in b.text()
                     and b.client.status() == [], 120, f"{bot.name} to stop and be flat")
        for bot in bots:
            text = bot.text()
            assert error_lines(text) == []
            assert foreign_hosts(text) == set()
    finally:
        for bot in bots:
            bot.stop()
        rp.stop()


def test_ftdata_cli_writes_what_freqtrade_loads_and_refuses_bad_input(small_market, tmp_path):
    from freqtrade.data.history.datahandlers import get_datahandler
    from freqtrade.enums import CandleType

    from asmm.cli import main

    folder, _ = small_market
    assert main(["ftdata", "--data-dir", str(folder), "--datadir", str(tmp_path / "ft")]) == 0
    handler = get_datahandler(tmp_path / "ft", "feather")
    candles = handler.ohlcv_load(PAIR, "1m", CandleType.FUTURES)
    assert len(candles) == 2 * 1440  # two synthetic days, one candle a minute
    assert (candles["low"] <= candles["high"]).all()
    assert len(handler.ohlcv_load(PAIR, "1h", CandleType.FUNDING_RATE)) == 48
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["ftdata", "--data-dir", str(empty), "--datadir", str(tmp_path / "ft2")]) == 2
    assert not (tmp_path / "ft2").exists()
