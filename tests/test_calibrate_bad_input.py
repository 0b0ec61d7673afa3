"""Bad input: a clear message, a non-zero exit where the data cannot support an estimate, rows
that are bad dropped and counted (not used), and a previous good file never overwritten.

Every case damages a copy of the small synthetic market (``small_market``: 2 days, A 0.2/s
per side, k 0.5, sigma 6.8) and runs the real CLI in-process on its latest day. A refused
run (:func:`refused`) starts from a good parameter file at ``--output`` and checks, besides
the exit code, that the failure is one line naming the problem, that no traceback was
printed and that the good file is byte for byte what it was.

The market's days are in 2025, so a run that is to succeed passes ``--valid-from now``
(validity counted from the run, as for recorded days replayed as live); the freshness rule
itself is tested with a chosen ``now``.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from asmm.calibrate import estimators as est
from asmm.calibrate import intensity
from asmm.calibrate.config import CalibrationConfig
from asmm.calibrate.run import calibrate as run_calibration
from asmm.cli import main
from asmm.core.errors import CalibrationError
from asmm.core.params import load_params

DAY1, DAY2 = "2025-09-01", "2025-09-02"
DAY2_START_MS = 1_756_771_200_000
FRESH = ("--valid-from", "now")


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
               "--walk-forward-days", "0", *(extra or FRESH)])
    return rc, capsys.readouterr().err


@pytest.fixture(scope="module")
def clean_file(small_market, tmp_path_factory) -> Path:
    """The undamaged market's file: to compare against, and the good file runs start from."""
    src, _ = small_market
    out = tmp_path_factory.mktemp("clean") / "p.json"
    assert main(["calibrate", "--data-dir", str(src), "--output", str(out),
                 "--walk-forward-days", "0", *FRESH]) == 0
    return out


@pytest.fixture(scope="module")
def clean(clean_file) -> dict:
    return json.loads(clean_file.read_text())


def refused(capsys, data_dir, tmp_path, good: Path, *extra) -> str:
    """Run on damaged data over a good file; assert a clean refusal; the failure line."""
    out = tmp_path / "out" / "avellaneda_parameters_BTC.json"
    out.parent.mkdir(exist_ok=True)
    before = good.read_bytes()
    out.write_bytes(before)
    rc, err = calibrate(capsys, data_dir, out, *extra)
    assert rc == 1, err
    assert "Traceback" not in err
    failed = [line for line in err.splitlines() if "calibration failed:" in line]
    assert len(failed) == 1, err
    # The whole message, up to the closing words, is on that one line.
    assert failed[0].startswith("calibration failed: "), err
    assert failed[0].endswith(f"nothing written, {out} (if any) is unchanged"), err
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temp file left
    return failed[0]


def _numbers(doc) -> dict:
    return {"sigma": doc["sigma"], "bid": doc["bid"], "ask": doc["ask"],
            "mid": doc["mid_price"]}


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def _set_column(path: Path, col: str, fn) -> None:
    """Rewrite one column of a CSV file through ``fn(numpy array) -> array``."""
    table = pacsv.read_csv(path)
    i = table.schema.get_field_index(col)
    values = np.array(table.column(col).to_pylist())
    pacsv.write_csv(table.set_column(i, col, pa.array(fn(values))), path)


def _prices(data: Path, day: str = DAY2) -> Path:
    return data / f"prices_BTC_{day}.csv"


def _trades(data: Path, day: str = DAY2) -> Path:
    return data / f"trades_BTC_{day}.csv"


# ----------------------------------------------------------------- refused: the data is missing


def test_missing_folder(capsys, tmp_path, clean_file):
    line = refused(capsys, tmp_path / "nope", tmp_path, clean_file)
    assert "does not exist" in line


def test_missing_trades_files(capsys, data, tmp_path, clean_file):
    for p in data.glob("trades_*"):
        p.unlink()
    line = refused(capsys, data, tmp_path, clean_file)
    assert "no trades files for BTC" in line


