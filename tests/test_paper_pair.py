"""The pair of bots live on the paper exchange, on two accounts: the long-only and the
short-only bot (user_data/config.pair-long.json / config.pair-short.json, extending
config.paper.json instead of config.json), each signing with its own throw-away key, sharing
their inventory through asmm's state files. Checked from the exchange's own ledger
(`/info openOrders`, `frontendOpenOrders`, `clearinghouseState`, `userFills` of each
wallet), not from Freqtrade: both sides rest at once when flat — a bid from the long bot's
account, an ask from the short bot's — and the net inventory the bots share is what the two
accounts' positions add up to. About a minute.

Nothing here reaches beyond 127.0.0.1 (the overlay points ccxt at the replay, WebSockets
off, as tests/test_paper_freqtrade.py does).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("freqtrade")

from test_freqtrade import (
    PAIR,
    ROOT,
    error_lines,
    foreign_hosts,
    make_params,
    model_price,
    quote_lines,
)
from test_paper_freqtrade import CONFIG, LiveBot

from asmm.core.params import Params
from asmm.data.synth import SynthConfig, generate
from asmm.freqtrade.shared_state import read_net_inventory
from asmm.venues.hyperliquid.replay.process import ReplayProcess, start_replay

LOT = 0.001  # the configs' asmm.lot_size
MAKER_FEE = 0.00005  # 0.5 bp: why, in pair_run
STABLE_S = 5.0  # no fill on either account for this long: Freqtrade has seen every fill
# Each account trades one direction: the exchange books only these for it.
DIRS = {"long": {"Open Long", "Close Long"}, "short": {"Open Short", "Close Short"}}


@dataclass
class PairRun:
    work: Path
    rp: ReplayProcess
    params: Params
    shared: Path
    bots: dict[str, LiveBot] = field(default_factory=dict)


def pair_config(work: Path, mode: str) -> Path:
    """The committed pair config for ``mode``, extending the paper config (live, no builder
    fee, the exchange on 127.0.0.1) where the committed one extends config.json."""
    doc = json.loads((ROOT / "user_data" / f"config.pair-{mode}.json").read_text())
    assert doc["add_config_files"] == ["config.json"]
    assert doc["asmm"]["mode"] == doc["asmm"]["bot_id"] == mode
    doc["add_config_files"] = [str(CONFIG)]
    path = work / f"config.pair-{mode}.paper.json"
    path.write_text(json.dumps(doc, indent=1))
    return path


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory):
    """The lively synthetic day on the replay exchange with a paper ledger; the long and
    the short bot trading it live, each on its own account, quoting with a maker fee of
    MAKER_FEE (the kill switch goes to market after 5 s).

    The fee sets how far from the mid the entries rest, and so how often they fill. Each
    check here needs a different rarity: both accounts flat with their entries resting
    wants fills rare, the net seen long and short wants them common. Measured over 6 minutes
    of this market (sigma about 7 ticks per 1 s loop), the bots re-pricing every loop:
    - no fee (a tick or two from the mid): the move that fills one bot's exit mostly fills
      its partner's entry too, so the two take turns being flat;
    - the exchange's 1.5 bp (about 20 ticks from the mid): 4 and 1 fills; the net was first
      seen short after 268 s, so the net check failed 2 runs in 3 within its deadline;
    - 0.5 bp: 26 and 29 fills, both flat with both entries resting in 6 % of samples, the
      net seen short after 12 s and long after 36 s."""
    work = tmp_path_factory.mktemp("ft_paper_pair")
    truth = generate(SynthConfig(days=1, seed=11, start=date(2025, 9, 1)), work / "market")
    rp = start_replay(work / "market", "--start-at", "now", "--history", "600",
                      "--ledger", str(work / "ledger.sqlite"), log_dir=work)
    now = datetime.now(UTC)
    params_file = work / "params.json"
    params = make_params(params_file, truth, now - timedelta(minutes=5),
                         now + timedelta(hours=2))
    run = PairRun(work, rp, params, work / "shared_state")
    try:
        for mode in ("long", "short"):
            folder = work / mode
            folder.mkdir()
            run.bots[mode] = LiveBot(folder, f"pair-{mode}", lambda: rp, params_file,
                                     config=pair_config(folder, mode),
                                     shared_state_dir=str(run.shared),
                                     kill_switch_file=str(work / "KILL"),
                                     kill_timeout_seconds=5, maker_fee=MAKER_FEE)
        yield run
    finally:
        for bot in run.bots.values():
            bot.stop()
        rp.stop()


def positions(bot: LiveBot) -> float:
    """The account's BTC position (coin, signed) in the exchange's clearinghouseState."""
    state = bot.info("clearinghouseState")
    return sum(float(p["position"]["szi"]) for p in state["assetPositions"]
               if p["position"]["coin"] == "BTC")


def resting(bot: LiveBot, kind: str = "openOrders") -> set[tuple]:
    return {(o["oid"], o["side"], o["limitPx"], o["sz"], o["origSz"], o["reduceOnly"])
            for o in bot.info(kind)}


def last_tid(bot: LiveBot) -> int:
    fills = bot.fills()
    return fills[0]["tid"] if fills else 0


@pytest.mark.slow
def test_paper_pair_accounts_are_the_bots_own_and_trade_one_way(pair_run):
    long_bot, short_bot = pair_run.bots["long"], pair_run.bots["short"]
    assert long_bot.wallet.lower() != short_bot.wallet.lower()
    for bot in (long_bot, short_bot):
        cfg = bot.client.show_config()
        assert cfg["dry_run"] is False and cfg["trading_mode"] == "futures"
    # Each bot's first orders open an account of its own on the exchange.
    for bot in (long_bot, short_bot):
        bot.wait(lambda b=bot: b.info("openOrders") or b.fills(), 120,
                 f"{bot.name}'s first order on the exchange")
        assert "marginSummary" in bot.info("clearinghouseState")


@pytest.mark.slow
def test_paper_pair_rests_a_bid_and_an_ask_at_once_when_flat(pair_run):
    """Both accounts flat and each with its entry resting, in one snapshot of the ledger:
    the open orders read before and after the positions are the same orders, unfilled."""
    long_bot, short_bot = pair_run.bots["long"], pair_run.bots["short"]

    def flat_with_both_resting():
        before = [resting(b) for b in (long_bot, short_bot)]
        flat = [positions(b) for b in (long_bot, short_bot)] == [0.0, 0.0]
        after = [resting(b, "frontendOpenOrders") for b in (long_bot, short_bot)]
        if not flat or before != after or not all(len(o) == 1 for o in before):
            return None
        (bid,), (ask,) = before
        # Unfilled (sz == origSz) throughout, so both rested while both accounts were flat.
        if bid[1] != "B" or ask[1] != "A" or bid[3] != bid[4] or ask[3] != ask[4]:
            return None
        return bid, ask

    bid, ask = long_bot.wait(flat_with_both_resting, 180,
                             "both accounts flat with a bid and an ask resting")
    assert not bid[5] and not ask[5]  # entries, not reduce-only exits
    assert float(bid[2]) < float(ask[2])
    assert float(bid[3]) == float(ask[3]) == LOT
    # Each bot priced its side with the model at the pair's net inventory, 0.
    for bot, order in ((long_bot, bid), (short_bot, ask)):
        lines = [ln for ln in quote_lines(bot.text())
                 if ln["kind"] == "entry" and ln["price"] == float(order[2])]
        assert lines, f"no quote line of {bot.name} at {order[2]}"
        assert lines[-1]["q"] == 0.0 and lines[-1]["maker_fee"] == MAKER_FEE
        assert lines[-1]["price"] == model_price(lines[-1], pair_run.params)


@pytest.mark.slow
def test_paper_pair_shared_inventory_is_the_accounts_positions(pair_run):
    """Sampled while the bots trade: whenever neither account has filled for STABLE_S
    (Freqtrade has seen every fill), the inventory each bot publishes is its account's
    position in lots and the net they share is the two positions' sum — seen long and short,
    and never otherwise. The long account is never short, the short one never long."""
    run = pair_run
    long_bot, short_bot = run.bots["long"], run.bots["short"]
    tick = threading.Event()
    seen: dict[str, float] = {}
    disagreements: list[str] = []
    tids, changed = None, time.monotonic()
    deadline = time.monotonic() + 300  # net long and net short each come and go by chance
    while not ({"long", "short"} <= set(seen)) and time.monotonic() < deadline:
        before = (last_tid(long_bot), last_tid(short_bot))
        if before != tids:
            tids, changed = before, time.monotonic()
        szi = (positions(long_bot), positions(short_bot))
        assert szi[0] >= 0.0 and szi[1] <= 0.0, szi
        states = {p.stem: json.loads(p.read_text()) for p in run.shared.glob("*.json")}
        net = read_net_inventory(run.shared, PAIR, datetime.now(UTC), 60)
        stable = time.monotonic() - changed >= STABLE_S
        if stable and (last_tid(long_bot), last_tid(short_bot)) == tids:
            want = (szi[0] / LOT, szi[1] / LOT)
            got = (states["long"]["q_lots"], states["short"]["q_lots"])
            if got != pytest.approx(want) or net != pytest.approx(sum(want)):
                disagreements.append(f"accounts {want} lots, shared {got} (net {net})")
            elif sum(want):
                seen["long" if sum(want) > 0 else "short"] = sum(want)
        for bot in (long_bot, short_bot):
            assert bot.proc.poll() is None, f"{bot.name} exited"
        tick.wait(0.5)
    assert disagreements == []
    assert {"long", "short"} <= set(seen), f"net inventory seen only {seen}"
    # Each account's fills go its own way only.
    for mode, bot in run.bots.items():
        fills = bot.fills()
        assert fills and {f["dir"] for f in fills} <= DIRS[mode]


@pytest.mark.slow
def test_paper_pair_kill_switch_leaves_both_accounts_flat(pair_run):
    run = pair_run
    (run.work / "KILL").touch()
    for bot in run.bots.values():
        bot.wait(lambda b=bot: "asmm: kill switch armed" in b.text() and b.client.status() == []
                 and b.info("clearinghouseState")["assetPositions"] == []
                 and b.info("openOrders") == [], 120,
                 f"{bot.name} flat with nothing resting on the exchange")
    # The shared inventory says so too.
    run.bots["long"].wait(lambda: read_net_inventory(run.shared, PAIR, datetime.now(UTC), 60)
                          == 0.0, 30, "the shared net inventory to be 0")
    for bot in run.bots.values():
        text = bot.text()
        assert error_lines(text) == []
        assert foreign_hosts(text) == set()
        assert "hyperliquid.xyz" not in text
