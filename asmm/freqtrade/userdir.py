"""The files of a Freqtrade user_data folder that asmm ships: the strategy file Freqtrade
loads and the config that trades against the replay exchange.

They are package data (``templates/``, laid out as under ``user_data/``), so whatever runs
the strategy from an installed asmm — the demo, a test — needs no checkout of the
repository. The repository's own ``user_data`` holds the same files, byte for byte
(tests/test_demo.py checks it), for the compose services and ``make bot``. No Freqtrade
import: reading them costs nothing.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from asmm.core.io import atomic_path

STRATEGY = "Avellaneda"
# Paths under templates/, the same as under a user_data folder.
STRATEGY_FILE = "strategies/avellaneda.py"
REPLAY_CONFIG = "config.replay.json"


def template(name: str) -> str:
    """The text of a shipped file, ``name`` as under ``user_data/``."""
    return resources.files("asmm.freqtrade").joinpath("templates", name).read_text()


def replay_config() -> dict:
    """Freqtrade's config for a dry-run against ``asmm replay`` on 127.0.0.1:8765."""
    return json.loads(template(REPLAY_CONFIG))


def write_strategy(userdir: Path) -> Path:
    """Write the strategy file into ``userdir``; return its folder, Freqtrade's
    ``--strategy-path``."""
    path = Path(userdir) / STRATEGY_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(template(STRATEGY_FILE))
    return path.parent