def test_missing_column(capsys, data, tmp_path, clean_file):
    path = _trades(data)
    table = pacsv.read_csv(path)
    pacsv.write_csv(table.drop_columns(["side"]), path)
    line = refused(capsys, data, tmp_path, clean_file)
    assert "missing columns ['side']" in line and path.name in line


def test_empty_day(capsys, data, tmp_path, clean_file):
    for kind in ("trades", "prices"):
        path = data / f"{kind}_BTC_{DAY2}.csv"
        path.write_text(path.read_text().splitlines()[0] + "\n")
    line = refused(capsys, data, tmp_path, clean_file)
    assert DAY2 in line and "no usable quotes" in line


def test_zero_byte_files(capsys, data, tmp_path, clean_file):
    _prices(data).write_bytes(b"")
    _trades(data).write_bytes(b"")
    line = refused(capsys, data, tmp_path, clean_file)
    assert DAY2 in line and "no usable quotes" in line


# ----------------------------------------------------------------- refused: the data is stale


def test_stale_data_is_refused_by_default(capsys, data, tmp_path, clean_file):
    """The collector stopped long ago: a file from its data would be expired when written."""
    line = refused(capsys, data, tmp_path, clean_file, "--valid-for", "36h")
    assert "the newest data ends at 2025-09-02T23:59:59" in line
    assert "Is the collector running?" in line and "--valid-from now" in line


# ----------------------------------------------------------------- refused: files that lie


@pytest.mark.parametrize(("kind", "col", "scale", "says"), [
    # The collector's exchange time is in ms: seconds put every row in 1970 (and used to
    # read as "0 usable sweeps"), microseconds in the year 57,000.
    ("prices", "exchange_timestamp", 1e-3, "exchange_timestamp is in epoch seconds"),
    ("trades", "exchange_timestamp", 1e-3, "exchange_timestamp is in epoch seconds"),
    ("trades", "exchange_timestamp", 1e3, "exchange_timestamp is in epoch microseconds"),
    ("trades", "timestamp", 1e3, "timestamp is in epoch milliseconds"),
])
def test_a_time_column_in_the_wrong_unit_is_named(capsys, data, tmp_path, clean_file, kind,
                                                  col, scale, says):
    path = data / f"{kind}_BTC_{DAY2}.csv"
    _set_column(path, col, lambda v: (v.astype(np.float64) * scale).round(3))
    line = refused(capsys, data, tmp_path, clean_file)
    assert f"{path}: {says}" in line


def test_gaps_in_milliseconds_are_named(capsys, data, tmp_path, clean_file):
    (data / "gaps_BTC.csv").write_text(
        f"start,end,reason\n{DAY2_START_MS + 3_600_000},{DAY2_START_MS + 7_200_000},ws drop\n")
    line = refused(capsys, data, tmp_path, clean_file)
    assert "gaps_BTC.csv: start is in epoch milliseconds" in line


def test_another_markets_single_file_over_the_day_files_is_refused(capsys, data, tmp_path,
                                                                   clean_file):
    """A prices_BTC.csv of another market (ETH-like prices) beside the daily files: merged,
    it used to give sigma 35,840. Both files are named."""
    rows = _lines(_prices(data))
    other = [rows[0]]
    for row in rows[1:20001]:
        f = row.rstrip("\n").split(",")
        f[1] = f"{float(f[1]) / 40:.1f}"
        other.append(",".join(f) + "\n")
    (data / "prices_BTC.csv").write_text("".join(other))
    line = refused(capsys, data, tmp_path, clean_file)
    assert f"{data / 'prices_BTC.csv'} and {_prices(data)} both hold prices of BTC" in line
    assert "do not overlap" in line


