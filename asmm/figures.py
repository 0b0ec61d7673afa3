"""Writing matplotlib figures: one atomic save for every PNG the tools produce."""

from __future__ import annotations

from pathlib import Path


def save_png(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save ``fig`` to ``path`` through a temp file and a rename, then close it.

    A failed render leaves the previous PNG in place (a report someone has open is never
    replaced by half an image) and no temp file behind.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=dpi)
        tmp.replace(path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
