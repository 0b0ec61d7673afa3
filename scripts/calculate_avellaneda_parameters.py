#!/usr/bin/env python3
"""The calibrator under the name users know: same options as `asmm calibrate`.

    scripts/calculate_avellaneda_parameters.py [COIN] [--data-dir DIR] [--output FILE] ...
"""

import sys

from asmm.cli import main

if __name__ == "__main__":
    # -v belongs to the top-level `asmm` parser, so it goes before the command name.
    argv = sys.argv[1:]
    verbose = [a for a in argv if a in ("-v", "-vv", "--verbose")]
    rest = [a for a in argv if a not in verbose]
    sys.exit(main([*verbose, "calibrate", *rest]))
