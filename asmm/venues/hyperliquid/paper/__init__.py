"""The paper exchange: Hyperliquid's private API (``POST /exchange``, the user ``/info``
requests) served by the replay exchange, matching our orders against the replayed market by
the backtester's fill rule (:mod:`asmm.sim.rules`) and keeping accounts in a SQLite ledger.
"""