def test_a_corrupt_parquet_file_without_csv_is_named(capsys, data, tmp_path, clean_file):
    broken = data / f"prices_BTC_{DAY2}.parquet"
    broken.write_bytes(b"PAR1" + _prices(data).read_bytes()[:10_000])
    _prices(data).unlink()
    line = refused(capsys, data, tmp_path, clean_file)
    assert f"{broken}: cannot read it" in line


def test_a_parquet_column_of_the_wrong_kind_is_named(capsys, data, tmp_path, clean_file):
    table = pacsv.read_csv(_prices(data))
    i = table.schema.get_field_index("price")
    stamps = pa.array(table.column("price").to_numpy().astype("datetime64[s]"))
    pq.write_table(table.set_column(i, "price", stamps), data / f"prices_BTC_{DAY2}.parquet")
    _prices(data).unlink()
    line = refused(capsys, data, tmp_path, clean_file)
    assert f"prices_BTC_{DAY2}.parquet" in line and "column price" in line


@pytest.mark.parametrize("garbage", ["random bytes", "gzip", "semicolons"])
def test_a_file_that_is_not_a_collector_csv_is_named(capsys, data, tmp_path, clean_file,
                                                     garbage):
    path = _prices(data)
    if garbage == "random bytes":
        path.write_bytes(np.random.default_rng(1).bytes(200_000))
    elif garbage == "gzip":
        path.write_bytes(gzip.compress(path.read_bytes()))
    else:
        path.write_text(path.read_text().replace(",", ";"))
    line = refused(capsys, data, tmp_path, clean_file)
    assert str(path) in line


def test_a_folder_in_place_of_a_file_is_named(capsys, data, tmp_path, clean_file):
    _trades(data).unlink()
    _trades(data).mkdir()
    line = refused(capsys, data, tmp_path, clean_file)
    assert f"{_trades(data)}: cannot read it" in line


def test_a_trades_file_under_the_prices_name(capsys, data, tmp_path, clean_file):
    shutil.copy(_trades(data), _prices(data))
    line = refused(capsys, data, tmp_path, clean_file)
    assert "no usable quotes" in line


# ----------------------------------------------------------------- refused: nothing to estimate


def test_one_side_without_trades(capsys, data, tmp_path, clean_file):
    path = _trades(data)
    lines = _lines(path)
    path.write_text(lines[0] + "".join(x for x in lines[1:] if ",sell," not in x))
    line = refused(capsys, data, tmp_path, clean_file)
    assert "bid side (sell orders hitting bids)" in line and "0 usable sweeps" in line


def test_failed_run_never_overwrites_a_good_file(capsys, data, tmp_path):
    out = tmp_path / "params" / "avellaneda_parameters_BTC.json"
    rc, _ = calibrate(capsys, data, out)
    assert rc == 0
    before = out.read_bytes()
    good = load_params(out)
    path = _trades(data)
    lines = _lines(path)
    path.write_text(lines[0] + "".join(x for x in lines[1:] if ",buy," not in x))
    rc, err = calibrate(capsys, data, out)
    assert rc == 1 and "ask side" in err and "unchanged" in err
    assert out.read_bytes() == before
    assert load_params(out) == good
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temp file left


def test_every_quote_crossed(capsys, data, tmp_path, clean_file):
    table = pacsv.read_csv(_prices(data))
    side = np.array(table.column("side").to_pylist())
    price = table.column("price").to_numpy().astype(np.float64)
    price[side == "ask"] -= 50.0
    i = table.schema.get_field_index("price")
    pacsv.write_csv(table.set_column(i, "price", [price]), _prices(data))
    line = refused(capsys, data, tmp_path, clean_file)
    assert "no usable quotes" in line and "crossed" in line


def test_a_mid_that_never_moves(capsys, data, tmp_path, clean_file):
    for path, up in ((_prices(data), "ask"), (_trades(data), "buy")):
        table = pacsv.read_csv(path)
        side = np.array(table.column("side").to_pylist())
        i = table.schema.get_field_index("price")
        flat = np.where(side == up, 100_001.0, 100_000.0)
        pacsv.write_csv(table.set_column(i, "price", [flat]), path)
    line = refused(capsys, data, tmp_path, clean_file)
    assert f"sigma on {DAY2}: the mid never moved" in line


