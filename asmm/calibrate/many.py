"""Many coins at once on Dask distributed: one task per coin, each on a worker process.

- **One task per coin.** The task (:func:`calibrate_one`) gets the data folder's path, the
  output folder's path and the :class:`CalibrationConfig` with its coin: it reads its own
  files and writes ``<output_dir>/avellaneda_parameters_<COIN>.json`` atomically
  (:func:`asmm.calibrate.run.write_result`), so no market data and no parameter file passes
  through the scheduler, only a small :class:`CoinOutcome`. Both paths must therefore mean
  the same folder on every worker (local disk for a local cluster; shared storage for a
  cluster of machines, docs/cluster.md).
- **A failing coin fails alone.** The task turns a refusal (bad data, a file it cannot
  write) or a bug into its outcome's ``error`` and writes nothing, as a single run does;
  a task the cluster could not run (its worker died) becomes an outcome on the client.
  :func:`calibrate_many` always returns one outcome per coin.
- **Which worker ran it** is in the outcome (``worker``: the address, ``worker_name``),
  taken on the worker itself, with the task's wall time there.
- **The cluster** is the caller's (:func:`calibrate_many` takes a ``distributed.Client``);
  :func:`asmm.core.cluster.open_client` makes one: a ``LocalCluster`` of worker *processes*
  with one thread each (the numba backtests hold the GIL: threads would queue behind each
  other), or the scheduler at an address.

Dask is imported where it is used, so the rest of the calibrator runs without it (the
``scale`` extra).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

from asmm.calibrate.config import CalibrationConfig

# open_client and the coin list are shared with `asmm backtest --sweep`; imported from
# here too (asmm.calibrate.many.open_client, .parse_coins) as before they moved.
from asmm.core.cluster import default_workers, open_client, this_worker  # noqa: F401
from asmm.core.errors import AsmmError
from asmm.core.params import default_path
from asmm.data.selection import list_coins, parse_coins  # noqa: F401

log = logging.getLogger(__name__)


@dataclass
class CoinOutcome:
    """One coin's task: where it ran, how long it took, and what it wrote or why not."""

    coin: str
    error: str | None = None     # one line: why nothing was written; None: written
    path: str | None = None      # the parameter file written
    worker: str = ""             # address of the worker that ran the task ("" if unknown)
    worker_name: str = ""        # its name (dask worker --name), else its address
    seconds: float = math.nan    # wall time of the task on the worker
    sigma: float | None = None   # USDC/sqrt(s)
    A_bid: float | None = None   # 1/s
    k_bid: float | None = None   # 1/USDC
    A_ask: float | None = None
    k_ask: float | None = None
    gamma: float | None = None   # 1/USDC
    gamma_method: str | None = None
    profitable: bool | None = None
    pnl_per_hour: float | None = None    # USDC/h at the file's lot, after fees
    fills_per_hour: float | None = None
    verdict: str | None = None   # the verdict's one sentence
    warnings: int = 0            # how many warnings the file carries

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        if not math.isfinite(self.seconds):
            d["seconds"] = None
        return d


def calibrate_one(coin: str, data_dir: str, output_dir: str, cfg: CalibrationConfig,
                  now: datetime | None = None) -> CoinOutcome:
    """The task: calibrate ``coin`` from ``data_dir`` and write its file into ``output_dir``.

    Never raises for a coin that cannot be calibrated: the outcome's ``error`` says why and
    nothing is written (the previous file, if any, stays).
    """
    from asmm.calibrate.run import calibrate, write_result

    worker, name = this_worker()
    out = CoinOutcome(coin, worker=worker, worker_name=name)
    path = default_path(coin, output_dir)
    t0 = time.perf_counter()
    try:
        result = calibrate(data_dir, replace(cfg, coin=coin), now=now)
        write_result(path, result)
    except (AsmmError, OSError) as e:
        out.error = " ".join(str(e).split()) or type(e).__name__
    except Exception as e:
        # A bug, not bad data: the worker's log gets the traceback, the outcome one line.
        log.exception("%s: calibration failed on an internal error", coin)
        out.error = f"internal error ({type(e).__name__}: {' '.join(str(e).split())})"
    else:
        p, v = result.params, result.params.verdict or {}
        out.path = str(path)
        out.sigma, out.gamma = p.sigma, p.gamma
        out.A_bid, out.k_bid, out.A_ask, out.k_ask = p.bid.A, p.bid.k, p.ask.A, p.ask.k
        out.gamma_method = result.gamma.get("method")
        out.profitable = v.get("profitable")
        out.pnl_per_hour = v.get("expected_pnl_per_hour")
        out.fills_per_hour = v.get("expected_fills_per_hour")
        out.verdict = result.verdict_sentence
        out.warnings = len(result.warnings)
    out.seconds = time.perf_counter() - t0
    return out


def calibrate_many(coins: list[str], data_dir: str | Path, output_dir: str | Path,
                   cfg: CalibrationConfig, client, *, now: datetime | None = None,
                   on_done: Callable[[CoinOutcome], None] | None = None) -> list[CoinOutcome]:
    """Calibrate ``coins`` on ``client``'s cluster, one task each; one outcome per coin, in
    the order of ``coins``. ``on_done`` is called on this side as each task finishes.

    ``data_dir`` and ``output_dir`` are handed to the workers as they are: paths every worker
    reads (and writes) as the same folder.
    """
    from distributed import as_completed

    coins = list(dict.fromkeys(coins))
    batch = uuid.uuid4().hex[:8]
    futures = {
        client.submit(calibrate_one, coin, str(data_dir), str(output_dir),
                      replace(cfg, coin=coin), now, key=f"calibrate-{coin}-{batch}",
                      pure=False): coin
        for coin in coins}
    done: dict[str, CoinOutcome] = {}
    try:
        for fut in as_completed(futures):
            coin = futures[fut]
            try:
                out = fut.result()
            except Exception as e:  # the cluster could not run it (a worker died, ...)
                out = CoinOutcome(coin, error=f"the task did not run to the end on the "
                                              f"cluster ({type(e).__name__}: "
                                              f"{' '.join(str(e).split())}); nothing written")
            done[coin] = out
            if on_done is not None:
                on_done(out)
    finally:
        # Interrupted: no task left behind on a shared cluster.
        client.cancel([f for f in futures if not f.done()])
    return [done[c] for c in coins]
