"""asmm.venues.hyperliquid.protocol: what the replay exchange builds, the collector parses back
exactly."""

import json

import pytest

from asmm.data.files import PRICES_COLUMNS, TRADES_COLUMNS, orderbook_columns
from asmm.venues.hyperliquid import protocol as hp


def wire(msg: dict) -> dict:
    """Through the wire and back, as a client receives it."""
    return hp.parse_message(hp.dumps(msg))


@pytest.mark.parametrize("x", [100000.0, 0.00001, 1e-9, 1.2345678912345e-13,
                               12345.678901234567, 3.0, 1e21])
def test_fmt_num_round_trips_without_exponent(x):
    s = hp.fmt_num(x)
    assert "e" not in s.lower()
    assert float(s) == x


def test_bbo_round_trip_in_collector_column_order():
    msg = wire(hp.bbo_msg("BTC", 1756684800066, (100001.0, 1.14375, 3), (100002.0, 0.61932, 2)))
    assert msg["data"]["bbo"][0] == {"px": "100001.0", "sz": "1.14375", "n": 3}
    rows = hp.parse_bbo(msg, received=1756684800.5)
    assert [len(r) for r in rows] == [len(PRICES_COLUMNS)] * 2
    assert rows == [(1756684800.5, 100001.0, 1.14375, "bid", 1756684800066),
                    (1756684800.5, 100002.0, 0.61932, "ask", 1756684800066)]


def test_bbo_null_side_gives_no_row():
    rows = hp.parse_bbo(wire(hp.bbo_msg("BTC", 5, None, (2.0, 1.0, 1))), received=1.0)
    assert [r[3] for r in rows] == ["ask"]


def test_trades_round_trip_sides_and_ids():
    msg = wire(hp.trades_msg("BTC", [(100001.0, 0.01841, -1, 1756684800339, 1),
                                     (100002.0, 0.5, +1, 1756684800339, 2)]))
    f = msg["data"][0]
    assert f["side"] == "A" and f["tid"] == 1 and f["hash"].startswith("0x")
    assert len(f["hash"]) == 66 and len(f["users"]) == 2
    rows = hp.parse_trades(msg, received=7.0)
    assert all(len(r) == len(TRADES_COLUMNS) for r in rows)
    assert rows == [(7.0, 100001.0, 0.01841, "sell", 1, 1756684800339),
                    (7.0, 100002.0, 0.5, "buy", 2, 1756684800339)]


def test_l2book_round_trip_pads_missing_levels():
    msg = wire(hp.l2book_msg("BTC", 10, [(99.0, 1.0, 1), (98.0, 2.0, 1)], [(100.0, 3.0, 2)]))
    row = hp.parse_l2book(msg, depth=3, received=1.5, sequence=42)
    assert len(row) == len(orderbook_columns(3))
    assert row[:7] == (1.5, 42, 10, 99.0, 1.0, 100.0, 3.0)
    assert row[7:] == (98.0, 2.0, None, None, None, None, None, None)


def test_l2book_deeper_than_depth_is_cut():
    bids = [(100.0 - i, 1.0, 1) for i in range(20)]
    asks = [(101.0 + i, 1.0, 1) for i in range(20)]
    row = hp.parse_l2book(wire(hp.l2book_msg("BTC", 10, bids, asks)), depth=2, received=0.0)
    assert row[3:] == (100.0, 1.0, 101.0, 1.0, 99.0, 1.0, 102.0, 1.0)


def test_candle_round_trip():
    c = hp.candle("BTC", "1m", 60_000, 10.0, 12.0, 9.0, 11.0, 0.5, 3)
    assert c["T"] == 119_999
    got = hp.parse_candle(wire(hp.candle_msg(c)))
    assert (got["o"], got["h"], got["l"], got["c"], got["v"], got["n"]) == (10, 12, 9, 11, .5, 3)


