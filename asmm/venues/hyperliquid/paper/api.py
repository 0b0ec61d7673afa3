"""Hyperliquid's private API over the paper engine: ``POST /exchange`` actions, verified as
Hyperliquid verifies them, and the ``/info`` requests about a user.

Every ``/exchange`` request is signed: an L1 action (orders, cancels, leverage) by the
account's key or an agent it approved, over the action's hash
(:mod:`asmm.venues.hyperliquid.signing`); a user-signed action (``approveAgent``,
``approveBuilderFee``) by the account's own key. The recovered signer is the account — a
client cannot say whose account it acts for. Answers are Hyperliquid's shapes, errors
included (``{"status": "err", "response": "..."}``); order errors are per-order statuses.

Builder fees: ccxt approves a builder (``approveBuilderFee``, up to 0.01 % by default) and
attaches it to every order (``"builder": {"b": ..., "f": 10}``, ``f`` in tenths of a basis
point); Hyperliquid then charges it on every fill on top of the exchange fee, and so does
the paper exchange (each fill's ``builderFee``). Freqtrade's default ccxt options keep it
on: ``"ccxt_config": {"options": {"builderFee": false}}`` attaches it at 0.

Units: prices and money in USDC, sizes in coin, times in epoch milliseconds.
"""

from __future__ import annotations

import logging
from typing import Any

from asmm.venues.hyperliquid import signing
from asmm.venues.hyperliquid.paper.engine import (
    OrderError,
    PaperEngine,
    _num,
    fill_dict,
    order_dict,
)

log = logging.getLogger(__name__)

L1_ACTIONS = ("order", "cancel", "cancelByCloid", "modify", "batchModify", "updateLeverage",
              "updateIsolatedMargin", "setReferrer", "scheduleCancel")
USER_ACTIONS = ("approveAgent", "approveBuilderFee")
USER_INFO = ("clearinghouseState", "spotClearinghouseState", "openOrders",
             "frontendOpenOrders", "orderStatus", "userFills", "userFillsByTime", "userFees",
             "userRateLimit", "userAbstraction", "historicalOrders", "userFunding",
             "userNonFundingLedgerUpdates", "maxBuilderFee", "referral", "subAccounts")


def err(text: str) -> dict:
    return {"status": "err", "response": text}


def ok(kind: str = "default", data: dict | None = None) -> dict:
    return {"status": "ok", "response": {"type": kind, **({"data": data} if data else {})}}


SIGNING_CHAINS = ("mainnet", "testnet")


