"""Exchanges: their message shapes, the collector that records them and the replay exchange
that serves a recorded market back. One package per venue; code that does not depend on
the venue lives in core, data or sim. Depends on core, data and sim."""
