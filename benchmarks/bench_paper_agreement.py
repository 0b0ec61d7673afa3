"""Does the backtester predict what a live bot gets on the paper exchange? Fills per side of
a real Freqtrade in live mode (``dry_run: false``) against ``asmm replay --ledger``, counted
in the paper exchange's own ledger, beside the backtester's on the same market window.

As ``bench_dryrun_agreement.py``, but live: the same lively synthetic day (``asmm synth``
defaults, seed 11) served by the replay exchange at real speed, shifted to wall time, with
its paper exchange on (a SQLite ledger in the work folder); Freqtrade trades it with
``user_data/config.paper.json`` (the ping-pong strategy, a loop of ``--loop-seconds``, no
maker fee), signing with a throw-away key made at run time and handed to it through the
environment only (``FREQTRADE__EXCHANGE__WALLET_ADDRESS`` / ``..._PRIVATE_KEY``: it is written
nowhere). After ``--minutes`` from the bot's first quote the wallet's fills are read from
the exchange (``/info userFills``), and the backtester runs what the PnL report's comparison
runs for a live bot: the data the replay served meanwhile, mapped back to the data's clock,
the ``exchange`` fill rule (:func:`asmm.report.comparison.fill_rule_for`),
``execution="freqtrade"``, the bot's loop as ``refresh_seconds``, Freqtrade's cadence as a
live bot (:func:`asmm.report.comparison.cadence_for`: a fill seen 2.3 s late, a re-priced
order off the book 0.8 s), the strategy's quoting limits and the same parameter file; the
other fill rules for contrast, and an ideal bot without the cadence.

Fills are counted over the whole window and over the minutes in which Freqtrade re-priced
the bot's orders (:func:`asmm.report.sources.repricing_minutes`). The paper fills are also
split by how the exchange filled them (the ledger's ``how``: a trade past the queue, the
book moving through, or a taker fill of an order that crossed on arrival — the strategy
sends post-only orders live, so there should be none). And why they differ: how old the
book each order was priced from was when the order reached the exchange (the strategy's
``asmm quote`` lines against the recorded market), the share of the window the bot had an
order on the book, how soon after a fill its next order came, and, for contrast, the
``exchange`` rule with the measured age of the book as its latency.

Usage: python benchmarks/bench_paper_agreement.py [--minutes 20] [--loop-seconds 1]
       python benchmarks/bench_paper_agreement.py --analyse WORK   (the backtests again, on
       the run a previous invocation saved in WORK/run.json)
Takes the window plus about a minute. Prints one line per figure; copy them into
benchmarks/README.md with the date.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sqlite3
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from bench_dryrun_agreement import (
    free_port,
    launch_bot,
    market_and_params,
    ratios,
    stop_bot,
    wait_for,
    wait_quoting,
)
from eth_account import Account

from asmm.core.enums import FillRule
from asmm.core.params import load_params
from asmm.freqtrade.config import MMConfig
from asmm.report.comparison import cadence_for, fill_rule_for
from asmm.report.ledger import summarize
from asmm.report.sources import load_rest, per_side, repricing_minutes
from asmm.sim import BacktestConfig, load_events, run_backtest
from asmm.sim.events import KIND_BBO
from asmm.venues.hyperliquid.replay.process import start_replay

ROOT = Path(__file__).resolve().parents[1]
QUOTE = re.compile(r"^(\S+ \S+) - \S+ - INFO - asmm quote .*?kind=(\S+) side=(\S+) "
                   r"price=(\S+) .*?best_bid=(\S+) best_ask=(\S+) ", re.M)
PAPER_CONFIG = ROOT / "user_data" / "config.paper.json"


def bot_config(url: str, api_port: int, user: str, password: str, work: Path,
               params_file: Path, loop: int) -> dict:
    """config.paper.json with this run's exchange URL, API port and login, database, loop
    and files. No key: Freqtrade reads the wallet and key from the environment."""
    cfg = json.loads(PAPER_CONFIG.read_text())
    assert cfg["dry_run"] is False
    for key in ("ccxt_config", "ccxt_async_config"):
        api = cfg["exchange"].setdefault(key, {}).setdefault("urls", {}).setdefault("api", {})
        api["public"] = api["private"] = url
    cfg["db_url"] = f"sqlite:///{work / 'bot.sqlite'}"
    cfg["api_server"] = {
        "enabled": True, "listen_ip_address": "127.0.0.1", "listen_port": api_port,
        "username": user, "password": password, "jwt_secret_key": secrets.token_hex(32),
        "ws_token": secrets.token_urlsafe(24), "CORS_origins": [], "verbosity": "error",
        "enable_openapi": False}
    cfg["internals"] = {"process_throttle_secs": loop}
    cfg["asmm"].update(params_file=str(params_file), maker_fee=0.0,
                       kill_switch_file=str(work / "KILL"))
    return cfg


def ledger_fills(rp, wallet: str, t0: float, t1: float) -> list[dict]:
    """The wallet's fills the exchange booked in [t0, t1] (epoch s), oldest first."""
    fills = rp.info({"type": "userFillsByTime", "user": wallet, "startTime": int(t0 * 1000),
                     "endTime": int(t1 * 1000)})
    if len(fills) >= 2000:  # Hyperliquid's (and the paper exchange's) page
        sys.exit("2000 fills or more: page through userFillsByTime")
    return fills


