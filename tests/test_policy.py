"""One execution policy: the backtest kernel and the Freqtrade strategy run the same compiled
functions (asmm.core.policy) and agree on every input, the strategy through the wrappers in
asmm.freqtrade.policy that translate its enums and datetimes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from asmm.core import policy as compiled
from asmm.core.enums import FlatSide, Mode, Side
from asmm.freqtrade import policy as strategy
from asmm.sim import decision
from asmm.sim.config import BacktestConfig
from asmm.sim.engine import _param_record

SIDES = {Side.LONG: compiled.SIDE_LONG, Side.SHORT: compiled.SIDE_SHORT}
LOTS = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)


def test_the_kernel_calls_the_compiled_policy():
    assert decision.flat_side is compiled.flat_side
    assert decision.pricing_q is compiled.pricing_q
    assert decision.tau_seconds is compiled.tau_seconds


@pytest.mark.parametrize("rule", list(FlatSide))
@pytest.mark.parametrize("last", [None, Side.LONG, Side.SHORT])
def test_flat_side_agrees(rule, last):
    # The kernel holds the rule as the engine writes it and the last entry as a side code.
    code = float(_param_record(BacktestConfig(model="fixed", fixed_depth=1.0, flat_side=rule),
                               1.0)["flat_side"])
    kernel = compiled.flat_side(code, SIDES.get(last, compiled.SIDE_NONE))
    bot = strategy.flat_side(rule, last)
    assert kernel == SIDES[bot]
    want = {FlatSide.LONG: Side.LONG, FlatSide.SHORT: Side.SHORT}.get(
        rule, Side.SHORT if last == Side.LONG else Side.LONG)
    assert bot == want


@pytest.mark.parametrize("mode", list(Mode))
def test_pricing_q_agrees(mode):
    for own, net, entry in itertools.product(LOTS, LOTS, (True, False)):
        bot = strategy.pricing_q(mode, own_q=own, net_q=net, is_entry=entry)
        # The kernel's one bot prices at the net q; its pair asks pricing_q.
        kernel = net if mode == Mode.PINGPONG else compiled.pricing_q(True, own, net, entry)
        assert bot == kernel
        assert bot == (own if mode != Mode.PINGPONG and entry else net)


@pytest.mark.parametrize("horizon", [1.0, 60.0, 3600.0, 86400.0])
def test_tau_agrees_and_has_the_floor_in_both(horizon):
    day = datetime(2025, 9, 1, tzinfo=UTC).timestamp()
    for offset in (0.0, 0.000_5, 0.25, 0.999_9, 59.999_9, 3599.75, 43_200.0, 86_399.999_5):
        now = datetime.fromtimestamp(day + offset, UTC)
        bot = strategy.tau_seconds(now, horizon)
        kernel = compiled.tau_seconds(now.timestamp(), horizon)
        assert bot == kernel
        assert compiled.TAU_FLOOR <= bot <= horizon
    # Less than a millisecond before a boundary both give the 1 ms floor, not ~0.
    just_before = datetime.fromtimestamp(day + 86_400.0 - 0.000_2, UTC)
    assert strategy.tau_seconds(just_before, 86400.0) == compiled.TAU_FLOOR
    assert compiled.tau_seconds(just_before.timestamp(), 86400.0) == compiled.TAU_FLOOR
