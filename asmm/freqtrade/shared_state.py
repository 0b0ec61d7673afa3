"""The pair of bots' shared inventory: one small state file per bot, written atomically, read
by its partner (one writer per file, so no lock is needed)."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from asmm.core.errors import SharedStateError
from asmm.core.io import atomic_write_json
from asmm.core.params import iso_utc


def write_bot_state(folder: str | os.PathLike, bot_id: str, pair: str, q_lots: float,
                    now: datetime) -> Path:
    """Publish this bot's inventory (lots) for its partner; atomic, one file per bot.

    One file per bot means no two processes ever write the same file, so no lock is needed.
    """
    path = Path(folder) / f"{bot_id}.json"
    atomic_write_json(path, {"bot_id": bot_id, "pair": pair, "q_lots": float(q_lots),
                             "updated_at": iso_utc(now)})
    return path


def read_net_inventory(folder: str | os.PathLike, pair: str, now: datetime,
                       max_age_seconds: float, expect_bots: int = 2) -> float:
    """Net inventory (lots) of all bots publishing ``pair`` in ``folder``.

    Raises :class:`SharedStateError` when fewer than ``expect_bots`` fresh states exist:
    quoting on a guessed inventory is what the guard exists to prevent.
    """
    total, seen = 0.0, []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            doc = json.loads(path.read_text())
            if doc["pair"] != pair:
                continue
            updated = datetime.fromisoformat(str(doc["updated_at"]).replace("Z", "+00:00"))
            q = float(doc["q_lots"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SharedStateError(f"unreadable shared state {path}: {e}") from None
        age = (now - updated).total_seconds()
        if age > max_age_seconds:
            raise SharedStateError(
                f"shared state {path.name} is {age:.0f} s old (> {max_age_seconds:.0f} s): "
                "is the partner bot running?")
        total += q
        seen.append(path.stem)
    if len(seen) < expect_bots:
        raise SharedStateError(f"shared state for {pair} in {folder} from {seen or 'no bot'}; "
                               f"expected {expect_bots} bots")
    return total
