"""Market data as files: the collector format (:mod:`.marketdata`: CSV or Parquet, daily or
single-file layout), the price grid of recorded data (:mod:`.grid`) and synthetic markets
with stated truth (:mod:`.synth`). Depends on :mod:`asmm.core` only."""
