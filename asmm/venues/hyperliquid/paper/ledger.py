"""The paper exchange's ledger: accounts, agents, builder-fee approvals, positions, orders
and fills in SQLite.

The engine (:mod:`asmm.venues.hyperliquid.paper.engine`) keeps the live state in memory and
writes every change through to the ledger inside one transaction per request or market
event (:meth:`Ledger.tx`), so a restart on the same file keeps balances, positions, open
orders and fills, and ``kill -9`` loses at most the request in flight (WAL journal,
``synchronous=NORMAL``: a committed transaction survives a process crash). Without a path
the ledger is in memory and dies with the process.

Units: prices and money in USDC, sizes in coin, times in epoch milliseconds. Sides: +1 a
bid (buy), -1 an ask (sell).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    address TEXT PRIMARY KEY, balance REAL NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
    agent TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS builders (
    address TEXT NOT NULL, builder TEXT NOT NULL, max_rate REAL NOT NULL,
    PRIMARY KEY (address, builder));
CREATE TABLE IF NOT EXISTS positions (
    address TEXT NOT NULL, coin TEXT NOT NULL, szi REAL NOT NULL, entry_px REAL NOT NULL,
    leverage INTEGER NOT NULL, cross INTEGER NOT NULL, isolated_margin REAL NOT NULL,
    cum_funding REAL NOT NULL, PRIMARY KEY (address, coin));
CREATE TABLE IF NOT EXISTS orders (
    oid INTEGER PRIMARY KEY, address TEXT NOT NULL, coin TEXT NOT NULL, side INTEGER NOT NULL,
    px REAL NOT NULL, orig_sz REAL NOT NULL, remaining REAL NOT NULL, tif TEXT NOT NULL,
    reduce_only INTEGER NOT NULL, cloid TEXT, t_ms INTEGER NOT NULL, ahead REAL NOT NULL,
    traded REAL NOT NULL, status TEXT NOT NULL, status_ms INTEGER NOT NULL,
    builder_rate REAL NOT NULL);
CREATE INDEX IF NOT EXISTS orders_open ON orders (status, address);
CREATE INDEX IF NOT EXISTS orders_cloid ON orders (address, cloid);
CREATE TABLE IF NOT EXISTS fills (
    tid INTEGER PRIMARY KEY, oid INTEGER NOT NULL, address TEXT NOT NULL, coin TEXT NOT NULL,
    side INTEGER NOT NULL, px REAL NOT NULL, sz REAL NOT NULL, fee REAL NOT NULL,
    closed_pnl REAL NOT NULL, start_position REAL NOT NULL, t_ms INTEGER NOT NULL,
    crossed INTEGER NOT NULL, how TEXT NOT NULL, builder_fee REAL NOT NULL);
CREATE INDEX IF NOT EXISTS fills_user ON fills (address, t_ms);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass
class Order:
    """An order as the engine holds it. ``ahead`` and ``traded`` are the queue
    (:mod:`asmm.sim.rules`): coin queued ahead of it, coin traded at its price since the
    touch last changed. ``status``: open, filled, canceled, rejected. ``builder_rate``: the
    builder fee it pays on each fill (fraction of notional)."""

    oid: int
    address: str
    coin: str
    side: int
    px: float
    orig_sz: float
    remaining: float
    tif: str
    reduce_only: bool
    cloid: str | None
    t_ms: int
    ahead: float = 0.0
    traded: float = 0.0
    status: str = "open"
    status_ms: int = 0
    builder_rate: float = 0.0


@dataclass
class Position:
    """One account's position in one coin: ``szi`` signed coin, ``entry_px`` its average
    entry, ``leverage`` and margin mode (``cross``; isolated keeps ``isolated_margin``
    USDC), ``cum_funding`` USDC paid since it opened (received: negative)."""

    szi: float = 0.0
    entry_px: float = 0.0
    leverage: int = 20
    cross: bool = True
    isolated_margin: float = 0.0
    cum_funding: float = 0.0


@dataclass(frozen=True)
class Fill:
    """One fill of one of our orders: ``crossed`` a taker fill, ``how`` what filled it
    (``trade``, ``book-through``, ``taker``, ``liquidation``), ``closed_pnl`` the PnL it
    realised before fees (USDC), ``start_position`` the position before it (signed coin),
    ``fee`` the exchange's fee and ``builder_fee`` the builder's (USDC)."""

    tid: int
    oid: int
    address: str
    coin: str
    side: int
    px: float
    sz: float
    fee: float
    closed_pnl: float
    start_position: float
    t_ms: int
    crossed: bool
    how: str
    builder_fee: float = 0.0


class Ledger:
    """SQLite persistence of the paper exchange (``path`` None: in memory)."""

    def __init__(self, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        # The server is one asyncio thread; the lock-free default is what it needs.
        self.db = sqlite3.connect(":memory:" if path is None else str(path),
                                  isolation_level=None, check_same_thread=False)
        if path is not None:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._depth = 0

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[None]:
        """One transaction; nested uses join the outer one."""
        self._depth += 1
        if self._depth == 1:
            self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self.db.execute("ROLLBACK")
            raise
        self._depth -= 1
        if self._depth == 0:
            self.db.execute("COMMIT")

    # ------------------------------------------------------------------ writes

    def save_account(self, address: str, balance: float, created_ms: int) -> None:
        self.db.execute("INSERT INTO accounts VALUES (?, ?, ?) ON CONFLICT(address) DO UPDATE "
                        "SET balance = excluded.balance", (address, balance, created_ms))

    def save_agent(self, agent: str, owner: str, name: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO agents VALUES (?, ?, ?)", (agent, owner, name))

    def save_builder(self, address: str, builder: str, max_rate: float) -> None:
        self.db.execute("INSERT OR REPLACE INTO builders VALUES (?, ?, ?)",
                        (address, builder, max_rate))

    def save_position(self, address: str, coin: str, p: Position) -> None:
        self.db.execute("INSERT OR REPLACE INTO positions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (address, coin, p.szi, p.entry_px, p.leverage, int(p.cross),
                         p.isolated_margin, p.cum_funding))

    def save_order(self, o: Order) -> None:
        self.db.execute("INSERT OR REPLACE INTO orders VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (o.oid, o.address, o.coin, o.side, o.px, o.orig_sz, o.remaining, o.tif,
                         int(o.reduce_only), o.cloid, o.t_ms, o.ahead, o.traded, o.status,
                         o.status_ms, o.builder_rate))

    def add_fill(self, f: Fill) -> None:
        self.db.execute("INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (f.tid, f.oid, f.address, f.coin, f.side, f.px, f.sz, f.fee,
                         f.closed_pnl, f.start_position, f.t_ms, int(f.crossed), f.how,
                         f.builder_fee))

    def set_counter(self, key: str, value: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, int(value)))

    # ------------------------------------------------------------------ reads

    def counter(self, key: str, default: int) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else int(row[0])

    def accounts(self) -> dict[str, tuple[float, int]]:
        return {a: (b, c) for a, b, c in self.db.execute("SELECT * FROM accounts")}

    def agents(self) -> dict[str, tuple[str, str]]:
        return {a: (o, n) for a, o, n in self.db.execute("SELECT * FROM agents")}

    def builders(self) -> dict[tuple[str, str], float]:
        """(account, builder) -> the builder fee the account approved (fraction)."""
        return {(a, b): r for a, b, r in self.db.execute("SELECT * FROM builders")}

    def positions(self) -> dict[tuple[str, str], Position]:
        return {(r[0], r[1]): Position(r[2], r[3], int(r[4]), bool(r[5]), r[6], r[7])
                for r in self.db.execute("SELECT * FROM positions")}

    def open_orders(self) -> list[Order]:
        rows = self.db.execute("SELECT * FROM orders WHERE status = 'open' ORDER BY oid")
        return [_order(r) for r in rows]

    def order(self, address: str, oid: int | None = None, cloid: str | None = None
              ) -> Order | None:
        """An order of ``address`` by id or client id (the latest with that cloid)."""
        if oid is not None:
            row = self.db.execute("SELECT * FROM orders WHERE oid = ? AND address = ?",
                                  (oid, address)).fetchone()
        else:
            row = self.db.execute("SELECT * FROM orders WHERE cloid = ? AND address = ? "
                                  "ORDER BY oid DESC LIMIT 1", (cloid, address)).fetchone()
        return None if row is None else _order(row)

    def fills(self, address: str, start_ms: int | None = None, end_ms: int | None = None,
              limit: int = 2000) -> list[Fill]:
        """``address``'s fills, newest first (Hyperliquid answers at most 2000)."""
        lo = -1 if start_ms is None else start_ms
        hi = 2**62 if end_ms is None else end_ms
        rows = self.db.execute("SELECT * FROM fills WHERE address = ? AND t_ms >= ? AND "
                               "t_ms <= ? ORDER BY tid DESC LIMIT ?", (address, lo, hi, limit))
        return [Fill(r[0], r[1], r[2], r[3], int(r[4]), r[5], r[6], r[7], r[8], r[9], r[10],
                     bool(r[11]), r[12], r[13]) for r in rows]


def _order(r) -> Order:
    return Order(r[0], r[1], r[2], int(r[3]), r[4], r[5], r[6], r[7], bool(r[8]), r[9], r[10],
                 r[11], r[12], r[13], r[14], r[15])