def run(args, work: Path) -> dict:
    truth, params_file = market_and_params(work, args.seed)
    rp = start_replay(work / "market", "--start-at", "now", "--history", "600",
                      "--ledger", str(work / "paper.sqlite"), log_dir=work)
    port, user, password = free_port(), "bench", secrets.token_urlsafe(12)
    cfg = bot_config(rp.url, port, user, password, work, params_file, args.loop_seconds)
    (work / "config.json").write_text(json.dumps(cfg, indent=1))
    key = Account.create()  # throw-away: the paper exchange opens an account for it
    wallet = key.address
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FREQTRADE__", "PYTEST_"))}
    env["FREQTRADE__EXCHANGE__WALLET_ADDRESS"] = wallet
    env["FREQTRADE__EXCHANGE__PRIVATE_KEY"] = key.key.hex()
    log = work / "freqtrade.log"
    bot = launch_bot(work, env)
    del env, key
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = wait_quoting(bot, url, log)
        end = t0 + args.minutes * 60.0
        print(f"bot quoting since {datetime.fromtimestamp(t0, UTC):%H:%M:%S} UTC; "
              f"reading its fills at {datetime.fromtimestamp(end, UTC):%H:%M:%S}; load "
              f"average {os.getloadavg()[0]:.2f}", flush=True)
        wait_for("the end of the window", lambda: time.time() >= end,
                 args.minutes * 60.0 + 60.0, bot)
        book = load_rest(url, user, password)
        t1 = time.time()
        load = os.getloadavg()
        shift = -rp.clock()["shift_ms"] / 1000.0
        fills = ledger_fills(rp, wallet, t0, t1)
    finally:
        stop_bot(bot)
        rp.stop()
    rule, why = fill_rule_for([book])
    summary = replace(summarize(book, t1), started=t0)
    record = {
        "t0": t0, "t1": t1, "shift": shift, "loop": args.loop_seconds, "lot": summary.lot,
        "tick": truth["tick"], "rule": str(rule), "why": why, "wallet": wallet,
        "load_average": list(load), "seed": args.seed,
        "minutes": sorted(m for m in repricing_minutes(work / "bot.sqlite")
                          if t0 // 60 <= m <= t1 // 60),
        "fills": fills,
        "freqtrade_fills": [(f.time, bool(f.signed_qty > 0))
                            for t in book.trades for f in t.fills]}
    (work / "run.json").write_text(json.dumps(record, indent=1))
    return record


def ledger_breakdown(ledger: Path, wallet: str, t0: float, t1: float) -> dict:
    """From the exchange's SQLite file, read-only: how it filled the wallet's orders (the
    ledger's ``how``) and each fill's delay after its order arrived (ms); the share of the
    window with an order of the wallet on the book; after each filled order, how long until
    the wallet's next order arrived (ms): the bot's reaction to a fill."""
    lo, hi = int(t0 * 1000), int(t1 * 1000)
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT f.how, f.side, f.t_ms - o.t_ms FROM fills f JOIN orders o USING (oid) "
            "WHERE f.address = ? AND f.t_ms BETWEEN ? AND ?", (wallet.lower(), lo, hi)
        ).fetchall()
        orders = db.execute("SELECT t_ms, status, status_ms FROM orders WHERE address = ? AND "
                            "t_ms BETWEEN ? AND ? ORDER BY t_ms", (wallet.lower(), lo, hi)
                            ).fetchall()
    hows: dict[str, list[int]] = {}
    for how, side, _ in rows:
        hows.setdefault(how, [0, 0])[0 if side > 0 else 1] += 1
    live, end = 0, lo
    for t, status, t_end in orders:
        t_end = hi if status == "open" else min(t_end, hi)
        live += max(0, t_end - max(t, end))
        end = max(end, t_end)
    arrivals = np.array([t for t, *_ in orders])
    done = np.array([t_end for _, status, t_end in orders if status == "filled"])
    nxt = np.searchsorted(arrivals, done, side="right")
    react = arrivals[nxt[nxt < arrivals.size]] - done[nxt < arrivals.size]
    return {"how": hows, "delay_ms": np.array([d for *_, d in rows], dtype=float),
            "live": live / (hi - lo), "react_ms": react.astype(float)}


