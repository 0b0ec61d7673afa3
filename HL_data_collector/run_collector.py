#!/usr/bin/env python3
"""Container entry point: ``asmm collect`` configured by environment variables.

``python run_collector.py`` collects (SYMBOLS, OUTPUT_DIR, ORDERBOOK_DEPTH, HL_API_URL,
FLUSH_SECONDS, STALE_SECONDS, ... — see ``asmm collect --help``; flags work here too);
``python run_collector.py --healthcheck`` is the compose healthcheck.
"""

import sys

from asmm.cli import main

if __name__ == "__main__":
    sys.exit(main(["collect", *sys.argv[1:]]))
