"""Moved to :mod:`asmm.venues.collector_common.writer`, shared by every venue's collector.

This name stays for existing imports (and monkeypatching): it *is* that module.
"""

import sys

from asmm.venues.collector_common import writer as _shared

sys.modules[__name__] = _shared
