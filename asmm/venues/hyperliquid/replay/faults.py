"""Fault injection for the replay exchange: what a flaky exchange does to a client.

Counted per WebSocket connection, in *data* messages (bbo, trades, l2Book, candle):

- ``drop_after`` N: the server closes the connection right after its N-th data message.
- ``stall_every`` N / ``stall_seconds`` S: after every N-th data message the connection gets
  nothing for S seconds (the socket stays open, pings are still answered); events published
  meanwhile are never sent to it, as in a real feed outage.
- ``malformed_every`` N: after every N-th data message one extra, malformed message follows.
  It is valid JSON on the same channel and coin (so the Hyperliquid SDK routes it to the
  subscriber's callback, where a parser must reject it) with an impossible value. Data
  messages are never replaced, so "every data message sent is a row" still holds.
- ``silence_coin`` C / ``silence_after`` N / ``silence_seconds`` S: after a connection's N-th
  data message of coin C, that connection gets none of C's messages for S seconds (0 = for
  good) while the other coins keep streaming: one coin's feed going quiet. Resubscribing C
  does not end it (the exchange, not the subscription, is quiet); the withheld events are
  never sent to that connection.
"""

from __future__ import annotations

import copy

from asmm.venues.replay_common.faults import CoinSilence, Faults

__all__ = ["BAD_NUMBER", "CoinSilence", "Faults", "corrupt"]

BAD_NUMBER = "not-a-number"


def corrupt(channel: str, msg: dict) -> dict:
    """A malformed copy of a data message: same channel and coin, an unparseable price."""
    bad = copy.deepcopy(msg)
    data = bad["data"]
    if channel == "trades":
        data[0]["px"] = BAD_NUMBER
    elif channel == "bbo":
        side = data["bbo"][0] if data["bbo"][0] is not None else data["bbo"][1]
        side["px"] = BAD_NUMBER
    elif channel == "l2Book":
        data["levels"] = BAD_NUMBER
    elif channel == "candle":
        data["o"] = BAD_NUMBER
    else:
        raise ValueError(f"no malformed form for channel {channel!r}")
    return bad
