"""Hours, not days: windows and the walk-forward measured in recorded hours, bursts stitched,
a collector started this morning calibrated this afternoon; gamma scored as the bot trades."""

from __future__ import annotations

import json
from datetime import date

import pyarrow.csv as pacsv
import pytest

from asmm.calibrate.days import HOUR, Block
from asmm.calibrate.windows import DAY, latest, plan, walk_forward_seconds
from asmm.cli import main
from asmm.core.fees import fee_tier
from asmm.core.params import load_params
from asmm.core.settings import FREQTRADE_FILL_REACTION_MS, FREQTRADE_REQUOTE_GAP_MS
from asmm.data.files import day_bounds
from asmm.data.synth import SynthConfig, generate

FRESH = ("--valid-from", "now")  # synthetic days in 2025, replayed as live
T0 = day_bounds(date(2025, 9, 1))[0]


def blocks(*spans):
    """Stub hours: (hour start offset from T0 in hours, recorded seconds)."""
    return [Block(T0 + h * HOUR, T0 + h * HOUR, T0 + h * HOUR + rec, rec, None, {}, 1.0,
                  100.0) for h, rec in spans]


def test_a_window_is_recorded_hours_the_time_between_left_out():
    bursts = blocks(*((24 * d + 10, 900.0) for d in range(7)))  # 15 min a day for a week
    assert latest(bursts, 24 * HOUR) == tuple(bursts)
    assert latest(bursts, 30 * 60) == tuple(bursts[-2:])
    full = blocks(*((h, 3600.0) for h in range(48)))
    full[-1] = blocks((47, 3599.9))[0]  # a recording ends at its last event
    assert latest(full, DAY) == tuple(full[24:])


def test_the_walk_forward_length_follows_the_data():
    assert walk_forward_seconds(2 * DAY, DAY) == (DAY, "")
    assert walk_forward_seconds(6 * HOUR, DAY) == (2 * HOUR, "")      # the latest third
    assert walk_forward_seconds(2.5 * HOUR, DAY) == (HOUR, "")        # at least an hour
    assert walk_forward_seconds(30 * HOUR, 6 * HOUR) == (6 * HOUR, "")
    seconds, why = walk_forward_seconds(105 * 60, DAY)
    assert seconds == 0 and "needs 2 h" in why
    assert walk_forward_seconds(3 * DAY, 0) == (0, "walk-forward disabled")


def test_each_day_of_the_test_hours_is_estimated_on_the_hours_before_it():
    hours = blocks(*((h, 3600.0) for h in range(20, 34)))  # 20:00 day 1 to 09:00 day 2
    p = plan(hours, window=4 * HOUR, walk_forward=12 * HOUR)
    # 14 h of data: the latest third rounds up to 5 whole hours, all on day 2.
    (piece,) = p.pieces
    assert [b.start for b in piece.test] == [T0 + h * HOUR for h in range(29, 34)]
    assert [b.start for b in piece.window] == [T0 + h * HOUR for h in range(25, 29)]
    p = plan(blocks(*((h, 3600.0) for h in range(0, 72))), window=DAY, walk_forward=2 * DAY)
    first, second = p.pieces
    assert first.test[0].start == T0 + DAY and second.test[0].start == T0 + 2 * DAY
    assert first.window[0].start == T0 and second.window[0].start == T0 + DAY
    assert p.final == tuple(second.test)


def _keep(folder, lo, hi):
    """Cut every day file of ``folder`` to exchange times in [lo, hi) of its day (hours)."""
    for path in folder.glob("*_BTC_*.csv"):
        if path.name.startswith(("orderbooks", "gaps")):
            path.unlink()
            continue
        t = pacsv.read_csv(path)
        day = date.fromisoformat(path.stem.rsplit("_", 1)[1])
        start = day_bounds(day)[0] * 1000
        ms = t.column("exchange_timestamp").to_numpy()
        keep = (ms >= start + lo * HOUR * 1000) & (ms < start + hi * HOUR * 1000)
        pacsv.write_csv(t.filter(keep), path)


@pytest.fixture(scope="module")
def week_of_bursts(tmp_path_factory):
    """Seven days, recorded 10:00-10:15 each: the layout of public Hyperliquid samples."""
    out = tmp_path_factory.mktemp("bursts")
    truth = generate(SynthConfig(days=7, seed=11, bbo_rate=2.0, l2_interval=60.0), out)
    _keep(out, 10.0, 10.25)
    return out, truth


def test_seven_bursts_on_seven_days_give_a_valid_file(week_of_bursts, tmp_path, capsys):
    folder, truth = week_of_bursts
    out = tmp_path / "p.json"
    assert main(["calibrate", "--data-dir", str(folder), "--output", str(out), *FRESH]) == 0
    p = load_params(out)
    est = p.diagnostics["estimation"]
    assert len(est["days"]) == 7 and est["hours"] == pytest.approx(1.75, abs=0.02)
    # 6,300 one-second increments: se(sigma) / sigma = 1 / sqrt(2 n) = 0.9 %, so 10 % is
    # eleven standard errors (and the tick's rounding noise is corrected).
    assert p.sigma == pytest.approx(truth["sigma"], rel=0.10)
    # 105 minutes cannot be walked forward on (an hour to test, hours before it): the
    # fallback rule, in-sample verdict, both said.
    assert p.verdict["gamma_source"] == "fallback" and p.verdict["in_sample"]
    assert p.verdict["tested_hours"] == pytest.approx(1.75, abs=0.02)
    assert "needs 2 h" in p.diagnostics["gamma"]["reason"]


