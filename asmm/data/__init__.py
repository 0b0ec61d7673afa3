"""Market data as files: the collector format (:mod:`.files`: kinds, columns, names, daily or
single-file layout, CSV or Parquet; :mod:`.rows`: one file read, bad rows dropped and
counted; :mod:`.readers`: typed arrays), the price grid of recorded data (:mod:`.grid`) and
synthetic markets with stated truth (:mod:`.synth`). Depends on :mod:`asmm.core` only."""
