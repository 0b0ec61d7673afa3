"""Shared fixtures. Servers start on free ports on 127.0.0.1; data is made here, never fetched."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from asmm.synth import SynthConfig, generate


@pytest.fixture(scope="session")
def small_market(tmp_path_factory) -> tuple[Path, dict]:
    """Two short-but-busy synthetic days (daily CSV layout) and their truth.

    Smaller rates than a real day so tests that only need *a* market stay fast; tests of
    estimator accuracy make their own full-size market.
    """
    out = tmp_path_factory.mktemp("small_market")
    cfg = SynthConfig(days=2, seed=7, bbo_rate=1.0, A_bid=0.2, A_ask=0.2, l2_interval=10.0,
                      start=date(2025, 9, 1))
    return out, generate(cfg, out)
