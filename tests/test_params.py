"""The parameter file: schema, validation errors users can act on, atomic write, cached reads."""

import json
import math
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asmm.core.params import (
    UNITS,
    Params,
    ParamsCache,
    ParamsError,
    ParamsExpiredError,
    ParamsInvalidError,
    ParamsMismatchError,
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


# ------------------------------------------------------------------ refuse what it cannot vouch for

def _doc_with(**changes) -> dict:
    doc = make().to_dict()
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = doc
        for p in parents:
            node = node[p]
        node[leaf] = value
    return doc


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe junk", "is not UTF-8"),
    (b"", "not valid JSON"),
    (b"[]", "must hold a JSON object"),
    (b"null", "must hold a JSON object"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    (b"[" * 40 + b"]" * 40, "nested deeper than 32"),
    (b" " * (5 * 1024 * 1024), "larger than"),
], ids=["not-utf8", "empty", "list", "null", "deep", "deep-32", "huge"])
def test_unreadable_content_is_refused_naming_why(tmp_path, content, message):
    path = tmp_path / "p.json"
    path.write_bytes(content)
    with pytest.raises(ParamsInvalidError, match=message):
        load_params(path, now=NOW)


@pytest.mark.parametrize("doc, message", [
    (_doc_with(sigma="6.8"), "sigma = '6.8' is not a JSON number"),
    (_doc_with(sigma=True), "sigma = True is not a JSON number"),
    (_doc_with(bid__k="0.5"), "bid.k = '0.5' is not a JSON number"),
    (_doc_with(mid_price=None), "mid_price = None is not a JSON number"),
    (_doc_with(schema_version=True), "schema_version = True"),
    (_doc_with(schema_version=1.0), "schema_version = 1.0"),
    (_doc_with(schema_version="1"), "schema_version = '1'"),
    (_doc_with(sigmaa=6.8), r"unknown fields \['sigmaa'\]"),
    (_doc_with(bid__A2=1.0), r"bid: unknown fields \['A2'\]"),
    (_doc_with(units__extra="x"), r"units: unknown fields \['extra'\]"),
    (_doc_with(data_window__middle="x"), r"data_window: unknown fields"),
    (_doc_with(coin=7), "coin = 7 must be a string"),
    (_doc_with(coin=""), "coin = '' must be a non-empty string"),
    (_doc_with(diagnostics=[1]), "diagnostics must be a JSON object"),
    (_doc_with(computed_at=20250901), "is not an ISO-8601 time string"),
    (_doc_with(data_window__end="2025-09-03T00:00:00Z"), "data_window.end is later than"),
    (_doc_with(data_window__start="2025-09-02T00:10:01Z"), "start is after"),
    # 10 s of a fat-finger ask at 1e6 gave sigma 2168 USDC/sqrt(s): 637 % a day at 1e5.
    (_doc_with(sigma=2168.0), "sigma is implausible: sigma_daily_pct = 637"),
    (_doc_with(sigma=0.001), "sigma is implausible"),
    (_doc_with(bid__k=1e-6), "bid.k is implausible: bid.k_mid = 0.1"),
    (_doc_with(ask__A=1e6), "ask.A is implausible"),
    (_doc_with(gamma=1e6), "gamma is implausible"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_schema_is_exact_and_numbers_plausible(tmp_path, doc, message):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ParamsInvalidError, match=message):
        load_params(path, now=NOW)


def test_a_folder_or_a_path_through_a_file_is_refused(tmp_path):
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ParamsInvalidError, match="is a folder, not a file"):
        load_params(tmp_path / "dir.json", now=NOW)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParamsInvalidError, match="cannot be read"):
        load_params(tmp_path / "file" / "p.json", now=NOW)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to another user")
def test_a_file_another_user_cannot_read_is_refused_and_ours_are_readable():
    """As the bot's container reads the calibrator's file: as another user, in a forked
    child (root reads everything, so the check needs a real other user)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp())
    try:
        folder.chmod(0o755)
        ours, private = folder / "ours.json", folder / "private.json"
        write_params(ours, make())
        assert ours.stat().st_mode & 0o777 == 0o644  # what the calibrator writes
        write_params(private, make())
        private.chmod(0o600)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            try:
                os.close(read_end)
                os.setgid(65534)
                os.setuid(65534)
                out = []
                for p in (ours, private):
                    try:
                        load_params(p, now=NOW)
                        out.append("ok")
                    except ParamsError as e:
                        out.append(str(e))
                os.write(write_end, "\n".join(out).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as f:
            result = f.read()
        os.waitpid(pid, 0)
        ok, refused = result.splitlines()
        assert ok == "ok"
        assert "cannot be read by this user (mode 0o600)" in refused
    finally:
        shutil.rmtree(folder)


def test_times_are_checked_against_the_clock_and_the_data_age(tmp_path):
    path = tmp_path / "p.json"
    write_params(path, make())
    # Computed in the future beyond the clock skew: refused; within it: accepted.
    with pytest.raises(ParamsInvalidError, match="after now"):
        load_params(path, now=NOW - timedelta(minutes=2))
    load_params(path, now=NOW - timedelta(seconds=30))
    # Data window ended 24 h before NOW: fine under 36 h, stale under 12 h.
    load_params(path, now=NOW, max_data_age=timedelta(hours=36))
    with pytest.raises(ParamsExpiredError, match="is the collector running"):
        load_params(path, now=NOW + timedelta(hours=13), max_data_age=timedelta(hours=12))


def test_market_checks_coin_mid_distance_and_plausibility_at_the_live_mid():
    p = make()
    p.check_market("BTC", 100_000.0 * 1.049, 0.05)
    p.check_market("BTC", math.nan, 0.05)  # no live mid known: the coin alone
    with pytest.raises(ParamsMismatchError, match="is for BTC, the bot trades ETH"):
        p.check_market("ETH", 100_000.0, 0.05)
    with pytest.raises(ParamsMismatchError, match="from the live mid"):
        p.check_market("BTC", 100_000.0 / 1.06, 0.05)
    # Plausible at the file's mid, not at a live mid 100 times lower (a distance limit set
    # far too wide must not let it through).
    with pytest.raises(ParamsMismatchError, match="implausible"):
        make(sigma=100.0).check_market("BTC", 1_000.0, 1e6)


@given(st.binary(max_size=2000) | st.text(max_size=400).map(str.encode))
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_content_at_the_path_gives_a_params_error_and_nothing_else(tmp_path, content):
    path = tmp_path / "fuzz.json"
    path.write_bytes(content)
    with pytest.raises(ParamsError):
        load_params(path, now=NOW)


def test_a_cached_good_file_replaced_by_garbage_is_never_used_again(tmp_path):
    path = tmp_path / "p.json"
    write_params(path, make())
    cache = ParamsCache(path)
    assert cache.get(now=NOW).sigma == 6.8
    good = path.read_bytes()
    st_before = path.stat()
    # Garbage of the very same size with the old mtime put back: only the ctime and the
    # content changed.
    with open(path, "r+b") as f:
        f.write(b"\xff" * len(good))
    os.utime(path, ns=(st_before.st_atime_ns, st_before.st_mtime_ns))
    for _ in range(2):
        with pytest.raises(ParamsInvalidError, match="not UTF-8"):
            cache.get(now=NOW)
    path.unlink()
    path.mkdir()
    with pytest.raises(ParamsInvalidError, match="is a folder"):
        cache.get(now=NOW)
    path.rmdir()
    write_params(path, make(sigma=7.0))
    assert cache.get(now=NOW).sigma == 7.0
