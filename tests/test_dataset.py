"""`asmm dataset`: collector data as a hive-partitioned Parquet dataset (docs/dataset.md).

The dataset is read back by DuckDB (a reader that is not ours) and by every asmm reader;
calibrate, backtest and the replay give on it what they give on the CSVs.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from asmm.cli import main
from asmm.data.dataset import LOCK, build_dataset, manifest_path
from asmm.data.files import (
    GAPS_COLUMNS,
    PRICES_COLUMNS,
    TRADES_COLUMNS,
    orderbook_columns,
    partition_path,
)
from asmm.data.readers import iter_days, read_bbo, read_gaps, read_orderbooks, read_trades
from asmm.data.synth import SynthConfig, generate

DEPTH = 3
COLUMNS = {"prices": PRICES_COLUMNS, "trades": TRADES_COLUMNS,
           "orderbooks": orderbook_columns(DEPTH), "gaps": GAPS_COLUMNS}
# A column of each kind whose sum checks the rows' values, not only their number.
CHECKSUM = {"prices": "price", "trades": "price", "orderbooks": "bid_price_0", "gaps": "start"}
DAY1, DAY2 = date(2025, 9, 1), date(2025, 9, 2)


def _synth(out: Path, coin: str, days: int, fmt: str = "csv", seed: int = 3) -> None:
    generate(SynthConfig(coin=coin, days=days, seed=seed, start=DAY1, bbo_rate=0.2,
                         A_bid=0.05, A_ask=0.05, l2_interval=60.0, depth=DEPTH, fmt=fmt), out)


@pytest.fixture(scope="module")
def collector_folder(tmp_path_factory) -> Path:
    """A folder as users have them: BTC in daily CSVs with a gaps file, ETH in daily Parquet
    files, SOL in the single-file layout of older archives (one CSV per kind)."""
    src = tmp_path_factory.mktemp("collector")
    _synth(src, "BTC", 2)
    (src / "gaps_BTC.csv").write_text("start,end,reason\n1756700000.0,1756700030.5,"
                                      "connection closed\n1756790000.0,1756790001.0,stale\n")
    _synth(src, "ETH", 1, fmt="parquet", seed=4)
    single = tmp_path_factory.mktemp("single")
    _synth(single, "SOL", 2, seed=5)
    for kind in ("prices", "trades", "orderbooks"):
        days = [pacsv.read_csv(single / f"{kind}_SOL_{d}.csv") for d in (DAY1, DAY2)]
        pacsv.write_csv(pa.concat_tables(days), src / f"{kind}_SOL.csv",
                        pacsv.WriteOptions(quoting_style="none", quoting_header="none"))
    return src


def _source_rows(src: Path) -> dict:
    """``{(kind, coin, day): (rows, sum of exchange_timestamp or end, sum of CHECKSUM)}`` of
    the source files, read with pyarrow: a daily file's rows under its day, a single file's
    under the UTC day of their exchange time."""
    out: dict = {}
    for p in sorted(src.iterdir()):
        if p.suffix not in (".csv", ".parquet"):
            continue
        kind, coin, *day = p.stem.split("_")
        t = pq.read_table(p) if p.suffix == ".parquet" else pacsv.read_csv(p)
        if kind == "gaps":
            groups = {None: t}
        elif day:
            groups = {date.fromisoformat(day[0]): t}
        else:
            d = pc.divide(t["exchange_timestamp"], 86_400_000).to_numpy()
            groups = {date.fromordinal(date(1970, 1, 1).toordinal() + int(k)): t.filter(d == k)
                      for k in np.unique(d)}
        for d, g in groups.items():
            ints = g["end" if kind == "gaps" else "exchange_timestamp"].to_numpy()
            out[(kind, coin, d)] = (g.num_rows, int(np.sum(ints.astype(np.int64))),
                                    float(np.sum(g[CHECKSUM[kind]].to_numpy())))
    return out


def _duckdb_rows(ds: Path) -> dict:
    """The same figures of the dataset, read by DuckDB with hive partitioning."""
    out = {}
    for kind in COLUMNS:
        glob = f"{ds}/kind={kind}/*/*.parquet" if kind == "gaps" else \
            f"{ds}/kind={kind}/**/*.parquet"
        day = "NULL" if kind == "gaps" else "date"
        ints = "CAST(\"end\" AS BIGINT)" if kind == "gaps" else "exchange_timestamp"
        rows = duckdb.sql(
            f"SELECT kind, coin, {day}, count(*), sum({ints}), sum({CHECKSUM[kind]}) "
            f"FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY ALL").fetchall()
        for k, coin, d, n, s_int, s_val in rows:
            assert k == kind
            out[(kind, coin, d)] = (n, int(s_int), float(s_val))
    return out


def _parquet_files(ds: Path) -> dict[str, int]:
    return {p.relative_to(ds).as_posix(): p.stat().st_mtime_ns for p in ds.rglob("*.parquet")}


def _dataset(src: Path, ds: Path, *args: str) -> int:
    return main(["dataset", "--data-dir", str(src), "--out", str(ds), *args])


def test_duckdb_reads_the_sources_rows_in_every_partition(collector_folder, tmp_path):
    ds = tmp_path / "DS"
    assert _dataset(collector_folder, ds) == 0
    want, got = _source_rows(collector_folder), _duckdb_rows(ds)
    assert set(got) == set(want)
    assert len([k for k in want if k[0] == "trades"]) == 5  # BTC 2 days, ETH 1, SOL 2
    for key, (n, s_int, s_val) in want.items():
        assert got[key][:2] == (n, s_int), key
        assert got[key][2] == pytest.approx(s_val, rel=1e-12), key
    # The files hold exactly the collector's columns, in its types: kind, coin and date are
    # in the path only (a copy inside would clash with the hive columns).
    for kind, cols in COLUMNS.items():
        for part in ds.glob(f"kind={kind}/**/*.parquet"):
            schema = pq.read_schema(part)
            assert schema.names == cols, part
            assert schema.field(cols[-1] if kind != "gaps" else "reason").type in (
                pa.int64(), pa.float64(), pa.string())
            if kind != "gaps":
                assert schema.field("exchange_timestamp").type == pa.int64()
                assert schema.field("timestamp").type == pa.float64()
    assert pq.read_schema(partition_path(ds, "trades", "BTC", DAY1)).field(
        "side").type == pa.string()
    assert pq.read_schema(partition_path(ds, "trades", "BTC", DAY1)).field(
        "trade_id").type == pa.int64()


def test_every_reader_reads_the_dataset_as_the_sources(collector_folder, tmp_path):
    ds = tmp_path / "DS"
    build_dataset(collector_folder, ds)
    lo, hi = 1756684800.0 + 3600, 1756771200.0 + 7200  # a window over the day boundary
    for coin in ("BTC", "ETH", "SOL"):
        for read in (read_bbo, read_trades, read_orderbooks):
            for window in ((None, None), (lo, hi)):
                a, b = read(collector_folder, coin, *window), read(ds, coin, *window)
                for f in dataclasses.fields(a):
                    if f.name != "quality":
                        np.testing.assert_array_equal(getattr(a, f.name), getattr(b, f.name))
        np.testing.assert_array_equal(read_gaps(collector_folder, coin), read_gaps(ds, coin))
    assert [d for d, *_ in iter_days(ds, "BTC")] == [DAY1, DAY2]
    # SOL's single file is split by exchange day: its days are whole partitions.
    assert [d for d, *_ in iter_days(ds, "SOL")] == [DAY1, DAY2]
    assert len(read_gaps(ds, "BTC")) == 2


def test_a_second_run_writes_nothing_and_a_changed_day_only_it(collector_folder, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(collector_folder, src)
    ds = tmp_path / "DS"
    first = build_dataset(src, ds)
    assert first.written == {"prices": 5, "trades": 5, "orderbooks": 5, "gaps": 1}
    before = _parquet_files(ds)

    again = build_dataset(src, ds)
    assert sum(again.written.values()) == 0 and again.skipped == first.written
    assert _parquet_files(ds) == before

    # The collector appends to the day it is writing: that day, and only it, is written.
    day2 = src / "trades_BTC_2025-09-02.csv"
    last = day2.read_text().splitlines()[-1].split(",")
    last[4] = str(int(last[4]) + 1)  # a new trade id
    with day2.open("a") as fh:
        fh.write(",".join(last) + "\n")
    changed = build_dataset(src, ds)
    assert changed.written == {"prices": 0, "trades": 1, "orderbooks": 0, "gaps": 0}
    after = _parquet_files(ds)
    moved = {k for k in before if after[k] != before[k]}
    assert moved == {"kind=trades/coin=BTC/date=2025-09-02/part-0.parquet"}
    assert _duckdb_rows(ds)[("trades", "BTC", DAY2)][0] == \
        _source_rows(src)[("trades", "BTC", DAY2)][0]

    # A partition damaged or removed by hand is written again, though its source did not
    # change; the manifest records what made each one.
    (ds / "kind=prices/coin=ETH/date=2025-09-01/part-0.parquet").unlink()
    assert build_dataset(src, ds).written["prices"] == 1
    manifest = json.loads(manifest_path(ds, "BTC").read_text())
    entry = manifest["units"]["trades/BTC/2025-09-02"]
    assert entry["sources"][0][0] == "trades_BTC_2025-09-02.csv"
    assert entry["rows"] == _source_rows(src)[("trades", "BTC", DAY2)][0]


def test_a_corrupt_source_fails_clearly_and_leaves_the_dataset(collector_folder, tmp_path,
                                                               capsys):
    src = tmp_path / "src"
    shutil.copytree(collector_folder, src)
    ds = tmp_path / "DS"
    assert _dataset(src, ds) == 0
    before = {p: p.read_bytes() for p in ds.rglob("*.parquet")}
    capsys.readouterr()

    (src / "trades_ETH_2025-09-01.parquet").write_bytes(b"PAR1 not parquet at all")
    (src / "prices_BTC_2025-09-02.csv").write_text("time,px\n1,2\n")  # not the format
    assert _dataset(src, ds) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "failed trades/ETH/2025-09-01" in out and "trades_ETH_2025-09-01.parquet" in out
    assert "failed prices/BTC/2025-09-02" in out and "missing columns" in out
    assert "unchanged" in out
    assert {p: p.read_bytes() for p in ds.rglob("*.parquet")} == before
    assert not [p for p in ds.rglob("*") if p.name.endswith(".tmp")]
    # Once the source is good again, the next run writes it.
    shutil.copy(collector_folder / "prices_BTC_2025-09-02.csv", src)
    shutil.copy(collector_folder / "trades_ETH_2025-09-01.parquet", src)
    assert build_dataset(src, ds).failed == {}


def test_a_crash_while_writing_leaves_whole_partitions(collector_folder, tmp_path,
                                                       monkeypatch):
    """Killed half-way through a partition: the old file stays, no temp file is left, and
    the next run finishes the work."""
    src, ds = tmp_path / "src", tmp_path / "DS"
    shutil.copytree(collector_folder, src)
    build_dataset(src, ds)
    target = partition_path(ds, "trades", "BTC", DAY2)
    old = target.read_bytes()
    os.utime(src / "trades_BTC_2025-09-02.csv")  # touched: to be written again
    real = pq.write_table

    def dies_half_way(table, where, **kw):
        real(table.slice(0, table.num_rows // 2), where, **kw)
        if Path(where).parent == target.parent:
            raise KeyboardInterrupt  # as kill would, after half a file reached the disk
    monkeypatch.setattr(pq, "write_table", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(src, ds)
    monkeypatch.undo()
    assert target.read_bytes() == old
    assert not [p for p in ds.rglob("*") if p.name.endswith(".tmp")]
    assert build_dataset(src, ds).written["trades"] == 1


def test_bad_invocations_exit_2(collector_folder, tmp_path, capsys):
    assert _dataset(tmp_path / "nowhere", tmp_path / "DS") == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert _dataset(tmp_path / "empty", tmp_path / "DS") == 2
    assert "no collector files" in capsys.readouterr().err
    assert _dataset(collector_folder, tmp_path / "DS", "--coin", "BTC,DOGE") == 2
    assert "DOGE" in capsys.readouterr().err
    assert _dataset(collector_folder, collector_folder) == 2
    # One writer at a time.
    (tmp_path / "DS" / LOCK).parent.mkdir(parents=True)
    fd = os.open(tmp_path / "DS" / LOCK, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert _dataset(collector_folder, tmp_path / "DS") == 2
        assert "another asmm dataset run" in " ".join(capsys.readouterr().err.split())
    finally:
        os.close(fd)
    assert _dataset(collector_folder, tmp_path / "DS", "--coin", "ETH") == 0
    assert {p.name for p in (tmp_path / "DS" / "kind=trades").iterdir()} == {"coin=ETH"}


def test_the_dataset_of_a_dataset_is_the_same(collector_folder, tmp_path):
    """The hive layout is a source too (the collector's Parquet mode writes it)."""
    ds, ds2 = tmp_path / "DS", tmp_path / "DS2"
    build_dataset(collector_folder, ds)
    build_dataset(ds, ds2)
    assert _duckdb_rows(ds2) == _duckdb_rows(ds)


@pytest.fixture(scope="module")
def small_dataset(small_market, tmp_path_factory) -> tuple[Path, Path]:
    src, _ = small_market
    ds = tmp_path_factory.mktemp("small_ds") / "DS"
    build_dataset(src, ds)
    return src, ds


def _without_clock(doc):
    """A parameter file without what depends on when and how fast it was computed."""
    if isinstance(doc, dict):
        return {k: _without_clock(v) for k, v in doc.items()
                if k not in ("computed_at", "valid_until", "seconds", "events_per_second")}
    if isinstance(doc, list):
        return [_without_clock(v) for v in doc]
    return doc


def test_calibrate_and_backtest_on_the_dataset_equal_the_csvs(small_dataset, tmp_path,
                                                              capsys):
    src, ds = small_dataset
    docs, runs = [], []
    for where in (src, ds):
        out = tmp_path / f"params_{where.name}.json"
        assert main(["calibrate", "BTC", "--data-dir", str(where), "--output", str(out),
                     "--valid-from", "now"]) == 0
        docs.append(json.loads(out.read_text()))
        capsys.readouterr()
        assert main(["backtest", "--data-dir", str(where), "--params", str(out),
                     "--from", "2025-09-02", "--json"]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert docs[0]["diagnostics"]["gamma"]["tests"]  # a walk-forward ran on both
    assert _without_clock(docs[1]) == _without_clock(docs[0])
    assert runs[0]["fills_bid"] + runs[0]["fills_ask"] > 0 and runs[0]["events"] > 0
    assert _without_clock(runs[1]) == _without_clock(runs[0])


def test_the_replay_loads_the_same_market_from_the_dataset(small_dataset):
    from asmm.venues.hyperliquid.replay.market import load_market

    src, ds = small_dataset
    a, b = load_market(src, "BTC"), load_market(ds, "BTC")
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            assert x == y, f.name


def test_the_collectors_parquet_mode_writes_the_dataset_layout(collector_folder, tmp_path):
    """PARQUET=true: finished days land in the tree, in the dataset's columns and types;
    the day being written stays a CSV beside it and the readers merge both."""
    from asmm.venues.hyperliquid.collector.writer import DayWriter

    out = tmp_path / "HL_data"
    w = DayWriter(out, {"trades": TRADES_COLUMNS}, parquet=True)
    src = pacsv.read_csv(collector_folder / "trades_BTC_2025-09-01.csv").to_pylist() + \
        pacsv.read_csv(collector_folder / "trades_BTC_2025-09-02.csv").to_pylist()
    for row in src:
        w.write("trades", "BTC", row["timestamp"],
                ",".join(str(row[c]) for c in TRADES_COLUMNS) + "\n")
    w.close()
    assert (out / "trades_BTC_2025-09-02.csv").exists()  # today: still being written
    assert not (out / "trades_BTC_2025-09-01.csv").exists()
    part = partition_path(out, "trades", "BTC", DAY1)
    ds = tmp_path / "DS"
    build_dataset(collector_folder, ds, ["BTC"])
    assert pq.read_schema(part) == pq.read_schema(partition_path(ds, "trades", "BTC", DAY1))
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/kind=trades/**/*.parquet', "
                   "hive_partitioning = true) WHERE date = DATE '2025-09-01'").fetchall()[0][0]
    assert n == _source_rows(collector_folder)[("trades", "BTC", DAY1)][0]
    a, b = read_trades(collector_folder, "BTC"), read_trades(out, "BTC")
    np.testing.assert_array_equal(a.t, b.t)
    np.testing.assert_array_equal(a.trade_id, b.trade_id)
