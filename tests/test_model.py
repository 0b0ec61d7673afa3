"""Quote models: hand-computed values, the maker rules, and properties (hypothesis)."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from asmm.core.model import as_quotes, glft_depths, glft_omega, glft_quotes, quotes

# The 2008 paper's setting: sigma 2, gamma 0.1, k 1.5, A 140.
S, SIGMA, GAMMA, K, A = 100.0, 2.0, 0.1, 1.5, 140.0


def test_as_hand_computed():
    # r = 100 - q*gamma*sigma^2*tau = 100 - 1*0.1*4*0.5 = 99.8
    # spread = gamma*sigma^2*tau + (2/gamma) ln(1 + gamma/k) = 0.2 + 20*ln(1.0666...)
    spread = 0.2 + 20.0 * math.log(1.0 + 0.1 / 1.5)
    assert spread == pytest.approx(1.4907704, abs=1e-6)
    qt = as_quotes(S, 1.0, 0.5, sigma=SIGMA, gamma=GAMMA, k=K)
    assert float(qt.bid) == pytest.approx(99.8 - spread / 2, abs=1e-12)
    assert float(qt.ask) == pytest.approx(99.8 + spread / 2, abs=1e-12)


def test_glft_hand_computed():
    # omega = sqrt(sigma^2 gamma / (2 k A) * (1 + gamma/k)^(1 + k/gamma))
    #       = sqrt(4*0.1/(2*1.5*140) * (1.0666...)^16) = sqrt(0.000952381 * 2.808433)
    omega = math.sqrt(0.4 / 420.0 * (1.0 + 0.1 / 1.5) ** 16)
    assert omega == pytest.approx(0.0517180, abs=1e-6)
    half = 10.0 * math.log(1.0 + 0.1 / 1.5)  # (1/gamma) ln(1 + gamma/k) = 0.645385
    for q in (-2.0, 0.0, 3.0):
        qt = glft_quotes(S, q, sigma=SIGMA, gamma=GAMMA, A=A, k=K)
        assert float(qt.bid_depth) == pytest.approx(half + (2 * q + 1) / 2 * omega, abs=1e-9)
        assert float(qt.ask_depth) == pytest.approx(half - (2 * q - 1) / 2 * omega, abs=1e-9)
    assert glft_omega(SIGMA, GAMMA, A, K) == pytest.approx(omega, rel=1e-12)


def test_maker_fee_added_to_each_depth():
    plain = glft_quotes(S, 0.0, sigma=SIGMA, gamma=GAMMA, A=A, k=K)
    fee = glft_quotes(S, 0.0, sigma=SIGMA, gamma=GAMMA, A=A, k=K, maker_fee=0.00015)
    # 0.00015 of a 100 mid is 0.015 price units on each side.
    assert float(fee.bid_depth - plain.bid_depth) == pytest.approx(0.015, abs=1e-12)
    assert float(fee.ask_depth - plain.ask_depth) == pytest.approx(0.015, abs=1e-12)


def test_tick_rounding_is_away_from_the_mid():
    qt = glft_quotes(S, 0.0, sigma=SIGMA, gamma=GAMMA, A=A, k=K, tick=0.1)
    # Unrounded: 100 -/+ 0.671244 -> bid 99.328756 rounds down to 99.3, ask up to 100.7.
    assert float(qt.bid) == pytest.approx(99.3, abs=1e-9)
    assert float(qt.ask) == pytest.approx(100.7, abs=1e-9)


def test_price_already_on_the_grid_is_not_pushed_a_tick_further():
    # A 0.6 minimum spread around 100 puts the quotes exactly on the 0.1 grid, where float
    # division misses by an ulp (100.3 / 0.1 = 1002.9999999999999); they must stay put.
    assert 100.3 / 0.1 != 1003.0
    qt = quotes("glft", 100.0, 0.0, sigma=1e-9, gamma=1e-3, A_bid=1.0, k_bid=1e9,
                min_spread=0.6, tick=0.1)
    assert float(qt.ask) == pytest.approx(100.3, abs=1e-9)
    assert float(qt.bid) == pytest.approx(99.7, abs=1e-9)


def test_inventory_bound_suppresses_the_side_that_would_breach_it():
    q = np.array([-3.0, -2.0, 0.0, 2.0, 3.0])
    qt = glft_quotes(S, q, sigma=SIGMA, gamma=GAMMA, A=A, k=K, max_inventory=2.0)
    # q = 2: buying one more lot makes 3 > Q -> no bid; q = -2: no ask.
    np.testing.assert_array_equal(np.isnan(qt.bid), [False, False, False, True, True])
    np.testing.assert_array_equal(np.isnan(qt.ask), [True, True, False, False, False])


def test_min_spread_widens_symmetrically():
    qt = glft_quotes(S, 0.0, sigma=SIGMA, gamma=GAMMA, A=A, k=K, min_spread=2.0)
    assert float(qt.ask - qt.bid) == pytest.approx(2.0, abs=1e-12)
    assert float(qt.bid) == pytest.approx(99.0, abs=1e-12)


def test_never_crosses_the_touch_and_improvement_limit():
    # A huge long inventory pushes the ask to the mid; the touch is 99.9 / 100.1.
    qt = glft_quotes(S, 20.0, sigma=SIGMA, gamma=GAMMA, A=A, k=K, tick=0.1,
                     best_bid=99.9, best_ask=100.1)
    assert float(qt.ask) >= 99.9 + 0.1 - 1e-9  # a maker never lifts/hits the touch
    limited = glft_quotes(S, 20.0, sigma=SIGMA, gamma=GAMMA, A=A, k=K, tick=0.1,
                          best_bid=99.9, best_ask=100.1, max_improve_ticks=0)
    assert float(limited.ask) == pytest.approx(100.1, abs=1e-9)  # joins the best ask


def test_unknown_model_and_missing_A_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model"):
        quotes("avellaneda", S, 0.0, sigma=SIGMA, gamma=GAMMA, k_bid=K)
    with pytest.raises(ValueError, match="finite A"):
        quotes("glft", S, 0.0, sigma=SIGMA, gamma=GAMMA, k_bid=K)


def test_vectorised_matches_scalar_calls_and_keeps_shape():
    mids = np.array([[100.0, 101.0], [99.0, 98.5]])
    qs = np.array([[-1.0, 0.0], [1.0, 2.0]])
    qt = glft_quotes(mids, qs, sigma=SIGMA, gamma=GAMMA, A=A, k=K, tick=0.5)
    assert qt.bid.shape == (2, 2)
    for i in range(2):
        for j in range(2):
            one = glft_quotes(mids[i, j], qs[i, j], sigma=SIGMA, gamma=GAMMA, A=A, k=K,
                              tick=0.5)
            assert float(one.bid) == qt.bid[i, j] and float(one.ask) == qt.ask[i, j]


def test_per_side_parameters_use_each_sides_own_intensity():
    qt = glft_quotes(S, 0.0, sigma=SIGMA, gamma=GAMMA, A=A, k=K, A_ask=70.0, k_ask=3.0)
    d_bid, d_ask = glft_depths(0.0, SIGMA, GAMMA, A, K, 70.0, 3.0)
    assert float(qt.bid_depth) == pytest.approx(d_bid) and float(qt.ask_depth) == pytest.approx(
        d_ask)
    # A steeper ask-side decay (k larger) means a tighter ask.
    assert float(qt.ask_depth) < float(qt.bid_depth)


# ---------------------------------------------------------------- properties

positive = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)
model_args = st.fixed_dictionaries({
    "sigma": st.floats(0.01, 50.0), "gamma": st.floats(1e-4, 5.0),
    "A": st.floats(0.01, 500.0), "k": st.floats(0.01, 20.0), "tau": st.floats(0.0, 100.0),
})


def _q(model, mid, q, p, **kw):
    return quotes(model, mid, q, sigma=p["sigma"], gamma=p["gamma"], A_bid=p["A"],
                  k_bid=p["k"], tau=p["tau"], **kw)


@settings(max_examples=200, deadline=None)
@given(p=model_args, model=st.sampled_from(["as", "glft"]))
def test_symmetric_at_zero_inventory(p, model):
    qt = _q(model, 1000.0, 0.0, p)
    assert float(qt.bid_depth) == pytest.approx(float(qt.ask_depth), rel=1e-9, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(p=model_args, model=st.sampled_from(["as", "glft"]),
       tick=st.sampled_from([0.0, 0.01, 1.0]),
       q1=st.integers(-10, 10), dq=st.integers(1, 5))
def test_quotes_move_down_as_inventory_rises(p, model, tick, q1, dq):
    lo = _q(model, 1000.0, float(q1), p, tick=tick)
    hi = _q(model, 1000.0, float(q1 + dq), p, tick=tick)
    assert float(hi.bid) <= float(lo.bid) + 1e-9
    assert float(hi.ask) <= float(lo.ask) + 1e-9


@settings(max_examples=200, deadline=None)
@given(p=model_args, model=st.sampled_from(["as", "glft"]), q=st.integers(-5, 5),
       factor=st.floats(1.0, 10.0))
def test_spread_grows_with_sigma(p, model, q, factor):
    base = _q(model, 1000.0, float(q), p)
    wider = _q(model, 1000.0, float(q), {**p, "sigma": p["sigma"] * factor})
    assert float(wider.spread) >= float(base.spread) - 1e-9 * (1 + float(base.spread))


@settings(max_examples=300, deadline=None)
@given(p=model_args, model=st.sampled_from(["as", "glft"]), q=st.integers(-50, 50),
       mid=st.floats(1.0, 1e6), tick=st.sampled_from([0.0, 0.001, 0.1, 1.0]),
       fee=st.floats(-0.0001, 0.001))
def test_quotes_never_cross_the_mid(p, model, q, mid, tick, fee):
    qt = _q(model, mid, float(q), p, tick=tick, maker_fee=fee)
    assert float(qt.bid) <= mid + 1e-9 * mid
    assert float(qt.ask) >= mid - 1e-9 * mid


@settings(max_examples=200, deadline=None)
@given(p=model_args, q=st.integers(-5, 5))
def test_glft_skew_per_lot_is_omega(p, q):
    omega = glft_omega(p["sigma"], p["gamma"], p["A"], p["k"])
    assume(np.isfinite(omega) and omega < 1e6)
    b0, a0 = glft_depths(float(q), p["sigma"], p["gamma"], p["A"], p["k"], p["A"], p["k"])
    b1, a1 = glft_depths(float(q + 1), p["sigma"], p["gamma"], p["A"], p["k"], p["A"], p["k"])
    assert b1 - b0 == pytest.approx(omega, rel=1e-9, abs=1e-12)
    assert a0 - a1 == pytest.approx(omega, rel=1e-9, abs=1e-12)
    # and the quotes themselves (no clamps when both depths stay positive)
    assume(min(b0, a0, b1, a1) > 0)
    z = _q("glft", 1e5, float(q), {**p, "tau": 0.0})
    o = _q("glft", 1e5, float(q + 1), {**p, "tau": 0.0})
    assert float(o.bid_depth - z.bid_depth) == pytest.approx(omega, rel=1e-6, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(sigma=st.floats(0.1, 10.0), gamma=st.floats(1e-3, 2.0), k=st.floats(0.1, 10.0))
def test_as_spread_tends_to_the_intensity_term_as_tau_goes_to_zero(sigma, gamma, k):
    limit = 2.0 / gamma * math.log(1.0 + gamma / k)
    taus = (1.0, 1e-2, 1e-4, 1e-8, 0.0)
    gaps = [float(as_quotes(1e4, 0.0, tau, sigma=sigma, gamma=gamma, k=k).spread) - limit
            for tau in taus]
    # The excess over the limit is exactly the inventory-risk term gamma sigma^2 tau, so it
    # vanishes linearly with tau (float noise: a few ulps of a 1e4 price).
    for tau, gap in zip(taus, gaps, strict=True):
        assert gap == pytest.approx(gamma * sigma**2 * tau, rel=1e-6, abs=1e-9)
    assert gaps[-1] == pytest.approx(0.0, abs=1e-9)
