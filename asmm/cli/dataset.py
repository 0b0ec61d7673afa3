"""`asmm dataset`: collector data as a hive-partitioned Parquet dataset (asmm.data.dataset)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "dataset", help="collector data as a hive-partitioned Parquet dataset",
        description="Write the collector's days (CSV or Parquet, daily or single files) as "
                    "OUT/kind=K/coin=C/date=YYYY-MM-DD/part-0.parquet (gaps: "
                    "OUT/kind=gaps/coin=C/part-0.parquet), the collector's columns and "
                    "types, which DuckDB, Polars, Dask and Spark read with hive partitioning "
                    "and every asmm command takes as --data-dir. Incremental: only days whose "
                    "source files changed (path, size, mtime, recorded in "
                    "OUT/_asmm_dataset/<COIN>.json) are written again, each atomically. "
                    "docs/dataset.md.")
    p.add_argument("--data-dir", help="collector data folder (default: $HL_DATA_LOC, else "
                                      "HL_data_collector/HL_data)")
    p.add_argument("--out", required=True, help="dataset folder (created if missing)")
    p.add_argument("--coin", default="all", metavar="C,... | all",
                   help="coins to convert, comma-separated (default: every coin in the folder)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from asmm.calibrate.config import resolve_data_dir
    from asmm.core.errors import DataError
    from asmm.data.dataset import build_dataset

    err = Console(stderr=True)
    data_dir = resolve_data_dir(args.data_dir)
    coins = None if args.coin.strip().lower() == "all" else \
        [c.strip() for c in args.coin.split(",") if c.strip()]
    try:
        with Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True,
                      disable=not err.is_terminal) as bar:
            task = bar.add_task("days (kind x coin x day)", total=None)
            summary = build_dataset(data_dir, args.out, coins, progress=lambda done, n: (
                bar.update(task, completed=done, total=n)))
    except DataError as e:
        err.print(f"[red]error:[/red] {escape(' '.join(str(e).split()))}", soft_wrap=True)
        return 2
    _print_summary(summary, args.out)
    return 1 if summary.failed else 0


def _print_summary(summary, out) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from asmm.data.files import KINDS

    t = Table(title=f"dataset {escape(str(out))} ({summary.seconds:.1f} s)",
              title_justify="left")
    for col in ("kind", "partitions written", "skipped (unchanged)", "rows written"):
        t.add_column(col, justify="left" if col == "kind" else "right")
    for kind in KINDS:
        t.add_row(kind, f"{summary.written[kind]:,}", f"{summary.skipped[kind]:,}",
                  f"{summary.rows[kind]:,}")
    console = Console()
    console.print(t)
    for reason, n in sorted(summary.dropped.items()):
        console.print(f"dropped {n:,} rows: {escape(reason)}")
    for key, why in summary.failed.items():
        console.print(f"[red]failed[/red] {escape(key)}: {escape(why)} (its partitions, if "
                      "any, are unchanged)", soft_wrap=True)
