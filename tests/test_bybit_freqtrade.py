"""Freqtrade on Bybit, offline: the committed Bybit configs, and a real
`freqtrade trade --dry-run` with ``user_data/config.bybit.replay.json`` against
``asmm replay --venue bybit`` (ccxt's bybit client over REST, ccxt.pro's over the
WebSocket). The launch, the REST client and the log checks are tests/test_freqtrade.py's.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("freqtrade")

from test_freqtrade import Bot, error_lines, foreign_hosts, make_params, model_price, quote_lines

from asmm.core.fees import fee_tier
from asmm.data.synth import SynthConfig, generate
from asmm.freqtrade.config import MMConfig
from asmm.venues.hyperliquid.replay.process import start_replay

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "user_data" / "config.bybit.json"
REPLAY_CONFIG = ROOT / "user_data" / "config.bybit.replay.json"
PAIR = "BTC/USDT:USDT"


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_bybit_configs_are_the_hyperliquid_ones_on_bybit():
    hl, by, rep = load(ROOT / "user_data" / "config.json"), load(CONFIG), load(REPLAY_CONFIG)
    for doc in (by, rep):
        ex = doc["exchange"]
        assert ex["name"] == "bybit" and ex["pair_whitelist"] == [PAIR]
        assert (doc["trading_mode"], doc["margin_mode"]) == ("futures", "isolated")
        assert doc["stake_currency"] == "USDT" and doc["dry_run"] is True
        assert not {"key", "secret", "password"} & set(ex), "no credentials in a config"
        cfg = MMConfig.from_dict(doc["asmm"])
        assert fee_tier(cfg.fee_tier).name == "bybit:vip0"
        # The strategy's settings are config.json's; the fee tier is Bybit's, and one lot is
        # 0.002 BTC: Bybit's minimum order is 0.001 and Freqtrade wants 5 % above it.
        differ = ("fee_tier", "lot_size")
        assert {k: v for k, v in doc["asmm"].items() if k not in differ} \
            == {k: v for k, v in hl["asmm"].items() if k not in differ}
        assert cfg.lot_size == 0.002
    # The replay variant differs only in where ccxt goes, its name and its database.
    same = {k for k in by if k not in ("exchange", "bot_name", "db_url")}
    assert {k: rep[k] for k in same} == {k: by[k] for k in same}
    api = rep["exchange"]["ccxt_config"]["urls"]["api"]
    assert all(api[k].startswith("http://127.0.0.1:") for k in ("public", "private"))
    assert api["ws"]["public"]["linear"].startswith("ws://127.0.0.1:")
    assert "urls" not in json.dumps(by["exchange"])


def replay_urls(url: str, ws_url: str) -> dict:
    """The ``exchange`` overlay moving config.bybit.replay.json's URLs to this replay."""
    http = {k: url for k in ("public", "private", "spot", "futures", "v2")}
    ws = {k: ws_url for k in ("linear", "spot", "inverse", "option")}
    return {"ccxt_config": {"urls": {"api": {**http, "ws": {"public": ws}}}}}


@pytest.fixture(scope="module")
def bybit_bot(tmp_path_factory):
    """One dry-run bot on the Bybit replay of a lively synthetic day."""
    work = tmp_path_factory.mktemp("ft_bybit")
    folder = work / "market"
    truth = generate(SynthConfig(days=1, seed=11, start=date(2025, 9, 1)), folder)
    rp = start_replay(folder, "--venue", "bybit", "--start-at", "now", "--history", "600",
                      log_dir=work)
    params_file = work / "params.json"
    now = datetime.now(UTC)
    params = make_params(params_file, truth, now - timedelta(minutes=5), now + timedelta(hours=2))
    bot = None
    try:
        bot = Bot(work, rp.url, params_file, "bybit", configs=(REPLAY_CONFIG,),
                  exchange=replay_urls(rp.url, rp.ws_url))
        yield bot, params, rp
    finally:
        if bot:
            bot.stop()
        rp.stop()


@pytest.mark.slow
def test_dry_run_on_bybit_places_the_models_entry_and_nothing_fails(bybit_bot):
    bot, params, rp = bybit_bot

    def entry_orders():
        return [(t, o) for t in bot.trades() for o in t["orders"]
                if o["ft_order_side"] == ("sell" if t["is_short"] else "buy")]

    entries = bot.wait(entry_orders, 180, "a dry-run entry order")
    cfg = bot.client.show_config()
    assert cfg["exchange"] == "bybit" and cfg["trading_mode"] == "futures"
    assert cfg["stake_currency"] == "USDT" and cfg["dry_run"] is True
    trade, order = entries[0]
    assert trade["pair"] == PAIR and order["order_type"] == "limit"
    assert order["amount"] == pytest.approx(0.002)

    # The entry is at the model's price: the quote line logged with it, recomputed.
    lines = [ln for ln in quote_lines(bot.text()) if ln["kind"] == "entry"]
    direction = "short" if trade["is_short"] else "long"
    placed = datetime.fromtimestamp(order["order_timestamp"] / 1000, UTC)
    cands = [ln for ln in lines if ln["side"] == direction and ln["why"] in ("new", "model")
             and 0 <= (placed - ln["time"]).total_seconds() < 10]
    assert cands, f"no model quote logged before the entry {order}"
    ln = cands[-1]
    assert ln["tick"] == 0.1  # Bybit's BTCUSDT tick, from the replay's instruments-info
    assert ln["maker_fee"] == fee_tier("bybit:vip0").maker
    model = model_price(ln, params)
    # The model's own number, bit for bit, in the line's bid/ask; the order price is that
    # number on Bybit's 0.1 grid (k * 0.1 is not always the nearest double to the decimal).
    assert ln["bid" if direction == "long" else "ask"] == model
    assert ln["price"] == pytest.approx(model, abs=1e-6)
    assert order["safe_price"] == pytest.approx(ln["price"], abs=1e-9)
    assert ln["best_bid"] < ln["best_ask"]

    # The candles come over Bybit's WebSocket too; by then nothing failed, nothing left
    # 127.0.0.1, and every path asked for is one the replay serves.
    rp.wait_for(lambda r: r.sent()["messages"]["kline"] > 0, timeout=120)
    text = bot.text()
    assert error_lines(text) == []
    assert foreign_hosts(text) == set()
    assert "not served" not in rp.log()