@pytest.mark.parametrize("text", [
    "Websocket connection established.",
    '{"channel": "bbo", "data": {"coin": "BTC", "ti',
    "[1, 2]",
    '{"data": {}}',
])
def test_parse_message_rejects_non_messages(text):
    with pytest.raises(hp.ProtocolError):
        hp.parse_message(text)


GOOD_BBO = hp.bbo_msg("BTC", 5, (1.0, 1.0, 1), (2.0, 1.0, 1))


@pytest.mark.parametrize("mutate", [
    lambda m: m.update(channel="trades"),
    lambda m: m["data"].update(time="soon"),
    lambda m: m["data"].update(time=True),
    lambda m: m["data"].pop("coin"),
    lambda m: m["data"].update(bbo=[None]),
    lambda m: m["data"]["bbo"][0].update(px="abc"),
    lambda m: m["data"]["bbo"][1].update(sz="-1"),
    lambda m: m["data"]["bbo"][1].update(px="nan"),
])
def test_malformed_bbo_raises(mutate):
    msg = json.loads(hp.dumps(GOOD_BBO))
    mutate(msg)
    with pytest.raises(hp.ProtocolError):
        hp.parse_bbo(msg, received=1.0)


@pytest.mark.parametrize("fill", [
    {"side": "X"}, {"tid": "7"}, {"px": None}, {"time": -3}, {"coin": ""},
])
def test_malformed_trade_raises_and_returns_nothing(fill):
    msg = json.loads(hp.dumps(hp.trades_msg("BTC", [(1.0, 1.0, 1, 5, 1), (1.0, 1.0, 1, 5, 2)])))
    msg["data"][1].update(fill)
    with pytest.raises(hp.ProtocolError):
        hp.parse_trades(msg, received=1.0)


@pytest.mark.parametrize("levels", [None, [[]], [[], {}], [[{"px": "1"}], []]])
def test_malformed_l2book_raises(levels):
    msg = json.loads(hp.dumps(hp.l2book_msg("BTC", 5, [], [])))
    msg["data"]["levels"] = levels
    with pytest.raises(hp.ProtocolError):
        hp.parse_l2book(msg, depth=2, received=1.0)


def test_info_answers_have_the_shapes_clients_need():
    m = hp.meta([("BTC", 5, 40)])
    assert m["universe"][0] == {"name": "BTC", "szDecimals": 5, "maxLeverage": 40,
                                "onlyIsolated": False}
    assert hp.perp_dexs() == [None]
    ctx = hp.asset_ctx(100000.0, 100000.5, 100000.0, 100001.0, 1.25e-5, 99000.0, 1000.0, 1e9)
    assert ctx["impactPxs"] == ["100000.0", "100001.0"] and ctx["funding"] == "0.0000125"
    assert hp.spot_meta()["tokens"][0]["name"] == "USDC"
    assert set(hp.info_error("bad")) >= {"code", "msg"}


def test_text_builders_equal_the_dict_builders():
    bid, ask = (100001.0, 1.14375, 3), (100002.0, 0.61932, 2)
    assert hp.bbo_text("BTC", 7, bid, ask) == hp.dumps(hp.bbo_msg("BTC", 7, bid, ask))
    assert hp.bbo_text("BTC", 7, None, ask) == hp.dumps(hp.bbo_msg("BTC", 7, None, ask))
    fills = [(100001.0, 0.01841, -1, 9, 1), (100002.0, 0.5, 1, 9, 2)]
    assert hp.trades_text("BTC", fills) == hp.dumps(hp.trades_msg("BTC", fills))
    bids, asks = [(99.0, 1.0, 1), (98.0, 2.5, 4)], [(100.0, 3.0, 2)]
    assert hp.l2book_text("BTC", 5, bids, asks) == hp.dumps(hp.l2book_msg("BTC", 5, bids, asks))
    assert hp.l2book_text("BTC", 5, [], []) == hp.dumps(hp.l2book_msg("BTC", 5, [], []))
