"""Where a report's books come from: a running bot's REST API, or its SQLite trades database.

Each source returns one :class:`~asmm.report.ledger.BotBook` per bot: Freqtrade's SQLite
trades database, opened read-only so a report never alters or locks a running bot's file
(:func:`load_db`), or a running bot's REST API through freqtrade-client (:func:`load_rest`).
Several books (e.g. a long-side and a short-side bot quoting the same coin) become one book
with its net inventory by :func:`asmm.report.ledger.merge_books`. A source that cannot be
read raises :class:`~asmm.core.errors.PnLError` saying why.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from asmm.core.errors import PnLError
from asmm.report.ledger import BotBook, Fill, TradeRec

DRY_RUN_ORDER_PREFIX = "dry_run_"  # freqtrade.exchange.Exchange.create_dry_run_order


def _ts(value) -> float | None:
    """Freqtrade stores naive UTC datetimes as text in SQLite."""
    if value is None:
        return None
    dt = datetime.fromisoformat(str(value))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def load_db(path: str | Path, name: str | None = None) -> BotBook:
    """Trades and filled orders from a Freqtrade SQLite database, opened read-only.

    Raises :class:`PnLError` if the file is missing, not a Freqtrade database, or holds no
    filled trade. Marks default to each pair's last fill price (no exchange is asked).
    """
    path = Path(path)
    if not path.is_file():
        raise PnLError(f"database {path} does not exist (Freqtrade's db_url, e.g. "
                       "tradesv3.dryrun.sqlite)")
    try:
        con = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise PnLError(f"cannot open database {path}: {e}") from e
    try:
        con.row_factory = sqlite3.Row
        trades = con.execute(
            "SELECT id, pair, is_short, is_open, fee_open, fee_close, funding_fees, "
            "close_profit_abs FROM trades ORDER BY id").fetchall()
        orders = con.execute(
            "SELECT ft_trade_id, ft_order_side, side, filled, average, price, "
            "order_filled_date, order_date, order_id FROM orders "
            "WHERE filled > 0 AND ft_order_side != 'stoploss' ORDER BY id").fetchall()
        try:
            row = con.execute("SELECT datetime_value FROM KeyValueStore "
                              "WHERE key = 'bot_start_time'").fetchone()
        except sqlite3.OperationalError:  # databases from before the key-value store
            row = None
    except sqlite3.DatabaseError as e:
        raise PnLError(f"{path} is not a Freqtrade trades database ({e})") from e
    finally:
        con.close()
    started = _ts(row[0]) if row else None
    name = name or path.stem
    by_trade: dict[int, list] = {}
    for o in orders:
        by_trade.setdefault(o["ft_trade_id"], []).append(o)
    recs = []
    for t in trades:
        is_short = bool(t["is_short"])
        entry_side = "sell" if is_short else "buy"
        fills = []
        for o in by_trade.get(t["id"], []):
            is_entry = o["ft_order_side"] == entry_side
            fills.append(Fill(
                time=_ts(o["order_filled_date"] or o["order_date"]), bot=name,
                trade_id=t["id"], pair=t["pair"], is_short=is_short, is_entry=is_entry,
                amount=float(o["filled"]), price=float(o["average"] or o["price"]),
                fee_rate=float((t["fee_open"] if is_entry else t["fee_close"]) or 0.0)))
        if fills:
            recs.append(TradeRec(name, t["id"], t["pair"], is_short, bool(t["is_open"]),
                                 float(t["funding_fees"] or 0.0), tuple(fills),
                                 t["close_profit_abs"]))
    if not recs:
        raise PnLError(f"{path} holds no filled trades yet: nothing to report")
    return BotBook(name, recs, started=started, **_dry_run_of_orders(orders))


def _dry_run_of_orders(orders) -> dict:
    """Whether a database's fills are Freqtrade's dry-run simulation: Freqtrade names every
    dry-run order ``dry_run_<side>_<pair>_<uuid>``; an exchange names its own orders."""
    dry = {str(o["order_id"]).startswith(DRY_RUN_ORDER_PREFIX) for o in orders}
    if dry == {True}:
        return {"dry_run": True, "dry_run_why": "its orders are Freqtrade dry-run orders "
                                                f"({DRY_RUN_ORDER_PREFIX}...)"}
    if dry == {False}:
        return {"dry_run": False, "dry_run_why": "its orders carry exchange order ids, not "
                                                 "Freqtrade's dry-run ones"}
    return {"dry_run": None, "dry_run_why": "it holds both dry-run and exchange orders"}


def trades_from_json(name: str, trades: Sequence[dict]) -> list[TradeRec]:
    """Trade records from Freqtrade's API trade shape (REST ``/trades``, ``/status``).

    The API's order schema has no entry flag: an order is an entry when its side is the
    trade's entry side (sell for shorts)."""
    recs = []
    for t in trades:
        is_short = bool(t["is_short"])
        entry_side = "sell" if is_short else "buy"
        fills = []
        for o in t.get("orders") or []:
            filled = float(o.get("filled") or 0.0)
            if filled <= 0 or o["ft_order_side"] == "stoploss":
                continue
            is_entry = o["ft_order_side"] == entry_side
            stamp = o.get("order_filled_timestamp") or o["order_timestamp"]
            fills.append(Fill(
                time=stamp / 1000.0, bot=name, trade_id=t["trade_id"], pair=t["pair"],
                is_short=is_short, is_entry=is_entry, amount=filled,
                price=float(o["safe_price"]),
                fee_rate=float((t["fee_open"] if is_entry else t["fee_close"]) or 0.0)))
        if fills:
            recs.append(TradeRec(name, t["trade_id"], t["pair"], is_short, bool(t["is_open"]),
                                 float(t.get("funding_fees") or 0.0), tuple(fills),
                                 None if t["is_open"] else t.get("profit_abs")))
    return recs


