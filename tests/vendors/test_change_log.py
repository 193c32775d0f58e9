"""The high-water mark behind every vendor's change detection: no gap at the cursor, no repeat."""

from __future__ import annotations

from datetime import date, timedelta

from protiv_dagster.vendors.base import ChangeLog, decode_cursor, encode_cursor, weeks_between, weeks_of_days


def render(moment):
    return moment.isoformat(timespec="seconds")


def test_a_record_becoming_visible_late_inside_the_overlap_is_reported():
    log = ChangeLog("2026-11-20T10:00:00")
    assert log.is_new("t:1", "2026-11-20T10:05:00")
    after = log.advanced(timedelta(minutes=10), render)
    assert after.since == "2026-11-20T10:00:00"  # newest (10:05) minus 10 minutes, never backwards
    # A transaction stamped 10:04 commits after that read: the next check still reports it ...
    assert after.is_new("t:2", "2026-11-20T10:04:00")
    # ... and does not report 10:05 again.
    assert not after.is_new("t:1", "2026-11-20T10:05:00")


def test_the_same_record_changed_again_is_reported_again():
    log = ChangeLog("2026-11-20T10:00:00", {"t:1": "2026-11-20T10:05:00"})
    assert log.is_new("t:1", "2026-11-20T10:06:00")


def test_records_at_or_before_the_mark_are_known_and_seen_is_pruned():
    log = ChangeLog("2026-11-20T10:00:00Z", {"t:9": "2026-11-20T10:01:00Z"})
    assert not log.is_new("t:1", "2026-11-20T10:00:00Z")
    assert log.is_new("t:2", "2026-11-20T12:00:00Z")
    after = log.advanced(timedelta(minutes=10), lambda m: m.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert after.since == "2026-11-20T11:50:00Z"
    assert after.seen == {"t:2": "2026-11-20T12:00:00Z"}


def test_cursor_round_trip_and_foreign_cursors():
    text = encode_cursor("aspire", {"since": "x", "seen": {}})
    assert decode_cursor("aspire", text)["since"] == "x"
    assert decode_cursor("busybusy", text) is None
    assert decode_cursor("aspire", "not json") is None
    assert decode_cursor("aspire", None) is None


def test_weeks_are_mondays_clipped_by_day():
    first, last = date(2026, 11, 4), date(2026, 11, 19)  # a Wednesday .. a Thursday
    assert weeks_between(first, last) == {date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)}
    assert weeks_of_days([date(2026, 11, 3), date(2026, 11, 5), date(2026, 11, 20)], first, last) == {date(2026, 11, 2)}
