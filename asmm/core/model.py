"""Quote math: Avellaneda–Stoikov (2008, finite horizon) and GLFT (2013, infinite horizon).

Units (docs/design.md): prices and depths in quote currency, time in seconds, ``sigma`` in price
per sqrt(second), ``A`` in fills per second at depth 0, ``k`` and ``gamma`` in 1/price,
``q`` in lots, fees as a fraction of notional.

There is exactly one implementation of the quote rules: the scalar, numba-compiled
:func:`quote_scalar`. The vectorised :func:`as_quotes`, :func:`glft_quotes` and
:func:`quotes` broadcast over it, the backtester's kernel calls it directly, and the
Freqtrade strategy calls the vectorised API with scalars. So a price the strategy sends is,
bit for bit, the price the simulator and the calibrator assumed.

Order of operations in :func:`quote_scalar` (each step documented there):
model depths -> + maker fee -> depth >= 0 (never cross the mid) -> minimum spread ->
tick rounding away from the mid -> never cross / improve the touch by more than allowed ->
inventory bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numba
import numpy as np

MODEL_AS = 0
MODEL_GLFT = 1
MODELS = {"as": MODEL_AS, "glft": MODEL_GLFT}

# Tolerance (in ticks) for float noise when rounding to the tick grid: 100.3/0.1 is
# 1002.9999999999999, which a bare floor would push a whole tick away from the mid.
_TICK_EPS = 1e-9


@numba.njit(cache=True)
def as_depths(q, tau, sigma, gamma, k_bid, k_ask):
    """Avellaneda–Stoikov depths from the mid, before fees, clamps and rounding.

    Reservation price ``r = s - q gamma sigma^2 tau``; each side sits half the inventory
    term plus ``(1/gamma) ln(1 + gamma/k_side)`` from ``r``. With ``k_bid == k_ask`` this
    is the paper's total spread ``gamma sigma^2 tau + (2/gamma) ln(1 + gamma/k)``.

    Returns ``(delta_bid, delta_ask)`` in price units; bid = mid - delta_bid.
    """
    skew = q * gamma * sigma * sigma * tau
    half_inv = 0.5 * gamma * sigma * sigma * tau
    d_bid = skew + half_inv + np.log(1.0 + gamma / k_bid) / gamma
    d_ask = -skew + half_inv + np.log(1.0 + gamma / k_ask) / gamma
    return d_bid, d_ask


@numba.njit(cache=True)
def glft_omega(sigma, gamma, A, k):
    """GLFT inventory skew per lot, ``sqrt(sigma^2 gamma / (2 k A) (1 + gamma/k)^(1 + k/gamma))``.

    Price units per lot.
    """
    return np.sqrt(
        sigma * sigma * gamma / (2.0 * k * A) * (1.0 + gamma / k) ** (1.0 + k / gamma)
    )


@numba.njit(cache=True)
def glft_depths(q, sigma, gamma, A_bid, k_bid, A_ask, k_ask):
    """GLFT closed-form depths from the mid, before fees, clamps and rounding.

    ``delta_bid(q) = (1/gamma) ln(1 + gamma/k) + (2q + 1)/2 omega`` and
    ``delta_ask(q) = (1/gamma) ln(1 + gamma/k) - (2q - 1)/2 omega``. When the two sides have
    their own intensity each side uses its own ``(A, k)`` in both terms, which reduces to
    the published formula when they are equal.
    """
    w_bid = glft_omega(sigma, gamma, A_bid, k_bid)
    w_ask = glft_omega(sigma, gamma, A_ask, k_ask)
    d_bid = np.log(1.0 + gamma / k_bid) / gamma + (2.0 * q + 1.0) * 0.5 * w_bid
    d_ask = np.log(1.0 + gamma / k_ask) / gamma - (2.0 * q - 1.0) * 0.5 * w_ask
    return d_bid, d_ask


@numba.njit(cache=True)
def quote_scalar(
    model, mid, q, tau, sigma, gamma, A_bid, k_bid, A_ask, k_ask,
    maker_fee, tick, max_inventory, min_spread, best_bid, best_ask, max_improve_ticks,
):
    """Bid and ask prices for one state. The single source of truth for quotes.

    Parameters (all scalars)
    ------------------------
    model : int, ``MODEL_AS`` or ``MODEL_GLFT``.
    mid : price. q : inventory in lots. tau : seconds to the horizon (A–S only).
    sigma, gamma, A_*, k_* : see module docstring (A unused by A–S).
    maker_fee : fraction of notional; ``maker_fee * mid`` is added to each depth so a fill
        still earns the model's edge after paying it (a rebate, negative, narrows).
    tick : price grid; ``<= 0`` disables rounding.
    max_inventory : Q in lots; the bid is suppressed if one more lot bought would make
        ``q > Q``, the ask if one more sold would make ``q < -Q``.
    min_spread : price; a narrower quote is widened symmetrically about its centre.
    best_bid, best_ask : current touch, NaN when unknown. A bid never reaches the best ask
        (it would take liquidity), nor rises above ``best_bid + max_improve_ticks * tick``;
        symmetrically for the ask. ``max_improve_ticks = inf`` allows any improvement.

    Returns
    -------
    (bid, ask) : prices; NaN for a suppressed side.
    """
    if model == MODEL_AS:
        d_bid, d_ask = as_depths(q, tau, sigma, gamma, k_bid, k_ask)
    else:
        d_bid, d_ask = glft_depths(q, sigma, gamma, A_bid, k_bid, A_ask, k_ask)
    fee = maker_fee * mid
    # A maker never quotes through the mid: a huge inventory skew pins that side at the mid
    # rather than turning the quote into an aggressive order.
    d_bid = max(d_bid + fee, 0.0)
    d_ask = max(d_ask + fee, 0.0)
    bid = mid - d_bid
    ask = mid + d_ask
    if ask - bid < min_spread:
        centre = 0.5 * (bid + ask)
        bid = min(centre - 0.5 * min_spread, mid)
        ask = max(centre + 0.5 * min_spread, mid)
    if tick > 0.0:
        bid = np.floor(bid / tick + _TICK_EPS) * tick
        ask = np.ceil(ask / tick - _TICK_EPS) * tick
        if best_ask == best_ask:  # not NaN
            bid = min(bid, best_ask - tick)
        if best_bid == best_bid:
            ask = max(ask, best_bid + tick)
        if best_bid == best_bid:
            bid = min(bid, best_bid + max_improve_ticks * tick)
        if best_ask == best_ask:
            ask = max(ask, best_ask - max_improve_ticks * tick)
    if q + 1.0 > max_inventory + 1e-12:
        bid = np.nan
    if q - 1.0 < -max_inventory - 1e-12:
        ask = np.nan
    return bid, ask


@numba.njit(cache=True)
def _quote_many(model, mid, q, tau, sigma, gamma, A_bid, k_bid, A_ask, k_ask, maker_fee,
                tick, max_inventory, min_spread, best_bid, best_ask, max_improve_ticks,
                bid_out, ask_out):
    for i in range(bid_out.size):
        bid_out[i], ask_out[i] = quote_scalar(
            model, mid[i], q[i], tau[i], sigma[i], gamma[i], A_bid[i], k_bid[i], A_ask[i],
            k_ask[i], maker_fee[i], tick[i], max_inventory[i], min_spread[i], best_bid[i],
            best_ask[i], max_improve_ticks[i],
        )


class Quotes(NamedTuple):
    """Quotes broadcast to the inputs' shape. Prices and depths in quote currency.

    ``bid``/``ask`` are NaN on a suppressed side; ``bid_depth = mid - bid`` and
    ``ask_depth = ask - mid`` are the depths actually quoted (after fees and rounding).
    """

    bid: np.ndarray
    ask: np.ndarray
    bid_depth: np.ndarray
    ask_depth: np.ndarray

    @property
    def spread(self) -> np.ndarray:
        return self.ask - self.bid


def quotes(
    model: str,
    mid,
    q,
    *,
    sigma,
    gamma,
    k_bid,
    k_ask=None,
    A_bid=np.nan,
    A_ask=None,
    tau=0.0,
    maker_fee=0.0,
    tick=0.0,
    max_inventory=np.inf,
    min_spread=0.0,
    best_bid=np.nan,
    best_ask=np.nan,
    max_improve_ticks=np.inf,
) -> Quotes:
    """Quotes of either model, broadcast over any array-like argument.

    ``model`` is ``"as"`` (uses ``tau``, seconds to the horizon) or ``"glft"`` (uses ``A``).
    ``k_ask``/``A_ask`` default to the bid side's values. See :func:`quote_scalar` for the
    meaning and unit of every argument. Scalars in give 0-d arrays out.
    """
    try:
        code = MODELS[model]
    except KeyError:
        raise ValueError(f"unknown model {model!r}; choose one of {sorted(MODELS)}") from None
    if code == MODEL_GLFT and np.any(~np.isfinite(np.asarray(A_bid, dtype=float))):
        raise ValueError("the GLFT model needs a finite A (fills per second at depth 0)")
    k_ask = k_bid if k_ask is None else k_ask
    A_ask = A_bid if A_ask is None else A_ask
    args = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (
            mid, q, tau, sigma, gamma, A_bid, k_bid, A_ask, k_ask, maker_fee, tick,
            max_inventory, min_spread, best_bid, best_ask, max_improve_ticks))
    )
    shape = args[0].shape
    flat = [np.ascontiguousarray(a).ravel() for a in args]
    bid = np.empty(flat[0].size)
    ask = np.empty(flat[0].size)
    _quote_many(code, *flat, bid, ask)
    bid = bid.reshape(shape)
    ask = ask.reshape(shape)
    m = args[0]
    return Quotes(bid, ask, m - bid, ask - m)


def as_quotes(mid, q, tau, *, sigma, gamma, k, k_ask=None, **kw) -> Quotes:
    """Avellaneda–Stoikov finite-horizon quotes; ``tau`` in seconds. See :func:`quotes`."""
    return quotes("as", mid, q, tau=tau, sigma=sigma, gamma=gamma, k_bid=k, k_ask=k_ask, **kw)


def glft_quotes(mid, q, *, sigma, gamma, A, k, A_ask=None, k_ask=None, **kw) -> Quotes:
    """GLFT infinite-horizon quotes. See :func:`quotes`."""
    return quotes("glft", mid, q, sigma=sigma, gamma=gamma, A_bid=A, k_bid=k, A_ask=A_ask,
                  k_ask=k_ask, **kw)


def depth_bp(depth, mid):
    """Depth as basis points of the mid (a derived, human-friendly view)."""
    return np.asarray(depth, dtype=float) / np.asarray(mid, dtype=float) * 1e4


def quote_ladder(model: str, mid: float, *, sigma: float, gamma: float, A_bid: float,
                 k_bid: float, A_ask: float, k_ask: float, tau: float = 0.0,
                 tick: float = 0.0, maker_fee: float = 0.0,
                 inventories: Sequence[float] = (-2, -1, 0, 1, 2)) -> list[dict]:
    """Quotes for each inventory (lots): bid, ask, depths in price and bp, spread in bp."""
    q = np.asarray(inventories, dtype=float)
    qt = quotes(model, mid, q, sigma=sigma, gamma=gamma, A_bid=A_bid, k_bid=k_bid,
                A_ask=A_ask, k_ask=k_ask, tau=tau, tick=tick, maker_fee=maker_fee)
    rows = []
    for i, qi in enumerate(q):
        rows.append({
            "q": float(qi), "bid": float(qt.bid[i]), "ask": float(qt.ask[i]),
            "bid_depth": float(qt.bid_depth[i]), "ask_depth": float(qt.ask_depth[i]),
            "bid_depth_bp": float(depth_bp(qt.bid_depth[i], mid)),
            "ask_depth_bp": float(depth_bp(qt.ask_depth[i], mid)),
            "spread_bp": float(depth_bp(qt.ask[i] - qt.bid[i], mid)),
        })
    return rows
