"""Bad input: a clear message, a non-zero exit where the data cannot support an estimate, rows
that are bad dropped and counted (not used), and a previous good file never overwritten.

Every case damages a copy of the small synthetic market (``small_market``: 2 days, A 0.2/s
per side, k 0.5, sigma 6.8) and runs the real CLI in-process on its latest day.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from asmm.cli import main
from asmm.params import load_params

DAY1, DAY2 = "2025-09-01", "2025-09-02"


@pytest.fixture
def data(small_market, tmp_path) -> Path:
    src, _ = small_market
    dst = tmp_path / "data"
    dst.mkdir()
    for p in src.glob("*_BTC_*.csv"):
        if not p.name.startswith("orderbooks"):
            shutil.copy(p, dst / p.name)
    return dst


def calibrate(capsys, data_dir, out, *extra) -> tuple[int, str]:
    rc = main(["calibrate", "--data-dir", str(data_dir), "--output", str(out),
               "--walk-forward-days", "0", *extra])
    return rc, capsys.readouterr().err


@pytest.fixture(scope="module")
def clean(small_market, tmp_path_factory) -> dict:
    """The undamaged market's file, to compare against."""
    src, _ = small_market
    out = tmp_path_factory.mktemp("clean") / "p.json"
    assert main(["calibrate", "--data-dir", str(src), "--output", str(out),
                 "--walk-forward-days", "0"]) == 0
    return json.loads(out.read_text())


def _numbers(doc) -> dict:
    return {"sigma": doc["sigma"], "bid": doc["bid"], "ask": doc["ask"],
            "mid": doc["mid_price"]}


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def test_missing_folder(capsys, tmp_path):
    rc, err = calibrate(capsys, tmp_path / "nope", tmp_path / "p.json")
    assert rc == 1 and "does not exist" in err
    assert not (tmp_path / "p.json").exists()


def test_missing_trades_files(capsys, data, tmp_path):
    for p in data.glob("trades_*"):
        p.unlink()
    rc, err = calibrate(capsys, data, tmp_path / "p.json")
    assert rc == 1 and "no trades files for BTC" in err


def test_missing_column(capsys, data, tmp_path):
    path = data / f"trades_BTC_{DAY2}.csv"
    table = pacsv.read_csv(path)
    pacsv.write_csv(table.drop_columns(["side"]), path)
    rc, err = calibrate(capsys, data, tmp_path / "p.json")
    assert rc == 1 and "missing columns ['side']" in err


def test_nan_and_negative_values_are_dropped_and_counted(capsys, data, tmp_path, clean):
    tr = data / f"trades_BTC_{DAY2}.csv"
    lines = _lines(tr)
    t = lines[500].split(",")
    bad = [  # NaN price, negative size, zero price, empty size; fresh trade ids
        f"{t[0]},nan,0.1,buy,900000001,{t[5]}",
        f"{t[0]},{t[1]},-0.1,sell,900000002,{t[5]}",
        f"{t[0]},0,0.1,buy,900000003,{t[5]}",
        f"{t[0]},{t[1]},,sell,900000004,{t[5]}",
    ]
    tr.write_text("".join(lines[:501]) + "\n".join(bad) + "\n" + "".join(lines[501:]))
    pr = data / f"prices_BTC_{DAY2}.csv"
    lines = _lines(pr)
    p = lines[1000].split(",")
    pr.write_text("".join(lines[:1001]) + f"{p[0]},NaN,1.0,bid,{p[4]}" +
                  f"{p[0]},-5,1.0,ask,{p[4]}" + "".join(lines[1001:]))
    out = tmp_path / "p.json"
    rc, _ = calibrate(capsys, data, out)
    assert rc == 0
    doc = json.loads(out.read_text())
    dropped = doc["diagnostics"]["data_quality"][DAY2]["dropped"]
    assert dropped["trades: NaN or missing price/size"] == 2
    assert dropped["trades: non-positive price/size"] == 2
    assert dropped["prices: NaN or missing price/size"] == 1
    assert dropped["prices: non-positive price/size"] == 1
    # Dropped, not used: the estimates are exactly those of the clean data.
    assert _numbers(doc) == _numbers(clean)


