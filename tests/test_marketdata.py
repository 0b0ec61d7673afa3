"""Collector-format readers: bad rows are dropped and counted, never used; clear errors."""

import logging

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from asmm.core.errors import DataError
from asmm.data.readers import read_bbo, read_gaps, read_orderbooks, read_trades

TRADES_HEADER = "timestamp,price,size,side,trade_id,exchange_timestamp\n"


def test_window_outside_the_files_is_a_clear_error(small_market):
    folder, _ = small_market
    with pytest.raises(DataError, match="cover the window"):
        read_trades(folder, "BTC", start=0.0, end=86400.0)
    with pytest.raises(DataError, match="days on disk: 2025-09-01, 2025-09-02"):
        read_bbo(folder, "BTC", start=2e9, end=2e9 + 60)


def test_bad_trade_rows_are_dropped_and_counted(tmp_path):
    (tmp_path / "trades_BTC.csv").write_text(
        TRADES_HEADER
        + "1.0,100,0.1,buy,1,1000\n"
        + "1.1,nan,0.1,buy,2,1001\n"        # NaN price
        + "1.2,100,-1,sell,3,1002\n"        # negative size
        + "1.3,100,0.1,hold,4,1003\n"       # unknown side
        + "1.0,100,0.1,buy,1,1000\n"        # the same fill twice (a reconnect)
        + "0.9,99,0.2,sell,5,999\n"         # out of order: re-sorted
        + "1.5,101,0.3,sell,6,10"           # truncated last line (kill -9)
    )
    tr = read_trades(tmp_path, "BTC")
    np.testing.assert_array_equal(tr.trade_id, [5, 1])
    np.testing.assert_array_equal(tr.side, [-1, 1])
    d = tr.quality.dropped
    assert d["trades: NaN or missing price/size"] == 1
    assert d["trades: non-positive price/size"] == 1
    assert d["trades: side not buy/sell"] == 1
    assert d["trades: duplicate trade_id"] == 1
    assert any("out-of-order" in n for n in tr.quality.notes)


def test_missing_column_names_the_file(tmp_path):
    (tmp_path / "trades_BTC.csv").write_text("timestamp,price,size\n1,100,1\n")
    with pytest.raises(DataError, match="missing columns"):
        read_trades(tmp_path, "BTC")


def test_crossed_bbo_is_kept_but_flagged(tmp_path):
    (tmp_path / "prices_BTC.csv").write_text(
        "timestamp,price,size,side,exchange_timestamp\n"
        "1,100,1,bid,1000\n1,101,1,ask,1000\n"
        "2,102,1,bid,2000\n"                 # bid through the ask: crossed
        "3,103,1,ask,3000\n")
    bbo = read_bbo(tmp_path, "BTC")
    np.testing.assert_array_equal(bbo.crossed, [False, True, False])
    assert any("crossed" in n for n in bbo.quality.notes)


def test_a_header_cut_short_is_an_empty_file_not_a_crash(tmp_path):
    (tmp_path / "trades_BTC_2025-09-01.csv").write_text("timestamp,pri")
    (tmp_path / "trades_BTC_2025-09-02.csv").write_text(TRADES_HEADER + "1,100,1,buy,7,86400000\n")
    tr = read_trades(tmp_path, "BTC")
    np.testing.assert_array_equal(tr.trade_id, [7])
    assert tr.quality.dropped == {"truncated last line": 1}


# ------------------------------------------------------------------ damaged files, odd units

T0_MS = 1_756_771_200_000  # 2025-09-02T00:00Z
PRICES_HEADER = "timestamp,price,size,side,exchange_timestamp\n"


def _trade_rows(n: int, t0_ms: int = T0_MS, price: float = 100.0) -> str:
    return "".join(f"{(t0_ms + 1000 * i) / 1000 + 0.05},{price + i % 3},0.1,"
                   f"{'buy' if i % 2 else 'sell'},{i + 1},{t0_ms + 1000 * i}\n" for i in range(n))


def _price_rows(n: int, t0_ms: int = T0_MS, price: float = 100.0) -> str:
    return "".join(f"{(t0_ms + 1000 * i) / 1000 + 0.05},{price},1,bid,{t0_ms + 1000 * i}\n"
                   f"{(t0_ms + 1000 * i) / 1000 + 0.05},{price + 1},1,ask,{t0_ms + 1000 * i}\n"
                   for i in range(n))


