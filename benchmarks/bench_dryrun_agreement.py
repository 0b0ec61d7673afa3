"""Does the backtester predict what a Freqtrade dry-run shows? Fills per side of a real
Freqtrade dry-run beside the backtester's on the same market window.

A lively synthetic day (``asmm synth`` defaults, seed 11) is served by the replay exchange
at real speed, shifted to wall time; Freqtrade trades it in dry-run with the ping-pong
strategy (the shipped ``config.replay.json``, a loop of ``--loop-seconds``, no maker fee, so
that quotes a few ticks out fill often). After ``--minutes`` from the bot's first quote its
fills are read over the REST API, and the backtester runs what the PnL report's comparison
(``asmm.report.comparison``) runs: the data the replay served meanwhile, mapped back to the
data's clock, with the bot's fill rule (``freqtrade-dry-run``, from ``dry_run: true``),
``execution="freqtrade"``, the bot's loop as ``refresh_seconds``, Freqtrade's cadence as a
dry-run (:func:`asmm.report.comparison.cadence_for`), the strategy's quoting limits and the
same parameter file. The other fill rules the backtester knows are run on the same window
too, with the same cadence, to show how much the rule decides, and the bot's rule without
the cadence (an ideal bot) for contrast.

Fills are counted over the whole window and over the minutes in which Freqtrade re-priced
the bot's orders (:func:`asmm.report.sources.repricing_minutes`; the strategy re-prices
every loop, through the timeout hooks, so nearly every minute).

Usage: python benchmarks/bench_dryrun_agreement.py [--minutes 20] [--loop-seconds 1]
Takes the window plus about a minute. Prints one line per figure; copy them into
benchmarks/README.md with the date.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from asmm.cli.demo_steps import freqtrade_config
from asmm.core.enums import FillRule
from asmm.core.params import Params, SideIntensity, load_params, write_params
from asmm.data.synth import SynthConfig, generate
from asmm.freqtrade import userdir
from asmm.freqtrade.config import MMConfig
from asmm.report.comparison import cadence_for, fill_rule_for
from asmm.report.ledger import summarize
from asmm.report.sources import load_rest, per_side, repricing_minutes
from asmm.sim import BacktestConfig, load_events, run_backtest
from asmm.venues.hyperliquid.replay.process import start_replay

GAMMA = 0.05  # 1/USDC, as tests/test_freqtrade.py: quotes a few ticks from the mid
FIRST_QUOTE = re.compile(r"^(\S+ \S+) - \S+ - INFO - asmm quote ", re.M)




def stop_bot(bot: subprocess.Popen) -> None:
    """Stop a Freqtrade process as a user would (Ctrl-C), killing it after a minute."""
    bot.send_signal(signal.SIGINT)
    try:
        bot.wait(timeout=60)
    except subprocess.TimeoutExpired:
        bot.kill()
        bot.wait()

def market_and_params(work: Path, seed: int) -> tuple[dict, Path]:
    """The lively synthetic day of ``seed`` in ``work/market`` and its truth, with a
    parameter file of that truth at γ ``GAMMA``, valid from 5 minutes ago for 3 hours."""
    truth = generate(SynthConfig(days=1, seed=seed, start=date(2025, 9, 1)), work / "market")
    now = datetime.now(UTC)
    params_file = work / "params.json"
    write_params(params_file, Params(
        coin="BTC", model="glft", computed_at=now - timedelta(minutes=5),
        valid_until=now + timedelta(hours=3),
        data_window=(now - timedelta(days=1, minutes=5), now - timedelta(minutes=5)),
        mid_price=truth["mid0"], sigma=truth["sigma"], gamma=GAMMA,
        bid=SideIntensity(truth["bid"]["A"], truth["bid"]["k"]),
        ask=SideIntensity(truth["ask"]["A"], truth["ask"]["k"])))
    return truth, params_file

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, pred, timeout: float, proc: subprocess.Popen, interval: float = 1.0):
    """Poll ``pred()`` until truthy (returned); fail if the bot exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if proc.poll() is not None:
            sys.exit(f"freqtrade exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)  # polling interval of the condition above


def first_quote(log: Path) -> float | None:
    """Epoch s of the bot's first ``asmm quote`` line (the logging module writes local
    time, so the stamp is read as local time)."""
    m = FIRST_QUOTE.search(log.read_text(errors="replace")) if log.exists() else None
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() if m else None


def launch_bot(work: Path, env: dict | None = None) -> subprocess.Popen:
    """Freqtrade trading ``work/config.json`` (the strategy written into ``work``), its log
    in ``work/freqtrade.log``; ``env`` the whole environment if given."""
    strategies = userdir.write_strategy(work / "user_data")
    with open(work / "freqtrade.out", "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "freqtrade", "trade", "--config", str(work / "config.json"),
             "--userdir", str(work / "user_data"), "--strategy-path", str(strategies),
             "--logfile", str(work / "freqtrade.log")], stdout=out, stderr=subprocess.STDOUT,
            cwd=work, env=env)


