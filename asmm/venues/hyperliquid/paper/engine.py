"""The paper exchange's matching and accounting: our orders against the replayed (or
relayed) market, by the backtester's fill rule.

Every resting order follows :mod:`asmm.sim.rules` — the functions the backtest kernel runs —
so paper fills and backtest fills can differ only by latency and the bot's cadence:

- a trade through an order's price fills it; one at its price after the volume queued ahead
  of it (the touch's size when it joined, the L2 level's behind the touch; cancellations
  taken from ahead of it with the power-3 probability); fills capped by the trade's size;
- when the opposite best price reaches an order, the book moved through it: it fills whole,
  as a maker;
- a post-only (``Alo``) order that would cross is rejected, as Hyperliquid does; a ``Gtc``
  or ``Ioc`` order that crosses takes the recorded book's levels as a taker (``Ioc``'s rest
  is cancelled, ``Gtc``'s rests).

The recorded market does not react to our orders (as in the backtest). Fees are the
account's tier (:mod:`asmm.core.fees`), maker on resting fills, taker on immediate ones.
Margin is cross by default (``updateLeverage`` sets the leverage and mode): an order needs
its notional over the leverage free; an account whose value falls below the maintenance
margin (half the initial margin at the coin's maximum leverage) is liquidated at the mid.
Funding is paid every hour of published time at the replay's rate.

Units: prices and money in USDC, sizes in coin, times in epoch milliseconds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from asmm.core.fees import FeeTier
from asmm.sim.rules import crossed, queue_on_touch, same_px, touch_queue, trade_fill
from asmm.venues.hyperliquid.paper.ledger import Fill, Ledger, Order, Position

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
TIFS = ("Alo", "Gtc", "Ioc")
# Book levels: (price, size, number of orders), best first, as the replay publishes them.
Book = tuple[list[tuple[float, float, int]], list[tuple[float, float, int]]]


class OrderError(ValueError):
    """An order Hyperliquid would refuse; the message is Hyperliquid's."""


@dataclass(frozen=True)
class CoinSpec:
    """A listed perpetual: its asset index, size decimals and maximum leverage."""

    coin: str
    asset: int
    sz_decimals: int
    max_leverage: int


@dataclass
class Touch:
    """The replayed best bid and ask (NaN until known) and the last L2 snapshot."""

    bid: float = math.nan
    bid_size: float = math.nan
    ask: float = math.nan
    ask_size: float = math.nan
    l2: Book = field(default_factory=lambda: ([], []))

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask)


