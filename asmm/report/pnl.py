"""PnL of a market-making bot from its Freqtrade trades: figures, table and plot.

Sources (each returns :class:`BotBook`): Freqtrade's SQLite trades database, opened
read-only so a report never alters or locks a running bot's file (:func:`load_db`), or a
running bot's REST API through freqtrade-client (:func:`load_rest`). Several books (e.g. a
long-side and a short-side bot quoting the same coin) are merged into one book with its net
inventory by :func:`merge_books`.

Definitions (all money in the quote currency, USDC; inventory in base units, e.g. BTC):

- a *fill* is a filled (part of an) order; its fee is ``fee rate × amount × price``, the rate
  Freqtrade charged on that side of the trade;
- *realised* PnL = price PnL of the quantity already closed (average-cost per trade), minus
  every fee paid so far, plus funding received; *unrealised* = the open inventory marked to
  the mark price against its average entry; *total* = realised + unrealised. This matches
  Freqtrade's own ``close_profit_abs`` for closed trades;
- a *round trip* is a closed Freqtrade trade (entry then exit); its *captured spread* is
  ``direction × (exit − entry) / entry`` in bp, before fees; it is a *win* if its PnL after
  fees and funding is > 0;
- the *equity curve* is total PnL after each fill, marking open inventory at the last fill
  price of its pair; funding is booked when its trade closes (Freqtrade stores only the sum);
- *max drawdown* is the largest fall of the equity curve from a previous peak;
- *CAGR* annualises ``(capital + total) / capital`` over the days since the first fill.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from asmm.core.errors import PnLError
from asmm.core.io import save_png

DAY = 86_400.0
YEAR_DAYS = 365.25


@dataclass(frozen=True)
class Fill:
    """One filled order of a trade. ``time`` epoch s, ``amount`` base units > 0."""

    time: float
    bot: str
    trade_id: int
    pair: str
    is_short: bool
    is_entry: bool
    amount: float
    price: float
    fee_rate: float

    @property
    def signed_qty(self) -> float:
        """Change of inventory (base units): + for buys, − for sells."""
        buy = self.is_entry != self.is_short
        return self.amount if buy else -self.amount

    @property
    def fee(self) -> float:
        return self.fee_rate * self.amount * self.price


@dataclass(frozen=True)
class TradeRec:
    """One Freqtrade trade. ``funding`` > 0 means received; ``ft_profit`` is Freqtrade's own
    ``close_profit_abs`` (closed trades only), kept to cross-check our arithmetic."""

    bot: str
    trade_id: int
    pair: str
    is_short: bool
    is_open: bool
    funding: float
    fills: tuple[Fill, ...]
    ft_profit: float | None = None


@dataclass
class BotBook:
    """Everything one source knows. ``marks`` pair -> price for unrealised PnL; ``capital``
    the starting balance (USDC) CAGR is measured against; ``now`` epoch s of the report;
    ``started`` epoch s when the bot first ran on this database (Freqtrade's
    ``bot_start_time``), if known."""

    name: str
    trades: list[TradeRec]
    marks: dict[str, float] = field(default_factory=dict)
    capital: float | None = None
    now: float | None = None
    started: float | None = None


# ---------------------------------------------------------------------------- sources


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
            "order_filled_date, order_date FROM orders "
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
    return BotBook(name, recs, started=started)


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
    return BotBook(name, recs, marks, float(capital) if capital else None, now=None,
                   started=start_ms / 1000.0 if start_ms else None)


def merge_books(books: Sequence[BotBook]) -> BotBook:
    """One book from several bots: trades side by side, inventory netted, capital summed."""
    if len(books) == 1:
        return books[0]
    marks: dict[str, float] = {}
    for b in books:
        marks.update(b.marks)
    caps = [b.capital for b in books]
    nows = [b.now for b in books if b.now is not None]
    starts = [b.started for b in books if b.started is not None]
    return BotBook(" + ".join(b.name for b in books), [t for b in books for t in b.trades],
                   marks, sum(caps) if all(c is not None for c in caps) else None,
                   max(nows) if nows else None, min(starts) if starts else None)


# ---------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class RoundTrip:
    """A closed trade. Prices are amount-weighted averages; ``pnl`` after fees and funding."""

    bot: str
    trade_id: int
    is_short: bool
    open_time: float
    close_time: float
    entry: float
    exit: float
    amount: float
    fees: float
    funding: float
    pnl: float

    @property
    def captured_bp(self) -> float:
        """Captured spread in bp of the entry price, before fees."""
        d = -1.0 if self.is_short else 1.0
        return d * (self.exit - self.entry) / self.entry * 1e4


@dataclass(frozen=True)
class Curves:
    """Time series after each fill (length n, time ascending, epoch s). ``equity`` USDC total
    PnL, ``inventory`` net base units."""

    time: np.ndarray
    equity: np.ndarray
    inventory: np.ndarray


@dataclass(frozen=True)
class PnLSummary:
    name: str
    realised: float
    unrealised: float
    total: float
    fees: float
    funding: float
    round_trips_long: int
    round_trips_short: int
    win_rate: float            # fraction of closed round trips; NaN if none
    captured_bp: float         # mean over closed round trips; NaN if none
    fee_bp: float              # mean fees per round trip in bp of entry notional
    inventory_now: float       # base units, net
    inventory_max: float       # largest |inventory| reached
    max_drawdown: float        # USDC, >= 0
    max_drawdown_pct: float    # of capital + peak equity; NaN without capital
    capital: float | None
    cagr: float                # fraction per year; NaN without capital; inf if it overflows
    days_running: float
    first_fill: float
    started: float             # when the bot started quoting (its start, else the first fill)
    fills: int
    fills_buy: int
    fills_sell: int
    volume: float              # base units bought + sold
    lot: float                 # median fill amount, base units (the strategy's order size)
    fee_rate: float            # mean fee rate of the fills (fraction of notional)
    round_trips: tuple[RoundTrip, ...]
    curves: Curves
    marks: dict[str, float]


def _position_walk(fills: Sequence[Fill]):
    """Average-cost accounting of one trade's fills in time order.

    Yields (fill, realised price PnL of this fill, position after, avg entry after)."""
    pos = 0.0
    avg = 0.0
    for f in fills:
        d = -1.0 if f.is_short else 1.0
        if f.is_entry:
            avg = (avg * pos + f.price * f.amount) / (pos + f.amount)
            pos += f.amount
            yield f, 0.0, pos, avg
        else:
            amt = min(f.amount, pos)
            pos -= amt
            yield f, d * (f.price - avg) * amt, pos, avg


def summarize(book: BotBook, now: float | None = None) -> PnLSummary:
    """All report figures of one (possibly merged) book. ``now`` epoch s ends the period
    (default: the book's ``now``, else the current time)."""
    if not book.trades:
        raise PnLError(f"{book.name}: no filled trades yet: nothing to report")
    now = now if now is not None else (book.now if book.now is not None else
                                       datetime.now(UTC).timestamp())
    fills = sorted((f for t in book.trades for f in t.fills), key=lambda f: f.time)
    trade_of = {(t.bot, t.trade_id): t for t in book.trades}
    last_fill_of_trade = {(t.bot, t.trade_id): max(t.fills, key=lambda f: f.time)
                          for t in book.trades}

    # Walk every trade once for its realised PnL per fill, then replay all fills in time order
    # to build the book-wide curves.
    per_fill: dict[int, tuple[float, float, float]] = {}
    round_trips = []
    for t in book.trades:
        tf = sorted(t.fills, key=lambda f: f.time)
        walk = list(_position_walk(tf))
        for f, pnl, pos, avg in walk:
            per_fill[id(f)] = (pnl, pos, avg)
        if not t.is_open:
            ent = [f for f in tf if f.is_entry]
            ex = [f for f in tf if not f.is_entry]
            if not ex:
                continue
            fees = sum(f.fee for f in tf)
            gross = sum(p for _, p, _, _ in walk)
            round_trips.append(RoundTrip(
                bot=t.bot, trade_id=t.trade_id, is_short=t.is_short,
                open_time=ent[0].time if ent else tf[0].time, close_time=ex[-1].time,
                entry=_vwap(ent), exit=_vwap(ex), amount=sum(f.amount for f in ent),
                fees=fees, funding=t.funding, pnl=gross - fees + t.funding))

    n = len(fills)
    times = np.empty(n)
    equity = np.empty(n)
    inventory = np.empty(n)
    realised = 0.0
    inv = 0.0
    last_px: dict[str, float] = {}
    open_pos: dict[tuple[str, int], tuple[float, float, Fill]] = {}
    for i, f in enumerate(fills):
        pnl, pos, avg = per_fill[id(f)]
        key = (f.bot, f.trade_id)
        realised += pnl - f.fee
        if f is last_fill_of_trade[key] and not trade_of[key].is_open:
            realised += trade_of[key].funding
        inv += f.signed_qty
        last_px[f.pair] = f.price
        if pos > 0:
            open_pos[key] = (pos, avg, f)
        else:
            open_pos.pop(key, None)
        times[i] = f.time
        inventory[i] = inv
        equity[i] = realised + _mark_to_market(open_pos, last_px)

    marks = {**last_px, **book.marks}
    unrealised = _mark_to_market(open_pos, marks)
    open_funding = sum(t.funding for t in book.trades if t.is_open)
    realised += open_funding
    total = realised + unrealised
    # The period ends at `now` with the open inventory at the mark, so the curve's last point
    # is the reported total.
    times = np.append(times, max(now, times[-1]))
    equity = np.append(equity, total)
    inventory = np.append(inventory, inv)

    peak = np.maximum.accumulate(np.maximum(equity, 0.0))
    dd = peak - equity
    j = int(np.argmax(dd))
    capital = book.capital
    dd_pct = dd[j] / (capital + peak[j]) if capital else math.nan
    days = (times[-1] - fills[0].time) / DAY
    closed = round_trips
    return PnLSummary(
        name=book.name, realised=realised, unrealised=unrealised, total=total,
        fees=sum(f.fee for f in fills), funding=sum(t.funding for t in book.trades),
        round_trips_long=sum(not r.is_short for r in closed),
        round_trips_short=sum(r.is_short for r in closed),
        win_rate=(sum(r.pnl > 0 for r in closed) / len(closed)) if closed else math.nan,
        captured_bp=float(np.mean([r.captured_bp for r in closed])) if closed else math.nan,
        fee_bp=float(np.mean([r.fees / (r.entry * r.amount) * 1e4 for r in closed]))
        if closed else math.nan,
        inventory_now=inv, inventory_max=float(np.max(np.abs(inventory))),
        max_drawdown=float(dd[j]), max_drawdown_pct=dd_pct, capital=capital,
        cagr=cagr(capital, total, days) if capital else math.nan,
        days_running=days, first_fill=fills[0].time, fills=n,
        started=min(book.started, fills[0].time) if book.started else fills[0].time,
        fills_buy=sum(f.signed_qty > 0 for f in fills),
        fills_sell=sum(f.signed_qty < 0 for f in fills),
        volume=sum(f.amount for f in fills),
        lot=float(np.median([f.amount for f in fills])),
        fee_rate=float(np.mean([f.fee_rate for f in fills])),
        round_trips=tuple(sorted(closed, key=lambda r: r.close_time)),
        curves=Curves(times, equity, inventory), marks=marks)


def _vwap(fills: Sequence[Fill]) -> float:
    amt = sum(f.amount for f in fills)
    return sum(f.price * f.amount for f in fills) / amt if amt else math.nan


def _mark_to_market(open_pos, marks: dict[str, float]) -> float:
    out = 0.0
    for pos, avg, f in open_pos.values():
        d = -1.0 if f.is_short else 1.0
        out += d * (marks[f.pair] - avg) * pos
    return out


def cagr(capital: float, pnl: float, days: float) -> float:
    """Compound annual growth rate (fraction/year) of ``capital`` growing by ``pnl`` in
    ``days``. A few hours annualise to absurd figures; overflow gives ``inf``, ruin −1."""
    if days <= 0:
        return math.nan
    ratio = (capital + pnl) / capital
    if ratio <= 0:
        return -1.0
    exponent = math.log(ratio) * YEAR_DAYS / days
    if exponent > 700:  # exp overflows a float
        return math.inf
    return math.exp(exponent) - 1.0


def base_currency(book: BotBook) -> str:
    """The base coin if the book trades one (e.g. "BTC" for BTC/USDC:USDC), else ""."""
    bases = {t.pair.split("/")[0] for t in book.trades}
    return bases.pop() if len(bases) == 1 else ""


def with_capital(book: BotBook, capital: float | None) -> BotBook:
    """The book with its starting capital overridden (when given)."""
    return replace(book, capital=capital) if capital is not None else book


def summary_dict(s: PnLSummary) -> dict:
    """The scalar figures as plain JSON-able values (NaN/inf become None)."""
    keys = ("name", "realised", "unrealised", "total", "fees", "funding", "round_trips_long",
            "round_trips_short", "win_rate", "captured_bp", "fee_bp", "inventory_now",
            "inventory_max", "max_drawdown", "max_drawdown_pct", "capital", "cagr",
            "days_running", "first_fill", "started", "fills")
    out = {}
    for k in keys:
        v = getattr(s, k)
        out[k] = None if isinstance(v, float) and not math.isfinite(v) else v
    return out


# ---------------------------------------------------------------------------- backtest


@dataclass(frozen=True)
class Comparison:
    """Live figures next to what the tick-level backtester expected over the same window.

    ``rows``: (figure, live, backtest) with the same units on both sides; ``window``:
    (start, end) in the live clock, epoch s; ``shift``: seconds added to live times to
    reach the data's times (non-zero only for a replay that moved the data to 'now')."""

    window: tuple[float, float]
    shift: float
    execution: str
    rows: tuple[tuple[str, float, float], ...]
    backtest: dict


def compare_with_backtest(summary: PnLSummary, data_dir: str | Path, coin: str,
                          params_file: str | Path, *, shift: float = 0.0,
                          execution: str = "freqtrade") -> Comparison:
    """Run the tick-level backtester on the collector's data for the live window
    ``[bot start (else first fill), end]`` with the live order size and fee rate and the
    parameter file the bot quoted from, and line its figures up with the live ones.

    Raises :class:`PnLError` when the data or the parameter file cannot be used."""
    from asmm.core.params import ParamsError, load_params
    from asmm.data.marketdata import DataError
    from asmm.sim import BacktestConfig, load_events, run_backtest

    start, end = summary.started, float(summary.curves.time[-1])
    try:
        params = load_params(params_file, check_fresh=False)
        events = load_events(data_dir, coin, start + shift, end + shift)
        cfg = BacktestConfig.from_params(params, order_size=summary.lot,
                                         maker_fee=summary.fee_rate, execution=execution)
        bt = run_backtest(events, cfg).summary()
        if not bt["events"]:
            raise ValueError(f"no market data in {data_dir} for the window")
    except (DataError, ParamsError, ValueError, FileNotFoundError) as e:
        raise PnLError(f"cannot backtest the live window for the comparison: {e}") from e
    lot = summary.lot
    rows = (
        ("fills, our bid (buys)", float(summary.fills_buy), float(bt["fills_bid"])),
        ("fills, our ask (sells)", float(summary.fills_sell), float(bt["fills_ask"])),
        ("volume (base)", summary.volume, bt["volume_bid"] + bt["volume_ask"]),
        ("fees (USDC)", summary.fees, bt["fees"]),
        ("PnL after fees, marked (USDC)", summary.total, bt["pnl"]),
        ("max drawdown (USDC)", summary.max_drawdown, bt["max_drawdown"]),
        ("inventory max |q| (lots)", summary.inventory_max / lot, bt["inventory_max_abs"]),
        ("inventory at the end (lots)", summary.inventory_now / lot, bt["inventory_final"]),
    )
    return Comparison((start, end), shift, execution, rows, bt)


def comparison_table(c: Comparison):
    from rich.table import Table

    span = (c.window[1] - c.window[0]) / 60.0
    t = Table(title=f"Does paper trading match the backtest? ({span:.1f} min from the bot's "
                    f"start, {c.backtest['events']:,} market events, backtester execution "
                    f"'{c.execution}')", title_justify="left")
    for col in ("figure", "live", "backtest", "live - backtest"):
        t.add_column(col, justify="right" if col != "figure" else "left")
    for label, live, bt in c.rows:
        t.add_row(label, f"{live:,.6g}", f"{bt:,.6g}", f"{live - bt:+,.6g}")
    return t


# ---------------------------------------------------------------------------- presentation


def _fmt(x: float, spec: str, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "> 1e300 %" if unit == "%" else "inf"
    return f"{x:{spec}}{unit}"


def summary_rows(summaries: Sequence[PnLSummary], quote: str = "USDC",
                 base: str = "") -> list[tuple[str, list[str]]]:
    """The report's figures as text: (label, one value per summary)."""
    when = datetime.fromtimestamp
    rows = [
        ("realised PnL (after fees, funding)", lambda s: _fmt(s.realised, ",.4f", f" {quote}")),
        ("unrealised PnL (open inventory at mark)",
         lambda s: _fmt(s.unrealised, ",.4f", f" {quote}")),
        ("total PnL", lambda s: _fmt(s.total, ",.4f", f" {quote}")),
        ("fees paid", lambda s: _fmt(s.fees, ",.4f", f" {quote}")),
        ("funding received (+) / paid (−)", lambda s: _fmt(s.funding, ",.4f", f" {quote}")),
        ("round trips long / short",
         lambda s: f"{s.round_trips_long} / {s.round_trips_short}"),
        ("win rate (after fees)", lambda s: _fmt(100 * s.win_rate, ".1f", " %")),
        ("avg captured spread (before fees)", lambda s: _fmt(s.captured_bp, ".2f", " bp")),
        ("avg fees per round trip", lambda s: _fmt(s.fee_bp, ".2f", " bp")),
        ("inventory now (net)", lambda s: _fmt(s.inventory_now, ".6g", f" {base}".rstrip())),
        ("inventory max |q|", lambda s: _fmt(s.inventory_max, ".6g", f" {base}".rstrip())),
        ("max drawdown", lambda s: _fmt(s.max_drawdown, ",.4f", f" {quote}")
         + (f" ({100 * s.max_drawdown_pct:.3f} %)" if s.capital else "")),
        ("starting capital", lambda s: _fmt(s.capital, ",.2f", f" {quote}")),
        ("CAGR since first fill", lambda s: _fmt(100 * s.cagr, ",.2f", " %")
         + (" (from < 7 days)" if s.days_running < 7 and not math.isnan(s.cagr) else "")),
        ("days running", lambda s: _fmt(s.days_running, ".3f")),
        ("first fill (UTC)",
         lambda s: when(s.first_fill, UTC).strftime("%Y-%m-%d %H:%M:%S")),
        ("fills", lambda s: str(s.fills)),
    ]
    return [(label, [fn(s) for s in summaries]) for label, fn in rows]


def summary_table(summaries: Sequence[PnLSummary], quote: str = "USDC", base: str = ""):
    """A rich table, one column per summary (per bot, then the merged book)."""
    from rich.table import Table

    t = Table(title="PnL report", title_justify="left")
    t.add_column("figure")
    for s in summaries:
        t.add_column(s.name, justify="right")
    for label, values in summary_rows(summaries, quote, base):
        t.add_row(label, *values)
    return t


_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>PnL report</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-bottom:1.5em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}
svg{display:block;margin-bottom:.4em;background:#fafafa;border:1px solid #ddd}
#tip{position:fixed;pointer-events:none;background:#fff;border:1px solid #888;
padding:2px 6px;font-size:12px;display:none}
</style></head><body>
<h2>PnL report</h2>
<div id="tables"></div><div id="charts"></div><div id="tip"></div>
<script>
const D = __DATA__;
function table(head, rows){
  let h = '<table><tr>' + head.map(x => '<th>' + x + '</th>').join('') + '</tr>';
  for (const r of rows) h += '<tr>' + r.map(x => '<td>' + x + '</td>').join('') + '</tr>';
  return h + '</table>';
}
let html = table(['figure', ...D.names], D.rows.map(r => [r[0], ...r[1]]));
if (D.comparison) html += '<h3>' + D.comparison.title + '</h3>' +
  table(['figure', 'live', 'backtest', 'live - backtest'], D.comparison.rows);
document.getElementById('tables').innerHTML = html;
const tip = document.getElementById('tip');
const W = 900, H = 200, P = 50;
function chart(title, t, y, step, dots){
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('width', W); svg.setAttribute('height', H);
  const t0 = D.t[0], t1 = D.t[D.t.length - 1] > t0 ? D.t[D.t.length - 1] : t0 + 1;
  let lo = Math.min(0, ...y), hi = Math.max(0, ...y); if (hi === lo) hi = lo + 1;
  const X = v => P + (v - t0) / (t1 - t0) * (W - 2 * P);
  const Y = v => H - 20 - (v - lo) / (hi - lo) * (H - 40);
  let path = '';
  for (let i = 0; i < t.length; i++) {
    if (dots) continue;
    path += (i ? (step ? 'H' + X(t[i]) + 'V' : 'L' + X(t[i]) + ',') : 'M' + X(t[i]) + ',')
      + Y(y[i]);
  }
  let s = '<text x="' + P + '" y="14">' + title + '</text>' +
    '<line x1="' + P + '" x2="' + (W - P) + '" y1="' + Y(0) + '" y2="' + Y(0) +
    '" stroke="#aaa"/><text x="2" y="' + (Y(hi) + 4) + '" font-size="11">' +
    hi.toPrecision(4) + '</text><text x="2" y="' + (Y(lo) + 4) + '" font-size="11">' +
    lo.toPrecision(4) + '</text>';
  if (dots) t.forEach((v, i) => { s += '<circle r="3" cx="' + X(v) + '" cy="' + Y(y[i]) +
    '" fill="' + dots[i] + '"/>'; });
  else s += '<path d="' + path + '" fill="none" stroke="#1f77b4" stroke-width="1.5"/>';
  svg.innerHTML = s + '<line class="cur" y1="20" y2="' + (H - 20) + '" stroke="#999"/>';
  svg.addEventListener('mousemove', e => {
    if (!t.length) return;
    const r = svg.getBoundingClientRect(), tx = t0 + (e.clientX - r.left - P) /
      (W - 2 * P) * (t1 - t0);
    let i = 0; while (i + 1 < t.length && t[i + 1] <= tx) i++;
    svg.querySelector('.cur').setAttribute('x1', X(t[i]));
    svg.querySelector('.cur').setAttribute('x2', X(t[i]));
    tip.style.display = 'block'; tip.style.left = (e.clientX + 12) + 'px';
    tip.style.top = (e.clientY + 12) + 'px';
    tip.textContent = new Date(t[i] * 1000).toISOString().replace('T', ' ').slice(0, 19) +
      ' UTC: ' + y[i].toPrecision(6);
  });
  svg.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
  document.getElementById('charts').appendChild(svg);
}
chart('total PnL (USDC)', D.t, D.equity, true);
chart('net inventory (' + D.base + ')', D.t, D.inventory, true);
chart('captured spread per round trip (bp, green long, red short)', D.rt_t, D.rt_bp, false,
      D.rt_long.map(l => l ? '#2ca02c' : '#d62728'));
</script></body></html>
"""


def write_html(summaries: Sequence[PnLSummary], out: str | Path, *, base: str = "",
               comparison: Comparison | None = None) -> Path:
    """A self-contained interactive HTML page (no external scripts): the report's tables
    and the equity, inventory and captured-spread charts of the last summary, with the
    value under the mouse. Written to a temp file and renamed."""
    import json

    book = summaries[-1]
    c = book.curves
    rt = book.round_trips
    data = {
        "names": [s.name for s in summaries], "rows": summary_rows(summaries, base=base),
        "base": base or "base", "t": c.time.tolist(), "equity": c.equity.tolist(),
        "inventory": c.inventory.tolist(), "rt_t": [r.close_time for r in rt],
        "rt_bp": [r.captured_bp for r in rt], "rt_long": [not r.is_short for r in rt],
        "comparison": None if comparison is None else {
            "title": "Does paper trading match the backtest?",
            "rows": [[label, f"{live:,.6g}", f"{bt:,.6g}", f"{live - bt:+,.6g}"]
                     for label, live, bt in comparison.rows]},
    }
    # "</" inside a <script> would end it early; JSON allows the escaped form.
    payload = json.dumps(data).replace("</", "<\\/")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(_HTML.replace("__DATA__", payload))
    tmp.replace(out)
    return out


def plot(summary: PnLSummary, out: str | Path, base: str = "base") -> Path:
    """PNG with the equity curve, the net inventory and the captured spread per round trip
    over time. Written to a temp file and renamed, so a failed plot leaves the old one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    out = Path(out)
    c = summary.curves
    t = pd.to_datetime(c.time, unit="s", utc=True)
    fig, ax = plt.subplots(3, 1, figsize=(11, 8.5), sharex=True,
                           gridspec_kw={"height_ratios": [3, 2, 2]})
    ax[0].step(t, c.equity, where="post", color="tab:blue", lw=1.2)
    ax[0].axhline(0, color="grey", lw=0.6)
    ax[0].set_ylabel("total PnL (USDC)")
    ax[0].set_title(f"{summary.name}: total PnL {summary.total:,.2f} USDC, "
                    f"{summary.round_trips_long + summary.round_trips_short} round trips, "
                    f"max drawdown {summary.max_drawdown:,.2f} USDC")
    ax[1].step(t, c.inventory, where="post", color="tab:orange", lw=1.2)
    ax[1].axhline(0, color="grey", lw=0.6)
    ax[1].set_ylabel(f"net inventory ({base})")
    rt = summary.round_trips
    if rt:
        rt_t = pd.to_datetime([r.close_time for r in rt], unit="s", utc=True)
        bp = np.array([r.captured_bp for r in rt])
        longs = np.array([not r.is_short for r in rt])
        ax[2].scatter(rt_t[longs], bp[longs], s=14, color="tab:green", label="long round trip")
        ax[2].scatter(rt_t[~longs], bp[~longs], s=14, color="tab:red",
                      label="short round trip")
        ax[2].axhline(summary.captured_bp, color="black", lw=0.8, ls="--",
                      label=f"mean {summary.captured_bp:.2f} bp")
        ax[2].axhline(summary.fee_bp, color="grey", lw=0.8, ls=":",
                      label=f"fees {summary.fee_bp:.2f} bp")
        ax[2].legend(loc="best", fontsize=8)
    else:
        ax[2].text(0.5, 0.5, "no closed round trip yet", ha="center", va="center",
                   transform=ax[2].transAxes)
    ax[2].set_ylabel("captured spread (bp)")
    locator = mdates.AutoDateLocator(tz=UTC)
    ax[2].xaxis.set_major_locator(locator)
    ax[2].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    ax[2].set_xlabel("time (UTC)")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    return save_png(fig, out)
