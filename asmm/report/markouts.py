"""Markouts of a bot's own fills: where the collector's mid went 1 s, 10 s and 60 s after
each fill, per side. Adverse selection, live, measured with the function the backtester
uses (:func:`asmm.sim.markouts.markouts`), so the two are comparable.

Sign: negative is the market moving against us (a buy followed by a falling mid). Fill times
are the bot's clock; ``shift`` seconds are added to reach the data's times (non-zero only for
a replay that moved the data to 'now').

:mod:`asmm.sim.markouts` loads numba: the report's other modules import this one only when
market data is given, so a report without it never pays for that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asmm.core.errors import DataError, PnLError
from asmm.data.readers import read_bbo
from asmm.report.ledger import BotBook
from asmm.sim.markouts import HORIZONS, markouts, mean_markouts

# Seconds of data read before the first fill: the mid in force just after a fill may have
# been set a little before it, by the last BBO change.
_LEAD = 60.0
SIDES = (("buys (our bid)", 1), ("sells (our ask)", -1), ("all fills", 0))


@dataclass(frozen=True)
class Mids:
    """The collector's BBO mid: ``t`` data time (epoch s, ascending), ``mid`` in force from
    each ``t`` on."""

    t: np.ndarray
    mid: np.ndarray


@dataclass(frozen=True)
class FillMarkouts:
    """Markouts of one book's fills. ``time`` the bot's clock (epoch s), ``side`` +1 a buy /
    −1 a sell, ``bp`` of shape ``(n, len(horizons))``: NaN where the data ends first."""

    name: str
    time: np.ndarray
    side: np.ndarray
    price: np.ndarray
    bp: np.ndarray
    horizons: tuple[float, ...] = HORIZONS  # seconds, the columns of ``bp``

    def means(self, side: int = 0) -> dict[str, float | None]:
        """Mean markouts of the buys (``side`` +1), the sells (−1) or all fills (0)."""
        return mean_markouts(self.bp if side == 0 else self.bp[self.side == side],
                             self.horizons)

    def by_side(self) -> list[tuple[str, int, dict[str, float | None]]]:
        """(side, fills, mean markouts) for buys, sells and all fills."""
        return [(label, int(self.side.size if s == 0 else np.count_nonzero(self.side == s)),
                 self.means(s)) for label, s in SIDES]

    def as_dict(self) -> dict:
        """JSON-able: the means per side and every fill's markouts (NaN becomes None)."""
        keys = list(mean_markouts(self.bp, self.horizons))
        per_fill = [{"time": float(t), "side": "buy" if s > 0 else "sell", "price": float(p),
                     **{k: (float(v) if np.isfinite(v) else None) for k, v in zip(keys, m,
                                                                                 strict=True)}}
                    for t, s, p, m in zip(self.time, self.side, self.price, self.bp,
                                          strict=True)]
        return {"horizons_s": list(self.horizons),
                "sides": {label.split()[0]: {"fills": n, **means}
                          for label, n, means in self.by_side()},
                "fills": per_fill}


def _fills(book: BotBook) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fills = sorted((f for t in book.trades for f in t.fills), key=lambda f: f.time)
    return (np.array([f.time for f in fills], dtype=np.float64),
            np.array([1.0 if f.signed_qty > 0 else -1.0 for f in fills]),
            np.array([f.price for f in fills], dtype=np.float64))


def load_mids(data_dir: str | Path, coin: str, books: Sequence[BotBook], *,
              shift: float = 0.0) -> Mids:
    """The BBO mid over the fills of ``books`` and the longest horizon after them.

    Raises :class:`PnLError` when the data has no BBO state for that window."""
    times = np.concatenate([_fills(b)[0] for b in books])
    if not coin:
        raise PnLError("markouts need one coin; these bots trade several pairs")
    start, end = times.min() + shift - _LEAD, times.max() + shift + max(HORIZONS) + 1.0
    try:
        bbo = read_bbo(data_dir, coin, start, end)
    except DataError as e:
        raise PnLError(f"cannot read the BBO for the fills' markouts: {e}") from e
    if not len(bbo):
        raise PnLError(f"no {coin} BBO in {data_dir} between the first and the last fill "
                       f"(data times {start:.0f} to {end:.0f}; --data-shift {shift:g})")
    return Mids(bbo.t / 1000.0, bbo.mid)


def fill_markouts(book: BotBook, mids: Mids, *, shift: float = 0.0) -> FillMarkouts:
    """Every fill of ``book`` marked out against ``mids`` at :data:`HORIZONS`."""
    t, side, price = _fills(book)
    return FillMarkouts(book.name, t, side, price,
                        markouts(t + shift, price, side, mids.t, mids.mid))