def staleness(work: Path, wallet: str, t0: float, t1: float, shift: float, events
              ) -> tuple[np.ndarray, np.ndarray]:
    """For each of the wallet's orders priced by an ``asmm quote`` line (the latest one at
    the order's price and side before it arrived): (ms from that line to the order's
    arrival at the exchange; s from when the book the line was priced from — its best bid
    and ask — stopped being the recorded market's, to the arrival: how old the bot's book
    was, at least, when the order reached the exchange; 0 if still current). Log times are
    local, as the logging module writes them."""
    quotes: dict[tuple[int, float], list[tuple[float, float, float]]] = {}
    for m in QUOTE.finditer((work / "freqtrade.log").read_text(errors="replace")):
        t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        buys = (m.group(2) == "entry") == (m.group(3) == "long")
        quotes.setdefault((1 if buys else -1, float(m.group(4))), []).append(
            (t, float(m.group(5)), float(m.group(6))))
    with sqlite3.connect(f"file:{work / 'paper.sqlite'}?mode=ro", uri=True) as db:
        orders = db.execute("SELECT side, px, t_ms FROM orders WHERE address = ? AND t_ms "
                            "BETWEEN ? AND ?", (wallet.lower(), int(t0 * 1000),
                                                int(t1 * 1000))).fetchall()
    bbo = events.kind == KIND_BBO
    bt, bid, ask = events.t[bbo], events.bid[bbo], events.ask[bbo]
    delays, ages = [], []
    for side, px, t_ms in orders:
        before = [q for q in quotes.get((side, px), []) if q[0] <= t_ms / 1000.0]
        if not before:
            continue
        tq, best_bid, best_ask = before[-1]
        delays.append(t_ms - tq * 1000.0)
        k = int(np.searchsorted(bt, tq + shift, side="right")) - 1
        while k >= 0 and not (bid[k] == best_bid and ask[k] == best_ask):
            k -= 1
        if k >= 0:
            ended = bt[k + 1] if k + 1 < bt.size else np.inf
            ages.append(max(0.0, t_ms / 1000.0 + shift - ended))
    return np.array(delays), np.array(ages)


