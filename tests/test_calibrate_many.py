"""`asmm calibrate --coins` on Dask distributed: a real `dask scheduler` and two `dask worker`
processes on 127.0.0.1 calibrate synthetic coins through `--scheduler`; a coin with broken
data fails alone; a local cluster (`--workers 2`) does the same; the option checks."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from asmm.calibrate.config import CalibrationConfig
from asmm.calibrate.many import list_coins, parse_coins
from asmm.cli import main
from asmm.core.errors import ConfigError
from asmm.core.params import load_params
from asmm.data.synth import SynthConfig, generate

BIN = Path(sys.executable).parent
ASMM = str(BIN / "asmm")
GOOD = ("BTC", "ETH", "SOL")
# Small and quick: the synthetic days are in 2025, so validity counts from the run.
FAST = ("--valid-from", "now", "--gamma-points", "8")


def _env(**extra) -> dict:
    drop = ("HL_DATA_LOC", "TTY_COMPATIBLE", "FORCE_COLOR")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def coins_data(tmp_path_factory) -> Path:
    """One short-but-busy synthetic day of BTC, ETH and SOL (each its own seed) in one
    folder, and BAD: SOL's day with the sell side of the tape removed (a side without
    trades: the calibrator cannot estimate it)."""
    out = tmp_path_factory.mktemp("coins")
    for i, coin in enumerate(GOOD):
        generate(SynthConfig(coin=coin, days=1, seed=21 + i, bbo_rate=1.0, A_bid=0.2,
                             A_ask=0.2, l2_interval=10.0, start=date(2025, 9, 1)), out)
    day = "2025-09-01"
    for kind in ("prices", "orderbooks"):
        (out / f"{kind}_BAD_{day}.csv").write_bytes((out / f"{kind}_SOL_{day}.csv").read_bytes())
    trades = pacsv.read_csv(out / f"trades_SOL_{day}.csv")
    pacsv.write_csv(trades.filter(pc.equal(trades["side"], "buy")),
                    out / f"trades_BAD_{day}.csv", pacsv.WriteOptions(quoting_style="none"))
    return out


def _run(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([ASMM, "calibrate", *args], capture_output=True, text=True,
                          env=env or _env(), timeout=timeout)


def _check_files(out_dir: Path, outcomes: dict) -> None:
    for coin in GOOD:
        path = out_dir / f"avellaneda_parameters_{coin}.json"
        params = load_params(path)  # valid, and fresh
        assert params.coin == coin
        o = outcomes[coin]
        assert o["ok"] and o["path"] == str(path)
        # The summary is the file's: the same numbers, not another estimate.
        assert (o["sigma"], o["gamma"]) == (params.sigma, params.gamma)
        assert (o["A_bid"], o["k_ask"]) == (params.bid.A, params.ask.k)
        assert o["profitable"] == params.verdict["profitable"]


def test_three_coins_on_a_real_scheduler_use_both_workers(coins_data, dask_cluster,
                                                          tmp_path):
    proc = _run("--coins", ",".join(GOOD), "--data-dir", str(coins_data), "--output-dir",
                str(tmp_path), "--scheduler", dask_cluster, "--json", *FAST,
                env=_env(TTY_COMPATIBLE="1"))
    assert proc.returncode == 0, proc.stderr
    assert "coins (last: " in proc.stderr  # the progress bar, on a terminal
    doc = json.loads(proc.stdout)
    outcomes = {o["coin"]: o for o in doc["coins"]}
    assert list(outcomes) == list(GOOD) and doc["failed"] == 0
    _check_files(tmp_path, outcomes)
    # One task per coin, spread over the cluster: each worker ran at least one.
    assert {o["worker_name"] for o in outcomes.values()} == {"w1", "w2"}
    assert all(o["worker"].startswith("tcp://127.0.0.1:") for o in outcomes.values())
    assert all(o["seconds"] > 0 for o in outcomes.values())


def test_a_coin_with_broken_data_fails_alone(coins_data, dask_cluster, tmp_path):
    before = b'{"an earlier file": "stays as it was"}'
    (tmp_path / "avellaneda_parameters_BAD.json").write_bytes(before)
    proc = _run("--coins", "all", "--data-dir", str(coins_data), "--output-dir",
                str(tmp_path), "--scheduler", dask_cluster, *FAST)
    assert proc.returncode == 1, proc.stderr
    rows = {line.split("│")[1].strip(): line for line in proc.stdout.splitlines()
            if line.startswith("│")}
    assert sorted(rows) == ["BAD", *sorted(GOOD)]  # 'all': every coin in the folder
    # Its row says why (the side without trades), and which worker found it out.
    assert "failed: bid side (sell orders hitting bids)" in rows["BAD"]
    assert "usable sweeps" in rows["BAD"] and ("w1 " in rows["BAD"] or "w2 " in rows["BAD"])
    for coin in GOOD:
        assert f"avellaneda_parameters_{coin}.json" in rows[coin]
    assert "3 written, 1 failed" in proc.stdout
    assert (tmp_path / "avellaneda_parameters_BAD.json").read_bytes() == before
    for coin in GOOD:
        load_params(tmp_path / f"avellaneda_parameters_{coin}.json")


def test_all_coins_of_a_hive_dataset(coins_data, dask_cluster, tmp_path):
    """The same coins as a hive-partitioned dataset (`asmm dataset`, docs/dataset.md): each
    task reads its own coin's partitions; the broken coin still fails alone."""
    ds = tmp_path / "DS"
    conv = subprocess.run([ASMM, "dataset", "--data-dir", str(coins_data), "--out", str(ds)],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert conv.returncode == 0, conv.stderr
    assert not list(ds.glob("*.csv"))  # the tree only
    out = tmp_path / "out"
    proc = _run("--coins", "all", "--data-dir", str(ds), "--output-dir", str(out),
                "--scheduler", dask_cluster, "--json", *FAST)
    assert proc.returncode == 1, proc.stderr
    outcomes = {o["coin"]: o for o in json.loads(proc.stdout)["coins"]}
    assert sorted(outcomes) == ["BAD", *sorted(GOOD)]
    assert not outcomes["BAD"]["ok"] and "usable sweeps" in outcomes["BAD"]["error"]
    _check_files(out, outcomes)


def test_local_cluster_of_two_workers(coins_data, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HL_DATA_LOC", raising=False)
    rc = main(["calibrate", "--coins", ",".join(GOOD), "--data-dir", str(coins_data),
               "--output-dir", str(tmp_path), "--workers", "2", "--json", *FAST])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0, doc
    outcomes = {o["coin"]: o for o in doc["coins"]}
    _check_files(tmp_path, outcomes)
    assert "local cluster of 2 worker processes" in doc["cluster"]
    assert len({o["worker"] for o in outcomes.values()}) == 2


def test_sidecar_over_many_coins_until_stopped(coins_data, dask_cluster, tmp_path):
    """--every with --coins: each run calibrates every coin; SIGTERM stops it cleanly."""
    proc = subprocess.Popen([ASMM, "calibrate", "--coins", "BTC,ETH", "--data-dir",
                             str(coins_data), "--output-dir", str(tmp_path), "--scheduler",
                             dask_cluster, "--every", "1h", *FAST], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    try:
        # The first run's table (its title line comes first), then stop it.
        for line in proc.stdout:
            if "2 written, 0 failed" in line:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    for coin in ("BTC", "ETH"):
        load_params(tmp_path / f"avellaneda_parameters_{coin}.json")


def test_coins_are_listed_from_either_layout(tmp_path):
    for name in ("prices_BTC_2025-09-01.csv", "trades_BTC_2025-09-01.csv",
                 "prices_kPEPE.csv", "trades_kPEPE.parquet",
                 "prices_ETH_2025-09-01.csv",  # no trades: listed, and fails saying so
                 "orderbooks_SOL_2025-09-01.csv", "gaps_XRP.csv", "notes.txt"):
        (tmp_path / name).write_text("x")
    for kind in ("prices", "trades"):
        part = tmp_path / f"kind={kind}" / "coin=HYPE" / "date=2025-09-01" / "part-0.parquet"
        part.parent.mkdir(parents=True)
        part.write_text("x")
    want = ["BTC", "ETH", "HYPE", "kPEPE"]
    assert list_coins(tmp_path) == want
    assert parse_coins("all", tmp_path) == want
    assert parse_coins(" SOL, BTC,SOL ,", tmp_path) == ["SOL", "BTC"]
    for bad in (",", " "):
        with pytest.raises(ConfigError, match="commas"):
            parse_coins(bad, tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no coin has prices or trades"):
        parse_coins("all", tmp_path / "empty")
    with pytest.raises(ConfigError, match="does not exist"):
        parse_coins("all", tmp_path / "missing")


def test_the_config_travels_to_the_workers_intact():
    cfg = CalibrationConfig(window_days=2, execution="two-sided", valid_from="now",
                            fee_tier="hyperliquid:0+mm3", gamma_points=8)
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    eth = replace(cfg, coin="ETH")
    assert eth.coin == "ETH" and replace(eth, coin=cfg.coin) == cfg


@pytest.mark.parametrize("argv, says", [
    (["BTC", "--coins", "BTC,ETH"], "either as the argument (BTC) or with --coins"),
    (["--coins", "BTC", "--output", "x.json"], "--output-dir DIR"),
    (["--workers", "2"], "--workers goes with --coins"),
    (["ETH", "--output-dir", "d", "--json"], "--output-dir, --json go with --coins"),
    (["--coins", "BTC", "--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"],
     "--workers sizes the local cluster"),
    (["--coins", "BTC", "--workers", "0"], "at least 1"),
])
def test_options_that_do_not_go_together_are_refused(argv, says, capsys, tmp_path):
    assert main(["calibrate", "--data-dir", str(tmp_path), *argv]) == 2
    assert says in " ".join(capsys.readouterr().err.split())
    assert list(tmp_path.iterdir()) == []
