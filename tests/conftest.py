"""Shared fixtures. Servers start on free ports on 127.0.0.1; data is made here, never fetched."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from asmm.data.synth import SynthConfig, generate


@pytest.fixture(scope="session")
def small_market(tmp_path_factory) -> tuple[Path, dict]:
    """Two short-but-busy synthetic days (daily CSV layout) and their truth.

    Smaller rates than a real day so tests that only need *a* market stay fast; tests of
    estimator accuracy make their own full-size market.
    """
    out = tmp_path_factory.mktemp("small_market")
    cfg = SynthConfig(days=2, seed=7, bbo_rate=1.0, A_bid=0.2, A_ask=0.2, l2_interval=10.0,
                      start=date(2025, 9, 1))
    return out, generate(cfg, out)


@pytest.fixture
def replay_exchange(tmp_path_factory):
    """Factory: start ``asmm replay`` as a subprocess on a free port; stopped at teardown.

    ``start = replay_exchange``, then
    ``rp = start(data_dir, *extra_cli_args, coin="BTC", speed=1.0, timeout=60.0, port=0)``
    (``coin="BTC,ETH"`` serves several coins on one clock; ``port=rp.port`` restarts an
    exchange where its clients expect it)
    where ``extra_cli_args`` are strings, e.g. ``"--start-at", "data", "--drop-after", "500",
    "--record", str(path)``; ``speed`` may be ``"max"`` (unpaced; streaming then waits for one
    WS subscription unless ``"--wait-subscriptions", "N"``). Returns once the server listens
    (it prints its URL; no sleeping). The object
    (:class:`asmm.venues.hyperliquid.replay.process.ReplayProcess`)
    has ``.url`` (http://127.0.0.1:PORT, for the SDK's ``base_url`` and ccxt's urls),
    ``.ws_url`` (with ``"--venue", "bybit"`` among the args: Bybit's
    ws://127.0.0.1:PORT/v5/public/linear), ``.port``, ``.proc``, ``.stderr_path``, and helpers
    ``.info(body)`` (Hyperliquid only),
    ``.sent()``, ``.clock()``, ``.drop()``, ``.stall(s)``, ``.wait_for(pred, timeout)``,
    ``.log()`` and ``.stop()`` (SIGTERM; the record file is complete after it).
    """
    from asmm.venues.hyperliquid.replay.process import start_replay

    started = []
    log_dir = tmp_path_factory.mktemp("replay_logs")

    def start(data_dir, *args, coin="BTC", speed=1.0, timeout=60.0, port=0):
        rp = start_replay(data_dir, *args, coin=coin, speed=speed, log_dir=log_dir,
                          timeout=timeout, port=port)
        started.append(rp)
        return rp

    yield start
    for rp in started:
        rp.stop()


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A `dask scheduler` on a free port of 127.0.0.1 and two `dask worker` processes
    (w1, w2; one thread each), as a user starts them; the scheduler's address once both
    workers have joined. Stopped at teardown (SIGTERM, workers first). One per test module
    that asks for it (tests/test_calibrate_many.py, tests/test_backtest_sweep.py)."""
    from distributed import Client

    tmp = tmp_path_factory.mktemp("dask")
    sched_file = tmp / "scheduler.json"
    procs, logs = [], []

    dask = str(Path(sys.executable).parent / "dask")

    def start(*args, log):
        logs.append((tmp / log).open("wb"))
        procs.append(subprocess.Popen([dask, *args], cwd=tmp, stdout=subprocess.DEVNULL,
                                      stderr=logs[-1]))

    start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
          "--scheduler-file", str(sched_file), log="scheduler.log")
    for name in ("w1", "w2"):
        start("worker", "--scheduler-file", str(sched_file), "--nthreads", "1",
              "--nworkers", "1", "--name", name, "--no-dashboard", "--local-directory",
              str(tmp / name), log=f"{name}.log")
    try:
        # The client waits for the scheduler file, then for both workers to register.
        with Client(scheduler_file=str(sched_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            names = sorted(str(w["name"]) for w in
                           client.scheduler_info(n_workers=-1)["workers"].values())
            assert names == ["w1", "w2"]
            address = client.scheduler.address
        yield address
    finally:
        for p in reversed(procs):  # workers, then the scheduler
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in logs:
            f.close()
