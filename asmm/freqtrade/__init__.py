"""The rules the Freqtrade strategy (``user_data/strategies/avellaneda.py``, a thin adapter)
applies: its config block, quotes, execution policy, guards and shared state (:mod:`.mm`),
and Freqtrade candle files from collector trades (:mod:`.ftdata`). Depends on core and
data; only :mod:`.ftdata` imports Freqtrade (lazily, to write its files), so the rules are
testable without a bot."""
