"""The demo's steps, in order (``STEPS``): each runs one component's own CLI and shows
what came out. The strategy and its replay config come from the package
(:mod:`asmm.freqtrade.userdir`), so the steps up to the trading need no checkout.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.table import Table

from asmm.cli.demo_process import (
    Demo,
    StepFailed,
    StepSkipped,
    answers,
    asmm_has,
    console_script,
    free_port,
    get_json,
    port_free,
    post_json,
)
from asmm.freqtrade import userdir


def step_synthesize(d: Demo) -> None:
    a = d.args
    # The market's days end at today's 00:00 UTC: the data is as fresh as a running
    # collector's, so the calibrator's file and the bot's data-age guard treat it as live.
    start = datetime.now(UTC).date() - timedelta(days=a.days)
    d.run("synthesize", [console_script("asmm"), "synth", "--out", str(d.data), "--coin", a.coin,
                         "--days", str(a.days), "--seed", str(a.seed),
                         "--start", start.isoformat(), *a.synth_args])
    d.truth = json.loads((d.data / "truth.json").read_text())
    t = d.truth
    table = Table(title="True parameters of the synthetic market", title_justify="left")
    for col in ("quantity", "bid side", "ask side", "unit"):
        table.add_column(col)
    table.add_row("sigma", f"{t['sigma']}", f"{t['sigma']}", "USDC/sqrt(s)")
    table.add_row("A", f"{t['bid']['A']}", f"{t['ask']['A']}", "fills/s at depth 0")
    table.add_row("k", f"{t['bid']['k']}", f"{t['ask']['k']}", "1/USDC")
    table.add_row("tick", f"{t['tick']}", "", "USDC")
    d.console.print(table)
    days = ", ".join(f"{x['day']}: {x['bbo_updates']:,} BBO / {x['trades']:,} trades"
                     for x in t["days"])
    d.console.print(f"files in {d.data} ({days})")


def step_calibrate(d: Demo) -> None:
    if not asmm_has("calibrate"):
        raise StepSkipped("the calibrator (`asmm calibrate`) is not installed")
    out = d.work / "params" / f"avellaneda_parameters_{d.args.coin}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = d.run("calibrate", [console_script("asmm"), "calibrate", d.args.coin, "--data-dir",
                               str(d.data), "--output", str(out), *d.args.calibrate_args])
    d.console.print(text.rstrip())
    if not out.is_file():
        raise StepFailed(f"the calibrator wrote no parameter file at {out}",
                         d.logs / "calibrate.log")
    d.params_file = out
    _print_params_vs_truth(d)


def _print_params_vs_truth(d: Demo) -> None:
    from asmm.core.params import load_params

    p = load_params(d.params_file, check_fresh=False)
    t = d.truth or {}
    table = Table(title=f"Calibrated parameters ({d.params_file.name}) against the truth",
                  title_justify="left")
    for col in ("quantity", "calibrated", "true", "unit"):
        table.add_column(col, justify="right")
    table.add_row("sigma", f"{p.sigma:.4g}", f"{t.get('sigma', '')}", "USDC/sqrt(s)")
    for side in ("bid", "ask"):
        s = getattr(p, side)
        table.add_row(f"A {side}", f"{s.A:.4g}", f"{t.get(side, {}).get('A', '')}", "1/s")
        table.add_row(f"k {side}", f"{s.k:.4g}", f"{t.get(side, {}).get('k', '')}", "1/USDC")
    method = p.diagnostics.get("gamma", {}).get("method", "")
    table.add_row("gamma", f"{p.gamma:.4g}", f"(no truth: {method})", "1/USDC")
    d.console.print(table)


def step_backtest(d: Demo) -> None:
    if not asmm_has("backtest"):
        raise StepSkipped("the tick-level backtester (`asmm backtest`) is not installed")
    if d.params_file is None:
        raise StepSkipped("no parameter file (calibration was skipped)")
    text = d.run("backtest", [console_script("asmm"), "backtest", "--data-dir", str(d.data),
                              "--coin", d.args.coin, "--params", str(d.params_file),
                              *d.args.backtest_args])
    d.console.print(text.rstrip())


def step_replay(d: Demo) -> None:
    if not asmm_has("replay"):
        raise StepSkipped("the replay exchange (`asmm replay`) is not installed")
    port = d.args.replay_port or free_port()
    url = f"http://127.0.0.1:{port}"
    paper = []
    if d.args.trade_on == "paper":
        ledger = d.work / "paper.sqlite"
        for f in (ledger, ledger.with_name(ledger.name + "-wal"),
                  ledger.with_name(ledger.name + "-shm")):
            f.unlink(missing_ok=True)  # a fresh account every run
        paper = ["--ledger", str(ledger)]
    p = d.start("replay", [console_script("asmm"), "replay", "--data-dir", str(d.data), "--coin",
                           d.args.coin, "--port", str(port), *paper, *d.args.replay_args])
    d.wait_until("replay exchange", answers(lambda: post_json(url + "/info",
                                                                {"type": "meta"})),
                 p, d.logs / "replay.log", 60.0)
    d.replay_url = url
    d.console.print(f"replay exchange serving the synthetic {d.args.coin} market on {url} "
                    f"(Hyperliquid's POST /info and WebSocket /ws"
                    + (", and POST /exchange: the paper exchange)" if paper else ")"))


def freqtrade_config(base: dict, *, replay_url: str, api_port: int, user: str, password: str,
                     db: Path, params_file: Path | None, dry_run: bool = True) -> dict:
    """The strategy's replay config with this run's ports, database and credentials; live
    (``dry_run`` False) against the paper exchange: no builder fee, and the verdict does
    not hold entries back (paper money, as in a dry-run). The wallet and key come from the
    environment (``FREQTRADE__EXCHANGE__…``), never from the file."""
    cfg = json.loads(json.dumps(base))
    ex = cfg.setdefault("exchange", {})
    for key in ("ccxt_config", "ccxt_async_config"):
        urls = ex.setdefault(key, {}).setdefault("urls", {}).setdefault("api", {})
        urls["public"] = replay_url
        urls["private"] = replay_url
        if "ws" in urls:
            urls["ws"] = {"public": replay_url.replace("http", "ws") + "/ws"}
    cfg["dry_run"] = dry_run
    if not dry_run:
        for key in ("ccxt_config", "ccxt_async_config"):
            ex[key].setdefault("options", {})["builderFee"] = False
        cfg.setdefault("asmm", {})["require_profitable"] = False
    cfg["db_url"] = f"sqlite:///{db}"
    cfg["api_server"] = {
        "enabled": True, "listen_ip_address": "127.0.0.1", "listen_port": api_port,
        "username": user, "password": password,
        "jwt_secret_key": secrets.token_hex(32), "ws_token": secrets.token_urlsafe(24),
        "CORS_origins": [], "verbosity": "error", "enable_openapi": False,
    }
    if params_file is not None:
        cfg.setdefault("asmm", {})["params_file"] = str(params_file)
    return cfg


def _ui_installed() -> bool:
    import freqtrade.rpc.api_server as api

    return (Path(api.__file__).parent / "ui" / "installed" / "index.html").is_file()


def step_trade(d: Demo) -> None:
    if d.replay_url is None:
        raise StepSkipped("no replay exchange to trade against")
    if importlib.util.find_spec("freqtrade") is None:
        raise StepSkipped("Freqtrade is not installed (pip install 'asmm[freqtrade]')")
    port = d.args.api_port
    if not port_free(port):
        raise StepFailed(f"port {port} on 127.0.0.1 is taken (another Freqtrade?); stop it "
                         "or pass --api-port")
    user, password = "demo", secrets.token_urlsafe(12)
    db = d.work / "tradesv3.demo.sqlite"
    db.unlink(missing_ok=True)
    paper = d.args.trade_on == "paper"
    cfg = freqtrade_config(userdir.replay_config(), replay_url=d.replay_url, api_port=port,
                           user=user, password=password, db=db, params_file=d.params_file,
                           dry_run=not paper)
    env = None
    if paper:
        from eth_account import Account

        # A throw-away account on the paper exchange, handed to Freqtrade through its
        # environment: the key is never written to a file.
        key = Account.create()
        env = {"FREQTRADE__EXCHANGE__WALLET_ADDRESS": key.address,
               "FREQTRADE__EXCHANGE__PRIVATE_KEY": key.key.hex()}
        d.console.print(f"paper exchange account {key.address} (10,000 USDC, throw-away key)")
    cfg_path = d.work / "config.demo.json"
    # The file holds this run's throw-away API password: readable by the user only.
    cfg_path.write_text(json.dumps(cfg, indent=1))
    cfg_path.chmod(0o600)
    # Freqtrade's own folders (data, logs, ...) and the strategy file go into the work
    # folder, not the repository.
    ft_userdir = d.work / "user_data"
    strategies = userdir.write_strategy(ft_userdir)
    # This interpreter's Freqtrade, so that it loads the same asmm as the demo (a `freqtrade`
    # script of another environment would load another asmm, or none).
    p = d.start("freqtrade", [sys.executable, "-m", "freqtrade", "trade", "--config",
                              str(cfg_path), "--strategy", userdir.STRATEGY, "--userdir",
                              str(ft_userdir), "--strategy-path", str(strategies),
                              "--logfile", str(d.logs / "freqtrade.log")], env=env)
    d.api_url = f"http://127.0.0.1:{port}"
    d.api_auth = (user, password)
    d.wait_until("Freqtrade REST API", answers(lambda: _get(d, "ping")), p,
                 d.logs / "freqtrade.log", 180.0)
    ui = ("FreqUI is on" if _ui_installed() else
          "FreqUI is not installed here (`freqtrade install-ui` needs the internet); the "
          "REST API is on")
    d.console.print(f"[bold green]{ui} {d.api_url}[/bold green]  (user [bold]{user}[/bold], "
                    f"password [bold]{password}[/bold], valid for this run only)")
    _watch_bot(d, p, d.args.dry_run_minutes * 60.0,
               max(d.args.max_dry_run_minutes, d.args.dry_run_minutes) * 60.0)


def _get(d: Demo, path: str):
    import base64

    req = urllib.request.Request(f"{d.api_url}/api/v1/{path}")
    token = base64.b64encode(f"{d.api_auth[0]}:{d.api_auth[1]}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def _watch_bot(d: Demo, p: subprocess.Popen, seconds: float, max_seconds: float) -> None:
    """Let the bot trade for ``seconds``, and on up to ``max_seconds`` until a round trip
    has closed (a report without one shows little), printing each fill as it happens."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    t0 = time.monotonic()
    seen: set[str] = set()
    next_line = 0.0
    closed_n = 0
    extended = False
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                  console=d.console, disable=not d.console.is_terminal) as bar:
        task = bar.add_task("trading", total=seconds)
        last = ""
        while True:
            elapsed = time.monotonic() - t0
            if elapsed >= max_seconds or (elapsed >= seconds and closed_n > 0):
                break
            if elapsed >= seconds and not extended:
                extended = True
                bar.update(task, total=max_seconds)
                d.console.print(f"no round trip closed yet: trading on, for at most "
                                f"{max_seconds / 60:g} min in all")
            if p.poll() is not None:
                raise StepFailed(f"Freqtrade exited with status {p.returncode} while trading",
                                 d.logs / "freqtrade.log")
            try:
                open_trades = _get(d, "status")
                closed = _get(d, "trades?limit=20")
                closed_n = closed["total_trades"]
                last = f"{len(open_trades)} open trade(s), {closed_n} closed round trip(s)"
                for line in _new_fills(open_trades + closed["trades"], seen):
                    d.console.print(line)
            except (OSError, ValueError, KeyError, TypeError):
                last = "API busy"
            bar.update(task, completed=elapsed, description=f"trading: {last}")
            if not d.console.is_terminal and elapsed >= next_line:
                d.console.print(f"  {elapsed:5.0f} s: {last}")
                next_line += 30.0
            limit = max_seconds if extended else seconds
            time.sleep(min(5.0, max(limit - elapsed, 0.0)))
    d.console.print(f"after {(time.monotonic() - t0) / 60:.1f} min: {last}")


