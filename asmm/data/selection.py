"""Which coins and days a many-task command works on: ``--coins BTC,ETH|all`` and
``--days 2025-09-01,...|all`` against a data folder (flat files or the hive dataset).

Shared by `asmm calibrate --coins` (one task per coin) and `asmm backtest --sweep` (one task
per coin and day). Listing only: no file is read, except for ``--days all`` over a coin in
the single-file layout, whose days are those its trades span (:func:`asmm.data.readers.iter_days`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from asmm.core.errors import ConfigError, DataError
from asmm.data import files
from asmm.data.readers import iter_days


def list_coins(data_dir: str | Path) -> list[str]:
    """Coins with prices or trades data in ``data_dir`` (flat files or the hive dataset),
    sorted. A coin with one of the two only is listed: its work then fails saying which is
    missing, rather than the coin being left out unseen."""
    try:
        return [c for c in files.list_coins(data_dir)
                if files.list_files(data_dir, "prices", c)
                or files.list_files(data_dir, "trades", c)]
    except DataError as e:
        raise ConfigError(str(e)) from None


def parse_coins(text: str, data_dir: str | Path) -> list[str]:
    """``"BTC,ETH,SOL"`` (order kept, repeats dropped) or ``"all"``: every coin with data in
    ``data_dir`` (:func:`list_coins`). Raises :class:`ConfigError` when that is none."""
    if text.strip().lower() == "all":
        coins = list_coins(data_dir)
        if not coins:
            raise ConfigError(f"--coins all: no coin has prices or trades files in "
                              f"{data_dir}")
        return coins
    coins = list(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    if not coins:
        raise ConfigError(f"--coins {text!r}: name coins separated by commas (BTC,ETH) or "
                          "'all'")
    return coins


def parse_days(text: str) -> list[date] | None:
    """``"2025-09-01,2025-09-02"`` (sorted, repeats dropped) or ``"all"`` (None: every day
    each coin has, :func:`coin_days`). Raises :class:`ConfigError` for anything else."""
    if text.strip().lower() == "all":
        return None
    days = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            days.add(date.fromisoformat(part))
        except ValueError:
            raise ConfigError(f"--days: {part!r} is not a day (YYYY-MM-DD); name days "
                              "separated by commas, or 'all'") from None
    if not days:
        raise ConfigError(f"--days {text!r}: name days (YYYY-MM-DD) separated by commas, or "
                          "'all'")
    return sorted(days)


def coin_days(data_dir: str | Path, coin: str, days: list[date] | None) -> list[date]:
    """The UTC days to work on for ``coin``: ``days`` as given (a day without data then
    fails in its own task, saying so), or with ``None`` every day the coin has data for —
    prices and trades files of that day, or the days a single file's trades span. An empty
    list when there is none (or the coin's files cannot be listed)."""
    if days is not None:
        return list(days)
    try:
        return [d for d, _, _ in iter_days(data_dir, coin)]
    except (DataError, OSError):
        return []
