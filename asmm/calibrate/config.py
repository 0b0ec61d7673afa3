"""What a calibration run is told: every choice it makes (:class:`CalibrationConfig`, whose
command-line options are declared on its fields), where its data is
(:func:`resolve_data_dir`) and what it reports as it goes (:class:`Progress`)."""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from asmm.core.enums import Execution, Model
from asmm.core.fees import DEFAULT_TIER, fee_tier
from asmm.core.settings import MAX_INVENTORY_LOTS, setting

DEFAULT_DATA_DIR = "HL_data_collector/HL_data"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """``90``, ``30s``, ``15m``, ``24h``, ``1d`` -> seconds: how durations are typed."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smhd]?)\s*", text)
    if not m or float(m[1]) <= 0:
        # argparse shows this message as it is (any other error as "invalid value").
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration like 24h, 90m")
    return float(m[1]) * _UNITS[m[2] or "s"]


def duration_or_zero(text: str) -> float:
    """:func:`duration`, or ``0`` (a feature switched off)."""
    if re.fullmatch(r"\s*0+(\.0*)?\s*[smhd]?\s*", text):
        return 0.0
    return duration(text)


def _validity(text: str) -> timedelta:
    """``--valid-for``: typed as a duration, held as the timedelta the file's times need."""
    return timedelta(seconds=duration(text))