def analyse(work: Path, r: dict) -> None:
    t0, t1, shift, loop = r["t0"], r["t1"], r["shift"], r["loop"]
    minutes = set(r["minutes"])
    rule = FillRule(r["rule"])
    la = r["load_average"]
    print(f"window: {(t1 - t0) / 60:.2f} min of market, data times "
          f"{datetime.fromtimestamp(t0 + shift, UTC):%Y-%m-%d %H:%M:%S} to "
          f"{datetime.fromtimestamp(t1 + shift, UTC):%H:%M:%S} UTC; loop {loop:g} s; load "
          f"average at the end {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} (1 / 5 / 15 min); "
          f"bot's rule {rule} ({r['why']})")
    fills = r["fills"]
    f_t = np.array([f["time"] / 1000.0 for f in fills])
    f_buy = np.array([f["side"] == "B" for f in fills])
    f_taker = np.array([bool(f["crossed"]) for f in fills])
    paper = (int(f_buy.sum()), int((~f_buy).sum()))
    paper_rp = per_side(f_t, f_buy, minutes)
    n_min = int(t1 // 60 - t0 // 60) + 1
    print(f"paper exchange's ledger (userFills of {r['wallet'][:10]}…): {paper[0]} buys, "
          f"{paper[1]} sells ({len({f['oid'] for f in fills})} orders); re-priced in "
          f"{len(minutes)} of {n_min} minutes, in which {paper_rp} (buys, sells)")
    every = set(range(int(t0 // 60), int(t1 // 60) + 1))
    taker, maker = (f_t[f_taker], f_buy[f_taker]), (f_t[~f_taker], f_buy[~f_taker])
    print(f"  of which taker (crossed on arrival): {per_side(*taker, every)} whole window, "
          f"{per_side(*taker, minutes)} re-pricing minutes; maker {per_side(*maker, every)}, "
          f"{per_side(*maker, minutes)}")
    ft = r["freqtrade_fills"]
    ft_buy = sum(1 for _, b in ft if b)
    print(f"  Freqtrade's own records: {ft_buy} buys, {len(ft) - ft_buy} sells")
    ledger = work / "paper.sqlite"
    if ledger.exists():
        b = ledger_breakdown(ledger, r["wallet"], t0, t1)
        d = b["delay_ms"]
        hows = ", ".join(f"{k} {v[0]} / {v[1]}" for k, v in sorted(b["how"].items()))
        print(f"  by how the exchange filled them (buys / sells): {hows}; delay after the "
              f"order arrived: {np.mean(d <= 20):.0%} within 20 ms, "
              f"{np.mean((d > 20) & (d <= 1000)):.0%} 20 ms-1 s, {np.mean(d > 1000):.0%} later "
              f"(median {np.median(d) / 1000:.1f} s)")
        print(f"  an order of the bot on the book {b['live']:.0%} of the window; after a fill "
              f"its next order arrived a median {np.median(b['react_ms']) / 1000:.2f} s later "
              f"(p10 {np.percentile(b['react_ms'], 10) / 1000:.2f}, p90 "
              f"{np.percentile(b['react_ms'], 90) / 1000:.2f})")
    events = load_events(work / "market", "BTC", t0 + shift, t1 + shift)
    lag_ms = None
    if ledger.exists():
        # A minute before the window too: the book of the first orders.
        delays, ages = staleness(work, r["wallet"], t0, t1, shift,
                                 load_events(work / "market", "BTC", t0 + shift - 60, t1 + shift))
        lag_ms = round(float(np.median(ages)) * 10) * 100.0
        print(f"  quote line to order arrival: median {np.median(delays):.0f} ms, p90 "
              f"{np.percentile(delays, 90):.0f} ms over {len(delays)} orders; but the book the "
              f"order was priced from had stopped being the market's a median "
              f"{np.median(ages):.2f} s (p90 {np.percentile(ages, 90):.2f} s) before it arrived"
              f" ({np.mean(ages > 0):.0%} of {len(ages)} orders met a book that had moved)")
    mm = MMConfig()
    params = load_params(work / "params.json", check_fresh=False)
    # What the PnL report runs for this bot (the rule, with Freqtrade's cadence for it), the
    # other rules with the same cadence, and for contrast an ideal bot (no cadence) and the
    # bot's measured staleness as latency.
    live = cadence_for(rule)
    ideal = {"fill_reaction_ms": 0.0, "requote_gap_ms": 0.0}
    runs = [(rl, 100.0, live, " (the bot's, as the PnL report runs it)" if rl == rule else "")
            for rl in (rule, *(x for x in FillRule if x != rule))]
    runs.append((rule, 100.0, ideal, " (contrast: an ideal bot, no Freqtrade cadence)"))
    if lag_ms:
        runs.append((rule, lag_ms, live, " (contrast: latency = the book's age above)"))
    for rl, latency, cadence, note in runs:
        cfg = BacktestConfig.from_params(
            params, order_size=r["lot"], execution="freqtrade", fill_rule=rl,
            refresh_seconds=loop, maker_fee=0.0, tick=r["tick"],
            min_spread=mm.min_spread_ticks * r["tick"], max_improve_ticks=mm.max_improve_ticks,
            latency_ms=latency, **cadence)
        bt = run_backtest(events, cfg)
        s = bt.stats
        whole = (s["fills_bid"], s["fills_ask"])
        rp_ = per_side(bt.fills["t"] - shift, bt.fills["side"] > 0, minutes)
        print(f"backtest, fill rule {rl}{note}: {whole[0]} buys, {whole[1]} sells (paper / "
              f"backtest {ratios(paper, whole)}); in the re-pricing minutes {rp_} (paper / "
              f"backtest {ratios(paper_rp, rp_)}); trade {s['fills_trade']}, book-through "
              f"{s['fills_book_through']}, dry-run cross {s['fills_dry_run_cross']}, "
              f"post-only rejects {s['rejected_post_only']}; latency {cfg.latency_ms:g} ms, "
              f"fill reaction {cfg.fill_reaction_ms:g} ms, re-pricing gap "
              f"{cfg.requote_gap_ms:g} ms")
    print(f"work folder: {work}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="market window (default 20)")
    ap.add_argument("--loop-seconds", type=int, default=1,
                    help="Freqtrade's internals.process_throttle_secs (default 1)")
    ap.add_argument("--seed", type=int, default=11, help="synthetic market seed (default 11)")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temp one)")
    ap.add_argument("--analyse", type=Path, default=None, metavar="WORK",
                    help="only the backtests, on the run saved in WORK/run.json")
    args = ap.parse_args()
    if args.analyse:
        analyse(args.analyse, json.loads((args.analyse / "run.json").read_text()))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_paper_agreement_"))
    work.mkdir(parents=True, exist_ok=True)
    analyse(work, run(args, work))


if __name__ == "__main__":
    main()
