"""Markouts, by hand: the sign says whether the market moved against the fill."""

import math

import numpy as np

from asmm.sim.markouts import markouts, mean_markouts


def test_markouts_by_hand():
    mid_t = np.array([0.0, 0.5, 1.5, 10.0, 70.0])
    mid = np.array([100.0, 99.0, 98.0, 101.0, 100.0])
    # A buy at 100 at t=0: 1 s later the mid is 99 (-100 bp, against us), 10 s later 101.
    # A sell at 100 at t=0: the same moves, opposite sign. A buy at t=20: the mid is 101 from
    # t=10 to 70 (+100 bp at 1 s and 10 s); the data ends before 80, so no 60 s markout.
    m = markouts(np.array([0.0, 0.0, 20.0]), np.array([100.0, 100.0, 100.0]),
                 np.array([1, -1, 1]), mid_t, mid)
    assert m[0].tolist() == [-100.0, 100.0, 100.0]
    assert m[1].tolist() == [100.0, -100.0, -100.0]
    assert m[2, 0] == 100.0 and m[2, 1] == 100.0 and math.isnan(m[2, 2])
    means = mean_markouts(m)
    assert means == {"markout_1s_bp": 100 / 3, "markout_10s_bp": 100 / 3, "markout_60s_bp": 0.0}
    assert mean_markouts(markouts(np.zeros(0), np.zeros(0), np.zeros(0), mid_t, mid)) == {
        "markout_1s_bp": None, "markout_10s_bp": None, "markout_60s_bp": None}