def test_too_few_sweeps(capsys, data, tmp_path, clean_file):
    line = refused(capsys, data, tmp_path, clean_file, *FRESH, "--min-sweeps", "1000000")
    assert "usable sweeps (need at least 1000000)" in line


def test_a_tick_that_changes_inside_the_window(capsys, data, tmp_path, clean_file):
    for path in (_prices(data, DAY1), _trades(data, DAY1)):
        _set_column(path, "price", lambda v: v.astype(np.float64) * 10)
    line = refused(capsys, data, tmp_path, clean_file, *FRESH, "--window-days", "2")
    assert f"pooling {DAY1}..{DAY2}: the tick changed between days" in line


def test_a_nan_in_what_would_be_written_is_named(capsys, data, tmp_path, clean_file,
                                                 monkeypatch):
    """Whatever makes an estimate NaN (it used to be a fat finger's spread in k's standard
    error), the run says where instead of failing in the JSON encoder."""
    real = intensity.estimate_side_on_grid
    monkeypatch.setattr(intensity, "estimate_side_on_grid", lambda st, m: dataclasses.replace(
        real(st, m), k_se=float("nan")))
    line = refused(capsys, data, tmp_path, clean_file)
    assert "BTC: diagnostics.estimation.bid.k_se is nan in what would be written" in line


def test_an_internal_error_is_one_line_too(capsys, data, tmp_path, clean_file, monkeypatch):
    def broken(*_):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(est, "robust_sigma", broken)
    line = refused(capsys, data, tmp_path, clean_file)
    assert "internal error (ZeroDivisionError: a bug; -vv shows the traceback)" in line


# ----------------------------------------------------------------- bad rows: dropped and counted


def test_nan_and_negative_values_are_dropped_and_counted(capsys, data, tmp_path, clean):
    tr = _trades(data)
    lines = _lines(tr)
    t = lines[500].split(",")
    bad = [  # NaN price, negative size, zero price, empty size; fresh trade ids
        f"{t[0]},nan,0.1,buy,900000001,{t[5]}",
        f"{t[0]},{t[1]},-0.1,sell,900000002,{t[5]}",
        f"{t[0]},0,0.1,buy,900000003,{t[5]}",
        f"{t[0]},{t[1]},,sell,900000004,{t[5]}",
    ]
    tr.write_text("".join(lines[:501]) + "\n".join(bad) + "\n" + "".join(lines[501:]))
    pr = _prices(data)
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


def test_lines_not_utf8_and_junk_text_are_dropped_and_counted(capsys, data, tmp_path, clean):
    """One such line used to reject the whole day's file."""
    path = _trades(data)
    raw = path.read_bytes().split(b"\n")
    t = raw[700].split(b",")
    raw[700:700] = [
        b"\xff\xfe\x00 not text \xc3\x28",                               # wrong width, binary
        b",".join([t[0], b"10\xe9000", t[2], b"buy", b"900000001", t[5]]),  # right width
        b",".join([t[0], b"oops", t[2], b"sell", b"900000002", t[5]]),      # ASCII junk number
    ]
    path.write_bytes(b"\n".join(raw))
    out = tmp_path / "p.json"
    rc, err = calibrate(capsys, data, out)
    assert rc == 0 and "Traceback" not in err
    doc = json.loads(out.read_text())
    dropped = doc["diagnostics"]["data_quality"][DAY2]["dropped"]
    assert dropped == {"trades: line not UTF-8": 2, "trades: malformed row": 1}
    assert _numbers(doc) == _numbers(clean)