def _checked(url: str, what: str, answer):
    """freqtrade-client returns None when it cannot connect and the error body otherwise."""
    if answer is None:
        raise PnLError(f"cannot reach the Freqtrade API at {url} (is the bot running with "
                       "api_server enabled, and is the URL right?)")
    if isinstance(answer, dict) and "detail" in answer:
        detail = answer["detail"]
        if detail in ("Unauthorized", "Not authenticated"):
            raise PnLError(f"{url} refused the credentials (check --user/--password or "
                           "FREQTRADE_API_USER/FREQTRADE_API_PASSWORD)")
        raise PnLError(f"{url} answered {what} with an error: {detail}")
    return answer


def load_rest(url: str, username: str | None, password: str | None,
              name: str | None = None, timeout: float = 10.0) -> BotBook:
    """Closed trades (``/trades``, paged), open trades with their current rate (``/status``)
    and the starting capital (``/balance``) of one running bot."""
    from freqtrade_client import FtRestClient

    client = FtRestClient(url.rstrip("/"), username, password, timeout=timeout)
    try:
        # Not client.ping(): it hides refused credentials behind a KeyError.
        config = _checked(url, "/show_config", client.show_config())
        closed: list[dict] = []
        while True:
            page = _checked(url, "/trades", client.trades(limit=500, offset=len(closed)))
            closed.extend(page["trades"])
            if not page["trades"] or len(closed) >= page["total_trades"]:
                break
        status = _checked(url, "/status", client.status())
        balance = _checked(url, "/balance", client.balance())
        profit = _checked(url, "/profit", client.profit())
    except OSError as e:
        raise PnLError(f"cannot talk to the Freqtrade API at {url}: {e}") from e
    except (KeyError, TypeError) as e:
        raise PnLError(f"{url} answered in an unexpected shape (missing {e}); is it a "
                       "Freqtrade 2026.9 API?") from e
    # Freqtrade's default bot_name says nothing about which bot it is; the URL does.
    bot_name = config.get("bot_name") if isinstance(config, dict) else None
    name = name or (bot_name if bot_name and bot_name != "freqtrade" else url)
    try:
        recs = trades_from_json(name, list(closed) + list(status))
        marks = {t["pair"]: float(t["current_rate"]) for t in status if t.get("current_rate")}
    except (KeyError, TypeError, ValueError) as e:
        raise PnLError(f"{url}: a trade in an unexpected shape ({e!r})") from e
    capital = balance.get("starting_capital") if isinstance(balance, dict) else None
    if not recs:
        raise PnLError(f"{url}: the bot holds no filled trades yet: nothing to report")
    start_ms = profit.get("bot_start_timestamp") if isinstance(profit, dict) else None
    dry_run = config.get("dry_run") if isinstance(config, dict) else None
    return BotBook(name, recs, marks, float(capital) if capital else None, now=None,
                   started=start_ms / 1000.0 if start_ms else None,
                   dry_run=dry_run if isinstance(dry_run, bool) else None,
                   dry_run_why=f"its config says dry_run: {str(dry_run).lower()} "
                               "(REST /show_config)")


def repricing_minutes(db: Path) -> set[int]:
    """Minutes (epoch s // 60) in which Freqtrade re-priced a resting order: the order was
    cancelled and its trade's next order of that side placed within the same minute (read
    from the bot's database: the REST API shows no cancelled order).

    Freqtrade re-prices an order only once it holds a candle newer than the order, and with
    the forming candle kept (``ohlcv_partial_candle: false``) it fetches candles every other
    minute: in the minutes between, an order placed rests where it is until it fills."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        rows = con.execute("SELECT ft_trade_id, ft_order_side, status, order_date FROM orders "
                           "ORDER BY id").fetchall()
    out = set()
    last: dict[tuple, tuple[str, int]] = {}
    for trade_id, side, status, placed in rows:
        minute = int(datetime.fromisoformat(placed).replace(tzinfo=UTC).timestamp() // 60)
        if last.get((trade_id, side)) == ("canceled", minute):
            out.add(minute)
        last[(trade_id, side)] = (status, minute)
    return out


def per_side(times: np.ndarray, buys: np.ndarray, minutes: set[int]) -> tuple[int, int]:
    """(buys, sells) among the fills at ``times`` (epoch s) that fall in ``minutes``."""
    inside = np.isin((times // 60).astype(np.int64), list(minutes))
    return int(np.count_nonzero(inside & buys)), int(np.count_nonzero(inside & ~buys))
