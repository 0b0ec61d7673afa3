"""The parameter file: schema, validation errors users can act on, atomic write, cached reads."""

import json
import os
import threading
from datetime import UTC, datetime, timedelta

import pytest

from asmm.params import (
    UNITS,
    Params,
    ParamsCache,
    ParamsExpiredError,
    ParamsInvalidError,
    ParamsMissingError,
    SideIntensity,
    atomic_write_json,
    load_params,
    write_params,
)

NOW = datetime(2025, 9, 2, 0, 10, tzinfo=UTC)


def make(**over) -> Params:
    kw = dict(coin="BTC", model="glft", computed_at=NOW, valid_until=NOW + timedelta(hours=36),
              data_window=(NOW - timedelta(days=1), NOW), mid_price=100_000.0, sigma=6.8,
              gamma=0.01, bid=SideIntensity(0.5, 0.5), ask=SideIntensity(0.4, 0.6),
              diagnostics={"events_bid": 43000})
    kw.update(over)
    return Params(**kw)


def test_round_trip_keeps_numbers_units_and_derived_views(tmp_path):
    path = tmp_path / "avellaneda_parameters_BTC.json"
    write_params(path, make())
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == 1
    assert doc["units"] == UNITS
    assert doc["bid"] == {"A": 0.5, "k": 0.5} and doc["ask"] == {"A": 0.4, "k": 0.6}
    assert doc["computed_at"] == "2025-09-02T00:10:00Z"
    # sigma 6.8 USDC/sqrt(s) at 100k: 6.8 * sqrt(86400) / 1e5 * 100 = 1.99878 % a day
    assert doc["derived"]["sigma_daily_pct"] == pytest.approx(1.99878, rel=1e-5)
    back = load_params(path, now=NOW)
    assert back == make()


@pytest.mark.parametrize("field, value, message", [
    ("sigma", float("nan"), "sigma"),
    ("sigma", -1.0, "sigma"),
    ("gamma", 0.0, "gamma"),
    ("bid", {"A": float("inf"), "k": 0.5}, "bid.A"),
    ("ask", {"A": 0.5, "k": -2}, "ask.k"),
    ("ask", {"A": 0.5}, "ask.k"),
    ("model", "avellaneda", "model"),
    ("schema_version", 2, "schema_version"),
    ("computed_at", "yesterday", "computed_at"),
    ("valid_until", "2025-09-03T00:00:00", "time zone"),
])
def test_invalid_fields_are_rejected_with_the_field_named(tmp_path, field, value, message):
    doc = make().to_dict()
    doc[field] = value
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))  # NaN/inf written as bare tokens, as a buggy tool might
    with pytest.raises(ParamsInvalidError, match=message):
        load_params(path, now=NOW)


def test_missing_or_wrong_unit_is_rejected(tmp_path):
    doc = make().to_dict()
    del doc["units"]["sigma"]
    (tmp_path / "a.json").write_text(json.dumps(doc))
    with pytest.raises(ParamsInvalidError, match=r"units\.sigma"):
        load_params(tmp_path / "a.json", now=NOW)
    doc = make().to_dict()
    doc["units"]["sigma"] = "fraction/sqrt(s)"  # a relative sigma must never be read as absolute
    (tmp_path / "b.json").write_text(json.dumps(doc))
    with pytest.raises(ParamsInvalidError, match=r"expected .USDC/sqrt\(s\)"):
        load_params(tmp_path / "b.json", now=NOW)


def test_expired_and_missing_files_say_what_to_do(tmp_path):
    path = tmp_path / "p.json"
    write_params(path, make())
    with pytest.raises(ParamsExpiredError, match="asmm calibrate"):
        load_params(path, now=NOW + timedelta(hours=37))
    with pytest.raises(ParamsMissingError, match="asmm calibrate"):
        load_params(tmp_path / "nope.json")


def test_truncated_file_is_invalid_not_a_crash(tmp_path):
    path = tmp_path / "p.json"
    write_params(path, make())
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ParamsInvalidError, match="not valid JSON"):
        load_params(path, now=NOW)


def test_failed_write_leaves_the_previous_file_and_no_temp(tmp_path):
    path = tmp_path / "p.json"
    write_params(path, make())
    before = path.read_bytes()
    with pytest.raises(ValueError):
        atomic_write_json(path, {"sigma": float("nan")})  # allow_nan=False fails mid-dump
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


def test_reader_never_sees_a_half_written_file(tmp_path):
    """A writer rewrites the file as fast as it can; a reader must parse every version."""
    path = tmp_path / "p.json"
    write_params(path, make())
    stop = threading.Event()
    errors = []

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            # A large diagnostics block makes a torn read likely if writes were not atomic.
            write_params(path, make(sigma=6.0 + (i % 7), diagnostics={"pad": "x" * 200_000}))

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(300):
            try:
                p = load_params(path, now=NOW)
                assert 6.0 <= p.sigma <= 12.0
            except Exception as e:  # any failure is the finding
                errors.append(repr(e))
    finally:
        stop.set()
        t.join()
    assert errors == []


def test_cache_rereads_only_on_change_and_never_hands_out_an_invalid_file(tmp_path):
    path = tmp_path / "p.json"
    write_params(path, make(sigma=6.8))
    cache = ParamsCache(path)
    first = cache.get(now=NOW)
    assert cache.get(now=NOW) is first  # same mtime: no re-read

    write_params(path, make(sigma=7.5))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert cache.get(now=NOW).sigma == 7.5

    doc = make().to_dict()
    doc["sigma"] = -1
    path.write_text(json.dumps(doc))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 2_000_000))
    with pytest.raises(ParamsInvalidError):
        cache.get(now=NOW)  # not the previous good one: the file on disk is what counts
    with pytest.raises(ParamsInvalidError):
        cache.get(now=NOW)

    path.unlink()
    with pytest.raises(ParamsMissingError):
        cache.get(now=NOW)


def test_cache_checks_freshness_on_every_call(tmp_path):
    path = tmp_path / "p.json"
    write_params(path, make())
    cache = ParamsCache(path)
    cache.get(now=NOW)
    with pytest.raises(ParamsExpiredError):
        cache.get(now=NOW + timedelta(days=2))
