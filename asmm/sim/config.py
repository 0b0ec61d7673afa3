"""The backtest's configuration: one strategy to simulate, every field with its unit.

Cheap to import (no numba, no pandas): ``asmm backtest`` builds its options from the
fields declared with :func:`asmm.core.settings.setting` when the CLI starts.

Units (docs/design.md): prices and depths in quote currency, time in seconds, ``sigma`` price
per sqrt(s), ``A`` 1/s, ``k`` and ``gamma`` 1/price, inventory in lots (position / order
size), fees as fractions of notional.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from asmm.core.enums import Execution, FillRule, FlatSide, Model, Queue, Reference
from asmm.core.fees import MAKER_FEE, TAKER_FEE
from asmm.core.params_blocks import MAX_MICROPRICE_BUCKETS
from asmm.core.settings import MAX_INVENTORY_LOTS, setting

FIXED = "fixed"  # the baseline model: a fixed depth either side of the mid


@dataclass(frozen=True)
class BacktestConfig:
    """One strategy configuration. Every field has a unit and a default that is sensible for
    Hyperliquid perpetuals; the fields declared with :func:`asmm.core.settings.setting` are
    also ``asmm backtest``'s options.

    - ``model``: ``"glft"`` | ``"as"`` (:class:`asmm.core.enums.Model`) quote with
      :func:`asmm.core.model.quote_scalar` from ``sigma, gamma, A_*, k_*``; ``"fixed"``
      quotes ``fixed_depth`` (price) each side of the mid, through the same function (see
      :func:`asmm.sim.engine.fixed_depth_model`).
    - ``tick``: ``None`` infers it from the data.
    - ``min_spread`` (price) and ``max_improve_ticks``: passed to the quote function.
    - ``reference``: ``"mid"`` | ``"microprice"`` (:class:`asmm.core.enums.Reference`), what
      the quotes centre on; the microprice adds ``microprice[b]`` (price) for the bucket
      ``b`` of the known touch's imbalance (the parameter file's table, as the bot does).
    """

    model: str = Model.GLFT
    fixed_depth: float | None = None
    sigma: float = math.nan
    gamma: float = math.nan
    A_bid: float = math.nan
    k_bid: float = math.nan
    A_ask: float = math.nan
    k_ask: float = math.nan
    horizon: float = setting(
        86400.0, unit="s",
        help="A-S horizon (tau runs down to the next multiple of it in epoch time; 86400: "
             "the end of the UTC day)")
    order_size: float = setting(0.001, unit="coin", help="coin per order (one lot)")
    max_inventory: float = setting(MAX_INVENTORY_LOTS, unit="lots",
                                   help="inventory bound Q")
    refresh_seconds: float = setting(1.0, unit="s", help="re-quote interval")
    latency_ms: float = setting(100.0, unit="ms",
                                help="delay before new and cancelled orders take effect")
    fill_reaction_ms: float = setting(
        0.0, unit="ms",
        help="freqtrade executions: after its order fills, the bot decides again no sooner "
             "than this (Freqtrade sees a fill at its next poll of the order, then syncs "
             "its wallet before it places the next one)")
    requote_gap_ms: float = setting(
        0.0, unit="ms",
        help="freqtrade executions: a re-priced order is cancelled, and its replacement "
             "reaches the exchange this much later (Freqtrade cancels, books the cancel, "
             "then places)")
    queue: str = setting(
        Queue.PROB, choices=Queue,
        help="none: fill on touch; prob: wait for the volume queued ahead (probabilistic "
             "cancellations, exponent --queue-power)")
    queue_power: float = setting(3.0,
                                 help="exponent n of the queue model's front^n/(front^n+back^n)")
    maker_fee: float = setting(
        MAKER_FEE, unit="of notional",
        help="maker fee, charged on every fill and added to the models' quoted depth")
    taker_fee: float = setting(TAKER_FEE, unit="of notional",
                               help="taker fee (the closing-cost view pnl_after_close only)")
    execution: str = setting(
        Execution.TWO_SIDED, choices=Execution,
        help="two-sided: bid and ask rest at once; freqtrade: one bot, one order at a time "
             "(an entry, then its exit); freqtrade-pair: a long-only and a short-only bot "
             "sharing the net inventory")
    fill_rule: str = setting(
        FillRule.EXCHANGE, choices=FillRule,
        help="exchange: a resting order fills from trades past the queue ahead and when the "
             "opposite best price reaches it (the book moved through it); trades: from "
             "trades only; freqtrade-dry-run: as Freqtrade's dry-run, when the book crosses "
             "it at the bot's loop (every refresh), never from trades, no queue")
    flat_side: str = setting(
        FlatSide.ALTERNATE, choices=FlatSide,
        help="freqtrade execution: the side a flat bot enters, as the strategy's "
             "flat_side_rule (alternate: opposite of the last entry, long first)")
    tick: float | None = setting(None, parse=float,
                                 help="price tick, inferred from the data when not given")
    reference: str = setting(
        Reference.MID, choices=Reference,
        help="what the quotes centre on: the mid, or the microprice (the mid plus the "
             "parameter file's expected move for the touch's imbalance, as asmm.reference "
             "in the bot)")
    microprice: tuple[float, ...] | None = None
    min_spread: float = 0.0
    max_improve_ticks: float = math.inf
    label: str = field(default="", compare=False)

    def __post_init__(self):
        def bad(msg):
            raise ValueError(f"backtest config: {msg}")

        if self.model not in (*Model, FIXED):
            bad(f"model {self.model!r}; choose glft, as or fixed")
        if self.model == FIXED:
            if self.fixed_depth is None or not math.isfinite(self.fixed_depth) \
                    or self.fixed_depth <= 0:
                bad("model 'fixed' needs fixed_depth > 0 (price units from the mid)")
        else:
            names = ["sigma", "gamma", "k_bid", "k_ask"]
            if self.model == Model.GLFT:
                names += ["A_bid", "A_ask"]
            for n in names:
                v = getattr(self, n)
                if not (math.isfinite(v) and v > 0):
                    bad(f"{n} = {v} must be a finite number > 0 for model {self.model!r}")
        for n in ("order_size", "refresh_seconds", "horizon", "max_inventory"):
            v = getattr(self, n)
            if not v > 0:
                bad(f"{n} = {v} must be > 0")
        for n in ("latency_ms", "fill_reaction_ms", "requote_gap_ms"):
            v = getattr(self, n)
            if not (v >= 0 and math.isfinite(v)):
                bad(f"{n} = {v} must be a finite number >= 0")
        if not (math.isfinite(self.maker_fee) and math.isfinite(self.taker_fee)):
            bad("fees must be finite")
        for name, kind in (("queue", Queue), ("execution", Execution),
                           ("flat_side", FlatSide), ("fill_rule", FillRule)):
            value = getattr(self, name)
            if value not in tuple(kind):
                bad(f"{name} {value!r}; choose one of {', '.join(kind)}")
            # Frozen: the spelling a caller passed becomes the enum member it names.
            object.__setattr__(self, name, kind(value))
        if self.tick is not None and not self.tick >= 0:
            bad(f"tick = {self.tick} must be >= 0")
        if self.reference not in tuple(Reference):
            bad(f"reference {self.reference!r}; choose one of {', '.join(Reference)}")
        object.__setattr__(self, "reference", Reference(self.reference))
        if self.microprice is not None:
            table = tuple(float(x) for x in self.microprice)
            if not (2 <= len(table) <= MAX_MICROPRICE_BUCKETS
                    and all(math.isfinite(x) for x in table)):
                bad(f"microprice must be 2 to {MAX_MICROPRICE_BUCKETS} finite adjustments")
            object.__setattr__(self, "microprice", table)
        if self.reference == Reference.MICROPRICE and self.microprice is None:
            bad("reference 'microprice' needs a microprice table (the parameter file has "
                "none: the calibrator writes one when the book has enough one-tick samples)")

    @staticmethod
    def quoting(params) -> dict:
        """The fields that make a configuration quote an :class:`asmm.core.params.Params`
        set: its model, sigma, gamma, A and k per side, and its microprice table if any
        (used with ``reference="microprice"``)."""
        table = params.microprice["adjustment"] if params.microprice is not None else None
        return dict(model=params.model, sigma=params.sigma, gamma=params.gamma,
                    A_bid=params.bid.A, k_bid=params.bid.k, A_ask=params.ask.A,
                    k_ask=params.ask.k, microprice=table)

    @classmethod
    def from_params(cls, params, **overrides) -> BacktestConfig:
        """A configuration quoting an :class:`asmm.core.params.Params` set; ``overrides`` set any
        other field (e.g. ``gamma`` for a grid)."""
        return cls(**(cls.quoting(params) | overrides))

    def with_(self, **changes) -> BacktestConfig:
        return replace(self, **changes)
