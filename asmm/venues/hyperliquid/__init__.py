"""Hyperliquid perpetuals: message shapes (:mod:`.protocol`), the collector
(:mod:`.collector`) and the replay exchange (:mod:`.replay`)."""
