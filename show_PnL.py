#!/usr/bin/env python3
"""PnL report of one or more Freqtrade bots under the name users know: same options as
`asmm pnl` (a table on the terminal, a PNG, optionally JSON and an HTML page).

    show_PnL.py --url http://127.0.0.1:8080 [--url ...] | --db tradesv3.dryrun.sqlite ...

The logic lives in :mod:`asmm.cli.pnl` and :mod:`asmm.report`.
"""

import sys

from asmm.cli.pnl import main

if __name__ == "__main__":
    sys.exit(main())