def wait_quoting(bot: subprocess.Popen, url: str, log: Path) -> float:
    """Wait for the bot's REST API at ``url``, then for its first quote; its epoch s."""
    def pong() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/api/v1/ping", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for("the REST API", pong, 180, bot)
    return wait_for("the bot's first quote", lambda: first_quote(log), 180, bot)


def ratios(bot: tuple[int, int], sim: tuple[int, int]) -> str:
    return ", ".join(f"{a / b:.2f}" if b else "inf" for a, b in zip(bot, sim, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="market window (default 20)")
    ap.add_argument("--loop-seconds", type=int, default=1,
                    help="Freqtrade's internals.process_throttle_secs (default 1)")
    ap.add_argument("--seed", type=int, default=11, help="synthetic market seed (default 11)")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temp one)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_agreement_"))
    work.mkdir(parents=True, exist_ok=True)
    truth, params_file = market_and_params(work, args.seed)
    rp = start_replay(work / "market", "--start-at", "now", "--history", "600", log_dir=work)
    port, user, password = free_port(), "bench", secrets.token_urlsafe(12)
    cfg = freqtrade_config(userdir.replay_config(), replay_url=rp.url, api_port=port,
                           user=user, password=password, db=work / "bot.sqlite",
                           params_file=params_file)
    cfg["internals"] = {"process_throttle_secs": args.loop_seconds}
    cfg["asmm"].update(maker_fee=0.0, kill_switch_file=str(work / "KILL"))
    (work / "config.json").write_text(json.dumps(cfg, indent=1))
    bot = launch_bot(work)
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = wait_quoting(bot, url, work / "freqtrade.log")
        end = t0 + args.minutes * 60.0
        print(f"bot quoting since {datetime.fromtimestamp(t0, UTC):%H:%M:%S} UTC; "
              f"reading its fills at {datetime.fromtimestamp(end, UTC):%H:%M:%S}", flush=True)
        wait_for("the end of the window", lambda: time.time() >= end,
                 args.minutes * 60.0 + 60.0, bot)
        book = load_rest(url, user, password)
        now_s = time.time()
        shift = -rp.clock()["shift_ms"] / 1000.0
    finally:
        stop_bot(bot)
        rp.stop()
    # The bot quoted from its first quote on: the backtester starts there too.
    summary = replace(summarize(book, now_s), started=t0)
    rule, why = fill_rule_for([book])
    print(f"window: {(now_s - t0) / 60:.2f} min of market, data times "
          f"{datetime.fromtimestamp(t0 + shift, UTC):%Y-%m-%d %H:%M:%S} to "
          f"{datetime.fromtimestamp(now_s + shift, UTC):%H:%M:%S} UTC; loop "
          f"{args.loop_seconds:g} s; bot's rule {rule} ({why})")
    minutes = {m for m in repricing_minutes(work / "bot.sqlite") if t0 // 60 <= m <= now_s // 60}
    fills = [f for t in book.trades for f in t.fills]
    f_t = np.array([f.time for f in fills])
    f_buy = np.array([f.signed_qty > 0 for f in fills])
    print(f"bot (Freqtrade dry-run): {summary.fills_buy} buys, {summary.fills_sell} sells; "
          f"re-priced its orders in {len(minutes)} of {int(now_s // 60 - t0 // 60) + 1} "
          f"minutes, in which {per_side(f_t, f_buy, minutes)} (buys, sells)")
    events = load_events(work / "market", "BTC", t0 + shift, now_s + shift)
    mm = MMConfig()
    cadence = cadence_for(rule)
    ideal = {"fill_reaction_ms": 0.0, "requote_gap_ms": 0.0}
    runs = [(r, cadence, " (the bot's)" if r == rule else "")
            for r in (rule, *(x for x in FillRule if x != rule))]
    runs.append((rule, ideal, " (contrast: an ideal bot, no Freqtrade cadence)"))
    for r, cad, note in runs:
        # What the report's comparison runs (asmm.report.comparison), fills recorded.
        cfg = BacktestConfig.from_params(
            load_params(params_file, check_fresh=False), order_size=summary.lot,
            execution="freqtrade", fill_rule=r, refresh_seconds=args.loop_seconds,
            maker_fee=0.0, tick=truth["tick"], min_spread=mm.min_spread_ticks * truth["tick"],
            max_improve_ticks=mm.max_improve_ticks, **cad)
        bt = run_backtest(events, cfg)
        whole = (bt.stats["fills_bid"], bt.stats["fills_ask"])
        repriced = per_side(bt.fills["t"] - shift, bt.fills["side"] > 0, minutes)
        label = f"fill rule {r}{note}"
        print(f"backtest, {label}: {whole[0]} buys, {whole[1]} sells (bot / backtest "
              f"{ratios((summary.fills_buy, summary.fills_sell), whole)}); in the minutes the "
              f"bot re-priced {repriced} (bot / backtest "
              f"{ratios(per_side(f_t, f_buy, minutes), repriced)})")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