@pytest.mark.parametrize("junk", [
    b"\xff\xfe,\xc3\x28,1,buy,99,1756771200500\n",     # right width, not UTF-8
    b"\xff\xfe garbage \xc3\x28\n",                     # wrong width, not UTF-8
])
def test_a_line_not_utf8_is_dropped_and_counted(tmp_path, junk):
    rows = [r.encode() for r in _trade_rows(10).splitlines(keepends=True)]
    (tmp_path / "trades_BTC_2025-09-02.csv").write_bytes(
        TRADES_HEADER.encode() + b"".join(rows[:4]) + junk + b"".join(rows[4:]))
    tr = read_trades(tmp_path, "BTC")
    assert len(tr) == 10
    assert tr.quality.dropped == {"line not UTF-8": 1}


def test_text_in_a_number_column_drops_the_row_not_the_file(tmp_path):
    lines = _trade_rows(10).splitlines(keepends=True)
    lines.insert(3, "1756771203.1,oops,0.1,buy,77,1756771203100\n")   # ASCII junk, right width
    lines.insert(5, "just some words\n")                              # wrong width
    (tmp_path / "trades_BTC.csv").write_text(TRADES_HEADER + "".join(lines))
    tr = read_trades(tmp_path, "BTC")
    assert len(tr) == 10 and 77 not in tr.trade_id
    assert tr.quality.dropped == {"malformed row": 2}


def test_a_corrupt_parquet_file_names_itself(tmp_path):
    (tmp_path / "prices_BTC_2025-09-02.parquet").write_bytes(b"PAR1 cut short")
    with pytest.raises(DataError, match=r"prices_BTC_2025-09-02\.parquet: cannot read it"):
        read_bbo(tmp_path, "BTC")


def test_a_corrupt_parquet_file_gives_way_to_the_csv_of_the_same_day(tmp_path, caplog):
    (tmp_path / "prices_BTC_2025-09-02.csv").write_text(PRICES_HEADER + _price_rows(5))
    (tmp_path / "prices_BTC_2025-09-02.parquet").write_bytes(b"PAR1 cut short")
    with caplog.at_level(logging.WARNING):
        bbo = read_bbo(tmp_path, "BTC")
    assert len(bbo) == 5
    (note,) = bbo.quality.notes
    assert "prices_BTC_2025-09-02.parquet: cannot read it" in note
    assert "read prices_BTC_2025-09-02.csv (the same day as CSV) instead" in note
    assert "read prices_BTC_2025-09-02.csv" in caplog.text


def test_an_intact_parquet_file_is_preferred_to_the_csv(tmp_path):
    (tmp_path / "prices_BTC_2025-09-02.csv").write_text(PRICES_HEADER + _price_rows(5))
    pq.write_table(pacsv.read_csv(tmp_path / "prices_BTC_2025-09-02.csv"),
                   tmp_path / "prices_BTC_2025-09-02.parquet")
    (tmp_path / "prices_BTC_2025-09-02.csv").write_text(PRICES_HEADER + _price_rows(3))
    assert len(read_bbo(tmp_path, "BTC")) == 5


def test_parquet_numbers_stored_as_text_are_converted_and_junk_dropped(tmp_path):
    pq.write_table(pa.table({
        "timestamp": ["1756771200.1", "1756771201.1", "1756771202.1"],
        "price": ["100", "n/a?", "101"], "size": ["0.1", "0.1", "0.2"],
        "side": ["buy", "sell", "sell"], "trade_id": [1, 2, 3],
        "exchange_timestamp": [T0_MS, T0_MS + 1000, T0_MS + 2000]}),
        tmp_path / "trades_BTC_2025-09-02.parquet")
    tr = read_trades(tmp_path, "BTC")
    np.testing.assert_array_equal(tr.trade_id, [1, 3])
    np.testing.assert_array_equal(tr.price, [100.0, 101.0])
    assert tr.quality.dropped == {"malformed row": 1}


def test_a_parquet_column_of_the_wrong_kind_names_file_and_column(tmp_path):
    pq.write_table(pa.table({
        "timestamp": [1756771200.1], "price": [[1.0, 2.0]], "size": [0.1], "side": ["buy"],
        "trade_id": [1], "exchange_timestamp": [T0_MS]}),
        tmp_path / "trades_BTC_2025-09-02.parquet")
    with pytest.raises(DataError, match=r"trades_BTC_2025-09-02\.parquet: .*column price"):
        read_trades(tmp_path, "BTC")


@pytest.mark.parametrize(("scale", "col", "found"), [
    (1e-3, "exchange_timestamp", "seconds"),
    (1e3, "exchange_timestamp", "microseconds"),
    (1e3, "timestamp", "milliseconds"),
])
def test_a_time_column_in_the_wrong_unit_is_named(tmp_path, scale, col, found):
    (tmp_path / "trades_BTC.csv").write_text(TRADES_HEADER + _trade_rows(20))
    table = pacsv.read_csv(tmp_path / "trades_BTC.csv")
    i = table.schema.get_field_index(col)
    scaled = pa.array((table.column(col).to_numpy() * scale).astype(np.int64))
    pacsv.write_csv(table.set_column(i, col, scaled), tmp_path / "trades_BTC.csv")
    with pytest.raises(DataError, match=rf"trades_BTC\.csv: {col} is in epoch {found}, not"):
        read_trades(tmp_path, "BTC")


