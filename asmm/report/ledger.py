"""The ledger of a market-making bot: its fills and trades, and every figure computed from
them (round trips, realised and unrealised PnL, fees, funding, inventory, drawdown, CAGR).

Pure arithmetic: the books come from :mod:`asmm.report.sources`; nothing here reads a file
or the network.

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
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np

from asmm.core.errors import PnLError

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
    ``bot_start_time``), if known; ``dry_run`` whether its fills are Freqtrade's dry-run
    simulation (True), an exchange's (False) or unknown (None), ``dry_run_why`` what says
    so."""

    name: str
    trades: list[TradeRec]
    marks: dict[str, float] = field(default_factory=dict)
    capital: float | None = None
    now: float | None = None
    started: float | None = None
    dry_run: bool | None = None
    dry_run_why: str = ""


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


def with_capital(book: BotBook, capital: float | None) -> BotBook:
    """The book with its starting capital overridden (when given)."""
    return replace(book, capital=capital) if capital is not None else book


def base_currency(book: BotBook) -> str:
    """The base coin if the book trades one (e.g. "BTC" for BTC/USDC:USDC), else ""."""
    bases = {t.pair.split("/")[0] for t in book.trades}
    return bases.pop() if len(bases) == 1 else ""


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


def _round_trip(t: TradeRec, fills: Sequence[Fill], gross: float) -> RoundTrip | None:
    """The round trip of closed trade ``t`` (``fills`` in time order, ``gross`` their price
    PnL), or None if it has no exit fill (Freqtrade closed it without one)."""
    ent = [f for f in fills if f.is_entry]
    ex = [f for f in fills if not f.is_entry]
    if not ex:
        return None
    fees = sum(f.fee for f in fills)
    return RoundTrip(
        bot=t.bot, trade_id=t.trade_id, is_short=t.is_short,
        open_time=ent[0].time if ent else fills[0].time, close_time=ex[-1].time,
        entry=_vwap(ent), exit=_vwap(ex), amount=sum(f.amount for f in ent),
        fees=fees, funding=t.funding, pnl=gross - fees + t.funding)


def max_drawdown(equity: np.ndarray) -> tuple[float, float]:
    """The largest fall of ``equity`` from a previous peak, and that peak. The start counts
    as a peak of 0: a book that only ever lost has drawn down from nothing."""
    peak = np.maximum.accumulate(np.maximum(equity, 0.0))
    dd = peak - equity
    j = int(np.argmax(dd))
    return float(dd[j]), float(peak[j])


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
    closed: list[RoundTrip] = []
    for t in book.trades:
        tf = sorted(t.fills, key=lambda f: f.time)
        walk = list(_position_walk(tf))
        for f, pnl, pos, avg in walk:
            per_fill[id(f)] = (pnl, pos, avg)
        if not t.is_open:
            rt = _round_trip(t, tf, sum(p for _, p, _, _ in walk))
            if rt is not None:
                closed.append(rt)

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

    dd, peak = max_drawdown(equity)
    capital = book.capital
    days = (times[-1] - fills[0].time) / DAY
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
        max_drawdown=dd, max_drawdown_pct=dd / (capital + peak) if capital else math.nan,
        capital=capital, cagr=cagr(capital, total, days) if capital else math.nan,
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