@pytest.fixture(scope="module")
def six_hours(tmp_path_factory):
    """A collector started at 06:00 and calibrated at noon."""
    out = tmp_path_factory.mktemp("six")
    generate(SynthConfig(days=1, seed=12, bbo_rate=2.0, l2_interval=60.0), out)
    _keep(out, 6.0, 12.0)
    return out


def test_six_continuous_hours_give_a_walk_forward_file(six_hours, tmp_path):
    out = tmp_path / "p.json"
    assert main(["calibrate", "--data-dir", str(six_hours), "--output", str(out), *FRESH]) == 0
    p = load_params(out)
    assert p.verdict["gamma_source"] == "walk-forward" and not p.verdict["in_sample"]
    (test,) = p.diagnostics["gamma"]["tests"]
    assert test["test_window"][0].startswith("2025-09-01T10:00:0")  # the latest third
    assert test["estimated_window"][0].startswith("2025-09-01T06:00:0")
    assert p.verdict["tested_hours"] == pytest.approx(2.0, abs=0.01)
    assert p.diagnostics["estimation"]["window"][0].startswith("2025-09-01T06:00:0")


def test_hours_and_days_options_mean_the_same(six_hours, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["calibrate", "--data-dir", str(six_hours), "--output", str(a),
                 "--window", "3h", "--walk-forward", "90m", "--gamma-points", "4", *FRESH]) == 0
    ga = load_params(a).diagnostics["gamma"]
    # 3 h window, 1.5 h tests: two whole hours (11:00 back to 10:00), the 3 h before them.
    (test,) = ga["tests"]
    assert test["test_window"][0].startswith("2025-09-01T10:00:0")
    assert test["estimated_window"][0].startswith("2025-09-01T07:00:0")
    assert main(["calibrate", "--data-dir", str(six_hours), "--output", str(b),
                 "--window-days", "1", "--walk-forward-days", "0", *FRESH]) == 0
    gb = load_params(b).diagnostics
    assert gb["gamma"]["reason"] == "walk-forward disabled"
    assert gb["estimation"]["window"][0].startswith("2025-09-01T06:00:0")


def test_gamma_is_scored_as_the_bot_in_its_config_trades(six_hours, tmp_path):
    cfg = tmp_path / "bot.json"
    cfg.write_text(json.dumps({"asmm": {"mode": "long", "shared_state_dir": "/tmp/x",
                                        "lot_size": 0.002, "fee_tier": "hyperliquid:3"}}))
    out = tmp_path / "p.json"
    assert main(["calibrate", "--data-dir", str(six_hours), "--output", str(out),
                 "--bot-config", str(cfg), "--gamma-points", "4", *FRESH]) == 0
    p = load_params(out)
    assert p.verdict["execution"] == "freqtrade-pair"
    assert p.diagnostics["config"]["order_size"] == 0.002
    assert p.verdict["maker_fee"] == fee_tier("hyperliquid:3").maker
    # A live bot (no dry_run counts as live): scored with Freqtrade's cadence as one.
    assert p.diagnostics["config"]["fill_reaction_ms"] == FREQTRADE_FILL_REACTION_MS
    assert p.diagnostics["config"]["requote_gap_ms"] == FREQTRADE_REQUOTE_GAP_MS
    # --execution, when given, wins over the bot's mode; --requote-gap-ms over the cadence.
    assert main(["calibrate", "--data-dir", str(six_hours), "--output", str(out),
                 "--bot-config", str(cfg), "--execution", "two-sided", "--gamma-points", "4",
                 "--requote-gap-ms", "300", *FRESH]) == 0
    p = load_params(out)
    assert p.verdict["execution"] == "two-sided"
    assert p.diagnostics["config"]["requote_gap_ms"] == 300.0
    assert p.diagnostics["config"]["fill_reaction_ms"] == FREQTRADE_FILL_REACTION_MS
    # A dry-run bot's orders and cancels are Freqtrade's own, without a request: no cadence.
    cfg.write_text(json.dumps({"dry_run": True, "asmm": {"lot_size": 0.002}}))
    assert main(["calibrate", "--data-dir", str(six_hours), "--output", str(out),
                 "--bot-config", str(cfg), "--gamma-points", "4", *FRESH]) == 0
    config = load_params(out).diagnostics["config"]
    assert config["fill_reaction_ms"] == config["requote_gap_ms"] == 0.0


def test_an_unreadable_bot_config_is_refused(six_hours, tmp_path, capsys):
    bad = tmp_path / "bot.json"
    bad.write_text("{not json")
    out = tmp_path / "p.json"
    assert main(["calibrate", "--data-dir", str(six_hours), "--output", str(out),
                 "--bot-config", str(bad), *FRESH]) == 2
    assert "--bot-config" in capsys.readouterr().err and not out.exists()
    bad.write_text(json.dumps({"asmm": {"mode": "sideways"}}))
    assert main(["calibrate", "--data-dir", str(six_hours), "--output", str(out),
                 "--bot-config", str(bad), *FRESH]) == 2
    assert "asmm.mode" in capsys.readouterr().err
