"""The paper exchange inside the replay exchange: the engine fed with the replayed events,
and the private API it serves (:class:`Paper`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from asmm.core.fees import fee_tier
from asmm.venues.hyperliquid.paper.api import USER_INFO, PaperApi
from asmm.venues.hyperliquid.paper.engine import CoinSpec, PaperEngine
from asmm.venues.hyperliquid.paper.ledger import Ledger
from asmm.venues.hyperliquid.replay.market import BBO, L2, TRADES

log = logging.getLogger(__name__)


class Paper:
    """The paper exchange of a replay :class:`~asmm.venues.hyperliquid.replay.feed.Exchange`.

    ``ledger``: the SQLite file (None: in memory, with a warning); ``tier``: the fee tier
    every account pays (:func:`asmm.core.fees.fee_tier`); ``starting_balance`` USDC of a new
    account; ``accounts``: if given, the only addresses that get an account (others are
    refused as Hyperliquid refuses an unknown signer); ``signing_chain``: the network new
    accounts sign for (:class:`~asmm.venues.hyperliquid.paper.api.PaperApi`)."""

    def __init__(self, exchange, ledger: str | Path | None = None, tier: str = "hyperliquid:0",
                 starting_balance: float = 10_000.0, accounts: set[str] | None = None,
                 signing_chain: str = "mainnet"):
        if ledger is None:
            log.warning("paper exchange: in-memory ledger; accounts, orders and fills are lost "
                        "when the replay stops (--ledger PATH keeps them)")
        self.exchange = exchange
        cfg = exchange.cfg
        coins = [CoinSpec(c, i, cfg.sz_decimals, cfg.max_leverage)
                 for i, c in enumerate(exchange.coins)]
        self.engine = PaperEngine(Ledger(ledger), coins, fee_tier(tier),
                                  starting_balance=starting_balance, accounts=accounts,
                                  funding=lambda coin: cfg.funding_rate)
        self.api = PaperApi(self.engine, lambda: exchange.now_ms(time.time()), signing_chain)
        for coin, r in exchange.replays.items():
            pos, _ = r.state_pos()
            bid, bsz, ask, asz = r.market.top(pos)
            t = self.engine.touch[coin]
            t.bid, t.bid_size, t.ask, t.ask_size = bid, bsz, ask, asz
            t.l2 = r.market.book(pos)

    def on_event(self, r, pos: int) -> None:
        """Match our orders against replayed event ``pos`` of ``r`` (a Replay)."""
        m = r.market
        kind, i = int(m.ev_kind[pos]), int(m.ev_idx[pos])
        t = r.pub_time(pos)
        if kind == TRADES:
            s = m.fills(i)
            self.engine.on_trades(m.coin, list(zip(m.tr_px[s].tolist(), m.tr_sz[s].tolist(),
                                                   m.tr_side[s].tolist(), strict=True)), t)
        elif kind == BBO:
            self.engine.on_bbo(m.coin, m.bid.item(i), m.bid_sz.item(i), m.ask.item(i),
                               m.ask_sz.item(i), t)
        elif kind == L2:
            self.engine.on_l2(m.coin, m.l2_levels(i))

    def serves(self, req: dict) -> bool:
        """Whether a ``/info`` request is about a user (the replay answers the market)."""
        kind = req.get("type")
        if kind == "clearinghouseState":
            # An address without a paper account keeps the replay's configured empty
            # account, as dry-run tools expect.
            return str(req.get("user", "")).lower() in self.engine.balances
        return kind in USER_INFO

    def close(self) -> None:
        self.engine.ledger.close()