@dataclass(frozen=True)
class CalibrationConfig:
    """Every choice of a calibration run. Units: docs/design.md (seconds, price, lots).

    Fields declared with :func:`~asmm.core.settings.setting` are the options of
    ``asmm calibrate``; the others are set in code only.
    """

    coin: str = "BTC"
    model: str = setting(Model.GLFT, choices=Model,
                         help="quote model the parameters are for (and gamma is backtested "
                              "with)")
    sigma_dt: float = setting(1.0, unit="s", help="grid of the mid for sigma")
    tick: float | None = setting(None, parse=float,
                                 help="price tick; unset: inferred from the quotes")
    window: float = setting(
        86400.0, unit="s", parse=duration,
        help="hours of data sigma, A and k are estimated on, the latest (e.g. 24h, 90m, 2d); "
             "the time between recordings is left out, so bursts are pooled")
    walk_forward: float = setting(
        86400.0, unit="s", parse=duration_or_zero,
        help="latest hours gamma is backtested on, each UTC day of them with estimates from "
             "the --window before it; with less than two days of data, the latest third of "
             "it (at least 1h; none under 2h); 0: the documented fallback rule instead")
    window_days: int | None = setting(None, parse=int,
                                      help="--window in days (N: N x 24h), as before hours")
    walk_forward_days: int | None = setting(
        None, parse=int, help="--walk-forward in days (N: N x 24h; 0: off), as before hours")
    gamma_points: int = setting(32, help="size of the log-spaced gamma grid")
    gamma_min: float | None = setting(
        None, parse=float, help="smallest gamma, 1/price; unset: gamma_min_rel (0.001) x the "
                                "scale, k for glft, 1/(k sigma^2 T) for as (gamma.gamma_scale)")
    gamma_max: float | None = setting(
        None, parse=float, help="largest gamma, 1/price; unset: gamma_max_rel (10) x the scale")
    gamma_min_rel: float = 1e-3
    gamma_max_rel: float = 10.0
    risk_aversion: float = setting(
        0.5, help="objective = mean hourly PnL - this x std of hourly PnL - inventory penalty "
                  "(gamma.objective)")
    min_fills_per_hour: float = setting(
        1.0, help="a gamma whose backtest fills less often is not eligible (quoting so wide "
                  "that nothing fills is not market making)")
    inventory_penalty: float = setting(
        0.0, unit="price per lot^2 per hour",
        help="objective penalty on the mean |inventory|^2 of each hour (gamma.objective)")
    execution: str = setting(
        Execution.FREQTRADE, choices=Execution,
        help="how the bot trades, as the gamma search and the verdict simulate it: freqtrade "
             "(one ping-pong bot, the bot's default mode), freqtrade-pair (a long-only and a "
             "short-only bot), two-sided (both quotes resting: the model as written); with "
             "--bot-config and no --execution, from its asmm.mode")
    fill_reaction_ms: float = setting(
        0.0, unit="ms",
        help="the bot's reaction to its fill in the backtests (asmm backtest "
             "--fill-reaction-ms); 0 (an ideal bot) unless --bot-config is a live bot's "
             "(dry_run false), whose default is a live Freqtrade's, "
             "asmm.core.settings.FREQTRADE_FILL_REACTION_MS")
    requote_gap_ms: float = setting(
        0.0, unit="ms",
        help="a re-priced order off the book this long in the backtests (asmm backtest "
             "--requote-gap-ms); 0 unless --bot-config is a live bot's, as above "
             "(FREQTRADE_REQUOTE_GAP_MS)")
    fee_tier: str = setting(DEFAULT_TIER,
                            help="the venue's fee tier the backtests and the verdict use: "
                                 "hyperliquid:0..6 (+mm1..3, +wood..diamond) or "
                                 "bybit:vip0..vip5/supreme (asmm/core/fees.py); asmm "
                                 "calibrate without it (None): the base tier of the data's "
                                 "venue, bybit:vip0 for Bybit data (--venue)")
    maker_fee: float | None = setting(
        None, parse=float, help="maker fee as a fraction of notional (0.00015 = 1.5 bp; "
                                "negative: a rebate), overriding the tier's")
    taker_fee: float | None = setting(None, parse=float,
                                      help="taker fee as a fraction of notional, overriding "
                                           "the tier's")
    require_profitable: bool = setting(
        False, help="exit non-zero and write nothing when the verdict is unprofitable")
    order_size: float = setting(0.001, unit="coin",
                                help="order size (one lot) for the backtests")
    max_inventory: float = setting(MAX_INVENTORY_LOTS, unit="lots",
                                   help="inventory bound Q for the backtests")
    as_horizon: float = setting(
        86400.0, unit="s", parse=duration,
        help="model 'as': session length T (e.g. 1d); tau runs down to the next multiple of "
             "it in UTC epoch time (1d: the end of the UTC day)")
    min_sweeps: int = setting(
        100, help="fewest sweeps per side and window that support an (A, k) estimate")
    max_silence: float = setting(
        300.0, unit="s", parse=duration,
        help="a book frozen longer than this (e.g. 5m) is treated as an outage")
    quote_outlier_z: float = setting(
        20.0, help="a quote whose mid lies outside the trades before and after it by more than "
                   "this many robust sigmas over the time between them (plus the floor) is "
                   "left out as implausible (estimators.implausible_states)")
    quote_outlier_floor: float = setting(
        1e-3, help="the least distance from those trades that makes a quote implausible, as a "
                   "fraction of the price")
    microprice_horizon: float = setting(
        10.0, unit="s", help="horizon of the microprice: the mid's expected move over it, per "
                             "bucket of book imbalance")
    microprice_buckets: int = setting(10, help="imbalance buckets of the microprice")
    # setting() returns a dataclasses.field, and a timedelta is immutable: nothing is shared.
    validity: timedelta = setting(  # noqa: RUF009
        timedelta(hours=36), flag="--valid-for", parse=_validity, metavar="VALID_FOR",
        help="validity of the written file after the end of its data (e.g. 36h); older data "
             "is refused, since its file would be expired when written")
    valid_from: str = setting(
        "data", choices=("data", "now"),
        help="'now' counts the validity from computed_at instead of the data's end: for "
             "recorded days replayed as live (asmm replay --start-at now, the demo) only")

    # The exchange the data came from (set by the CLI from --venue or the data folder's
    # venue.json, asmm.data.venue): recorded in the file beside the fees it chose.
    venue: str | None = None

    def __post_init__(self):
        tier = fee_tier(self.fee_tier)  # ConfigError naming the known tiers
        # Frozen: the tier's rates fill what was not overridden, so every reader sees numbers.
        if self.maker_fee is None:
            object.__setattr__(self, "maker_fee", tier.maker)
        if self.taker_fee is None:
            object.__setattr__(self, "taker_fee", tier.taker)
        if self.execution not in tuple(Execution):
            raise ValueError(f"execution {self.execution!r}; choose one of "
                             f"{', '.join(Execution)}")
        object.__setattr__(self, "execution", Execution(self.execution))
        if self.model not in ("glft", "as"):
            raise ValueError(f"model must be 'glft' or 'as', got {self.model!r}")
        for name in ("sigma_dt", "max_inventory", "order_size", "max_silence"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if self.gamma_points < 1:
            raise ValueError("gamma_points must be >= 1")
        # The day options are the hour options in days: set, they win (old scripts).
        if self.window_days is not None:
            if self.window_days < 1:
                raise ValueError("window_days must be >= 1")
            object.__setattr__(self, "window", self.window_days * 86400.0)
        if self.walk_forward_days is not None:
            if self.walk_forward_days < 0:
                raise ValueError("walk_forward_days must be >= 0")
            object.__setattr__(self, "walk_forward", self.walk_forward_days * 86400.0)
        if not self.window > 0:
            raise ValueError("window must be > 0 (a duration such as 24h)")
        if not self.walk_forward >= 0:
            raise ValueError("walk_forward must be >= 0 (0: off)")
        if self.validity <= timedelta(0):
            raise ValueError("validity must be positive")
        if self.valid_from not in ("data", "now"):
            raise ValueError(f"valid_from must be 'data' or 'now', got {self.valid_from!r}")
        if not (self.microprice_horizon > 0 and self.microprice_buckets >= 2):
            raise ValueError("microprice_horizon must be > 0 and microprice_buckets >= 2")
        if not (self.quote_outlier_z > 0 and self.quote_outlier_floor >= 0):
            raise ValueError("quote_outlier_z must be > 0 and quote_outlier_floor >= 0")


class Progress:
    """What a run reports as it goes; the CLI draws bars, the library stays quiet."""

    def start(self, what: str, total: int) -> None:
        """A stage begins: ``what`` is "days" or "gamma grid"."""

    def advance(self, what: str, n: int = 1) -> None:
        """``n`` units of ``what`` are done."""


# The fee tier a venue's data is calibrated at when no tier is named: each venue's base tier.
VENUE_FEE_TIERS = {"hyperliquid": DEFAULT_TIER, "bybit": "bybit:vip0"}


def data_venue_and_tier(data_dir: str | Path, venue: str | None = None) -> tuple[str, str]:
    """``(venue, default fee tier)`` of the data in ``data_dir``: ``venue`` when given (a
    ConfigError when the folder's ``venue.json`` names another), else the folder's venue
    (:func:`asmm.data.venue.data_venue`: its ``venue.json``, Hyperliquid for older data),
    else Hyperliquid; the tier is that venue's base tier (:data:`VENUE_FEE_TIERS`)."""
    from asmm.core.errors import ConfigError, DataError
    from asmm.data.venue import data_venue

    try:
        found = data_venue(data_dir) if Path(data_dir).is_dir() else None
    except DataError as e:
        raise ConfigError(str(e)) from None
    if venue is not None and found is not None and venue != found:
        raise ConfigError(f"--venue {venue}, but the data in {data_dir} was collected from "
                          f"{found} (its venue.json)")
    chosen = venue or found or "hyperliquid"
    if chosen not in VENUE_FEE_TIERS:
        raise ConfigError(f"unknown venue {chosen!r}: {', '.join(VENUE_FEE_TIERS)}")
    return chosen, VENUE_FEE_TIERS[chosen]


def resolve_data_dir(arg: str | None) -> Path:
    """``--data-dir``, else ``$HL_DATA_LOC``, else ``HL_data_collector/HL_data``."""
    return Path(arg or os.environ.get("HL_DATA_LOC") or DEFAULT_DATA_DIR)
