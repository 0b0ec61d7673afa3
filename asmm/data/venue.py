"""Which exchange a collector folder's data came from: ``venue.json`` beside its files.

``asmm collect`` writes ``OUTPUT_DIR/venue.json`` when it starts::

    {"venue": "bybit", "symbols": {"BTC": "BTCUSDT"}, "source": "wss://..."}

so that what reads the folder later knows the venue without being told: the calibrator
takes that venue's default fee tier (Bybit: ``bybit:vip0``) unless ``--fee-tier`` names
one. It is a visible file, not a hidden one, so that copying a folder's files (``cp dir/*``)
takes it along. Files are named by coin on every venue (``trades_BTC_<day>.csv``), so one
folder holds one venue's data: a collector of another venue refuses it. A folder with data
and no ``venue.json`` was written before the file existed, by the Hyperliquid collector.
"""

from __future__ import annotations

import json
from pathlib import Path

from asmm.core.errors import DataError
from asmm.core.io import atomic_write_json
from asmm.data.files import list_coins

VENUE_FILE = "venue.json"
VENUES = ("hyperliquid", "bybit")
LEGACY_VENUE = "hyperliquid"  # a folder of data without venue.json


def read_venue(folder: str | Path) -> str | None:
    """The venue ``folder``'s ``venue.json`` names, or None when there is none; DataError
    when it cannot be read or names no known venue."""
    path = Path(folder) / VENUE_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    venue = doc.get("venue") if isinstance(doc, dict) else None
    if venue not in VENUES:
        raise DataError(f"{path} names venue {venue!r}, not one of {', '.join(VENUES)}")
    return venue


def data_venue(folder: str | Path) -> str | None:
    """The venue of the data in ``folder``: its ``venue.json``'s; Hyperliquid for data
    without one (older collectors); None for a folder with neither."""
    venue = read_venue(folder)
    if venue is None and Path(folder).is_dir() and list_coins(folder):
        return LEGACY_VENUE
    return venue


def claim_folder(folder: str | Path, venue: str, details: dict) -> None:
    """Mark ``folder`` as holding ``venue``'s data (``details`` go into the file too);
    DataError when it holds another venue's."""
    found = data_venue(folder)
    if found is not None and found != venue:
        why = "its venue.json says so" if read_venue(folder) else \
            "it has collector files and no venue.json (written before venue.json existed)"
        raise DataError(f"{folder} holds {found} data ({why}); the {venue} collector will not "
                        f"mix it with {venue} rows under the same coin names: use another "
                        "OUTPUT_DIR")
    atomic_write_json(Path(folder) / VENUE_FILE, {"venue": venue, **details})
