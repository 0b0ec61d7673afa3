"""`asmm demo`: failing steps name themselves and their log; everything started is stopped
(on a failure, on Ctrl-C, at the end); a shortened demo runs the whole pipeline; the strategy
and its config come from the package, so an installed wheel runs the demo without a checkout."""

from __future__ import annotations

import ast
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asmm.cli.demo_steps import freqtrade_config
from asmm.freqtrade import userdir

ROOT = Path(__file__).resolve().parents[1]
ASMM = str(Path(sys.executable).parent / "asmm")
# A small market: enough sweeps for the calibrator (>= 100 per side), quick to write.
SMALL = "--bbo-rate 1 --A 0.2 --l2-interval 10"


def _demo(tmp_path, *args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([ASMM, "demo", "--workdir", str(tmp_path / "demo"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=900,
                          env={**os.environ, "COLUMNS": "200"}, **kw)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (the demo reaped it or will be reaped with it).
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _stopped_pids(out: str) -> dict[str, int]:
    return {m[0]: int(m[1]) for m in re.findall(r"stopped (\w[\w-]*) \(pid (\d+)", out)}


def test_failing_step_names_itself_and_its_log(tmp_path):
    r = _demo(tmp_path, "--days", "1", "--steps", "synthesize,calibrate",
              "--synth-args", SMALL, "--calibrate-args", "--model no-such-model")
    assert r.returncode == 1
    assert "step 2 (calibrate) failed" in r.stdout
    log = tmp_path / "demo" / "logs" / "calibrate.log"
    assert f"read the log: {log}" in r.stdout
    assert "no-such-model" in log.read_text()
    assert "3. Tick-level backtest" not in r.stdout  # the demo stopped there


def test_unknown_step_is_refused(tmp_path):
    r = _demo(tmp_path, "--steps", "synthesize,fly")
    assert r.returncode == 2 and "unknown step(s) fly" in r.stdout
    assert not (tmp_path / "demo").exists()


def test_failure_after_start_stops_the_replay(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = _demo(tmp_path, "--days", "1", "--steps", "synthesize,replay,dry-run",
                  "--synth-args", SMALL, "--api-port", str(port))
    assert r.returncode == 1
    # "dry-run" is the trading step's old name, still accepted.
    assert f"step 5 (trade) failed: port {port} on 127.0.0.1 is taken" in r.stdout
    pids = _stopped_pids(r.stdout)
    assert set(pids) == {"replay"}
    assert not _alive(pids["replay"])


def test_freqtrade_config_points_everything_at_this_run(tmp_path):
    base = userdir.replay_config()
    cfg = freqtrade_config(base, replay_url="http://127.0.0.1:5555", api_port=6666,
                           user="u", password="p" * 12, db=tmp_path / "t.sqlite",
                           params_file=tmp_path / "p.json")
    api = cfg["exchange"]["ccxt_config"]["urls"]["api"]
    assert api["public"] == api["private"] == "http://127.0.0.1:5555"
    assert cfg["api_server"]["listen_ip_address"] == "127.0.0.1"
    assert cfg["api_server"]["listen_port"] == 6666
    assert len(cfg["api_server"]["jwt_secret_key"]) >= 32
    assert cfg["db_url"] == f"sqlite:///{tmp_path / 't.sqlite'}"
    assert cfg["asmm"]["params_file"] == str(tmp_path / "p.json")
    assert cfg["dry_run"] is True
    # The template is left as it was.
    assert base == userdir.replay_config()
    # Live on the paper exchange: no builder fee, no verdict holding entries back, and no
    # wallet or key in the file (they come from the environment).
    live = freqtrade_config(base, replay_url="http://127.0.0.1:5555", api_port=6666,
                            user="u", password="p" * 12, db=tmp_path / "t.sqlite",
                            params_file=None, dry_run=False)
    assert live["dry_run"] is False
    assert live["exchange"]["ccxt_config"]["options"]["builderFee"] is False
    assert live["exchange"]["ccxt_async_config"]["options"]["builderFee"] is False
    assert live["asmm"]["require_profitable"] is False
    assert "private_key" not in live["exchange"] and "wallet_address" not in live["exchange"]


@pytest.mark.parametrize("name", [userdir.STRATEGY_FILE, userdir.REPLAY_CONFIG])
def test_the_repositorys_user_data_files_are_the_packages(name):
    """One source: the package ships these files (the demo writes them from there), and the
    repository's user_data holds them too, for compose and `make bot`. An edit goes into
    asmm/freqtrade/templates/ and is copied to user_data/ (or the other way round)."""
    assert (ROOT / "user_data" / name).read_text() == userdir.template(name)


def test_the_strategy_file_the_demo_writes_is_what_freqtrade_loads(tmp_path):
    pytest.importorskip("freqtrade")
    from freqtrade.resolvers import StrategyResolver

    from asmm.freqtrade.strategy import Avellaneda

    folder = userdir.write_strategy(tmp_path / "user_data")
    # Freqtrade's own search: the class it accepts is the file's, a subclass of the package's.
    cls, path = StrategyResolver._search_object(directory=folder, object_name=userdir.STRATEGY)
    assert path == (folder / "avellaneda.py").resolve()
    assert cls is not Avellaneda and issubclass(cls, Avellaneda)
    assert userdir.replay_config()["strategy"] == userdir.STRATEGY


def test_no_module_of_the_package_reaches_into_the_checkout():
    """An installed wheel has no checkout around it: no module climbs from its own file out
    of asmm/ (the strategy and its config are package data, asmm.freqtrade.userdir)."""
    package = ROOT / "asmm"
    climbing = []
    for path in package.rglob("*.py"):
        depth = len(path.relative_to(package).parts)  # parents[depth] is outside asmm/
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "parents" and "__file__" in ast.unparse(node.value)
                    and isinstance(node.slice, ast.Constant) and node.slice.value >= depth):
                climbing.append(f"{path.relative_to(ROOT)}: {ast.unparse(node)}")
    assert climbing == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ctrl_c_while_the_bot_runs_stops_everything(tmp_path):
    proc = subprocess.Popen(
        [ASMM, "demo", "--workdir", str(tmp_path / "demo"), "--days", "2",
         "--steps", "synthesize,calibrate,replay,trade", "--synth-args", SMALL,
         "--dry-run-minutes", "10", "--api-port", str(_free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"})
    lines = []
    deadline = time.monotonic() + 600
    try:
        for line in proc.stdout:  # the bot is up once the demo prints its API address
            lines.append(line)
            if "REST API is on" in line or "FreqUI is on" in line:
                break
            assert time.monotonic() < deadline, "".join(lines)
        else:
            pytest.fail("demo ended before the bot was up:\n" + "".join(lines))
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines) + rest
    assert proc.returncode == 130, out
    assert "interrupted during step 5 (trade)" in out
    pids = _stopped_pids(out)
    assert set(pids) == {"replay", "freqtrade"}, out
    assert not any(_alive(p) for p in pids.values())


@pytest.mark.slow
def test_shortened_demo_end_to_end(tmp_path):
    """The whole pipeline on the default (full-size) market, the bot live on the paper
    exchange for a short while that goes on (up to 10 min) until it has closed a round trip,
    so there is a report to check — against the backtester's exchange rule."""
    r = _demo(tmp_path, "--dry-run-minutes", "1", "--max-dry-run-minutes", "10",
              "--api-port", str(_free_port()))
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    for i, step in enumerate(["Synthesize", "Calibrate", "Tick-level backtest",
                              "Start the replay exchange", "Freqtrade trades the strategy",
                              "The PnL report"], 1):
        assert f"{i}. {step}" in out
    assert "Not shown in this run" not in out  # no step was skipped
    assert "Calibrated parameters" in out and "round trips long / short" in out
    assert "Does paper trading match the backtest?" in out
    assert "paper exchange account 0x" in out
    assert "fill rule 'exchange'" in out  # a live bot: the backtester's exchange rule
    assert re.search(r"fill \d\d:\d\d:\d\d (BUY|SELL) ", out)  # the bot was seen trading
    png = tmp_path / "demo" / "pnl.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(_stopped_pids(out)) == {"replay", "freqtrade"}
    assert not any(_alive(p) for p in _stopped_pids(out).values())
