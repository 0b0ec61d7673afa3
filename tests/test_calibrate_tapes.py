"""The calibrator's estimates on synthetic tapes of every convention, against their truth.

The synth prints a sweep's last fill rounded down or up to the grid, and stops a share of
sweeps at the touch whatever their reach (as 80-90 % of real Hyperliquid BTC sweeps do).
sigma 3 $/sqrt(s) with a 1 $ tick also makes the tick's rounding noise matter (+0.9 % on the
plain estimate). Each estimate must land within 4 of its own standard errors of the truth
(sigma and k the law's, A the fill rate on the grid, ``truth["tape"]["A_grid"]``): a
two-sided false-failure probability of 6e-5 per number.
"""

from __future__ import annotations

from datetime import date

import pytest

from asmm.calibrate.config import CalibrationConfig
from asmm.calibrate.days import day_stats, estimate
from asmm.data.synth import SynthConfig, generate

TOL_SE = 4.0
DAY = date(2025, 9, 1)


@pytest.mark.parametrize("rounding", ["floor", "ceil"])
@pytest.mark.parametrize("touch_only", [0.0, 0.6, 0.85])
def test_sigma_A_k_recovered_on_every_tape_convention(tmp_path, rounding, touch_only):
    cfg = SynthConfig(days=1, seed=21, sigma=3.0, A_bid=0.5, A_ask=0.5, k_bid=0.5, k_ask=0.5,
                      rounding=rounding, touch_only=touch_only, l2_interval=60.0)
    truth = generate(cfg, tmp_path)
    e = estimate([day_stats(tmp_path, "BTC", DAY, CalibrationConfig())])
    assert e.sigma.noise_corrected
    assert abs(e.sigma.sigma - truth["sigma"]) <= TOL_SE * e.sigma.se
    for side in ("bid", "ask"):
        fit = getattr(e, side)
        assert abs(fit.k - truth[side]["k"]) <= TOL_SE * fit.k_se, (side, fit)
        A_grid = truth["tape"]["A_grid"][side]
        assert abs(fit.A - A_grid) <= TOL_SE * fit.A_se, (side, fit.A, A_grid, fit.A_se)
        # Every sweep prints at the touch: its observed rate is the law's A, whatever the tape
        # (3 %: six Poisson sd of the day's ~43,000 sweeps).
        assert fit.touch_rate == pytest.approx(truth[side]["A"], rel=0.03)
