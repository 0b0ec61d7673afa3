"""The Hyperliquid data collector under the module name existing setups know.

The logic lives in :mod:`asmm.venues.hyperliquid.collector`; this module re-exports it for
scripts that import
``hyperliquid_data_collector`` and runs it when executed (same as ``run_collector.py``).
"""

import sys

from asmm.cli import main
from asmm.venues.hyperliquid.collector.config import CollectorConfig, from_env
from asmm.venues.hyperliquid.collector.service import Collector

__all__ = ["Collector", "CollectorConfig", "from_env"]

if __name__ == "__main__":
    sys.exit(main(["collect", *sys.argv[1:]]))
