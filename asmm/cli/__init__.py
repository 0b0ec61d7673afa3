"""`asmm <command>`: argument parsing only; every command's logic lives in the library.

Each command is a module here with ``register(subparsers)`` (cheap imports only, so
``asmm --help`` is instant) that sets ``func`` to a ``run(args) -> int`` which imports the
library it needs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# One line per command; the module names its own options.
COMMANDS = ["synth", "paper2008", "paper", "demo", "collect", "dataset", "calibrate", "replay",
            "backtest", "ftdata", "pnl"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asmm",
        description="Avellaneda-Stoikov / GLFT market making for Hyperliquid on Freqtrade.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v info, -vv debug); default: warnings only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"asmm.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    from rich.logging import RichHandler

    logging.basicConfig(level=level, format="%(message)s", datefmt="%H:%M:%S",
                        handlers=[RichHandler(show_path=False,
                                              console=_stderr_console())])
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


if __name__ == "__main__":
    sys.exit(main())
