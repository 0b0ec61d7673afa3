"""Fee tiers by name, as the venues publish them (asmm/core/fees.py cites the pages)."""

import pytest

from asmm.core.errors import ConfigError
from asmm.core.fees import MAKER_FEE, TAKER_FEE, all_tiers, fee_tier


def test_base_tiers_are_the_defaults_and_the_published_rates():
    base = fee_tier("hyperliquid:0")
    assert (base.maker, base.taker) == (MAKER_FEE, TAKER_FEE) == (0.00015, 0.00045)
    assert (fee_tier("hyperliquid:4").maker, fee_tier("hyperliquid:4").taker) == (0.0, 0.00028)
    assert (fee_tier("bybit:vip0").maker, fee_tier("bybit:vip0").taker) == (0.0002, 0.00055)
    assert fee_tier("bybit:supreme").maker == 0.0


def test_rebates_and_staking_combine_as_documented():
    assert fee_tier("hyperliquid:0+mm2").maker == -0.00002       # a rebate replaces the fee
    gold = fee_tier("hyperliquid:2+gold")                          # -20 % on fees paid
    assert gold.maker == pytest.approx(0.00008 * 0.8) and gold.taker == pytest.approx(0.00028)
    both = fee_tier("hyperliquid:1+mm1+diamond")                   # rebates are not discounted
    assert both.maker == -0.00001 and both.taker == pytest.approx(0.00040 * 0.6)
    assert "maker rebate tier 1" in both.qualifies and "staking diamond" in both.qualifies


@pytest.mark.parametrize("name", ["hyperliquid:7", "hyperliquid:0+mm4", "hyperliquid:0+gld",
                                  "bybit:vip9", "binance:0", ""])
def test_unknown_tiers_are_refused_naming_the_known_ones(name):
    with pytest.raises(ConfigError, match=r"hyperliquid:0\.\.6"):
        fee_tier(name)


def test_every_tier_makes_sense():
    tiers = all_tiers()
    assert len(tiers) == 17
    for t in tiers:
        assert -0.0001 < t.maker < t.taker < 0.001, t