class PaperApi:
    """The private endpoints of one paper exchange. ``now`` gives the published time (ms).

    ``signing_chain``: the network new accounts sign for. A known account or agent is found
    under either network's signer; a first request has one signature and two candidate
    signers, of which only the right network's is the key (the other is a pseudo-random
    address), so the exchange must be told: ``mainnet`` as ccxt and Freqtrade sign whatever
    their URL, ``testnet`` as the Hyperliquid SDK signs for any URL but the mainnet one."""

    def __init__(self, engine: PaperEngine, now, signing_chain: str = "mainnet"):
        if signing_chain not in SIGNING_CHAINS:
            raise ValueError(f"signing chain {signing_chain!r}; choose mainnet or testnet")
        self.engine = engine
        self.now = now
        self.new_signer = SIGNING_CHAINS.index(signing_chain)
        # (account, builder) -> the largest builder fee approved, as a fraction of notional;
        # kept in the ledger, as Hyperliquid keeps it: a client approves once (ccxt then
        # remembers it has, and would not approve again after an exchange restart).
        self.builders: dict[tuple[str, str], float] = engine.ledger.builders()

    # ------------------------------------------------------------------ POST /exchange

    def exchange(self, body: Any) -> dict:
        """The answer to one ``POST /exchange`` body."""
        if not isinstance(body, dict) or not isinstance(body.get("action"), dict):
            return err("request body must be a JSON object with an 'action'")
        action, kind = body["action"], body["action"].get("type")
        now = self.now()
        try:
            if kind in USER_ACTIONS:
                signer = signing.recover_user_action_signer(action, body.get("signature"))
                account = self.engine.account_of(signer, now)
            elif kind in L1_ACTIONS:
                account, signer = self._l1_account(body, now)
            else:
                return err(f"Unknown action type {kind!r}.")
        except (signing.SignatureError, ValueError, TypeError) as e:
            return err(f"Invalid signature or request: {e}")
        if account is None:
            log.info("paper: refused %s signed by %s: not an account or agent", kind, signer)
            return signing.unknown_signer_response(signer)
        try:
            return getattr(self, f"_{kind}")(account, action, now)
        except (OrderError, KeyError, TypeError, ValueError) as e:
            return err(str(e))

    def _l1_account(self, body: dict, now: int) -> tuple[str | None, str]:
        """``(account, signer)`` of an L1 action: the first of its candidate signers (the
        client may have signed as mainnet or testnet) that is an account or an agent."""
        nonce = body.get("nonce")
        if isinstance(nonce, bool) or not isinstance(nonce, int):
            raise ValueError("nonce must be an integer (ms)")
        candidates = signing.l1_signer_candidates(body["action"], nonce,
                                                  body.get("vaultAddress"),
                                                  body.get("signature"),
                                                  expires_after=body.get("expiresAfter"))
        for signer in candidates:
            account = self.engine.account_of(signer, now, create=False)
            if account is not None:
                return account, signer
        # A first request: the signer for the network new accounts sign for.
        signer = candidates[self.new_signer]
        return self.engine.account_of(signer, now), signer

    def _order(self, account: str, action: dict, now: int) -> dict:
        rate = self._builder_rate(account, action.get("builder"))
        statuses = []
        for o in action["orders"]:
            if isinstance(rate, str):
                statuses.append({"error": rate})
                continue
            statuses.append(self._one_order(account, o, now, rate))
        return ok("order", {"statuses": statuses})

    def _one_order(self, account: str, o: dict, now: int, builder_rate: float) -> dict:
        spec = self.engine.by_asset.get(o.get("a"))
        if spec is None:
            return {"error": f"Invalid asset {o.get('a')!r}."}
        kind = o.get("t", {})
        if "limit" not in kind:
            return {"error": f"Trigger orders are not supported by the paper exchange. "
                             f"asset={spec.asset}"}
        status = self.engine.place(account, spec.coin, bool(o["b"]), float(o["p"]),
                                   float(o["s"]), kind["limit"].get("tif"), bool(o.get("r")),
                                   o.get("c"), now, builder_rate=builder_rate)
        return status

    def _builder_rate(self, account: str, builder: dict | None) -> float | str:
        """The builder fee of an order (fraction of notional), or the error when the
        account has not approved that much."""
        if not builder:
            return 0.0
        rate = float(builder["f"]) * 1e-5  # tenths of a basis point
        approved = self.builders.get((account, str(builder["b"]).lower()))
        if approved is None or rate > approved + 1e-12:
            return "Builder fee has not been approved."
        return rate

    def _cancel(self, account: str, action: dict, now: int) -> dict:
        statuses = []
        for c in action["cancels"]:
            spec = self.engine.by_asset.get(c.get("a"))
            statuses.append({"error": f"Invalid asset {c.get('a')!r}."} if spec is None else
                            self.engine.cancel(account, spec.coin, oid=int(c["o"]), now_ms=now))
        return ok("cancel", {"statuses": statuses})

    def _cancelByCloid(self, account: str, action: dict, now: int) -> dict:
        statuses = []
        for c in action["cancels"]:
            spec = self.engine.by_asset.get(c.get("asset"))
            statuses.append({"error": f"Invalid asset {c.get('asset')!r}."} if spec is None
                            else self.engine.cancel(account, spec.coin, cloid=c["cloid"],
                                                    now_ms=now))
        return ok("cancel", {"statuses": statuses})

    def _modify_one(self, account: str, m: dict, now: int, rate: float) -> dict:
        ref = m["oid"]
        o = self.engine.find_open(account, oid=ref) if isinstance(ref, int) else \
            self.engine.find_open(account, cloid=ref)
        if o is None:
            return {"error": "Cannot modify canceled or filled order"}
        self.engine.cancel(account, o.coin, oid=o.oid, now_ms=now)
        return self._one_order(account, m["order"], now, rate)

    def _modify(self, account: str, action: dict, now: int) -> dict:
        rate = self._builder_rate(account, action.get("builder"))
        status = self._modify_one(account, action, now, 0.0 if isinstance(rate, str) else rate)
        return err(status["error"]) if "error" in status else ok()

    def _batchModify(self, account: str, action: dict, now: int) -> dict:
        rate = self._builder_rate(account, action.get("builder"))
        rate = 0.0 if isinstance(rate, str) else rate
        return ok("order", {"statuses": [self._modify_one(account, m, now, rate)
                                         for m in action["modifies"]]})

    def _updateLeverage(self, account: str, action: dict, now: int) -> dict:
        spec = self.engine.by_asset[action["asset"]]
        self.engine.set_leverage(account, spec.coin, int(action["leverage"]),
                                 bool(action["isCross"]))
        return ok()

    def _updateIsolatedMargin(self, account: str, action: dict, now: int) -> dict:
        spec = self.engine.by_asset[action["asset"]]
        self.engine.add_isolated_margin(account, spec.coin, float(action["ntli"]) / 1e6)
        return ok()

    def _setReferrer(self, account: str, action: dict, now: int) -> dict:
        return ok()

    def _scheduleCancel(self, account: str, action: dict, now: int) -> dict:
        return ok()

    def _approveAgent(self, account: str, action: dict, now: int) -> dict:
        self.engine.approve_agent(account, action["agentAddress"], action.get("agentName") or "")
        return ok()

    def _approveBuilderFee(self, account: str, action: dict, now: int) -> dict:
        text = str(action["maxFeeRate"]).strip()
        rate = float(text.rstrip("%")) / 100 if text.endswith("%") else float(text)
        builder = str(action["builder"]).lower()
        with self.engine.ledger.tx():
            self.builders[(account, builder)] = rate
            self.engine.ledger.save_builder(account, builder, rate)
        return ok()

    # ------------------------------------------------------------------ POST /info (user)

    def info(self, req: dict) -> Any:
        """The answer to a user ``/info`` request (``req["type"]`` in :data:`USER_INFO`)."""
        user = str(req.get("user", "")).lower()
        e = self.engine
        kind = req["type"]
        known = user in e.balances
        if kind in ("clearinghouseState", "spotClearinghouseState") and not known:
            return self._state(None) if kind == "clearinghouseState" else {"balances": []}
        if kind == "clearinghouseState":
            return self._state(user)
        if kind == "spotClearinghouseState":
            return {"balances": []}
        if kind in ("openOrders", "frontendOpenOrders"):
            return [order_dict(o) for o in sorted(e.orders.values(), key=lambda o: -o.oid)
                    if o.address == user]
        if kind == "orderStatus":
            ref = req.get("oid")
            o = e.ledger.order(user, oid=ref) if isinstance(ref, int) else \
                e.ledger.order(user, cloid=ref)
            live = o and e.orders.get(o.oid)
            o = live or o
            if o is None:
                return {"status": "unknownOid"}
            return {"status": "order", "order": {"order": order_dict(o), "status": o.status,
                                                 "statusTimestamp": o.status_ms}}
        if kind == "userFills":
            return [fill_dict(f) for f in e.ledger.fills(user)]
        if kind == "userFillsByTime":
            return [fill_dict(f) for f in e.ledger.fills(user, req.get("startTime"),
                                                         req.get("endTime"))][::-1]
        if kind == "userFees":
            return {"dailyUserVlm": [], "userCrossRate": _num(e.fees.taker),
                    "userAddRate": _num(e.fees.maker), "activeReferralDiscount": "0.0",
                    "feeSchedule": {"cross": _num(e.fees.taker), "add": _num(e.fees.maker)}}
        if kind == "userRateLimit":
            return {"cumVlm": "0.0", "nRequestsUsed": 0, "nRequestsCap": 10_000}
        if kind == "userAbstraction":
            return "default"
        if kind == "maxBuilderFee":
            rate = self.builders.get((user, str(req.get("builder", "")).lower()), 0.0)
            return round(rate * 1e5)
        return []

    def _state(self, user: str | None) -> dict:
        e = self.engine
        now = self.now()
        if user is None:
            value = used = ntl = mm = 0.0
            positions = []
        else:
            value, used, mm = e.account_value(user), e.margin_used(user), e.maintenance(user)
            positions, ntl = [], 0.0
            for (a, coin), p in e.positions.items():
                if a != user or not p.szi:
                    continue
                mark = e.mark(coin)
                mark = mark if mark == mark else p.entry_px
                ntl += abs(p.szi) * mark
                upnl = p.szi * (mark - p.entry_px)
                # Isolated: the position's own money (its entry margin, margin added and
                # its PnL), and rawUsd that less the position's value, as Hyperliquid shows.
                margin = abs(p.szi) * mark / p.leverage if p.cross else \
                    abs(p.szi) * p.entry_px / p.leverage + p.isolated_margin + upnl
                liq = e.liquidation_px(user, coin)
                positions.append({"type": "oneWay", "position": {
                    "coin": coin, "szi": _num(p.szi),
                    "leverage": {"type": "cross" if p.cross else "isolated",
                                 "value": p.leverage,
                                 **({} if p.cross else {"rawUsd": _num(margin - p.szi * mark)})},
                    "entryPx": _num(p.entry_px), "positionValue": _num(abs(p.szi) * mark),
                    "unrealizedPnl": _num(upnl),
                    "returnOnEquity": _num(upnl / margin if margin else 0.0),
                    "liquidationPx": None if liq is None else _num(liq),
                    "marginUsed": _num(margin), "maxLeverage": e.coins[coin].max_leverage,
                    "cumFunding": {"allTime": _num(p.cum_funding),
                                   "sinceOpen": _num(p.cum_funding),
                                   "sinceChange": _num(p.cum_funding)}}})
        summary = {"accountValue": _num(value), "totalNtlPos": _num(ntl),
                   "totalRawUsd": _num(value), "totalMarginUsed": _num(used)}
        return {"marginSummary": dict(summary), "crossMarginSummary": dict(summary),
                "crossMaintenanceMarginUsed": _num(mm), "assetPositions": positions,
                "withdrawable": _num(e.withdrawable(user) if user else 0.0), "time": now}
