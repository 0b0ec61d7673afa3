"""`asmm backtest --sweep`: a grid × coins × days on Dask, one task per (coin, day).

A local cluster of two worker processes sweeps two synthetic coins over two days: the
Parquet table has a row per coin, day and grid point, two of its rows equal a direct
`run_backtest` of the same configuration on the same day, both workers ran tasks. A coin
whose second day is broken fails there alone (exit 1). The same through a real
`dask scheduler` and two `dask worker` processes (tests/conftest.py), on the hive dataset.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from asmm.cli import main
from asmm.core.errors import ConfigError
from asmm.core.fees import fee_tier
from asmm.core.params import Params, SideIntensity, default_path, load_params, write_params
from asmm.data.files import day_bounds
from asmm.data.synth import SynthConfig, generate
from asmm.sim import BacktestConfig, load_events, run_backtest
from asmm.sim.sweep import expand_grid, read_metadata

COINS = ("AAA", "BBB")
DAYS = ("2025-09-01", "2025-09-02")
# 2 gammas + 1 depth, 2 latencies, 2 fee tiers: 12 points, one pass per (coin, day).
GRID = ("--gammas", "0.02,0.05", "--fixed-depths", "5", "--latencies-ms", "0,100",
        "--fee-tiers", "hyperliquid:0,hyperliquid:4", "--order-size", "0.01")
POINTS = 12


@pytest.fixture(scope="module")
def sweep_data(tmp_path_factory) -> tuple[Path, Path]:
    """(data, params): two short-but-busy synthetic days of AAA and BBB (a seed each) with
    a GLFT parameter file per coin at the truth; and BAD, AAA's market under another name
    whose second day's trades file has its header only (no trades: that day cannot be
    simulated, the first can)."""
    root = tmp_path_factory.mktemp("sweep")
    data, params = root / "data", root / "params"
    now = datetime(2025, 9, 1, tzinfo=UTC)
    for i, coin in enumerate(COINS):
        truth = generate(SynthConfig(coin=coin, days=2, seed=40 + i, bbo_rate=1.0,
                                     A_bid=0.2, A_ask=0.2, l2_interval=10.0,
                                     start=date(2025, 9, 1)), data)
        write_params(default_path(coin, params), Params(
            coin=coin, model="glft", computed_at=now, valid_until=now + timedelta(days=1),
            data_window=(now, now), mid_price=100_000.0, sigma=truth["sigma"], gamma=0.05,
            bid=SideIntensity(truth["bid"]["A"], truth["bid"]["k"]),
            ask=SideIntensity(truth["ask"]["A"], truth["ask"]["k"])))
    for kind in ("prices", "trades", "orderbooks"):
        for day in DAYS:
            shutil.copy(data / f"{kind}_AAA_{day}.csv", data / f"{kind}_BAD_{day}.csv")
    broken = data / f"trades_BAD_{DAYS[1]}.csv"
    broken.write_text(broken.read_text().splitlines()[0] + "\n")
    doc = json.loads(default_path("AAA", params).read_text())
    doc["coin"] = "BAD"
    default_path("BAD", params).write_text(json.dumps(doc))
    return data, params


def _sweep(data, params, out, *extra) -> list[str]:
    return ["backtest", "--sweep", "--data-dir", str(data), "--params-dir", str(params),
            *GRID, "--out", str(out), "--json", *extra]


def _direct(data, params, coin, day, row) -> dict:
    """run_backtest of the row's configuration on the row's day, built here by hand."""
    tier = fee_tier(row["fee_tier"])
    common = dict(latency_ms=row["latency_ms"], maker_fee=tier.maker, taker_fee=tier.taker,
                  order_size=0.01)
    if row["model"] == "fixed":
        cfg = BacktestConfig(model="fixed", fixed_depth=row["fixed_depth"], **common)
    else:
        cfg = BacktestConfig.from_params(load_params(default_path(coin, params),
                                                     check_fresh=False),
                                         gamma=row["gamma"], **common)
    events = load_events(data, coin, *day_bounds(date.fromisoformat(day)))
    return run_backtest(events, cfg).summary()


def test_local_cluster_sweeps_coins_days_and_grid(sweep_data, tmp_path, capsys):
    data, params = sweep_data
    out = tmp_path / "res.parquet"
    rc = main([*_sweep(data, params, out, "--coins", ",".join(COINS), "--workers", "2")])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0, doc
    assert doc["failed"] == 0 and doc["tasks"] == 4 and doc["rows"] == 4 * POINTS
    assert "local cluster of 2 worker processes" in doc["cluster"]
    table = pq.read_table(out)
    assert table.num_rows == len(COINS) * len(DAYS) * POINTS
    df = table.to_pandas()
    assert set(df.groupby(["coin", "day"]).size()) == {POINTS}
    assert sorted(df["coin"].unique()) == list(COINS)
    assert sorted(str(d) for d in df["day"].unique()) == list(DAYS)
    # Every grid value is a column, and every point has each combination once.
    grid = df[["point", "gamma", "fixed_depth", "latency_ms", "fee_tier", "fill_rule"]]
    assert len(grid.drop_duplicates()) == POINTS
    assert set(df["model"]) == {"glft", "fixed"}
    assert set(df["fee_tier"]) == {"hyperliquid:0", "hyperliquid:4"}
    assert (df["hours"] == 24.0).all() and (df["events"] > 100_000).all()
    assert ((df["fills_bid"] > 0) & (df["fills_ask"] > 0)).all()
    # One task per (coin, day), each on one worker; both workers ran some.
    per_task = df.groupby(["coin", "day"])["worker"].nunique()
    assert (per_task == 1).all()
    assert df["worker"].nunique() == 2 and len(doc["workers"]) == 2
    # Two rows, a model and a baseline, are what a direct run of the same config gives.
    for point, coin, day in ((3, "AAA", DAYS[1]), (10, "BBB", DAYS[0])):
        row = df[(df["point"] == point) & (df["coin"] == coin)
                 & (df["day"].astype(str) == day)].iloc[0]
        want = _direct(data, params, coin, day, row)
        for key in ("pnl", "fees", "fills_bid", "fills_ask", "fills_book_through",
                    "markout_10s_bp", "sharpe", "max_drawdown", "inventory_std", "events"):
            assert row[key] == pytest.approx(want[key], rel=1e-12), key
    # The summary: one entry per grid point over the 4 coin-days, best mean PnL first.
    summary = doc["summary"]
    assert len(summary) == POINTS and all(s["coin_days"] == 4 for s in summary)
    means = [s["pnl_mean"] for s in summary]
    assert means == sorted(means, reverse=True)
    best = df[df["point"] == summary[0]["point"]]
    assert summary[0]["pnl_mean"] == pytest.approx(best["pnl"].mean())
    meta = read_metadata(out)
    assert len(meta["points"]) == POINTS and meta["failures"] == []
    assert meta["settings"]["order_size"] == 0.01


def test_real_scheduler_on_the_dataset_and_a_broken_day(sweep_data, dask_cluster, tmp_path,
                                                        capsys):
    """Through `dask scheduler` + two `dask worker`s, on the hive dataset of the same
    files: BAD's broken day fails alone (its row says why), every other (coin, day) is in
    the table, the command exits 1."""
    data, params = sweep_data
    ds = tmp_path / "DS"
    assert main(["dataset", "--data-dir", str(data), "--out", str(ds)]) in (0, 1)
    capsys.readouterr()
    assert (ds / "kind=trades" / "coin=BAD" / f"date={DAYS[0]}").is_dir()
    out = tmp_path / "res.parquet"
    rc = main([*_sweep(ds, params, out, "--coins", "all", "--days", ",".join(DAYS),
                       "--scheduler", dask_cluster)])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1, doc
    assert doc["tasks"] == 6 and doc["failed"] == 1
    (fail,) = doc["failures"]
    assert (fail["coin"], fail["day"]) == ("BAD", DAYS[1])
    assert "trades" in fail["error"] and fail["worker_name"] in ("w1", "w2")
    df = pq.read_table(out).to_pandas()
    assert len(df) == 5 * POINTS
    assert set(zip(df["coin"], df["day"].astype(str), strict=True)) == {
        (c, d) for c in (*COINS, "BAD") for d in DAYS} - {("BAD", DAYS[1])}
    assert set(df["worker_name"]) == {"w1", "w2"}
    assert all(w.startswith("tcp://127.0.0.1:") for w in df["worker"])
    assert read_metadata(out)["failures"] == doc["failures"]
    # BAD's good day is AAA's day 1 under another name: the same numbers.
    aaa = df[(df["coin"] == "AAA") & (df["day"].astype(str) == DAYS[0])]
    bad = df[(df["coin"] == "BAD") & (df["day"].astype(str) == DAYS[0])]
    assert list(aaa["pnl"]) == list(bad["pnl"])


def test_a_table_on_screen_and_nothing_overwritten_when_every_task_fails(
        sweep_data, dask_cluster, tmp_path, capsys):
    data, _ = sweep_data
    out = tmp_path / "res.parquet"
    rc = main(["backtest", "--sweep", "--data-dir", str(data), "--coins", "AAA",
               "--days", DAYS[0], "--fixed-depths", "3,5", "--fill-rules",
               "exchange,trades", "--out", str(out), "--scheduler", dask_cluster])
    text = capsys.readouterr().out
    assert rc == 0
    assert "4 grid points x 1 coin-days" in text and "depth 3" in text and "trades" in text
    assert "tasks per worker: w" in text
    before = out.read_bytes()
    rc = main(["backtest", "--sweep", "--data-dir", str(data), "--coins", "AAA",
               "--days", "2030-01-01", "--fixed-depths", "3", "--out", str(out),
               "--scheduler", dask_cluster])
    text = capsys.readouterr().out
    assert rc == 1
    assert "nothing written" in text and "no prices files for AAA" in " ".join(text.split())
    assert out.read_bytes() == before


def test_grid_expansion_and_its_checks(tmp_path):
    base = dict(order_size=0.01, latency_ms=50.0, maker_fee=0.0001, taker_fee=0.0003,
                fill_rule="trades")
    spec = expand_grid(base, fixed_depths=[2, 3, 2])
    # Axes left out take the settings' one value; repeats dropped.
    assert [(p.fixed_depth, p.latency_ms, p.maker_fee, p.fill_rule, p.fee_tier)
            for p in spec.points] == [(2.0, 50.0, 0.0001, "trades", None),
                                      (3.0, 50.0, 0.0001, "trades", None)]
    assert not spec.needs_params and spec.settings == {"order_size": 0.01}
    spec = expand_grid(base, gammas=[0.1], fixed_depths=[2], latencies_ms=[0, 10],
                       fee_tiers=["hyperliquid:0", "bybit:vip0"],
                       fill_rules=["exchange", "freqtrade-dry-run"], params_dir=tmp_path)
    assert len(spec.points) == 16 and [p.point for p in spec.points] == list(range(16))
    assert spec.needs_params and spec.params_dir == str(tmp_path)
    p = spec.points[-1]  # the last of the product: depth 2, 10 ms, bybit:vip0, dry run
    assert (p.fixed_depth, p.latency_ms, p.fee_tier, p.maker_fee, p.fill_rule) == \
        (2.0, 10.0, "bybit:vip0", 0.0002, "freqtrade-dry-run")
    cfg = p.config(spec.settings)
    assert (cfg.model, cfg.fixed_depth, cfg.order_size, cfg.maker_fee) == \
        ("fixed", 2.0, 0.01, 0.0002)
    for kw, says in ((dict(gammas=[-1]), "--gammas: -1"),
                     (dict(fixed_depths=[0]), "--fixed-depths: 0"),
                     (dict(fixed_depths=[1], latencies_ms=[-5]), "--latencies-ms: -5"),
                     (dict(fixed_depths=[1], fee_tiers=["nope:1"]), "unknown fee tier"),
                     (dict(fixed_depths=[1], fill_rules=["magic"]), "--fill-rules"),
                     (dict(gammas=[0.1]), "--params-dir"),
                     (dict(), "--params-dir")):
        with pytest.raises(ConfigError, match=says):
            expand_grid(base, **kw)
    with pytest.raises(ConfigError, match="order_size"):
        expand_grid(base | {"order_size": -1.0}, fixed_depths=[1])


@pytest.mark.parametrize("argv, says", [
    (["--gammas", "0.1"], "--gammas goes with --sweep"),
    (["--fixed-depth", "1", "--out", "x.parquet", "--workers", "2"],
     "--workers, --out go with --sweep"),
    (["--sweep", "--fixed-depths", "1"], "needs --out"),
    (["--sweep", "--fixed-depth", "1", "--out", "x.parquet"], "a sweep takes --fixed-depths"),
    (["--sweep", "--coin", "BTC", "--out", "x.parquet"], "a sweep takes --coins"),
    (["--sweep", "--fixed-depths", "1", "--from", "2025-09-01", "--out", "x.parquet"],
     "a sweep takes --days"),
    (["--sweep", "--fixed-depths", "1", "--out", "x.parquet", "--scheduler",
      "tcp://127.0.0.1:1", "--workers", "2"], "--workers sizes the local cluster"),
    (["--sweep", "--fixed-depths", "1", "--fee-tiers", "hyperliquid:1", "--maker-fee", "0",
      "--out", "x.parquet"], "do not go together"),
    (["--sweep", "--fixed-depths", "x", "--out", "x.parquet"], "numbers separated by commas"),
    (["--sweep", "--gammas", "0.1", "--out", "x.parquet"], "--params-dir"),
    (["--sweep", "--fixed-depths", "1", "--days", "2025-13-01", "--out", "x.parquet"],
     "is not a day"),
    (["--sweep", "--fixed-depths", "1", "--coins", "ZZZ", "--days", "all", "--out",
      "x.parquet", "--workers", "0"], "at least 1"),
])
def test_options_that_do_not_go_together_are_refused(argv, says, sweep_data, tmp_path,
                                                     capsys, monkeypatch):
    data, _ = sweep_data
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(["backtest", "--data-dir", str(data), *argv])
    except SystemExit as e:  # argparse's own error, as for any option misuse
        rc = e.code
    assert rc == 2
    assert says in " ".join(capsys.readouterr().err.split())
    assert list(tmp_path.iterdir()) == []


def test_one_backtest_still_needs_its_quote(sweep_data, capsys):
    data, _ = sweep_data
    with pytest.raises(SystemExit) as e:
        main(["backtest", "--data-dir", str(data)])
    assert e.value.code == 2
    assert "one of the arguments --params --fixed-depth is required" in \
        capsys.readouterr().err
