"""Fee schedules as data: Hyperliquid perpetuals and Bybit linear perpetuals.

Every rate is a fraction of notional (0.00015 = 1.5 bp); a negative maker rate is a rebate.
The fee decides whether market making pays — on BTC the spread is one tick (about 0.1 bp)
against a 1.5 bp tier-0 maker fee — so the tools take a tier by name (``--fee-tier``,
``asmm.fee_tier``) and record the rates they used.

Names:

- ``hyperliquid:T`` for the volume tier T = 0..6 (14-day weighted volume), optionally
  ``+mmK`` for maker-rebate tier K = 1..3 (share of the exchange's 14-day maker volume; the
  maker rate becomes the rebate) and ``+STAKE`` for a HYPE staking discount (wood, bronze,
  silver, gold, platinum, diamond), e.g. ``hyperliquid:2+gold`` or ``hyperliquid:0+mm1``.
  The staking discount scales the fees paid (taker, and a positive maker fee), not rebates.
- ``bybit:vip0`` .. ``bybit:vip5``, ``bybit:supreme``.

Sources, read 2026-11-30: Hyperliquid's "Trading > Fees" page
(hyperliquid.gitbook.io/hyperliquid-docs/trading/fees; perps tiers, maker-rebate tiers,
staking tiers); Bybit's Help Center "Trading Fee Structure" (base rates for perpetual and
futures contracts; the actual rate can differ by region: check "My Fee Rate"). Check them
against the venue's page before trusting a verdict with real money.
"""

from __future__ import annotations

from dataclasses import dataclass

from asmm.core.errors import ConfigError

# Base tier of Hyperliquid perps: the default wherever no tier is named.
MAKER_FEE = 0.00015  # 1.5 bp
TAKER_FEE = 0.00045  # 4.5 bp
DEFAULT_TIER = "hyperliquid:0"


@dataclass(frozen=True)
class FeeTier:
    """Maker and taker rates (fractions of notional) of one named tier, and what qualifies."""

    name: str
    maker: float
    taker: float
    qualifies: str


# Hyperliquid perps, by 14-day weighted volume (perps + 2 x spot), USD.
HYPERLIQUID_TIERS = {
    0: (0.00015, 0.00045, "14d volume <= $5M"),
    1: (0.00012, 0.00040, "14d volume > $5M"),
    2: (0.00008, 0.00035, "14d volume > $25M"),
    3: (0.00004, 0.00030, "14d volume > $100M"),
    4: (0.0, 0.00028, "14d volume > $500M"),
    5: (0.0, 0.00026, "14d volume > $2B"),
    6: (0.0, 0.00024, "14d volume > $7B"),
}
# Maker-rebate tiers, by the account's share of the exchange's 14-day maker volume.
HYPERLIQUID_MAKER_REBATES = {
    1: (-0.00001, "14d maker volume share > 0.5 %"),
    2: (-0.00002, "14d maker volume share > 1.5 %"),
    3: (-0.00003, "14d maker volume share > 3.0 %"),
}
# HYPE staked -> discount on the fees paid.
HYPERLIQUID_STAKING = {
    "wood": (0.05, "> 10 HYPE staked"),
    "bronze": (0.10, "> 100 HYPE staked"),
    "silver": (0.15, "> 1,000 HYPE staked"),
    "gold": (0.20, "> 10,000 HYPE staked"),
    "platinum": (0.30, "> 100,000 HYPE staked"),
    "diamond": (0.40, "> 500,000 HYPE staked"),
}
# Bybit perpetual & futures contracts (base rates; by 30-day volume or asset balance).
BYBIT_TIERS = {
    "vip0": (0.00020, 0.00055),
    "vip1": (0.00018, 0.00040),
    "vip2": (0.00016, 0.000375),
    "vip3": (0.00014, 0.00035),
    "vip4": (0.00012, 0.00032),
    "vip5": (0.00010, 0.00032),
    "supreme": (0.0, 0.00030),
}


def fee_tier(name: str) -> FeeTier:
    """The :class:`FeeTier` a name selects (see the module docstring); :class:`ConfigError`
    naming the known tiers otherwise."""
    venue, _, spec = name.strip().lower().partition(":")
    if venue == "bybit" and spec in BYBIT_TIERS:
        maker, taker = BYBIT_TIERS[spec]
        return FeeTier(name, maker, taker, f"Bybit {spec.upper()} (base rates)")
    if venue == "hyperliquid":
        base, *extras = spec.split("+")
        if base.isdigit() and int(base) in HYPERLIQUID_TIERS:
            maker, taker, why = HYPERLIQUID_TIERS[int(base)]
            parts = [f"Hyperliquid tier {base} ({why})"]
            discount = 0.0
            for extra in extras:
                if extra.startswith("mm") and extra[2:].isdigit() \
                        and int(extra[2:]) in HYPERLIQUID_MAKER_REBATES:
                    maker, why = HYPERLIQUID_MAKER_REBATES[int(extra[2:])]
                    parts.append(f"maker rebate tier {extra[2:]} ({why})")
                elif extra in HYPERLIQUID_STAKING:
                    discount, why = HYPERLIQUID_STAKING[extra]
                    parts.append(f"staking {extra} ({why}, -{discount:.0%} on fees paid)")
                else:
                    break
            else:
                scale = 1.0 - discount
                return FeeTier(name, maker * scale if maker > 0 else maker, taker * scale,
                               "; ".join(parts))
    raise ConfigError(
        f"unknown fee tier {name!r}: use hyperliquid:0..6 (optionally +mm1..3 and "
        f"+{'/'.join(HYPERLIQUID_STAKING)}) or bybit:{'/'.join(BYBIT_TIERS)}")


def all_tiers() -> list[FeeTier]:
    """Every plain tier (volume and VIP tiers, and each maker-rebate tier on tier 0)."""
    names = [f"hyperliquid:{t}" for t in HYPERLIQUID_TIERS]
    names += [f"hyperliquid:0+mm{k}" for k in HYPERLIQUID_MAKER_REBATES]
    names += [f"bybit:{v}" for v in BYBIT_TIERS]
    return [fee_tier(n) for n in names]
