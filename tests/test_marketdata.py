"""Collector-format readers: bad rows are dropped and counted, never used; clear errors."""

import numpy as np
import pytest

from asmm.marketdata import DataError, read_bbo, read_trades

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
