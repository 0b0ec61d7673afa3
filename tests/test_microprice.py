"""The microprice adjustment recovered from a book whose imbalance moves the mid by a known
amount (a generator written here, not asmm.data.synth)."""

from __future__ import annotations

import numpy as np
import pytest

from asmm.calibrate.microprice import estimate_microprice
from asmm.core.errors import EstimationError
from asmm.core.reference import microprice


def imbalance_market(seconds: int, c: float, seed: int):
    """A one-tick book (tick 1) whose imbalance I is redrawn every second, uniform on
    [0, 1]; the next second the mid steps one tick up with probability (1 + c (2I - 1)) / 2,
    else down. So E[mid change over any horizon | I now] = c (2I - 1): the true G."""
    rng = np.random.default_rng(seed)
    imb = rng.random(seconds)
    up = rng.random(seconds) < 0.5 * (1 + c * (2 * imb - 1))
    steps = np.where(up, 1.0, -1.0)
    bid = 100_000.0 + np.concatenate([[0.0], np.cumsum(steps[:-1])])
    total = rng.uniform(1.0, 10.0, seconds)
    t_ms = (np.arange(seconds) * 1000).astype(np.int64)
    return t_ms, bid, bid + 1.0, imb * total, (1 - imb) * total, imb


def test_adjustment_per_bucket_is_the_expected_move():
    c, buckets = 0.4, 10
    t_ms, bid, ask, bs, as_, _ = imbalance_market(200_000, c, seed=1)
    mp = estimate_microprice(t_ms, bid, ask, bs, as_, np.ones(t_ms.size, bool), 1.0,
                             horizon=5.0, buckets=buckets)
    centre = (np.arange(buckets) + 0.5) / buckets
    truth = c * (2 * centre - 1)  # the bucket mean of c (2I - 1): linear, so at the centre
    # Within 4 standard errors per bucket (se from non-overlapping windows: conservative).
    assert np.all(np.abs(mp.adjustment - truth) <= 4 * mp.se), (mp.adjustment, truth, mp.se)
    assert mp.adjustment[0] < 0 < mp.adjustment[-1]
    np.testing.assert_allclose(mp.adjustment, -mp.adjustment[::-1])  # symmetrised
    # The reference price: a bid-heavy book is worth more than its mid.
    assert microprice(100_000.5, 9.0, 1.0, mp) == pytest.approx(100_000.5 + mp.adjustment[-1])
    assert microprice(100_000.5, 0.0, 0.0, mp.as_dict()) == 100_000.5


def test_an_uninformative_book_gives_no_adjustment():
    t_ms, bid, ask, bs, as_, _ = imbalance_market(200_000, 0.0, seed=2)
    mp = estimate_microprice(t_ms, bid, ask, bs, as_, np.ones(t_ms.size, bool), 1.0,
                             horizon=5.0)
    assert np.all(np.abs(mp.adjustment) <= 4 * mp.se)


def test_too_little_data_is_a_clear_error():
    t_ms, bid, ask, bs, as_, _ = imbalance_market(100, 0.4, seed=3)
    with pytest.raises(EstimationError, match="samples per imbalance bucket"):
        estimate_microprice(t_ms, bid, ask, bs, as_, np.ones(t_ms.size, bool), 1.0)
