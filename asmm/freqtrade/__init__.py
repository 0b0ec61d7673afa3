"""Freqtrade's side of asmm: the strategy (:mod:`.strategy`, a thin adapter that Freqtrade
loads through ``user_data/strategies/avellaneda.py``), the rules it applies (:mod:`.config`,
:mod:`.quotes`, :mod:`.policy`, :mod:`.guards`, :mod:`.shared_state`, :mod:`.indicators`),
the user_data files asmm ships (:mod:`.userdir`) and Freqtrade candle files from collector
trades (:mod:`.ftdata`). Depends on core and data; only :mod:`.strategy` imports Freqtrade's
strategy interface and :mod:`.ftdata` its data handlers (lazily), so the rules are testable
without a bot."""