def test_duplicate_and_out_of_order_rows_change_nothing(capsys, data, tmp_path, clean):
    tr = data / f"trades_BTC_{DAY2}.csv"
    lines = _lines(tr)
    # A reconnect replays 300 fills at the end; a block of 200 rows arrives reversed.
    body = lines[1:]
    body = body[:1000] + body[1000:1200][::-1] + body[1200:] + body[5000:5300]
    tr.write_text(lines[0] + "".join(body))
    pr = data / f"prices_BTC_{DAY2}.csv"
    lines = _lines(pr)
    body = lines[1:]
    body = body[:2000] + body[2000:2400][::-1] + body[2400:] + body[100:300]
    pr.write_text(lines[0] + "".join(body))
    out = tmp_path / "p.json"
    rc, _ = calibrate(capsys, data, out)
    assert rc == 0
    doc = json.loads(out.read_text())
    q = doc["diagnostics"]["data_quality"][DAY2]
    assert q["dropped"]["trades: duplicate trade_id"] == 300
    assert any("out-of-order rows re-sorted" in n for n in q["notes"])
    assert _numbers(doc) == _numbers(clean)


def test_truncated_last_line(capsys, data, tmp_path, clean):
    for kind in ("trades", "prices"):
        path = data / f"{kind}_BTC_{DAY2}.csv"
        text = path.read_text()
        # A kill -9 mid-write: the last row loses its last two fields and the newline.
        cut = text.rstrip("\n").rsplit(",", 2)[0]
        path.write_text(cut)
    out = tmp_path / "p.json"
    rc, _ = calibrate(capsys, data, out)
    assert rc == 0
    dropped = json.loads(out.read_text())["diagnostics"]["data_quality"][DAY2]["dropped"]
    assert dropped["trades: truncated last line"] == 1
    assert dropped["prices: truncated last line"] == 1


def test_crossed_quotes_are_left_out(capsys, data, tmp_path, small_market):
    """Two hours of crossed quotes: their sweeps and their time are left out, so A (sweeps per
    usable second) stays right. Bound: A within 4 SE (se/A = 1/sqrt(~15,800) = 0.8 %)."""
    _, truth = small_market
    path = data / f"prices_BTC_{DAY2}.csv"
    table = pacsv.read_csv(path)
    ts = table.column("exchange_timestamp").to_numpy()
    side = np.array(table.column("side").to_pylist())
    price = table.column("price").to_numpy().astype(np.float64)
    t0 = ts[0] // 86_400_000 * 86_400_000
    hit = (ts >= t0 + 36_000_000) & (ts < t0 + 43_200_000) & (side == "ask")
    price[hit] -= 5.0  # ask 4 ticks below the bid
    i = table.schema.get_field_index("price")
    pacsv.write_csv(table.set_column(i, "price", [price]), path)
    out = tmp_path / "p.json"
    rc, _ = calibrate(capsys, data, out)
    assert rc == 0
    doc = json.loads(out.read_text())
    est = doc["diagnostics"]["estimation"]
    assert doc["diagnostics"]["data_quality"][DAY2]["unusable_bbo_states"] > 5000
    for side_name in ("bid", "ask"):
        s = est[side_name]
        assert s["exposure"] == pytest.approx(86400 - 7200, abs=30)
        assert s["dropped"] > 1000
        assert abs(s["A"] - truth[side_name]["A"]) < 4 * s["A_se"]
    assert est["sigma"]["increments"] < 86400 - 7000


def test_collector_gaps_are_left_out(capsys, data, tmp_path, small_market):
    _, truth = small_market
    t0 = 1756771200.0  # 2025-09-02T00:00Z
    (data / "gaps_BTC.csv").write_text(
        f"start,end,reason\n{t0 + 3600},{t0 + 7200},ws drop\n{t0 + 50000},{t0 + 57200},restart\n")
    out = tmp_path / "p.json"
    rc, _ = calibrate(capsys, data, out)
    assert rc == 0
    est = json.loads(out.read_text())["diagnostics"]["estimation"]
    for side_name in ("bid", "ask"):
        assert est[side_name]["exposure"] == pytest.approx(86400 - 10800, abs=5)
        assert abs(est[side_name]["A"] - truth[side_name]["A"]) < 4 * est[side_name]["A_se"]
    # Increments touching a gap are gone: 10,800 inside, plus one at each gap edge at most.
    assert 86400 - 10800 - 6 <= est["sigma"]["increments"] <= 86400 - 10800


