"""What a calibration run is told: every choice it makes (:class:`CalibrationConfig`),
where its data is (:func:`resolve_data_dir`) and what it reports as it goes
(:class:`Progress`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from asmm.core.fees import MAKER_FEE

DEFAULT_DATA_DIR = "HL_data_collector/HL_data"


@dataclass(frozen=True)
class CalibrationConfig:
    """Every choice of a calibration run. Units: docs/design.md (seconds, price, lots)."""

    coin: str = "BTC"
    model: str = "glft"                 # quote model the file is for: glft | as
    sigma_dt: float = 1.0               # s, grid of the mid for sigma
    tick: float | None = None           # price grid; None: inferred from the quotes
    window_days: int = 1                # days pooled for sigma, A, k
    walk_forward_days: int = 1          # test days of the gamma search (each needs a day before)
    gamma_points: int = 32
    gamma_min: float | None = None      # 1/price; None: gamma_min_rel * gamma_scale()
    gamma_max: float | None = None      # 1/price; None: gamma_max_rel * gamma_scale()
    gamma_min_rel: float = 1e-3
    gamma_max_rel: float = 10.0
    risk_aversion: float = 0.5          # variance penalty of the objective, see objective()
    min_fills_per_hour: float = 1.0     # a gamma whose backtest trades less is not eligible
    inventory_penalty: float = 0.0      # price per lot^2 per hour, see objective()
    maker_fee: float = MAKER_FEE        # fraction of notional
    order_size: float = 0.001           # coin per lot
    max_inventory: float = 5.0          # lots
    as_horizon: float = 86400.0         # s, A-S session length for backtests (model "as")
    min_sweeps: int = 100               # per side and window; fewer cannot support (A, k)
    max_silence: float = 300.0          # s; a book frozen longer is treated as an outage
    quote_outlier_z: float = 20.0       # robust sigmas, see estimators.implausible_states
    quote_outlier_floor: float = 1e-3   # fraction of the price, ditto
    validity: timedelta = timedelta(hours=36)
    valid_from: str = "data"            # validity counts from: the data's end | "now"

    def __post_init__(self):
        if self.model not in ("glft", "as"):
            raise ValueError(f"model must be 'glft' or 'as', got {self.model!r}")
        for name in ("sigma_dt", "max_inventory", "order_size", "max_silence"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        for name in ("window_days", "gamma_points"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.walk_forward_days < 0:
            raise ValueError("walk_forward_days must be >= 0")
        if self.validity <= timedelta(0):
            raise ValueError("validity must be positive")
        if self.valid_from not in ("data", "now"):
            raise ValueError(f"valid_from must be 'data' or 'now', got {self.valid_from!r}")
        if not (self.quote_outlier_z > 0 and self.quote_outlier_floor >= 0):
            raise ValueError("quote_outlier_z must be > 0 and quote_outlier_floor >= 0")


class Progress:
    """What a run reports as it goes; the CLI draws bars, the library stays quiet."""

    def start(self, what: str, total: int) -> None:
        """A stage begins: ``what`` is "days" or "gamma grid"."""

    def advance(self, what: str, n: int = 1) -> None:
        """``n`` units of ``what`` are done."""


def resolve_data_dir(arg: str | None) -> Path:
    """``--data-dir``, else ``$HL_DATA_LOC``, else ``HL_data_collector/HL_data``."""
    return Path(arg or os.environ.get("HL_DATA_LOC") or DEFAULT_DATA_DIR)
