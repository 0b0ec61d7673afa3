"""PnL reports of running bots: where the trades come from (:mod:`.sources`: the REST API
or the database), the figures (:mod:`.ledger`), the markouts of their fills against the
collector's mid (:mod:`.markouts`), the backtester over the same window (:mod:`.comparison`),
and the table, HTML page and PNG (:mod:`.rendering`). Depends on core, data and sim."""
