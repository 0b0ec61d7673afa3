"""Estimators on tapes we did not design to match them.

The generator here is not asmm.data.synth: it draws each sweep's depth from the exponential
law and then prints it the way different tapes do — the last print rounded down to the grid
or up to the first level at or beyond the depth, a share of sweeps that stop at the touch
whatever their depth, a reference mid off the level grid by a fraction of a tick. The
convention-free k must recover the truth on every one; the full-tape likelihood, written for
one convention, is shown not to.

Tolerances: 4 standard errors of the estimate (as the estimator reports them, from the
Fisher information), a two-sided false-failure probability of 6e-5 per case. Seeds are fixed,
so a run is deterministic; the tolerance says how far a correct estimator may land.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from asmm.calibrate.estimators import estimate_sigma, sigma_stats
from asmm.calibrate.intensity import (
    ReachStats,
    estimate_k,
    estimate_side,
    fill_rate_curve,
    reach_counts,
)

TOL_SE = 4.0


def tape_levels(rng, n: int, k: float, tick: float, *, rounding: str, touch_only: float,
                offset: float) -> np.ndarray:
    """The deepest level (0 = touch) each of ``n`` sweeps prints. Depth from the mid
    ~ Exponential(k); the touch is ``half a tick + offset`` from the reference mid."""
    u = 0.5 * tick + offset
    depth = rng.exponential(1.0 / k, n)
    x = (depth - u) / tick
    j = np.floor(x) if rounding == "floor" else np.ceil(x)
    j = np.maximum(j, 0).astype(np.int64)
    j[rng.random(n) < touch_only] = 0
    return j


def hist_of(levels: np.ndarray, spread_ticks: int = 1) -> np.ndarray:
    js, counts = np.unique(levels, return_counts=True)
    return np.column_stack([np.full(js.size, spread_ticks), js, counts]).astype(np.int64)


CASES = [(k, tick, rounding, touch, offset)
         for k, tick in ((0.04, 1.0), (1.0, 1.0))
         for rounding in ("floor", "ceil")
         for touch in (0.0, 0.6, 0.85)
         for offset in (0.0, 0.3)]


@pytest.mark.parametrize("k, tick, rounding, touch_only, offset", CASES)
def test_k_is_recovered_whatever_the_tape_convention(k, tick, rounding, touch_only, offset):
    # 300,000 sweeps: a week of BTC at ~0.5 sweeps/s a side. At k = 1/$ (BTC-like: most
    # sweeps at the touch) that leaves 7,000-66,000 past it, enough for a 1-3 % error.
    rng = np.random.default_rng(hash((k, rounding, touch_only, offset)) % 2**32)
    levels = tape_levels(rng, 300_000, k, tick, rounding=rounding, touch_only=touch_only,
                         offset=offset)
    est = estimate_k(reach_counts(hist_of(levels)), tick)
    assert abs(est.k - k) <= TOL_SE * est.se, (est, k)
    # The robustness check from level 2 agrees within the two errors combined.
    est2 = estimate_k(reach_counts(hist_of(levels)), tick, start_level=2)
    assert abs(est2.k - est.k) <= TOL_SE * math.hypot(est.se, est2.se)


def test_the_standard_error_is_the_spread_of_the_estimate():
    """The reported se matches the spread of k over independent tapes (200 of them), within
    the sampling error of a standard deviation from 200 draws (about 5 %, so 20 %)."""
    rng = np.random.default_rng(5)
    ks, ses = [], []
    for _ in range(200):
        levels = tape_levels(rng, 20_000, 1.0, 1.0, rounding="ceil", touch_only=0.6,
                             offset=0.0)
        e = estimate_k(reach_counts(hist_of(levels)), 1.0)
        ks.append(e.k)
        ses.append(e.se)
    assert np.std(ks, ddof=1) == pytest.approx(np.mean(ses), rel=0.2)


@pytest.mark.parametrize("rounding, touch_only, off_by_more_than", [
    ("ceil", 0.0, 0.03), ("floor", 0.6, 0.5)])
def test_the_full_tape_likelihood_is_biased_off_its_own_convention(rounding, touch_only,
                                                                   off_by_more_than):
    """Why the touch is left out: the likelihood that also scores ``P(j = 0)`` assumes the
    floor convention with no touch-only share (our own synth's law). On a tape rounded up it
    is off by several %, on a touch-heavy tape by tens of % — far outside its own error."""
    rng = np.random.default_rng(11)
    k = 0.04
    levels = tape_levels(rng, 300_000, k, 1.0, rounding=rounding, touch_only=touch_only,
                         offset=0.0)
    old = estimate_side(ReachStats(1.0, hist_of(levels), exposure=86_400.0))
    assert abs(old.k / k - 1) > off_by_more_than
    assert abs(old.k - k) > 10 * old.k_se


def test_no_sweep_past_the_start_level_is_a_clear_error():
    from asmm.core.errors import EstimationError

    with pytest.raises(EstimationError, match="not identified"):
        estimate_k(reach_counts(hist_of(np.zeros(100, dtype=np.int64))), 1.0)
    with pytest.raises(EstimationError, match="went past level 1"):
        estimate_k(reach_counts(hist_of(np.ones(100, dtype=np.int64))), 1.0)


# --------------------------------------------------------------------------- sigma


def rounded_mid_stats(sigma: float, tick: float | None, seconds: int, seed: int):
    """Sigma statistics of a Brownian mid sampled every second, observed as the midpoint of
    a one-tick book around it (bid = the grid price below), or exactly when ``tick`` is None."""
    rng = np.random.default_rng(seed)
    m = 100_000.0 + np.cumsum(rng.normal(0.0, sigma, seconds))
    mid = m if tick is None else (np.floor(m / tick) + 0.5) * tick
    t_ms = (np.arange(seconds) * 1000).astype(np.int64)
    return sigma_stats(t_ms, mid, np.ones(seconds, dtype=bool), 0.0, seconds - 1.0, 1.0,
                       np.zeros((0, 2)))


def test_sigma_is_corrected_for_tick_rounding_when_the_data_show_it():
    # sigma 3 $/sqrt(s), tick 1: rounding adds var(e) = tick^2/12 per observation, so
    # E[r^2] = 9 + 1/6 and the plain estimate is sqrt(1 + 1/54) - 1 = +0.92 % high; its own
    # error over eight days is ~0.085 %, so the bias is far outside it.
    e = estimate_sigma(rounded_mid_stats(3.0, 1.0, 8 * 86_400, seed=1))
    assert e.noise_corrected and e.lag1_corr < 0
    assert abs(e.sigma - 3.0) <= TOL_SE * e.se
    assert e.sigma_raw / 3.0 - 1 == pytest.approx(math.sqrt(1 + 1 / 54) - 1,
                                                  abs=TOL_SE * e.se_raw / 3)
    assert abs(e.sigma_raw - 3.0) > TOL_SE * e.se_raw
    assert e.se / e.se_raw == pytest.approx(math.sqrt(3), rel=0.1)  # the price of the fix


def test_sigma_without_noise_is_left_alone():
    e = estimate_sigma(rounded_mid_stats(3.0, None, 172_800, seed=2))
    assert not e.noise_corrected and e.sigma == e.sigma_raw
    assert abs(e.sigma - 3.0) <= TOL_SE * e.se


# --------------------------------------------------------------------------- A


@pytest.mark.parametrize("rounding", ["floor", "ceil"])
@pytest.mark.parametrize("touch_only", [0.0, 0.85])
def test_A_is_the_fill_rate_curves_intercept_on_the_grid(rounding, touch_only):
    """Sweeps arrive at A = 0.3/s over two days of one- and two-tick spreads (k = 1/$). A
    quote J >= 1 levels past the touch is filled at the rate of sweeps reaching J, which the
    law puts at ``A' exp(-k delta_J)``; under floor rounding ``A' = A`` exactly, under ceil a
    sweep reaching depth d prints one level further, so ``A' = A e^{k tick}``; a sweep that
    stops at the touch fills no quote past it, so a touch-only share P scales it by 1 - P.
    The fill rate on the grid is what the file carries (the convention it writes). Checked
    within 4 se, and the fitted curve against the observed rates level by level."""
    A, k, tick = 0.3, 1.0, 1.0
    rng = np.random.default_rng(3)
    T_by_spread = {1: 150_000.0, 2: 22_800.0}
    rows, levels = [], []
    for spread, T in T_by_spread.items():
        n = rng.poisson(A * T)
        offset = 0.5 * (spread - 1) * tick  # the touch is half the spread from the mid
        levels.append(tape_levels(rng, n, k, tick, rounding=rounding, touch_only=touch_only,
                                  offset=offset))
        rows.append((spread, T))
    reach = reach_counts(hist_of(np.concatenate(levels)))
    kest = estimate_k(reach, tick)
    curve = fill_rate_curve(reach, np.array(rows), kest, tick)
    expected = A * (1 - touch_only) * (math.exp(k * tick) if rounding == "ceil" else 1.0)
    assert abs(curve.A - expected) <= TOL_SE * curve.A_se, (curve.A, expected, curve.A_se)
    # Past the touch the fitted curve is the observed one, within each level's Poisson error
    # (the fit uses the mean half-spread, exact for the dominant one-tick book to ~2 %).
    T = sum(T_by_spread.values())
    for J in (1, 2, 3):
        sd = math.sqrt(curve.observed[J] / T)
        assert abs(curve.fitted[J] - curve.observed[J]) <= TOL_SE * sd + 0.03 * curve.observed[J]
