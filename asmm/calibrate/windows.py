"""Which hours the calibrator estimates on and which it backtests gamma on: windows measured
in hours of data, the time between recordings left out.

A window of ``24h`` is the latest UTC hours (:class:`asmm.calibrate.days.Block`) whose recorded
time adds up to 24 hours: two full days of continuous recording give the latest day;
seven 15-minute bursts on seven days give all seven, stitched. Hours are whole UTC hours, so
a window reaches at least as far back as asked (1 % short counts as reached: the last hour
of a recording ends at its last event, a few milliseconds before the hour).

The walk-forward tests gamma on the latest ``walk_forward`` hours of data, each UTC day of
them a test stretch (:class:`Piece`) with its own estimate from the ``window`` hours before
it. With less than two days of data it tests on the latest third of what exists (at least
an hour), so a collector started this morning gives a walk-forward file this afternoon;
under two hours there is nothing to walk forward on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from asmm.calibrate.days import HOUR, Block

DAY = 86_400.0
SLACK = 0.01  # the share of a window a recording may fall short of it by and still fill it
MIN_TEST = HOUR
MIN_DATA = 2 * HOUR  # an hour to test on and at least an hour before it


@dataclass(frozen=True)
class Piece:
    """One walk-forward test stretch: ``test``, hours of one UTC day, and ``window``, the
    hours before them its estimate comes from (empty: none)."""

    test: tuple[Block, ...]
    window: tuple[Block, ...]

    @property
    def span(self) -> tuple[float, float]:
        """(first event, just after the last event) of the test hours, epoch s: the
        backtest's window, so its hours are the recording's, not the clock's."""
        return self.test[0].first, self.test[-1].end + 1e-3


@dataclass(frozen=True)
class Plan:
    """``final``: the hours sigma, A and k are estimated on; ``pieces``: the walk-forward's
    test stretches (empty: gamma by the fallback rule, ``reason`` says why)."""

    final: tuple[Block, ...]
    pieces: tuple[Piece, ...]
    test_seconds: float
    reason: str = ""


def active_seconds(blocks: Sequence[Block]) -> float:
    """Recorded time of ``blocks``, s."""
    return float(sum(b.active for b in blocks))


def latest(blocks: Sequence[Block], seconds: float) -> tuple[Block, ...]:
    """The latest ``blocks`` (in time order) whose recorded time reaches ``seconds``: all of
    them when they do not."""
    total = 0.0
    for i in range(len(blocks) - 1, -1, -1):
        total += blocks[i].active
        if total >= seconds * (1 - SLACK):
            return tuple(blocks[i:])
    return tuple(blocks)


def walk_forward_seconds(total: float, walk_forward: float) -> tuple[float, str]:
    """How many seconds of data the walk-forward tests on, given ``total`` seconds of data
    (0 and the reason when it cannot)."""
    if walk_forward <= 0:
        return 0.0, "walk-forward disabled"
    if total >= 2 * DAY * (1 - SLACK):
        return walk_forward, ""
    if total < MIN_DATA * (1 - SLACK):
        return 0.0, (f"only {total / HOUR:.2g} h of data: the walk-forward needs "
                     f"{MIN_DATA / HOUR:.0f} h (an hour to test on and the hours before it)")
    return min(walk_forward, max(total / 3.0, MIN_TEST)), ""


def needed_seconds(window: float, walk_forward: float) -> float:
    """Data to read, newest first, before the plan cannot change with more: the final
    window, the walk-forward's tests and the window before them, and two days (below them
    the test length depends on how much data there is)."""
    if walk_forward <= 0:
        return window
    return max(window, walk_forward + window, 2 * DAY)


def plan(blocks: Sequence[Block], window: float, walk_forward: float) -> Plan:
    """The hours to estimate on and the walk-forward's test stretches, from ``blocks`` (the
    hours read, in time order; the latest at least :func:`needed_seconds`)."""
    blocks = tuple(blocks)
    final = latest(blocks, window)
    seconds, reason = walk_forward_seconds(active_seconds(blocks), walk_forward)
    if not seconds:
        return Plan(final, (), 0.0, reason)
    test = latest(blocks, seconds)
    if len(test) == len(blocks):
        # The rest is the window of the first stretch: keep at least the first hour for it.
        test = test[1:]
    if not test:
        return Plan(final, (), 0.0, "no hour of data before the test hours")
    first = len(blocks) - len(test)
    pieces = tuple(Piece(p.test, latest(blocks[:first + i], window))
                   for i, p in zip(_starts(test), by_day(test), strict=True))
    return Plan(final, pieces, seconds)


def _starts(blocks: Sequence[Block]) -> list[int]:
    """Index of the first block of each UTC day in ``blocks``."""
    return [i for i, b in enumerate(blocks) if i == 0 or b.day != blocks[i - 1].day]


def by_day(blocks: Sequence[Block]) -> tuple[Piece, ...]:
    """``blocks`` cut into stretches of one UTC day each (no estimation window)."""
    starts = _starts(blocks)
    ends = [*starts[1:], len(blocks)]
    return tuple(Piece(tuple(blocks[a:b]), ()) for a, b in zip(starts, ends, strict=True))