def _new_fills(trades: list[dict], seen: set[str]) -> list[str]:
    """One line per filled order not shown yet, oldest first (API trade/order shapes)."""
    rows = []
    for t in trades:
        entry_side = "sell" if t["is_short"] else "buy"
        for o in t.get("orders") or []:
            if not o.get("filled") or o["order_id"] in seen:
                continue
            seen.add(o["order_id"])
            what = ("short" if t["is_short"] else "long") + (
                " entry" if o["ft_order_side"] == entry_side else " exit")
            stamp = o.get("order_filled_timestamp") or o.get("order_timestamp") or 0
            rows.append((stamp, f"  fill {time.strftime('%H:%M:%S', time.gmtime(stamp / 1000))}"
                                f" {o['ft_order_side'].upper():4} {o['filled']:g} "
                                f"{t.get('base_currency', '')} @ {o['safe_price']:,.1f} "
                                f"({what}, trade {t['trade_id']})"))
    return [line for _, line in sorted(rows)]


def step_report(d: Demo) -> None:
    if d.api_url is None:
        raise StepSkipped("no bot ran, so there is nothing to report")
    if not asmm_has("pnl"):
        raise StepSkipped("the PnL report (`asmm pnl`) is not installed")
    png = d.work / "pnl.png"
    env = {"FREQTRADE_API_USER": d.api_auth[0], "FREQTRADE_API_PASSWORD": d.api_auth[1]}
    cmd = [console_script("asmm"), "pnl", "--url", d.api_url, "--png", str(png),
           "--html", str(d.work / "pnl.html")]
    if d.params_file is not None:
        # The replay moved the data's times to 'now' (at speed 1): undo that shift to find
        # the data of the live window for the backtest comparison.
        shift_ms = get_json(f"{d.replay_url}/_replay/clock")["shift_ms"]
        cmd += ["--data-dir", str(d.data), "--params", str(d.params_file),
                "--data-shift", f"{-shift_ms / 1000.0}"]
    try:
        text = d.run("pnl", cmd, env=env, timeout=300)
    except StepFailed as e:
        log = (d.logs / "pnl.log").read_text()
        if "no filled trades" in log:
            raise StepSkipped("the bot has no filled trade yet: run longer "
                              "(--dry-run-minutes)") from e
        raise
    d.console.print(text.rstrip())


STEPS: list[tuple[str, str, Callable[[Demo], None]]] = [
    ("synthesize", "Synthesize a market with known sigma, A, k (collector format)",
     step_synthesize),
    ("calibrate", "Calibrate sigma, A, k per side and gamma (walk-forward) from the data",
     step_calibrate),
    ("backtest", "Tick-level backtest of the calibrated parameters", step_backtest),
    ("replay", "Start the replay exchange (Hyperliquid's API on 127.0.0.1)", step_replay),
    ("trade", "Freqtrade trades the strategy on the replay's paper exchange (live mode; "
              "--trade-on dry-run: Freqtrade's dry-run)", step_trade),
    ("report", "The PnL report (asmm pnl over the bot's REST API)", step_report),
]
