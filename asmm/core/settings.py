"""Settings declared once: a dataclass field carries its default, unit and help, and every
front end (command-line options, config blocks) is generated from it.

The library declares; :mod:`asmm.cli.options` turns the declarations into ``argparse``
options, so a default lives in one place and the help cannot drift from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

# One inventory bound for the calibrator, the backtester and the bot (lots). A Freqtrade
# bot holds at most one lot (one trade per bot); the bound matters for two-sided execution,
# where five lots keep the quotes skewing well before either side is cut off.
MAX_INVENTORY_LOTS = 5.0

# Freqtrade's cadence as a live bot, measured on the paper exchange with a 1 s loop
# (benchmarks/README.md, "Backtester against a Freqtrade live bot on the paper exchange"),
# for the backtester's freqtrade executions (BacktestConfig.fill_reaction_ms,
# requote_gap_ms): from a fill to the decision that places the next order — Freqtrade sees
# the fill at its next poll of the order, then syncs its wallet — and from a re-priced
# order's cancel to its replacement's arrival. Medians of 193 fills and 370 cancels.
FREQTRADE_FILL_REACTION_MS = 2300.0
FREQTRADE_REQUOTE_GAP_MS = 800.0
# The same for a Freqtrade dry-run with a 1 s loop, from the bot's own database
# (benchmarks/README.md, "Backtester against a real Freqtrade dry-run"): from a fill as
# Freqtrade's dry-run finds it (the backtester's freqtrade-dry-run rule fills there too) to
# the next order, and a re-priced order's cancel to its replacement, which still waits
# for the order-book read that prices it. Medians of 322 fills and 161 cancels.
FREQTRADE_DRY_RUN_FILL_REACTION_MS = 840.0
FREQTRADE_DRY_RUN_REQUOTE_GAP_MS = 830.0


def setting(default: Any = dataclasses.MISSING, *, help: str, unit: str | None = None,
            flag: str | None = None, parse: Callable[[str], Any] | None = None,
            choices: Any = None, metavar: str | None = None,
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field that is also a command-line option.

    ``help`` says what it does; ``unit`` (shown in the help) what its number means;
    ``flag`` overrides ``--field-name``; ``parse`` turns the command-line text into the
    value (default: the type of the default); ``choices`` an iterable of allowed values
    (an enum class works).
    """
    meta = {"help": help, "unit": unit, "flag": flag, "parse": parse,
            "choices": choices, "metavar": metavar}
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"setting": meta})


def declared(cls) -> list[tuple[dataclasses.Field, dict]]:
    """The fields of dataclass ``cls`` declared with :func:`setting`, with their metadata."""
    return [(f, f.metadata["setting"]) for f in dataclasses.fields(cls)
            if "setting" in f.metadata]


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None
