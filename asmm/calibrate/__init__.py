"""Data -> parameters: sigma, A and k per side (:mod:`.estimators`, pure functions over
arrays) and gamma by walk-forward backtest (:mod:`.calibration`). Depends on core, data and
sim."""
