"""Hyperliquid facts used as defaults across the tools, kept in one place so a change of the
fee schedule is one edit. No heavy imports: the CLIs read these at start-up."""

MAKER_FEE = 0.00015  # base tier, fraction of notional (1.5 bp)
TAKER_FEE = 0.00045  # base tier, fraction of notional (4.5 bp)