class PaperEngine:
    """Accounts, orders and fills of the paper exchange, in memory and in ``ledger``.

    ``coins``: the listed perpetuals; ``fees``: the tier every account pays;
    ``funding``: the hourly funding rate of a coin (fraction of notional, longs pay);
    ``queue_power``: the cancellation model's exponent (the backtester's default, 3).
    ``listeners`` are called with ``(address, kind, data)`` for every order update
    (``order``) and fill (``fill``): the WebSocket user channels.
    """

    def __init__(self, ledger: Ledger, coins: list[CoinSpec], fees: FeeTier, *,
                 starting_balance: float = 10_000.0, accounts: set[str] | None = None,
                 funding: Callable[[str], float] | None = None, queue_power: float = 3.0):
        self.ledger = ledger
        self.coins = {c.coin: c for c in coins}
        self.by_asset = {c.asset: c for c in coins}
        self.fees = fees
        self.starting_balance = float(starting_balance)
        self.allowed = None if accounts is None else {a.lower() for a in accounts}
        self.funding = funding or (lambda coin: 0.0)
        self.queue_power = float(queue_power)
        self.touch = {c.coin: Touch() for c in coins}
        self.listeners: list[Callable[[str, str, dict], None]] = []
        self.balances = {a: b for a, (b, _) in ledger.accounts().items()}
        self.agents = {a: owner for a, (owner, _) in ledger.agents().items()}
        self.positions: dict[tuple[str, str], Position] = ledger.positions()
        self.orders = {o.oid: o for o in ledger.open_orders()}
        self.next_oid = ledger.counter("next_oid", 1)
        self.next_tid = ledger.counter("next_tid", 1)
        self.funded_hour = ledger.counter("funded_hour", -1)
        # Compile (or load from numba's cache) the rule functions now, not on a client's
        # first order.
        trade_fill(1.0, 1.0, 1.0, 0.0, 0.0, True, -1.0, 1.0, 1.0)
        queue_on_touch(1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 3.0)
        touch_queue(1.0, 1.0, 1.0, 2.0, 1.0, 1.0)
        crossed(1.0, 1.0, 1.0, 2.0)

    # ------------------------------------------------------------------ accounts

    def account_of(self, signer: str, now_ms: int, create: bool = True) -> str | None:
        """The account a signer acts for: itself, or the account that approved it as an
        agent; a new signer gets an account with the starting balance (unless an allow-list
        excludes it). None: not an account."""
        signer = signer.lower()
        if signer in self.agents:
            return self.agents[signer]
        if signer in self.balances:
            return signer
        if not create or (self.allowed is not None and signer not in self.allowed):
            return None
        with self.ledger.tx():
            self.balances[signer] = self.starting_balance
            self.ledger.save_account(signer, self.starting_balance, now_ms)
        log.info("paper: new account %s with %.2f USDC", signer, self.starting_balance)
        return signer

    def approve_agent(self, owner: str, agent: str, name: str) -> None:
        with self.ledger.tx():
            self.agents[agent.lower()] = owner
            self.ledger.save_agent(agent.lower(), owner, name)

    def position(self, address: str, coin: str) -> Position:
        return self.positions.get((address, coin)) or Position()

    def set_leverage(self, address: str, coin: str, leverage: int, cross: bool) -> None:
        spec = self._spec(coin)
        if not 1 <= leverage <= spec.max_leverage:
            raise OrderError(f"Invalid leverage value. asset={spec.asset}")
        p = self.position(address, coin)
        p.leverage, p.cross = int(leverage), bool(cross)
        self._save_position(address, coin, p)

    def add_isolated_margin(self, address: str, coin: str, usd: float) -> None:
        p = self.position(address, coin)
        if p.cross or p.szi == 0:
            raise OrderError("Cannot update margin for a position that is not isolated.")
        if usd > self.withdrawable(address):
            raise OrderError("Insufficient margin to update isolated margin.")
        p.isolated_margin += usd
        self._save_position(address, coin, p)

    def mark(self, coin: str) -> float:
        return self.touch[coin].mid

    def unrealized(self, address: str) -> float:
        return sum(p.szi * (self.mark(c) - p.entry_px) for (a, c), p in self.positions.items()
                   if a == address and p.szi and self.mark(c) == self.mark(c))

    def account_value(self, address: str) -> float:
        return self.balances[address] + self.unrealized(address)

    def margin_used(self, address: str) -> float:
        return sum(abs(p.szi) * self._mark_or_entry(c, p) / p.leverage
                   for (a, c), p in self.positions.items() if a == address and p.szi)

    def maintenance(self, address: str) -> float:
        return sum(abs(p.szi) * self._mark_or_entry(c, p) / (2 * self.coins[c].max_leverage)
                   for (a, c), p in self.positions.items() if a == address and p.szi)

    def withdrawable(self, address: str) -> float:
        orders = sum(o.remaining * o.px / self.position(a, o.coin).leverage
                     for o in self.orders.values() if (a := o.address) == address
                     and not o.reduce_only)
        return max(self.account_value(address) - self.margin_used(address) - orders, 0.0)

    def liquidation_px(self, address: str, coin: str) -> float | None:
        """The mark at which the account value meets the maintenance margin, the other
        positions held still; for an isolated position, at which its own margin (entry
        notional over the leverage, plus margin added) does (None: flat, or no such price)."""
        p = self.position(address, coin)
        if not p.szi:
            return None
        rate = 1.0 / (2 * self.coins[coin].max_leverage)
        if p.cross:
            rest = self.account_value(address) - p.szi * (self.mark(coin) - p.entry_px)
            rest_mm = self.maintenance(address) - abs(p.szi) * self._mark_or_entry(coin, p) * rate
        else:
            rest, rest_mm = abs(p.szi) * p.entry_px / p.leverage + p.isolated_margin, 0.0
        denom = p.szi - abs(p.szi) * rate
        if denom == 0:
            return None
        px = (rest_mm - rest + p.szi * p.entry_px) / denom
        return px if px > 0 else None

    # ------------------------------------------------------------------ orders

    def place(self, address: str, coin: str, is_buy: bool, px: float, sz: float, tif: str,
              reduce_only: bool, cloid: str | None, now_ms: int, builder_rate: float = 0.0
              ) -> dict:
        """One order; returns its Hyperliquid status (``resting``, ``filled`` or ``error``).
        ``builder_rate``: the builder fee its fills pay (fraction of notional)."""
        try:
            with self.ledger.tx():
                return self._place(address, coin, is_buy, px, sz, tif, reduce_only, cloid,
                                   now_ms, builder_rate)
        except OrderError as e:
            return {"error": str(e)}

    def _place(self, address, coin, is_buy, px, sz, tif, reduce_only, cloid, now_ms,
               builder_rate) -> dict:
        spec = self._spec(coin)
        side = 1 if is_buy else -1
        if tif not in TIFS:
            raise OrderError(f"Invalid TIF. asset={spec.asset}")
        if not (px > 0 and math.isfinite(px)):
            raise OrderError(f"Order has invalid price. asset={spec.asset}")
        if not (sz > 0 and math.isfinite(sz)) or round(sz, spec.sz_decimals) != sz:
            raise OrderError(f"Order has invalid size. asset={spec.asset}")
        if cloid is not None and any(o.cloid == cloid and o.address == address
                                     for o in self.orders.values()):
            raise OrderError(f"Duplicate cloid. asset={spec.asset}")
        pos = self.position(address, coin).szi
        if reduce_only:
            if pos == 0 or (pos > 0) == is_buy:
                raise OrderError(f"Reduce only order would increase position. "
                                 f"asset={spec.asset}")
            sz = min(sz, abs(pos))
        t = self.touch[coin]
        crosses = crossed(float(side), px, t.bid, t.ask)
        if tif == "Alo" and crosses:
            raise OrderError(f"Post only order would have immediately matched, bbo was "
                             f"{_num(t.bid)}@{_num(t.ask)}. asset={spec.asset}")
        opening = not reduce_only and (pos == 0 or (pos > 0) == is_buy or sz > abs(pos))
        if opening and px * sz / self.position(address, coin).leverage > \
                self.withdrawable(address) + 1e-9:
            raise OrderError(f"Insufficient margin to place order. asset={spec.asset}")
        oid = self._new_oid()
        o = Order(oid, address, coin, side, px, sz, sz, tif, reduce_only, cloid, now_ms,
                  status_ms=now_ms, builder_rate=builder_rate)
        taken = self._take(o, now_ms) if crosses else 0.0
        if o.remaining <= 1e-12:
            return {"filled": {"totalSz": _num(taken), "avgPx": _num(o.px), "oid": oid}}
        if tif == "Ioc":
            self._close(o, "canceled", now_ms)
            if taken == 0:
                raise OrderError(f"Order could not immediately match against any resting "
                                 f"orders. asset={spec.asset}")
            return {"filled": {"totalSz": _num(taken), "avgPx": _num(o.px), "oid": oid}}
        ahead = touch_queue(float(side), px, t.bid, t.ask, t.bid_size, t.ask_size)
        o.ahead = ahead if ahead == ahead else _level_size(t.l2, side, px)
        self.orders[oid] = o
        self.ledger.save_order(o)
        self._tell(address, "order", _order_update(o, "open", now_ms))
        return {"resting": {"oid": oid, **({"cloid": cloid} if cloid else {})}}

    def cancel(self, address: str, coin: str, oid: int | None = None,
               cloid: str | None = None, now_ms: int = 0) -> dict | str:
        """``"success"`` or Hyperliquid's error status."""
        o = next((o for o in self.orders.values() if o.address == address and o.coin == coin
                  and (o.oid == oid if oid is not None else o.cloid == cloid)), None)
        if o is None:
            asset = self._spec(coin).asset
            return {"error": f"Order was never placed, already canceled, or filled. "
                             f"asset={asset}"}
        with self.ledger.tx():
            self._close(o, "canceled", now_ms)
        return "success"

    def find_open(self, address: str, oid: int | None = None, cloid: str | None = None
                  ) -> Order | None:
        return next((o for o in self.orders.values() if o.address == address
                     and (o.oid == oid if oid is not None else o.cloid == cloid)), None)

    # ------------------------------------------------------------------ market events

    def on_bbo(self, coin: str, bid: float, bid_size: float, ask: float, ask_size: float,
               now_ms: int) -> None:
        """The touch moved: queues follow it, orders the book moved through fill whole."""
        t = self.touch[coin]
        with self.ledger.tx():
            for o in self._resting(coin):
                if o.side > 0:
                    old_px, old_sz, new_px, new_sz = t.bid, t.bid_size, bid, bid_size
                else:
                    old_px, old_sz, new_px, new_sz = t.ask, t.ask_size, ask, ask_size
                o.ahead, o.traded = queue_on_touch(float(o.side), o.px, o.ahead, o.traded,
                                                   old_px, old_sz, new_px, new_sz,
                                                   self.queue_power)
            t.bid, t.bid_size, t.ask, t.ask_size = bid, bid_size, ask, ask_size
            for o in self._resting(coin):
                if crossed(float(o.side), o.px, bid, ask):
                    self._fill(o, o.remaining, o.px, now_ms, "book-through")
            self._fund(now_ms)
            self._liquidate(now_ms)

    def on_trades(self, coin: str, fills: list[tuple[float, float, int]], now_ms: int) -> None:
        """Trades ``(price, size, aggressor side)``: each fills our orders it meets, up to
        its size, the earlier order first at a price."""
        resting = self._resting(coin)
        if not resting:
            return
        with self.ledger.tx():
            for px, sz, tside in fills:
                left = sz
                for o in sorted(resting, key=lambda o: (-o.side * o.px, o.oid)):
                    if left <= 0 or o.status != "open":
                        continue
                    qty, o.ahead, o.traded = trade_fill(float(o.side), o.px, o.remaining,
                                                        o.ahead, o.traded, True, float(tside),
                                                        px, left)
                    if qty > 0:
                        left -= qty
                        self._fill(o, qty, o.px, now_ms, "trade")

    def on_l2(self, coin: str, book: Book) -> None:
        """A snapshot caps the volume ahead of orders resting behind the touch."""
        self.touch[coin].l2 = book
        for o in self._resting(coin):
            sz = _level_size(book, o.side, o.px, missing=math.inf)
            o.ahead = min(o.ahead, sz)

    # ------------------------------------------------------------------ internals

    def _spec(self, coin: str) -> CoinSpec:
        if coin not in self.coins:
            raise OrderError(f"Unknown asset {coin!r}.")
        return self.coins[coin]

    def _mark_or_entry(self, coin: str, p: Position) -> float:
        m = self.mark(coin)
        return m if m == m else p.entry_px

    def _resting(self, coin: str) -> list[Order]:
        return [o for o in self.orders.values() if o.coin == coin]

    def _new_oid(self) -> int:
        oid = self.next_oid
        self.next_oid += 1
        self.ledger.set_counter("next_oid", self.next_oid)
        return oid

    def _take(self, o: Order, now_ms: int) -> float:
        """Fill the crossing part of ``o`` against the recorded book's levels, as a taker."""
        t = self.touch[o.coin]
        bids, asks = t.l2
        top = (t.ask, t.ask_size) if o.side > 0 else (t.bid, t.bid_size)
        behind = [(p, s) for p, s, _ in (asks if o.side > 0 else bids)
                  if (p > top[0] if o.side > 0 else p < top[0])]
        taken = 0.0
        for px, sz in [top, *behind]:
            if not (px == px and sz > 0) or not crossed(float(o.side), o.px, px, px):
                break
            q = min(sz, o.remaining)
            self._fill(o, q, px, now_ms, "taker", taker=True)
            taken += q
            if o.remaining <= 1e-12:
                break
        return taken

    def _fill(self, o: Order, qty: float, px: float, now_ms: int, how: str,
              taker: bool = False) -> None:
        p = self.position(o.address, o.coin)
        rate = self.fees.taker if taker else self.fees.maker
        fee = rate * px * qty
        builder = o.builder_rate * px * qty
        start = p.szi
        closed = 0.0
        if start == 0 or (start > 0) == (o.side > 0):
            p.entry_px = (p.entry_px * abs(start) + px * qty) / (abs(start) + qty)
        else:
            closing = min(qty, abs(start))
            closed = closing * (px - p.entry_px) * (1 if start > 0 else -1)
            if qty > abs(start):
                p.entry_px = px
        p.szi = round(start + o.side * qty, 12)
        if p.szi == 0:
            p.entry_px = p.cum_funding = p.isolated_margin = 0.0
        self.balances[o.address] += closed - fee - builder
        self.ledger.save_account(o.address, self.balances[o.address], now_ms)
        self._save_position(o.address, o.coin, p)
        tid = self.next_tid
        self.next_tid += 1
        self.ledger.set_counter("next_tid", self.next_tid)
        f = Fill(tid, o.oid, o.address, o.coin, o.side, px, qty, fee, closed, start, now_ms,
                 taker, how, builder)
        self.ledger.add_fill(f)
        o.remaining = round(o.remaining - qty, 12)
        if o.remaining <= 1e-12:
            o.remaining = 0.0
            self._close(o, "filled", now_ms)
        else:
            self.ledger.save_order(o)
        self._tell(o.address, "fill", fill_dict(f))

    def _close(self, o: Order, status: str, now_ms: int) -> None:
        o.status, o.status_ms = status, now_ms
        self.orders.pop(o.oid, None)
        self.ledger.save_order(o)
        self._tell(o.address, "order", _order_update(o, status, now_ms))

    def _save_position(self, address: str, coin: str, p: Position) -> None:
        self.positions[(address, coin)] = p
        self.ledger.save_position(address, coin, p)

    def _fund(self, now_ms: int) -> None:
        """Hourly funding at each new hour of published time: longs pay ``rate x
        notional`` at the mark, shorts receive it (negative rates the other way)."""
        hour = now_ms // HOUR_MS
        if hour <= self.funded_hour:
            return
        first = self.funded_hour < 0
        self.funded_hour = hour
        self.ledger.set_counter("funded_hour", hour)
        if first:
            return  # the clock's first hour: no interval has elapsed yet
        for (a, c), p in list(self.positions.items()):
            m = self.mark(c)
            if p.szi and m == m:
                pay = p.szi * m * self.funding(c)
                p.cum_funding += pay
                self.balances[a] -= pay
                self.ledger.save_account(a, self.balances[a], now_ms)
                self._save_position(a, c, p)

    def _liquidate(self, now_ms: int) -> None:
        for (a, c), p in list(self.positions.items()):
            liq = None if p.cross else self.liquidation_px(a, c)
            if liq is not None and (self.mark(c) - liq) * p.szi <= 0:
                log.warning("paper: %s's isolated %s position liquidated", a, c)
                self._close_out(a, c, p, now_ms)
        for a in {a for (a, _), p in self.positions.items() if p.szi}:
            if self.account_value(a) >= self.maintenance(a):
                continue
            log.warning("paper: %s liquidated (account value %.2f < maintenance %.2f)", a,
                        self.account_value(a), self.maintenance(a))
            for o in [o for o in self.orders.values() if o.address == a]:
                self._close(o, "canceled", now_ms)
            for (acct, c), p in list(self.positions.items()):
                if acct == a and p.szi and self.mark(c) == self.mark(c):
                    self._close_out(a, c, p, now_ms)

    def _close_out(self, a: str, c: str, p: Position, now_ms: int) -> None:  # at the mid
        o = Order(self._new_oid(), a, c, -1 if p.szi > 0 else 1, self.mark(c), abs(p.szi),
                  abs(p.szi), "Ioc", True, None, now_ms)
        self._fill(o, o.remaining, self.mark(c), now_ms, "liquidation", taker=True)

    def _tell(self, address: str, kind: str, data: dict) -> None:
        for listener in self.listeners:
            listener(address, kind, data)


