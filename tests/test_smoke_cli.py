"""The console script is installed and every command documents its options."""

import subprocess
import sys
from pathlib import Path

import pytest

from asmm.cli import COMMANDS, build_parser


def test_console_script_help():
    out = subprocess.run([str(Path(sys.executable).parent / "asmm"), "--help"], capture_output=True,
                         text=True, check=True).stdout
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help(name):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[name]
    for action in sub._actions:
        if action.dest != "help":
            assert action.help, f"asmm {name}: option {action.option_strings} has no help"