def test_a_stray_row_in_another_time_unit_is_dropped_and_counted(tmp_path):
    lines = _trade_rows(10).splitlines(keepends=True)
    lines.insert(4, "1756771203.1,100,0.1,buy,77,1756771203\n")  # exchange time in seconds
    (tmp_path / "trades_BTC.csv").write_text(TRADES_HEADER + "".join(lines))
    tr = read_trades(tmp_path, "BTC")
    assert 77 not in tr.trade_id and tr.t[0] == T0_MS
    assert tr.quality.dropped == {"exchange_timestamp not in epoch milliseconds": 1}


def test_gaps_in_milliseconds_are_named(tmp_path):
    (tmp_path / "gaps_BTC.csv").write_text(f"start,end,reason\n{T0_MS},{T0_MS + 60_000},ws\n")
    with pytest.raises(DataError, match=r"gaps_BTC\.csv: start is in epoch milliseconds"):
        read_gaps(tmp_path, "BTC")


def test_overlapping_layouts_are_refused_naming_both_files(tmp_path):
    (tmp_path / "prices_BTC_2025-09-02.csv").write_text(PRICES_HEADER + _price_rows(50))
    (tmp_path / "prices_BTC.csv").write_text(
        PRICES_HEADER + _price_rows(10, T0_MS + 20_000, price=2500.0))  # another market
    with pytest.raises(DataError, match=r"prices_BTC\.csv and .*prices_BTC_2025-09-02\.csv "
                                        r"both hold prices of BTC from 2025-09-02T00:00:20"):
        read_bbo(tmp_path, "BTC")


def test_layouts_that_follow_each_other_are_merged(tmp_path):
    """An archive that moved from the single file to daily files: no overlap, one series."""
    (tmp_path / "trades_BTC.csv").write_text(TRADES_HEADER + _trade_rows(5, T0_MS - 86_400_000))
    (tmp_path / "trades_BTC_2025-09-02.csv").write_text(TRADES_HEADER + _trade_rows(5))
    tr = read_trades(tmp_path, "BTC")
    assert len(tr) == 5  # trade ids repeat across the two files: the later day's kept once
    assert read_trades(tmp_path, "BTC", T0_MS / 1000 - 86400, T0_MS / 1000).t.size == 5


def test_an_unreadable_path_is_named(tmp_path):
    (tmp_path / "trades_BTC_2025-09-02.csv").mkdir()
    with pytest.raises(DataError, match=r"trades_BTC_2025-09-02\.csv: cannot read it"):
        read_trades(tmp_path, "BTC")


def test_orderbooks_corrupt_parquet_gives_way_to_csv_and_garbage_is_named(tmp_path):
    header = "timestamp,sequence,exchange_timestamp,bid_price_0,bid_size_0,ask_price_0,ask_size_0\n"
    (tmp_path / "orderbooks_BTC_2025-09-02.csv").write_text(
        header + f"1756771200.1,1,{T0_MS},100,1,101,1\n")
    (tmp_path / "orderbooks_BTC_2025-09-02.parquet").write_bytes(b"not parquet")
    ob = read_orderbooks(tmp_path, "BTC")
    assert len(ob) == 1 and "instead" in ob.quality.notes[0]
    (tmp_path / "orderbooks_BTC_2025-09-03.csv").write_bytes(b"\xff\xfe\x00garbage\n1,2\n")
    with pytest.raises(DataError, match=r"orderbooks_BTC_2025-09-03\.csv: no bid_price_0"):
        read_orderbooks(tmp_path, "BTC")


def test_an_infinite_exchange_time_is_a_missing_one(tmp_path):
    (tmp_path / "trades_BTC.csv").write_text(
        TRADES_HEADER + _trade_rows(3) + "1756771205.1,100,0.1,buy,9,inf\n")
    (tmp_path / "prices_BTC.csv").write_text(
        PRICES_HEADER + _price_rows(3) + "1756771205.1,100,1,bid,inf\n")
    tr, bbo = read_trades(tmp_path, "BTC"), read_bbo(tmp_path, "BTC")
    assert len(tr) == 3 and tr.t.min() == T0_MS
    assert tr.quality.dropped == {"trades: missing exchange_timestamp": 1}
    assert len(bbo) == 3 and bbo.quality.dropped == {"prices: missing exchange_timestamp": 1}
