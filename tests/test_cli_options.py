"""Options generated from declared settings: one default and one help, everywhere."""

import argparse
from dataclasses import dataclass

import pytest

from asmm.cli.options import add_options, config_from
from asmm.core.enums import Execution, Mode, execution_for
from asmm.core.settings import setting


@dataclass(frozen=True)
class Example:
    window_hours: float = setting(24.0, help="hours of data", unit="h")
    execution: str = setting(Execution.TWO_SIDED, help="what to simulate", choices=Execution)
    parquet: bool = setting(False, help="write Parquet")
    label: str = "not an option"


def parse(argv, **kw):
    p = argparse.ArgumentParser()
    add_options(p, Example, **kw)
    return p, p.parse_args(argv)


def test_defaults_help_and_values_come_from_the_field():
    p, args = parse([])
    assert config_from(Example, args) == Example()
    text = p.format_help()
    assert "hours of data (default: 24.0 h)" in text
    assert "(default: two-sided)" in text and "--label" not in text
    _, args = parse(["--window-hours", "6", "--execution", "freqtrade", "--parquet"])
    cfg = config_from(Example, args)
    assert cfg == Example(6.0, "freqtrade", True)
    assert cfg.execution == Execution.FREQTRADE  # a StrEnum equals its spelling


def test_choices_are_enforced_and_a_command_may_change_a_default(capsys):
    with pytest.raises(SystemExit):
        parse(["--execution", "both"])
    assert "invalid choice: 'both'" in capsys.readouterr().err
    _, args = parse([], defaults={"window_hours": 1.0}, skip=("parquet",))
    assert args.window_hours == 1.0 and not hasattr(args, "parquet")


def test_the_bot_mode_names_its_backtest_execution():
    assert execution_for("pingpong") is Execution.FREQTRADE
    assert execution_for(Mode.LONG) is Execution.FREQTRADE_PAIR
    with pytest.raises(ValueError):
        execution_for("both")
