"""Bybit v5 (USDT linear perpetuals): message shapes (:mod:`.protocol`), the replay
exchange (:mod:`.replay`) and the collector (:mod:`.collector`)."""
