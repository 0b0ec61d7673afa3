"""The calibrator end to end: the users' script and `asmm calibrate` as real processes, the
walk-forward gamma search on the real backtester, defaults, the sidecar loop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from asmm.calibrate.run import run_every
from asmm.core.params import load_params

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "calculate_avellaneda_parameters.py"
ASMM = str(Path(sys.executable).parent / "asmm")
# The synthetic days are in 2025: their files count validity from the run, as recorded days
# replayed as live do (tests/test_calibrate_bad_input.py tests the rule itself).
FRESH = ("--valid-from", "now")


def _copy_days(src: Path, dst: Path, days: list[str]) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for day in days:
        for p in src.glob(f"*_BTC_{day}.csv"):
            shutil.copy(p, dst / p.name)
    return dst


def _env(**extra) -> dict:
    """The test's environment without the variables under test (and terminal overrides)."""
    drop = ("HL_DATA_LOC", "TTY_COMPATIBLE", "FORCE_COLOR")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def walk_forward(small_market, tmp_path_factory):
    """One run of the users' script on two days, output piped (not a terminal)."""
    src, _ = small_market
    out = tmp_path_factory.mktemp("wf") / "params.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "BTC", "--data-dir", str(src),
                           "--output", str(out), *FRESH], capture_output=True, text=True,
                          env=_env(), timeout=600)
    return proc, out


def test_walk_forward_picks_the_best_scoring_gamma(walk_forward):
    proc, out = walk_forward
    assert proc.returncode == 0, proc.stderr
    params = load_params(out)
    g = params.diagnostics["gamma"]
    assert g["method"] == "walk-forward backtest"
    assert len(g["grid"]) == 32
    (test,) = g["tests"]
    assert test["test_day"] == "2025-09-02" and test["estimated_on"] == ["2025-09-01"]
    # Two full days: the latest 24 hours of data are tested, the 24 before them estimated on.
    assert test["test_window"][0].startswith("2025-09-02T00:00:0")
    assert test["estimated_window"][0].startswith("2025-09-01T00:00:0")
    assert 23.9 < test["test_hours"] <= 24.0
    assert g["execution"] == "freqtrade"  # the bot's default mode, ping-pong
    assert len(test["runs"]) == 32
    scores = np.array([-np.inf if s is None else s for s in g["mean_score"]])
    assert np.isfinite(scores).any()
    assert g["best_index"] == int(np.argmax(scores))
    assert params.gamma == g["grid"][g["best_index"]]
    # A run filling less than once an hour is not eligible (no score), every other one is.
    for run, score in zip(test["runs"], test["scores"], strict=True):
        assert (score is None) == (run["fills_bid"] + run["fills_ask"] < run["hours"])
    assert None in test["scores"]  # the widest quotes of the grid do not trade
    # The final sigma, A, k come from the latest day; the walk-forward's from the day before.
    assert params.diagnostics["estimation"]["days"] == ["2025-09-02"]
    assert test["sigma"] != params.sigma
    assert params.valid_until - params.computed_at == timedelta(hours=36)


def test_pipe_gets_the_summary_and_no_progress_bar(walk_forward):
    proc, _ = walk_forward
    for text in ("sigma", "A bid", "k ask", "gamma", "walk-forward backtest", "spread bp"):
        assert text in proc.stdout
    for q in ("-2", "-1", "+0", "+1", "+2"):
        assert f"│ {q} │" in proc.stdout
    assert "gamma grid" not in proc.stderr and "days" not in proc.stderr


