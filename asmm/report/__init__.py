"""PnL reports of running bots (:mod:`.pnl`): from the REST API or the database, as a
table, an HTML page or a PNG, beside the backtester over the same window. Depends on core,
data and sim."""
