"""Files that appear whole or not at all: one atomic write for every file asmm replaces.

A reader (the bot, a healthcheck, someone with a report open) sees the old file or the new
one, never half of either, and a failed write leaves the old file and no temp file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike, *, mode: int = 0o644, durable: bool = True
                ) -> Iterator[Path]:
    """Yield a temp path beside ``path`` to write to; on a clean exit it replaces ``path``.

    The temp file is in the same folder (a rename is atomic only within one file system).
    ``mode`` 0644 by default: the temp file is created 0600, and the reader is often another
    user (the bot's container, not the calibrator's). ``durable`` fsyncs the data before the
    rename and the folder after it, so the new file survives a crash of the machine; a file
    rewritten every second (the heartbeat) skips that.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        if durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write_json(path: str | os.PathLike, doc: Any, *, mode: int = 0o644,
                      durable: bool = True) -> None:
    """Write ``doc`` as JSON through :func:`atomic_path`; NaN and inf are refused
    (``ValueError``), as they are not JSON."""
    with atomic_path(path, mode=mode, durable=durable) as tmp, open(tmp, "w") as f:
        json.dump(doc, f, indent=2, allow_nan=False)
        f.write("\n")


def save_png(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save the matplotlib figure ``fig`` to ``path`` through :func:`atomic_path`, then close
    it: a report someone has open is never replaced by half an image."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path, durable=False) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return Path(path)
