"""The synthetic market: format, determinism, and that its data carry the truth it states."""

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asmm.data.files import PRICES_COLUMNS, TRADES_COLUMNS, orderbook_columns
from asmm.data.readers import read_bbo, read_orderbooks, read_trades
from asmm.data.synth import SynthConfig, generate

ASMM = str(Path(sys.executable).parent / "asmm")


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir())}


def test_daily_files_with_collector_columns(small_market):
    folder, truth = small_market
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "orderbooks_BTC_2025-09-01.csv", "orderbooks_BTC_2025-09-02.csv",
        "prices_BTC_2025-09-01.csv", "prices_BTC_2025-09-02.csv",
        "trades_BTC_2025-09-01.csv", "trades_BTC_2025-09-02.csv", "truth.json",
    ]
    header = lambda kind: (folder / f"{kind}_BTC_2025-09-01.csv").open().readline().strip()  # noqa: E731
    assert header("prices").split(",") == PRICES_COLUMNS
    assert header("trades").split(",") == TRADES_COLUMNS
    assert header("orderbooks").split(",") == orderbook_columns(10)
    assert truth["sigma"] == 6.8 and truth["bid"] == {"A": 0.2, "k": 0.5}


def test_same_seed_same_bytes_other_seed_other_market(tmp_path):
    cfg = SynthConfig(days=1, seed=3, bbo_rate=0.2, A_bid=0.05, A_ask=0.05, l2_interval=60)
    generate(cfg, tmp_path / "a")
    generate(cfg, tmp_path / "b")
    generate(SynthConfig(**{**cfg.__dict__, "seed": 4}), tmp_path / "c")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_book_is_consistent(small_market):
    folder, truth = small_market
    bbo = read_bbo(folder, "BTC")
    tick = truth["tick"]
    assert not bbo.crossed.any()
    np.testing.assert_allclose(bbo.ask - bbo.bid, tick)
    assert np.all(np.diff(bbo.t) > 0)
    books = read_orderbooks(folder, "BTC")
    # Level 0 of each snapshot is the BBO in force at its time; levels step by one tick.
    i = np.searchsorted(bbo.t, books.t, side="right") - 1
    ok = i >= 0
    np.testing.assert_array_equal(books.bid_px[ok, 0], bbo.bid[i[ok]])
    np.testing.assert_allclose(np.diff(books.bid_px, axis=1), -tick)
    np.testing.assert_allclose(np.diff(books.ask_px, axis=1), tick)


def test_sweeps_share_a_timestamp_and_walk_the_book(small_market):
    folder, _ = small_market
    tr = read_trades(folder, "BTC")
    bbo = read_bbo(folder, "BTC")
    assert np.all(np.diff(tr.t) >= 0) and np.all(np.diff(tr.trade_id) > 0)
    # A sweep: same exchange time and side. Its first fill is at the touch of the last BBO
    # strictly before it; later fills never improve on earlier ones.
    key = np.stack([tr.t, tr.side])
    new = np.ones(len(tr), dtype=bool)
    new[1:] = np.any(key[:, 1:] != key[:, :-1], axis=0)
    starts = np.flatnonzero(new)
    j = np.searchsorted(bbo.t, tr.t[starts], side="left") - 1
    ok = j >= 0
    touch = np.where(tr.side[starts] > 0, bbo.ask[j], bbo.bid[j])
    np.testing.assert_array_equal(tr.price[starts][ok], touch[ok])
    sweep_id = np.cumsum(new) - 1
    step = np.diff(tr.price) * tr.side[1:]
    same = sweep_id[1:] == sweep_id[:-1]
    assert np.all(step[same] >= 0)
    assert (np.bincount(sweep_id) > 1).mean() > 0.5  # most sweeps print several fills
    assert np.all(tr.t_local[starts] * 1000 >= tr.t[starts])  # received after it happened


