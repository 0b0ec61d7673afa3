"""What the demo's steps share: the demo's state, running, watching and stopping the
processes it starts, and asking local servers whether they are up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console


class StepFailed(Exception):
    """A step could not finish; ``log`` is the file that says why."""

    def __init__(self, message: str, log: Path | None = None):
        super().__init__(message)
        self.log = log


class StepSkipped(Exception):
    """A component the step needs is not available; the demo goes on without it."""


@dataclass
class Demo:
    """State shared by the steps: options, paths, and the processes to stop at the end."""

    args: object
    console: Console
    work: Path
    procs: list[tuple[str, subprocess.Popen, Path]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    truth: dict | None = None
    params_file: Path | None = None
    replay_url: str | None = None
    api_url: str | None = None
    api_auth: tuple[str, str] | None = None

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    @property
    def data(self) -> Path:
        return self.work / "HL_data"

    def run(self, name: str, cmd: list[str], env: dict | None = None,
            timeout: float | None = None) -> str:
        """Run a command to completion, output to ``logs/<name>.log``; return its stdout."""
        log = self.logs / f"{name}.log"
        with log.open("w") as fh, self.console.status(f"running {Path(cmd[0]).name} "
                                                      f"{' '.join(cmd[1:2])} (log: {log})"):
            fh.write("$ " + " ".join(cmd) + "\n")
            fh.flush()
            try:
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=fh, text=True,
                                   env=self._env(env), timeout=timeout)
            except subprocess.TimeoutExpired as e:
                raise StepFailed(f"{cmd[0]} did not finish in {timeout:g} s", log) from e
            fh.write(r.stdout)
        if r.returncode != 0:
            raise StepFailed(f"`{' '.join(cmd[:3])} ...` exited with status {r.returncode}",
                             log)
        return r.stdout

    def start(self, name: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        """Start a background process (own session, so Ctrl-C reaches only the demo, which
        then stops it in order), output to ``logs/<name>.log``."""
        log = self.logs / f"{name}.log"
        fh = log.open("w")
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT,
                             env=self._env(env), start_new_session=True)
        fh.close()
        self.procs.append((name, p, log))
        return p

    def wait_until(self, what: str, ready: Callable[[], bool], proc: subprocess.Popen,
                   log: Path, deadline_s: float) -> None:
        """Poll ``ready`` until it holds; fail if the process dies or the deadline passes."""
        end = time.monotonic() + deadline_s
        while not ready():
            if proc.poll() is not None:
                raise StepFailed(f"{what}: the process exited with status {proc.returncode}",
                                 log)
            if time.monotonic() > end:
                raise StepFailed(f"{what}: not ready after {deadline_s:g} s", log)
            time.sleep(0.5)

    def stop_all(self) -> None:
        """Stop background processes, newest first: SIGINT (Freqtrade shuts down cleanly on
        it), then SIGTERM, then SIGKILL, each with a deadline. A second Ctrl-C meanwhile is
        ignored, so shutdown cannot be cut short and leave orphans."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self._stop_all()
        finally:
            signal.signal(signal.SIGINT, previous)

    def _stop_all(self) -> None:
        while self.procs:
            name, p, _ = self.procs.pop()
            if p.poll() is not None:
                continue
            for sig, grace in ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0),
                               (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    p.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
            self.console.print(f"  stopped {name} (pid {p.pid}, exit {p.returncode})")

    def _env(self, extra: dict | None) -> dict:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(extra or {})
        return env


def console_script(name: str) -> str:
    """A console script of this environment (the venv's, not whatever is first on PATH)."""
    p = Path(sys.executable).parent / name
    return str(p) if p.exists() else name


def asmm_has(command: str) -> bool:
    from asmm.cli import COMMANDS

    return command in COMMANDS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        # As uvicorn binds: a port left in TIME_WAIT by a previous run is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def post_json(url: str, body: dict, timeout: float = 2.0):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def answers(fn: Callable[[], object]) -> Callable[[], bool]:
    """A readiness check: true once ``fn`` gets an answer from the server."""
    def ready() -> bool:
        try:
            fn()
        except (OSError, urllib.error.URLError, ValueError):
            return False
        return True
    return ready
