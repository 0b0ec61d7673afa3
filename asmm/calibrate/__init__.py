"""Data -> parameters: sigma, A and k per side (:mod:`.estimators`, pure functions over
arrays; :mod:`.days`, a day's statistics and a window's estimate), gamma by walk-forward
backtest (:mod:`.gamma`), and the run that writes the parameter file (:mod:`.run`, settings
in :mod:`.config`). Depends on core, data and sim."""
