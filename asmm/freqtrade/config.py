"""The ``"asmm"`` block of a Freqtrade config: every setting of the strategy, validated."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from asmm.core.enums import FlatSide, Mode, Reference
from asmm.core.errors import ConfigError
from asmm.core.fees import fee_tier


@dataclass(frozen=True)
class MMConfig:
    """The ``"asmm"`` block of a Freqtrade config. Every field has a safe default.

    Prices in USDC, times in seconds, fractions as fractions (0.05 = 5 %).
    """

    params_file: str = "scripts/avellaneda_parameters_BTC.json"
    mode: str = "pingpong"                  # pingpong | long | short
    flat_side_rule: str = "alternate"       # pingpong only: which side to quote when flat
    lot_size: float = 0.001                 # coin per order; q = position / lot_size
    horizon_seconds: float = 86400.0        # A–S session length, aligned to 00:00 UTC
    min_spread_ticks: float = 1.0           # floor on the quoted spread
    max_improve_ticks: float = 0.0          # never better the touch by more than this
    maker_fee: float | None = None          # None: fee_tier's, else the exchange's
                                            # market["maker"]
    fee_tier: str | None = None             # e.g. "hyperliquid:2+gold" (asmm.core.fees)
    tick: float | None = None               # None: the exchange's price precision
    kill_switch_file: str = "user_data/KILL"
    kill_timeout_seconds: float = 300.0     # then exit at market
    max_drawdown: float = 0.10              # below the running peak of realised equity; trips
                                            # the kill switch (sticky)
    liquidation_buffer: float = 0.05        # exit when price is within this of liquidation
    leverage: float = 1.0
    max_leverage: float = 3.0
    adx_filter: bool = False
    adx_timeframe: str = "5m"
    adx_period: int = 14
    shared_state_dir: str | None = None     # pair mode: folder of per-bot state files
    bot_id: str = "bot"
    state_max_age_seconds: float = 60.0     # the other bot's state older than this: no entries
    max_mid_distance: float = 0.05          # file's mid this far (fraction) from the live mid:
                                            # no entries
    reference: str = "mid"                  # mid | microprice: what the quotes centre on
    require_profitable: bool | None = None  # entries only on a file whose verdict is
                                            # profitable; None: yes unless dry_run
    max_data_age_seconds: float = 129600.0  # file's data window ended longer ago: no entries
                                            # (36 h, the calibrator's default validity)
    post_only: bool = True                  # live: entries and model-priced exits post-only
                                            # (a market or liquidation exit never); ignored
                                            # in dry-run, which knows no post-only

    @classmethod
    def from_dict(cls, doc: dict | None) -> MMConfig:
        """Validate the config block; unknown keys are an error (a typo must not pass)."""
        doc = dict(doc or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ConfigError(f"unknown asmm config keys {unknown}; known: {sorted(known)}")
        try:
            cfg = cls(**doc)
        except TypeError as e:
            raise ConfigError(f"asmm config: {e}") from None
        cfg.validate()
        return cfg

    def resolved(self, dry_run: bool) -> MMConfig:
        """The config with its run-dependent defaults set: ``require_profitable`` is on for
        a live bot (real money) and off in dry-run (watching an unprofitable file trade is
        how one learns why), unless the config says."""
        if self.require_profitable is not None:
            return self
        return replace(self, require_profitable=not dry_run)

    def validate(self) -> None:
        if self.mode not in tuple(Mode):
            raise ConfigError(f"asmm.mode = {self.mode!r}; choose one of {tuple(Mode)}")
        if self.reference not in tuple(Reference):
            raise ConfigError(f"asmm.reference = {self.reference!r}; choose one of "
                              f"{tuple(Reference)}")
        if self.flat_side_rule not in tuple(FlatSide):
            raise ConfigError(
                f"asmm.flat_side_rule = {self.flat_side_rule!r}; choose one of {tuple(FlatSide)}")
        positive = ("lot_size", "horizon_seconds", "kill_timeout_seconds", "max_drawdown",
                    "liquidation_buffer", "leverage", "max_leverage", "state_max_age_seconds",
                    "max_mid_distance", "max_data_age_seconds")
        for name in positive:
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"asmm.{name} = {v!r} must be a finite number > 0")
        for name in ("min_spread_ticks", "max_improve_ticks"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or v < 0:
                raise ConfigError(f"asmm.{name} = {v!r} must be >= 0")
        if not 1.0 <= self.leverage <= self.max_leverage:
            raise ConfigError(f"asmm.leverage = {self.leverage} must lie in "
                              f"[1, max_leverage = {self.max_leverage}]")
        if self.mode != "pingpong" and not self.shared_state_dir:
            raise ConfigError(f"asmm.mode = {self.mode!r} (a pair of bots) needs "
                              "asmm.shared_state_dir so both bots see the net inventory")
        if self.fee_tier is not None:
            if not isinstance(self.fee_tier, str):
                raise ConfigError(f"asmm.fee_tier = {self.fee_tier!r} must be a tier name")
            try:
                fee_tier(self.fee_tier)
            except ConfigError as e:
                raise ConfigError(f"asmm.fee_tier: {e}") from None
        if not isinstance(self.post_only, bool):
            raise ConfigError(f"asmm.post_only = {self.post_only!r} must be true or false")
        if self.adx_period < 2:
            raise ConfigError(f"asmm.adx_period = {self.adx_period} must be >= 2")
