"""Counters, the status line and the heartbeat file the container healthcheck reads."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

from asmm.core.errors import HeartbeatError
from asmm.core.io import atomic_write_json


@dataclass
class Stats:
    """Counters shared by the websocket thread, the writer and the supervisor.

    Each counter has a single writing thread except ``malformed`` (websocket thread for
    undecodable text, writer for a decodable message of the wrong shape), hence the lock.
    """

    messages: dict[str, int] = field(default_factory=dict)  # data messages per channel
    malformed: int = 0
    dropped: int = 0
    reconnects: int = 0
    gaps: int = 0
    last_data: float | None = None  # receive time (s) of the newest data message
    # Per coin, written by the supervisor: times the coin went quiet (no bbo/l2Book while
    # the connection streamed), resubscriptions sent for it, the coins quiet now, and the
    # receive time of each coin's newest bbo/l2Book message (as of the last check).
    stale: dict[str, int] = field(default_factory=dict)
    resubscriptions: dict[str, int] = field(default_factory=dict)
    quiet: tuple[str, ...] = ()
    last_book: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_message(self, channel: str, t: float) -> None:
        self.messages[channel] = self.messages.get(channel, 0) + 1
        self.last_data = t

    def count_malformed(self) -> int:
        with self._lock:
            self.malformed += 1
            return self.malformed

    def snapshot(self) -> dict:
        return {"messages": dict(self.messages), "malformed": self.malformed,
                "dropped": self.dropped, "reconnects": self.reconnects, "gaps": self.gaps,
                "last_data": self.last_data, "stale": dict(self.stale),
                "quiet": list(self.quiet)}

    def coins(self, symbols, complete_until: dict[str, float]) -> dict[str, dict]:
        """The heartbeat's per-coin part: newest bbo/l2Book receive time, whether the coin
        is quiet now, how often it went quiet and was resubscribed, and the time before
        which its rows are all in the files or in its gaps (where a restart's gap starts)."""
        last, quiet = dict(self.last_book), set(self.quiet)
        return {c: {"last_book": last.get(c), "quiet": c in quiet,
                    "stale": self.stale.get(c, 0),
                    "resubscriptions": self.resubscriptions.get(c, 0),
                    "complete_until": complete_until.get(c)} for c in symbols}


def status_line(prev: dict, cur: dict, seconds: float, queue_depth: int,
                rows: dict[str, int]) -> str:
    """One human line: messages/s per channel over the last ``seconds``, queue, totals."""
    rates = ", ".join(
        f"{ch} {(n - prev['messages'].get(ch, 0)) / seconds:.1f}/s"
        for ch, n in sorted(cur["messages"].items())) or "no messages"
    rows_txt = ", ".join(f"{k} {n:,}" for k, n in rows.items())
    line = (f"{rates} | queue {queue_depth} | rows {rows_txt} | gaps {cur['gaps']} | "
            f"reconnects {cur['reconnects']} | malformed {cur['malformed']} | "
            f"dropped {cur['dropped']}")
    if cur.get("stale"):
        line += " | went quiet " + ", ".join(f"{c} {n}" for c, n in sorted(
            cur["stale"].items()))
    if cur.get("quiet"):
        line += " | quiet now " + ", ".join(cur["quiet"])
    return line


def write_heartbeat(path: Path, payload: dict) -> None:
    """Atomically replace the heartbeat file (temp + rename): readers never see half."""
    # Rewritten every second and only a liveness sign: not worth an fsync each time.
    atomic_write_json(path, payload, durable=False)


# Fields the healthcheck and a restart use: epoch seconds, "time" always, the others may be
# None (no data yet).
_TIMES = {"time": False, "last_data": True, "complete_until": True}


def read_heartbeat(path: Path) -> dict | None:
    """The heartbeat's fields, or None when there is no heartbeat file.

    Raises :class:`HeartbeatError` (one line, naming the file) when it cannot be read, is
    not UTF-8 JSON, or its times are not numbers.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise HeartbeatError(f"cannot read heartbeat {path}: {e}") from None
    try:
        hb = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HeartbeatError(f"heartbeat {path} is not JSON: {e}") from None
    if not isinstance(hb, dict):
        raise HeartbeatError(f"heartbeat {path} is a JSON {type(hb).__name__}, not an object")
    for key, optional in _TIMES.items():
        v = hb.get(key)
        if v is None and optional:
            continue
        # bool is an int to Python; JSON also allows NaN and Infinity.
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise HeartbeatError(f"heartbeat {path}: {key!r} is {v!r}, not epoch seconds")
    return hb


def check_heartbeat(path: Path, now: float, max_age: float) -> tuple[bool, str]:
    """Healthy when the writer wrote the heartbeat, data arrived within ``max_age`` s and
    the files are being written; ``(healthy, one line saying why)``.

    A collector that is alive but has received nothing for that long (a feed that keeps
    failing to reconnect) is reported unhealthy too: its files are not growing. So is one
    that receives but cannot write (full disk, unwritable folder).
    """
    try:
        hb = read_heartbeat(path)
    except HeartbeatError as e:
        return False, str(e)
    if hb is None:
        return False, f"no readable heartbeat at {path}"
    age = now - hb["time"]
    if age > max_age:
        return False, f"heartbeat is {age:.0f} s old (writer stuck or collector down)"
    if hb.get("write_error"):
        return False, f"cannot write the data files: {hb['write_error']}"
    last = hb.get("last_data")
    if last is None or now - last > max_age:
        since = "ever" if last is None else f"{now - last:.0f} s"
        return False, f"no market data for {since}"
    # A coin quiet while the others stream is being resubscribed and has its own gap; a
    # restart would not help it and would cost every other coin a gap: healthy, but said.
    coins = hb.get("coins")
    quiet = sorted(c for c, v in coins.items() if isinstance(v, dict) and v.get("quiet")) \
        if isinstance(coins, dict) else []
    note = f"; quiet (resubscribing): {', '.join(quiet)}" if quiet else ""
    return True, f"ok: heartbeat {age:.0f} s old, last data {now - last:.1f} s ago{note}"


def coin_complete_until(hb: dict, coin: str) -> float | None:
    """The heartbeat's ``complete_until`` of ``coin`` (heartbeats before per-coin gaps have
    none, nor does a coin the previous run did not collect): None then."""
    coins = hb.get("coins")
    entry = coins.get(coin) if isinstance(coins, dict) else None
    v = entry.get("complete_until") if isinstance(entry, dict) else None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)