def _level_size(book: Book, side: int, px: float, missing: float = 0.0) -> float:
    for lpx, sz, _ in book[0] if side > 0 else book[1]:
        if same_px(px, lpx):
            return sz
    return missing


def _num(x: float) -> str:
    """A price or size as Hyperliquid writes it: no exponent, no trailing zeros."""
    if x != x:
        return "0"
    s = f"{x:.10f}".rstrip("0").rstrip(".")
    return s if s not in ("", "-0") else "0"


def order_dict(o: Order) -> dict:
    """``openOrders``/``frontendOpenOrders`` row of ``o``."""
    return {"coin": o.coin, "side": "B" if o.side > 0 else "A", "limitPx": _num(o.px),
            "sz": _num(o.remaining), "oid": o.oid, "timestamp": o.t_ms,
            "origSz": _num(o.orig_sz), **({"cloid": o.cloid} if o.cloid else {}),
            "orderType": "Limit", "tif": o.tif, "reduceOnly": o.reduce_only,
            "isTrigger": False, "triggerPx": "0.0", "triggerCondition": "N/A",
            "isPositionTpsl": False, "children": []}


def _order_update(o: Order, status: str, now_ms: int) -> dict:
    return {"order": order_dict(o), "status": status, "statusTimestamp": now_ms}


def fill_dict(f: Fill) -> dict:
    """``userFills`` row of ``f``."""
    closing = f.start_position != 0 and (f.start_position > 0) != (f.side > 0)
    flips = closing and f.sz > abs(f.start_position)
    long_side = f.side > 0
    if flips:
        d = "Short > Long" if long_side else "Long > Short"
    elif closing:
        d = "Close Short" if long_side else "Close Long"
    else:
        d = "Open Long" if long_side else "Open Short"
    return {"coin": f.coin, "px": _num(f.px), "sz": _num(f.sz),
            "side": "B" if f.side > 0 else "A", "time": f.t_ms,
            "startPosition": _num(f.start_position), "dir": d, "closedPnl": _num(f.closed_pnl),
            "hash": "0x" + f"{f.tid:064x}", "oid": f.oid, "crossed": f.crossed,
            "fee": _num(f.fee), "tid": f.tid, "feeToken": "USDC",
            **({"builderFee": _num(f.builder_fee)} if f.builder_fee else {})}