def test_terminal_gets_progress_bars(small_market, tmp_path):
    src, _ = small_market
    data = _copy_days(src, tmp_path / "d", ["2025-09-01", "2025-09-02"])
    proc = subprocess.run([ASMM, "calibrate", "--data-dir", str(data), "--output",
                           str(tmp_path / "p.json"), "--gamma-points", "4", *FRESH],
                          capture_output=True, text=True, env=_env(TTY_COMPATIBLE="1"),
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "days" in proc.stderr and "gamma grid" in proc.stderr


def test_one_day_walks_forward_on_its_latest_third(small_market, tmp_path):
    src, _ = small_market
    data = _copy_days(src, tmp_path / "d", ["2025-09-01"])
    out = tmp_path / "p.json"
    proc = subprocess.run([ASMM, "calibrate", "--data-dir", str(data), "--output", str(out),
                           "--valid-for", "2h", *FRESH], capture_output=True, text=True,
                          env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr
    params = load_params(out)
    g = params.diagnostics["gamma"]
    assert g["method"] == "walk-forward backtest"
    (test,) = g["tests"]
    # Under two days of data the latest third is tested (whole UTC hours: 16:00 on), the
    # hours before it estimated on.
    assert test["test_window"][0].startswith("2025-09-01T16:00:0")
    assert test["estimated_window"][0].startswith("2025-09-01T00:00:0")
    assert test["estimated_window"][1].startswith("2025-09-01T15:59:5")
    assert params.verdict["gamma_source"] == "walk-forward"
    assert params.valid_until - params.computed_at == timedelta(hours=2)


def test_walk_forward_off_falls_back_and_says_so(small_market, tmp_path):
    src, _ = small_market
    data = _copy_days(src, tmp_path / "d", ["2025-09-01"])
    out = tmp_path / "p.json"
    proc = subprocess.run([ASMM, "calibrate", "--data-dir", str(data), "--output", str(out),
                           "--walk-forward", "0", *FRESH], capture_output=True, text=True,
                          env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr
    params = load_params(out)
    g = params.diagnostics["gamma"]
    assert g["method"].startswith("fallback") and g["reason"] == "walk-forward disabled"
    assert params.gamma in g["grid"]
    assert any("walk-forward disabled" in w for w in params.diagnostics["warnings"])
    assert "walk-forward disabled" in proc.stderr
    assert params.verdict["gamma_source"] == "fallback" and params.verdict["in_sample"]


def test_defaults_data_from_env_output_under_scripts(small_market, tmp_path):
    src, _ = small_market
    data = _copy_days(src, tmp_path / "d", ["2025-09-02"])
    proc = subprocess.run([sys.executable, str(SCRIPT), *FRESH], cwd=tmp_path,
                          capture_output=True, text=True, env=_env(HL_DATA_LOC=str(data)),
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert load_params(tmp_path / "scripts" / "avellaneda_parameters_BTC.json").coin == "BTC"


def test_without_env_the_default_folder_is_named(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "ETH"], cwd=tmp_path,
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 1
    assert "HL_data_collector/HL_data" in proc.stderr and "does not exist" in proc.stderr
    assert not (tmp_path / "scripts").exists()


def test_bad_option_value_exits_2(tmp_path):
    proc = subprocess.run([ASMM, "calibrate", "--window-days", "0", "--data-dir",
                           str(tmp_path)], capture_output=True, text=True, env=_env(),
                          timeout=600)
    assert proc.returncode == 2 and "window_days must be >= 1" in proc.stderr
    proc = subprocess.run([ASMM, "calibrate", "--every", "soon"], capture_output=True,
                          text=True, env=_env(), timeout=600)
    assert proc.returncode == 2 and "not a positive duration" in proc.stderr


def test_run_every_survives_failures_and_stops_when_told():
    calls = []

    def job():
        calls.append(len(calls))
        if len(calls) % 2:
            raise RuntimeError("collector folder not mounted yet")

    stop = threading.Event()
    assert run_every(job, 0.0, stop, max_runs=4) == (2, 2)
    stop.set()
    assert run_every(job, 0.0, stop) == (0, 0)
    assert len(calls) == 4


def test_sidecar_recovers_once_data_arrives_and_stops_on_sigterm(small_market, tmp_path):
    """`--every 1s` on an empty folder fails (logged), keeps going, and writes the file once
    the data is there; SIGTERM ends it cleanly."""
    src, _ = small_market
    data = tmp_path / "d"
    data.mkdir()
    out = tmp_path / "p.json"
    proc = subprocess.Popen([ASMM, "calibrate", "--data-dir", str(data), "--output", str(out),
                             "--walk-forward-days", "0", "--every", "1s", *FRESH],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=_env())
    try:
        # The first run has failed once its message is out; then the data arrives.
        first = proc.stderr.readline()
        while "calibration run failed" not in first:
            assert first, "sidecar exited before reporting the failed run"
            first = proc.stderr.readline()
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
        _copy_days(src, data, ["2025-09-02"])
        deadline = time.monotonic() + 120
        while not out.exists():
            assert proc.poll() is None, "sidecar died"
            assert time.monotonic() < deadline, "no parameter file after the data arrived"
            threading.Event().wait(0.1)
        assert load_params(out).coin == "BTC"
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    assert rc == 0


def test_avellaneda_stoikov_model_walks_forward_on_its_own_gamma_scale(small_market, tmp_path):
    """A-S gammas live near 1/(k sigma^2 T) (~1e-6 here), six orders of magnitude below
    GLFT's ~k: a grid on the GLFT scale would quote A-S spreads of thousands of USDC."""
    src, truth = small_market
    out = tmp_path / "p.json"
    proc = subprocess.run([ASMM, "calibrate", "--data-dir", str(src), "--output", str(out),
                           "--model", "as", "--gamma-points", "6", *FRESH],
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr
    params = load_params(out)
    g = params.diagnostics["gamma"]
    assert params.model == "as" and g["method"] == "walk-forward backtest"
    scale = 1 / (truth["bid"]["k"] * truth["sigma"] ** 2 * 86400)
    assert g["grid"][0] == pytest.approx(1e-3 * scale, rel=0.05)
    assert g["grid"][-1] == pytest.approx(10 * scale, rel=0.05)
