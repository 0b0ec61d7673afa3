"""A Dask distributed client for the many-task commands (`asmm calibrate --coins`,
`asmm backtest --sweep`): the cluster they run on and the worker a task ran on.

- :func:`open_client`: a ``LocalCluster`` of worker *processes* with one thread each (the
  numba backtests hold the GIL: threads would queue behind each other), or the scheduler at
  an address (docs/cluster.md).
- :func:`this_worker`: the address and name of the worker running the caller, taken on the
  worker itself, so each task's outcome says where it ran.

Dask is imported where it is used: the rest of asmm runs without it (the ``scale`` extra).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from asmm.core.errors import ConfigError


def default_workers() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def this_worker() -> tuple[str, str]:
    """(address, name) of the Dask worker running the caller; outside one, this process."""
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):
        here = f"pid {os.getpid()}"
        return here, here
    name = str(w.name) if w.name is not None else w.address
    return w.address, name


def _set_log_level(name: str, level: int) -> None:
    logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def open_client(scheduler: str | None = None, workers: int | None = None, *,
                connect: float = 20.0, wait: float = 60.0,
                worker_log_level: int | None = None) -> Iterator:
    """A ``distributed.Client``, closed on exit.

    - ``scheduler`` given (``tcp://HOST:8786``): that cluster's, once it has a worker;
      :class:`ConfigError` when it cannot be reached in ``connect`` seconds or has no worker
      after ``wait`` more. The cluster keeps running afterwards.
    - Else a ``LocalCluster`` of ``workers`` processes (default: the cores), one thread
      each, its HTTP endpoint on a free port (not 8787, which another cluster may hold);
      ``worker_log_level``, if given, for asmm's loggers in its workers (whose log is this
      terminal). Closed with the client.
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=connect)
        except (OSError, TimeoutError) as e:
            raise ConfigError(f"--scheduler {scheduler}: cannot connect ({e})") from None
        with client:
            try:
                client.wait_for_workers(1, timeout=wait)
            except TimeoutError:
                raise ConfigError(f"--scheduler {scheduler}: no worker joined it in "
                                  f"{wait:.0f} s (start some: dask worker {scheduler})"
                                  ) from None
            yield client
        return
    n = workers or default_workers()
    if n < 1:
        raise ConfigError(f"--workers {n}: at least 1")
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        if worker_log_level is not None:
            client.run(_set_log_level, "asmm", worker_log_level)
        yield client


def describe(client, scheduler: str | None = None) -> str:
    """The cluster in words, for a table's title: the scheduler's address and its workers,
    or the local cluster's size."""
    n = len(client.nthreads())
    if scheduler is not None:
        return f"{scheduler} ({n} workers)"
    return f"a local cluster of {n} worker processes"


@contextlib.contextmanager
def cli_client(scheduler: str | None = None, workers: int | None = None) -> Iterator:
    """:func:`open_client` for a command line: Dask's own log follows the command's
    verbosity (its INFO lines would otherwise fill the terminal) — set after importing it,
    which sets its level from Dask's config — and the local workers print asmm's warnings
    only with -v."""
    import distributed  # noqa: F401

    level = logging.getLogger().getEffectiveLevel()
    logging.getLogger("distributed").setLevel(level)
    with open_client(scheduler, workers,
                     worker_log_level=None if level <= logging.INFO else logging.ERROR
                     ) as client:
        yield client