def test_a_stray_row_in_seconds_is_dropped_and_counted(capsys, data, tmp_path, clean):
    path = _trades(data)
    lines = _lines(path)
    t = lines[900].rstrip("\n").split(",")
    stray = ",".join([*t[:4], "900000001", str(int(t[5]) // 1000)]) + "\n"
    path.write_text("".join(lines[:900]) + stray + "".join(lines[900:]))
    out = tmp_path / "p.json"
    rc, _ = calibrate(capsys, data, out)
    assert rc == 0
    doc = json.loads(out.read_text())
    dropped = doc["diagnostics"]["data_quality"][DAY2]["dropped"]
    assert dropped == {"trades: exchange_timestamp not in epoch milliseconds": 1}
    assert _numbers(doc) == _numbers(clean)


def test_duplicate_and_out_of_order_rows_change_nothing(capsys, data, tmp_path, clean):
    tr = _trades(data)
    lines = _lines(tr)
    # A reconnect replays 300 fills at the end; a block of 200 rows arrives reversed.
    body = lines[1:]
    body = body[:1000] + body[1000:1200][::-1] + body[1200:] + body[5000:5300]
    tr.write_text(lines[0] + "".join(body))
    pr = _prices(data)
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


# ----------------------------------------------------------------- implausible quotes: left out


@pytest.mark.parametrize(("what", "seconds", "side", "price"), [
    ("fat-finger ask at 1e6", 10, "ask", lambda p: np.full(p.size, 1e6)),
    ("fat-finger bid at 1", 10, "bid", lambda p: np.ones(p.size)),
    ("both sides 2 % up, then back", 30, None, lambda p: p * 1.02),
])
def test_implausible_quotes_are_left_out_and_counted(capsys, data, tmp_path, clean, what,
                                                     seconds, side, price):
    """10 s of an ask at 1e6 used to give sigma 2168 (and a NaN standard error that crashed
    the JSON encoder). Quotes the trades around them do not confirm are left out: sigma
    stays within 0.1 % of the clean day's (a handful of its 86,400 increments go)."""
    table = pacsv.read_csv(_prices(data))
    t = table.column("exchange_timestamp").to_numpy()
    sides = np.array(table.column("side").to_pylist())
    px = table.column("price").to_numpy().astype(np.float64)
    hit = (t >= DAY2_START_MS + 3_600_000) & (t < DAY2_START_MS + 3_600_000 + 1000 * seconds)
    if side is not None:
        hit &= sides == side
    px[hit] = price(px[hit])
    i = table.schema.get_field_index("price")
    pacsv.write_csv(table.set_column(i, "price", [px]), _prices(data))
    out = tmp_path / "p.json"
    rc, err = calibrate(capsys, data, out)
    assert rc == 0, err
    doc = json.loads(out.read_text())
    n = doc["diagnostics"]["data_quality"][DAY2]["implausible_bbo_states"]
    assert seconds // 2 <= n <= seconds + 2  # the BBO changes about once a second
    assert f"{DAY2}: {n} BBO states left out as implausible" in " ".join(
        doc["diagnostics"]["warnings"])
    assert doc["sigma"] == pytest.approx(clean["sigma"], rel=1e-3)
    for s in ("bid", "ask"):
        assert doc[s]["k"] == pytest.approx(clean[s]["k"], rel=1e-3)


def test_a_clean_day_has_no_implausible_quotes(clean):
    assert clean["diagnostics"]["data_quality"][DAY2]["implausible_bbo_states"] == 0


def test_crossed_quotes_are_left_out(capsys, data, tmp_path, small_market):
    """Two hours of crossed quotes: their sweeps and their time are left out, so A (sweeps per
    usable second) stays right. Bound: A within 4 SE (se/A = 1/sqrt(~15,800) = 0.8 %)."""
    _, truth = small_market
    path = _prices(data)
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
    est_ = doc["diagnostics"]["estimation"]
    assert doc["diagnostics"]["data_quality"][DAY2]["unusable_bbo_states"] > 5000
    for side_name in ("bid", "ask"):
        s = est_[side_name]
        assert s["exposure"] == pytest.approx(86400 - 7200, abs=30)
        assert s["dropped"] > 1000
        assert abs(s["A"] - truth[side_name]["A"]) < 4 * s["A_se"]
    assert est_["sigma"]["increments"] < 86400 - 7000


def test_collector_gaps_are_left_out(capsys, data, tmp_path, small_market):
    _, truth = small_market
    t0 = 1756771200.0  # 2025-09-02T00:00Z
    (data / "gaps_BTC.csv").write_text(
        f"start,end,reason\n{t0 + 3600},{t0 + 7200},ws drop\n{t0 + 50000},{t0 + 57200},restart\n")
    out = tmp_path / "p.json"
    rc, _ = calibrate(capsys, data, out)
    assert rc == 0
    est_ = json.loads(out.read_text())["diagnostics"]["estimation"]
    # The 24 h window is 24 h recorded: the 3 h of gaps on day 2 are made up by the last 3
    # hours of day 1, the gaps themselves left out.
    assert est_["window"][0].startswith(f"{DAY1}T21:00:0")
    assert est_["hours"] == pytest.approx(24, abs=0.01)
    for side_name in ("bid", "ask"):
        assert est_[side_name]["exposure"] == pytest.approx(86400, abs=5)
        assert abs(est_[side_name]["A"] - truth[side_name]["A"]) < 4 * est_[side_name]["A_se"]
    # Increments touching a gap are gone: 10,800 inside, plus one at each gap edge at most
    # (and one at each hour's edge: an hour's increments are its own).
    assert 86400 - 6 - 24 <= est_["sigma"]["increments"] <= 86400


# ----------------------------------------------------------------- layouts and formats


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


def test_a_corrupt_parquet_file_gives_way_to_the_csv_of_its_day(capsys, caplog, data, tmp_path,
                                                                clean):
    broken = data / f"prices_BTC_{DAY2}.parquet"
    broken.write_bytes(b"PAR1" + _prices(data).read_bytes()[:10_000])
    out = tmp_path / "p.json"
    with caplog.at_level(logging.WARNING, logger="asmm"):
        rc, err = calibrate(capsys, data, out)
    assert rc == 0 and "Traceback" not in err
    # Said each time the day is read (the estimate, then the verdict's backtest).
    said, *again = [r.getMessage() for r in caplog.records if "instead" in r.getMessage()]
    assert all(a == said for a in again)
    assert f"{broken}: cannot read it" in said
    assert f"read prices_BTC_{DAY2}.csv (the same day as CSV) instead" in said
    doc = json.loads(out.read_text())
    assert any(str(broken) in n for n in doc["diagnostics"]["data_quality"][DAY2]["notes"])
    assert _numbers(doc) == _numbers(clean)


def test_a_single_file_archive_before_the_day_files_is_merged(capsys, data, tmp_path, clean):
    """An archive that moved from the single-file layout to daily files: no overlap, no
    conflict."""
    for kind in ("prices", "trades"):
        (data / f"{kind}_BTC_{DAY1}.csv").rename(data / f"{kind}_BTC.csv")
    out = tmp_path / "p.json"
    rc, err = calibrate(capsys, data, out)
    assert rc == 0, err
    assert _numbers(json.loads(out.read_text())) == _numbers(clean)


def test_unusable_earlier_day_skips_the_walk_forward_not_the_file(capsys, data, tmp_path):
    """Day 1 serves only the gamma search: when it cannot be estimated, the test stretch is
    skipped (said in the file) and gamma falls back; sigma, A, k of day 2 are still written."""
    path = _trades(data, DAY1)
    lines = _lines(path)
    path.write_text(lines[0] + "".join(x for x in lines[1:] if ",sell," not in x))
    out = tmp_path / "p.json"
    rc = main(["calibrate", "--data-dir", str(data), "--output", str(out), *FRESH])
    assert rc == 0, capsys.readouterr().err
    params = load_params(out)
    g = params.diagnostics["gamma"]
    assert g["method"] == "fallback rule (not backtested)"
    assert g["reason"].startswith(f"no test stretch could be backtested: {DAY2}T00:00:0")
    assert "bid side (sell orders hitting bids)" in g["reason"]
    assert any(f"walk-forward test {DAY2}T00:00:0" in w and "skipped" in w
               for w in params.diagnostics["warnings"])
    assert params.diagnostics["estimation"]["days"] == [DAY2]


def test_an_unreadable_earlier_day_leaves_a_day_to_walk_forward_on(capsys, data, tmp_path):
    """Day 1 empty: the data is one day, so the walk-forward tests its latest third, and
    the file names the day it could not use."""
    for kind in ("trades", "prices"):
        p = data / f"{kind}_BTC_{DAY1}.csv"
        p.write_text(_lines(p)[0])
    out = tmp_path / "p.json"
    rc = main(["calibrate", "--data-dir", str(data), "--output", str(out), *FRESH])
    assert rc == 0, capsys.readouterr().err
    params = load_params(out)
    (test,) = params.diagnostics["gamma"]["tests"]
    assert test["test_window"][0].startswith(f"{DAY2}T16:00:0")
    assert "usable quotes" in params.diagnostics["data_quality"][DAY1]["unusable"]
    assert params.diagnostics["estimation"]["days"] == [DAY2]


# ----------------------------------------------------------------- freshness follows the data


@pytest.fixture(scope="module")
def data_end(clean) -> datetime:
    return datetime.fromisoformat(clean["data_window"]["end"].replace("Z", "+00:00"))


def _run(small_market, now: datetime, **cfg):
    src, _ = small_market
    return run_calibration(src, CalibrationConfig(walk_forward_days=0, **cfg), now=now)


def test_a_live_collector_gets_the_full_validity(small_market, data_end):
    now = data_end + timedelta(minutes=2)
    r = _run(small_market, now)
    assert r.params.valid_until == data_end + timedelta(hours=36)
    assert not any("collector" in w for w in r.warnings)


def test_a_stopped_collector_gets_what_is_left_of_the_validity(small_market, data_end):
    """The sidecar keeps running after the collector died: its files expire 36 h after the
    last data, not 36 h after each run, and each says why."""
    now = data_end + timedelta(hours=30)
    r = _run(small_market, now)
    assert r.params.valid_until == data_end + timedelta(hours=36)
    assert r.params.valid_until - r.params.computed_at == timedelta(hours=6)
    (w,) = [w for w in r.warnings if "collector" in w]
    assert "30.0 h ago: is the collector running?" in w
    with pytest.raises(CalibrationError, match=r"45\.0 h before now, longer ago than the "
                                               r"validity \(36\.0 h\)"):
        _run(small_market, data_end + timedelta(hours=45))
    with pytest.raises(CalibrationError, match="Is the collector running"):
        _run(small_market, data_end + timedelta(hours=13), validity=timedelta(hours=12))


def test_a_clock_behind_the_data_does_not_extend_the_validity(small_market, data_end):
    now = data_end - timedelta(seconds=30)  # within the clock skew the file allows
    assert _run(small_market, now).params.valid_until == now + timedelta(hours=36)


def test_replayed_days_count_from_now_when_asked(small_market, data_end):
    now = datetime(2026, 11, 30, tzinfo=UTC)
    r = _run(small_market, now, valid_from="now")
    assert r.params.valid_until == now + timedelta(hours=36)
    assert any("replayed as live only" in w for w in r.warnings)


def test_unwritable_output_is_one_line(capsys, data, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    target = out / "p.json"
    target.mkdir()  # a folder where the file should go
    rc, err = calibrate(capsys, data, target)
    assert rc == 1 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if "calibration failed:" in x]
    assert str(target) in line
    assert os.path.isdir(target)
