"""Fault injection for a replay exchange: what a flaky exchange does to a client, on any
venue's WebSocket.

Counted per WebSocket connection, in *data* messages (market data, not confirmations or
pongs):

- ``drop_after`` N: the server closes the connection right after its N-th data message.
- ``stall_every`` N / ``stall_seconds`` S: after every N-th data message the connection gets
  nothing for S seconds (the socket stays open, pings are still answered); events published
  meanwhile are never sent to it, as in a real feed outage.
- ``malformed_every`` N: after every N-th data message one extra, malformed message follows
  (the venue's server builds it: valid JSON on the same channel and coin with an impossible
  value). Data messages are never replaced, so "every data message sent is a row" still
  holds.
- ``silence_coin`` C / ``silence_after`` N / ``silence_seconds`` S: after a connection's N-th
  data message of coin C, that connection gets none of C's messages for S seconds (0 = for
  good) while the other coins keep streaming: one coin's feed going quiet. Resubscribing C
  does not end it (the exchange, not the subscription, is quiet); the withheld events are
  never sent to that connection.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Faults:
    drop_after: int = 0
    stall_every: int = 0
    stall_seconds: float = 0.0
    malformed_every: int = 0
    silence_coin: str = ""
    silence_after: int = 0
    silence_seconds: float = 0.0

    def __post_init__(self):
        for name in ("drop_after", "stall_every", "malformed_every", "silence_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 = off), got {getattr(self, name)}")
        if self.stall_seconds < 0:
            raise ValueError(f"stall_seconds must be >= 0, got {self.stall_seconds}")
        if self.stall_every and not self.stall_seconds:
            raise ValueError("stall_every needs stall_seconds > 0")
        if not (self.silence_seconds >= 0 and math.isfinite(self.silence_seconds)):
            raise ValueError(f"silence_seconds must be >= 0, got {self.silence_seconds}")
        if bool(self.silence_coin) != bool(self.silence_after):
            raise ValueError("silence_coin and silence_after go together (a coin and N >= 1)")

    @property
    def any(self) -> bool:
        return bool(self.drop_after or self.stall_every or self.malformed_every)


class CoinSilence:
    """The ``silence_*`` fault's state: data messages of the coin sent per connection, and
    until when (monotonic) each connection gets none of them."""

    def __init__(self, faults: Faults):
        self.coin, self.after = faults.silence_coin, faults.silence_after
        self.seconds = faults.silence_seconds or math.inf
        self._sent: dict[int, int] = {}
        self._until: dict[int, float] = {}

    def lets(self, conn_id: int, coin: str) -> bool:
        """Whether connection ``conn_id`` may get a message of ``coin`` now."""
        if coin != self.coin:
            return True
        return time.monotonic() >= self._until.get(conn_id, -math.inf)

    def sent(self, conn_id: int, coin: str) -> None:
        """One data message of ``coin`` went to ``conn_id``: the N-th starts the silence."""
        if coin != self.coin:
            return
        n = self._sent[conn_id] = self._sent.get(conn_id, 0) + 1
        if n == self.after:
            self._until[conn_id] = time.monotonic() + self.seconds