def test_statistics_match_the_stated_truth(small_market):
    """The generator's own output carries sigma, A and k (not an estimator test: the checks use
    the known sweep structure; the calibrator's tests do the estimating)."""
    folder, truth = small_market
    tr = read_trades(folder, "BTC")
    bbo = read_bbo(folder, "BTC")
    seconds = 2 * 86400.0
    for side, name in ((1, "ask"), (-1, "bid")):
        m = tr.side == side
        t = tr.t[m]
        starts = np.flatnonzero(np.diff(t, prepend=-1) != 0)
        n = starts.size
        A = truth[name]["A"]
        # Sweep count ~ Poisson(A T): 34,560 expected, sd 186; allow 4 sd.
        assert abs(n - A * seconds) < 4 * math.sqrt(A * seconds)
        # A sweep reaches the level one tick beyond the touch iff its reach exceeds
        # half-spread + tick = 1.5: probability exp(-k * 1.5) = 0.472 for k = 0.5.
        px = tr.price[m]
        first, last = px[starts], px[np.append(starts[1:], px.size) - 1]
        deep = (last - first) * side >= truth["tick"] - 1e-9
        p = math.exp(-truth[name]["k"] * 1.5)
        sd = math.sqrt(p * (1 - p) / n)
        assert abs(deep.mean() - p) < 4 * sd
    # Mid increments on a 60 s grid: variance sigma^2 * 60 (plus tick-rounding noise of
    # 2 * tick^2 / 12, negligible); 2880 increments give a relative sd of sqrt(2/2880) = 2.6 %
    # on the variance, so 4 sd = 11 % on the variance, 5.5 % on sigma.
    grid = np.arange(bbo.t[0], bbo.t[-1], 60_000)
    mid = bbo.mid[np.searchsorted(bbo.t, grid, side="right") - 1]
    sigma_hat = np.std(np.diff(mid)) / math.sqrt(60.0)
    assert sigma_hat == pytest.approx(truth["sigma"], rel=0.055)


def test_cli_writes_parquet_and_rejects_bad_values(tmp_path):
    out = tmp_path / "pq"
    r = subprocess.run([ASMM, "synth", "--out", str(out), "--days", "1", "--seed", "2",
                        "--bbo-rate", "0.1", "--A", "0.01", "--format", "parquet",
                        "--k-ask", "0.8"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (out / "trades_BTC_2025-09-01.parquet").exists()
    assert json.loads((out / "truth.json").read_text())["ask"] == {"A": 0.01, "k": 0.8}
    assert len(read_trades(out, "BTC")) > 0
    bad = subprocess.run([ASMM, "synth", "--out", str(tmp_path / "bad"), "--sigma", "-1"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "sigma" in bad.stderr



def test_a_moving_book_prints_the_levels_it_consumed(tmp_path):
    """move_prints=1: every level the bid falls through prints a sell at its price at the
    update's time, every level the ask rises through a buy; 0.5: about half of them."""
    from asmm.data.readers import read_bbo, read_trades

    cfg = SynthConfig(days=1, seed=5, A_bid=0.01, A_ask=0.01, move_prints=1.0, bbo_rate=1.0)
    generate(cfg, tmp_path)
    bbo = read_bbo(tmp_path, "BTC")
    tr = read_trades(tmp_path, "BTC")
    steps = np.diff(bbo.bid) / cfg.tick
    i = int(np.flatnonzero(steps <= -3)[0]) + 1  # a fall of three ticks or more
    at = tr.t == bbo.t[i]
    sells = np.sort(tr.price[at & (tr.side < 0)])[::-1]
    assert sells.tolist() == [bbo.bid[i - 1] - j for j in range(int(-steps[i - 1]))]
    # One print per level passed (including the step from the day's opening book), on top of
    # the market orders' own prints: the same market with the option off, whose random
    # draws the moves' come after.
    passed = int(np.abs(np.diff(bbo.bid, prepend=cfg.mid)).sum() / cfg.tick)
    orders = len(read_trades(_market(tmp_path / "off", 0.0), "BTC"))
    assert len(tr) == orders + passed
    # A cancellation share of a half: Binomial(passed, 0.5) prints, within 5 sd.
    n_half = len(read_trades(_market(tmp_path / "half", 0.5), "BTC")) - orders
    assert abs(n_half - passed / 2) <= 5 * (passed / 4) ** 0.5


def _market(folder, move_prints):
    generate(SynthConfig(days=1, seed=5, A_bid=0.01, A_ask=0.01, move_prints=move_prints,
                         bbo_rate=1.0), folder)
    return folder
