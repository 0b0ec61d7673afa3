"""The calibrator's verdict (a parameter file's ``verdict`` block,
:data:`asmm.core.params_blocks.VERDICT_KEYS`) in one sentence, for every screen that shows
it: the calibrator's closing line and the PnL report beside the live figures."""

from __future__ import annotations


def sentence(v: dict, tier: str) -> str:
    """The verdict in one sentence for the screen; ``tier`` names the fees it was computed at
    (a tier name, or a phrase where the tier is unknown). Fees in the block are fractions of
    notional (shown in bp), the PnL in USDC per hour at the file's lot."""
    fee = f"maker {v['maker_fee'] * 1e4:.3g} bp"
    at = (f"{v['expected_pnl_per_hour']:+.4g} USDC/h at {v['expected_fills_per_hour']:.3g} "
          f"fills/h over {v['tested_hours']:.3g} h" + (" (in sample)" if v["in_sample"] else ""))
    be = v["break_even_maker_fee"]
    if be is None:
        even = "no maker fee down to -5 bp makes it break even"
    else:
        even = (f"it breaks even at a maker fee <= {be * 1e4:.2g} bp"
                + (" (a rebate tier)" if be < 0 else ""))
    if v["profitable"]:
        return f"At {tier} ({fee}) the chosen gamma is profitable here: {at}; {even}."
    if v["expected_fills_per_hour"] == 0:
        # The fee added to the quoted depth put every quote out of the market's reach.
        return (f"At {tier} ({fee}) no gamma is profitable here: the fee pushes the quotes "
                f"out of reach (no fill in {v['tested_hours']:.3g} h"
                + (", in sample" if v["in_sample"] else "") + f"); {even}.")
    return f"At {tier} ({fee}) no gamma is profitable here: best {at}; {even}."