def test_empty_day(capsys, data, tmp_path):
    for kind in ("trades", "prices"):
        path = data / f"{kind}_BTC_{DAY2}.csv"
        path.write_text(path.read_text().splitlines()[0] + "\n")
    rc, err = calibrate(capsys, data, tmp_path / "p.json")
    assert rc == 1 and DAY2 in err and "no usable quotes" in err


def test_one_side_without_trades(capsys, data, tmp_path):
    path = data / f"trades_BTC_{DAY2}.csv"
    lines = _lines(path)
    path.write_text(lines[0] + "".join(x for x in lines[1:] if ",sell," not in x))
    rc, err = calibrate(capsys, data, tmp_path / "p.json")
    assert rc == 1
    assert "bid side (sell orders hitting bids)" in err and "0 usable sweeps" in err


def test_failed_run_never_overwrites_a_good_file(capsys, data, tmp_path):
    out = tmp_path / "params" / "avellaneda_parameters_BTC.json"
    rc, _ = calibrate(capsys, data, out)
    assert rc == 0
    before = out.read_bytes()
    good = load_params(out)
    path = data / f"trades_BTC_{DAY2}.csv"
    lines = _lines(path)
    path.write_text(lines[0] + "".join(x for x in lines[1:] if ",buy," not in x))
    rc, err = calibrate(capsys, data, out)
    assert rc == 1 and "ask side" in err and "unchanged" in err
    assert out.read_bytes() == before
    assert load_params(out) == good
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temp file left


def test_single_file_and_parquet_layouts_agree(capsys, data, tmp_path, clean):
    single = tmp_path / "single"
    parquet = tmp_path / "parquet"
    single.mkdir()
    parquet.mkdir()
    for kind in ("trades", "prices"):
        a, b = _lines(data / f"{kind}_BTC_{DAY1}.csv"), _lines(data / f"{kind}_BTC_{DAY2}.csv")
        (single / f"{kind}_BTC.csv").write_text("".join(a) + "".join(b[1:]))
        for day in (DAY1, DAY2):
            pq.write_table(pacsv.read_csv(data / f"{kind}_BTC_{day}.csv"),
                           parquet / f"{kind}_BTC_{day}.parquet")
    for folder in (single, parquet):
        out = tmp_path / f"{folder.name}.json"
        rc, _ = calibrate(capsys, folder, out)
        assert rc == 0
        assert _numbers(json.loads(out.read_text())) == _numbers(clean)


@pytest.mark.parametrize("damage", ["no sell trades", "empty"])
def test_unusable_earlier_day_skips_the_walk_forward_not_the_file(capsys, data, tmp_path,
                                                                  damage):
    """Day 1 serves only the gamma search: when it cannot be estimated, the test day is
    skipped (said in the file) and gamma falls back; sigma, A, k of day 2 are still written."""
    if damage == "empty":
        for kind in ("trades", "prices"):
            p = data / f"{kind}_BTC_{DAY1}.csv"
            p.write_text(_lines(p)[0])
    else:
        path = data / f"trades_BTC_{DAY1}.csv"
        lines = _lines(path)
        path.write_text(lines[0] + "".join(x for x in lines[1:] if ",sell," not in x))
    out = tmp_path / "p.json"
    rc = main(["calibrate", "--data-dir", str(data), "--output", str(out)])
    assert rc == 0, capsys.readouterr().err
    params = load_params(out)
    g = params.diagnostics["gamma"]
    assert g["method"] == "fallback rule (not backtested)"
    assert g["reason"].startswith(f"no test day could be backtested: {DAY2}: ")
    reason = "usable quotes" if damage == "empty" else "bid side (sell orders hitting bids)"
    assert reason in g["reason"]
    assert any(f"test day {DAY2} skipped" in w for w in params.diagnostics["warnings"])
    assert params.diagnostics["estimation"]["days"] == [DAY2]
