"""Run ``asmm replay`` as a subprocess on a free port and talk to its control endpoints.

For tests and demos in other processes: the server prints exactly one stdout line,
``replay exchange listening on http://HOST:PORT``, once its socket is bound, so reading that
line is the readiness condition (no polling of the port, no sleeps).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

READY_PREFIX = "replay exchange listening on "
PAPER_READY_PREFIX = "paper exchange listening on "
# The console script's entry point, run by this interpreter (whatever is on PATH).
_MAIN = "import sys; from asmm.cli import main; sys.exit(main(sys.argv[1:]))"


# The WebSocket path of each venue ``asmm replay --venue`` speaks.
WS_PATHS = {"hyperliquid": "/ws", "bybit": "/v5/public/linear"}


class ReplayProcess:
    """A running ``asmm replay``: ``url`` (http://127.0.0.1:PORT), ``ws_url``
    (ws://127.0.0.1:PORT/ws; for Bybit ws://127.0.0.1:PORT/v5/public/linear), ``port``,
    ``proc`` (the Popen), ``stderr_path`` (its log)."""

    def __init__(self, proc: subprocess.Popen, url: str, stderr_path: Path,
                 ws_path: str = "/ws"):
        self.proc, self.url, self.stderr_path = proc, url, stderr_path
        self.port = int(url.rsplit(":", 1)[1])
        self.ws_url = "ws" + url[len("http"):] + ws_path

    def _get(self, path: str, method: str = "GET") -> dict:
        body = b"" if method == "POST" else None
        req = urllib.request.Request(self.url + path, method=method, data=body)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def info(self, body: dict):
        """``POST /info`` with a JSON body; returns the decoded answer (raises on HTTP >= 400)."""
        req = urllib.request.Request(self.url + "/info", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def sent(self) -> dict:
        """``GET /_replay/sent``: messages sent per channel, fills, connections."""
        return self._get("/_replay/sent")

    def clock(self) -> dict:
        """``GET /_replay/clock``: published time, position, loop, started/finished."""
        return self._get("/_replay/clock")

    def drop(self) -> int:
        """Close every WebSocket now; returns how many."""
        return int(self._get("/_replay/drop", "POST")["closed"])

    def stall(self, seconds: float) -> None:
        self._get(f"/_replay/stall?seconds={seconds}", "POST")

    def wait_for(self, what: Callable[[ReplayProcess], object], timeout: float = 30.0,
                 interval: float = 0.05):
        """Poll ``what(self)`` until truthy or ``timeout`` seconds pass (TimeoutError); returns
        its value. Polling a condition with a deadline, not sleeping for a guessed time."""
        deadline = time.monotonic() + timeout
        while True:
            v = what(self)
            if v:
                return v
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s; "
                                   f"clock {self.clock()}, sent {self.sent()}")
            if self.proc.poll() is not None:
                raise RuntimeError(f"replay exited with {self.proc.returncode}: {self.log()}")
            time.sleep(interval)

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait (the record file is flushed on the way out), SIGKILL if stuck."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return int(self.proc.returncode)


def start_replay(data_dir: str | Path, *args: str, coin: str = "BTC", speed: str | float = 1.0,
                 log_dir: str | Path | None = None, timeout: float = 60.0,
                 port: int = 0) -> ReplayProcess:
    """Start ``asmm replay --data-dir DATA_DIR --coin COIN --speed SPEED --port PORT ARGS...``
    and return once it listens. ``args`` are further CLI options as strings, e.g.
    ``"--drop-after", "100"``; ``port`` 0 picks a free one (a fixed one: restart an exchange
    where its clients expect it; ``"--venue", "bybit"`` among ``args`` serves Bybit, and
    ``ws_url`` is then Bybit's). Raises RuntimeError with the server's log if it exits or does
    not come up within ``timeout`` seconds."""
    venue = _option(args, "--venue") or "hyperliquid"
    return _start("replay", ["--data-dir", str(data_dir), "--coin", coin, "--speed", str(speed),
                             "--port", str(int(port)), *args], READY_PREFIX, log_dir, timeout,
                  WS_PATHS.get(venue, "/ws"))


def _option(args: tuple[str, ...], name: str) -> str | None:
    """The value of option ``name`` among CLI ``args`` (``--name V`` or ``--name=V``)."""
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a[len(name) + 1:]
    return None


def start_paper(upstream: str, *args: str, log_dir: str | Path | None = None,
                timeout: float = 60.0) -> ReplayProcess:
    """Start ``asmm paper --upstream UPSTREAM --port 0 ARGS...`` and return once it listens
    (it prints ``paper exchange listening on URL``); as :func:`start_replay` otherwise."""
    return _start("paper", ["--upstream", upstream, "--port", "0", *args], PAPER_READY_PREFIX,
                  log_dir, timeout)


def _start(command: str, cli: list[str], ready: str, log_dir: str | Path | None,
           timeout: float, ws_path: str = "/ws") -> ReplayProcess:
    """Run ``asmm -v COMMAND CLI...`` and wait for the stdout line starting ``ready``."""
    log_dir = Path(log_dir) if log_dir else Path(os.environ.get("TMPDIR", "/tmp"))
    log_dir.mkdir(parents=True, exist_ok=True)
    stderr_path = log_dir / f"{command}-{os.getpid()}-{time.monotonic_ns()}.log"
    cmd = [sys.executable, "-c", _MAIN, "-v", command, *cli]
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump():
        # Keeps reading so a chatty child can never block on a full pipe.
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.001))
        except queue.Empty:
            proc.kill()
            raise RuntimeError(f"{command} did not start within {timeout} s: "
                               f"{stderr_path.read_text(errors='replace')[-4000:]}") from None
        if line is None:
            proc.wait()
            raise RuntimeError(f"{command} exited with {proc.returncode}: "
                               f"{stderr_path.read_text(errors='replace')[-4000:]}")
        if line.startswith(ready):
            return ReplayProcess(proc, line[len(ready):].strip(), stderr_path, ws_path)
