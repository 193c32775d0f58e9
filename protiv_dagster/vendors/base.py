"""A company's source of attendance: the vendor client for its provider plus that vendor's mapping.

Assets ask a ``Source`` for records and cleaned frames without knowing which vendor answers. Each
provider supplies the same things: the raw time-entry feeds of a date range, workers with their wage
histories, jobs with their task lines (line items) and the people assigned to them, and the mapping
of raw feeds to attendance; a provider that keeps no wage history, line items or assignments
answers those with no rows (``nothing``). A vendor package's ``source.py`` subclasses ``Source``;
``vendors/spec.py`` says what else a vendor package holds.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import pandas as pd

from protiv_dagster.partitions import week_start
from protiv_dagster.schemas import no_rejects


@dataclass
class Mapped:
    """What a mapping made of the fetched records; every record is counted once:
    fetched = len(rows) + len(set_aside) + removed_as_deleted + without_row.
    """

    rows: pd.DataFrame
    set_aside: pd.DataFrame
    removed_as_deleted: int = 0  # the vendor lists them as deleted
    without_row: int = 0  # yield no row by design (e.g. Aspire clock time fully covered by tickets)
    fetched: int | None = None  # records the mapping read; None = rows + set aside + the two above

    @property
    def fetched_count(self) -> int:
        if self.fetched is not None:
            return self.fetched
        return len(self.rows) + len(self.set_aside) + self.removed_as_deleted + self.without_row


def nothing() -> Mapped:
    """No record: what a vendor without such data (QuickBooks Time's wage history, say) answers."""
    return Mapped(pd.DataFrame(), no_rejects())


@dataclass(frozen=True)
class Changes:
    """What changed at a company's vendor since the last successful sync (answer of ``changes_since``).

    - ``weeks``: Monday week starts (company-local) of the days ``first_day``..``last_day`` whose
      time entries were added, edited, deleted or moved there, per the vendor's current records.
    - ``entry_ids``: vendor ids of the time entries added, edited, moved or deleted since the cursor,
      wherever they now lie (not clipped to the window). The vendor only knows where an entry is
      *now*: the caller must look up each id's previously stored week in the raw layer and
      re-materialize that week too (an entry moved from week A to week B reports B here; A is where
      the warehouse last stored it).
    - ``reference_changed``: workers or jobs (and their budgets) changed: re-sync reference data.
    - ``cursor``: the new high-water mark, opaque and vendor-specific. Store it only after the sync
      of the reported changes succeeded; passing an older cursor again re-reports, never skips.
    - ``requests``: vendor HTTP requests the check made (a login or token request counts).
    - ``live_entry_ids``: for vendors without a deleted feed (Aspire), the ids of every live entry
      dated in ``listed_weeks``: stored ids of those weeks missing here were deleted at the vendor
      (or moved out of them). ``None`` when the vendor reports deletions itself.
    - ``listed_weeks``: the Monday week starts whose live ids ``live_entry_ids`` holds in full (a
      check may list only some weeks of the window); ``None`` with ``live_entry_ids`` ``None``.
    """

    weeks: frozenset[date]
    entry_ids: frozenset[str]
    reference_changed: bool
    cursor: str
    requests: int
    live_entry_ids: frozenset[str] | None = None
    listed_weeks: frozenset[date] | None = None

    @property
    def quiet(self) -> bool:
        """Nothing to sync: no week, no entry, no reference data changed."""
        return not self.weeks and not self.entry_ids and not self.reference_changed


def weeks_between(first_day: date, last_day: date) -> frozenset[date]:
    """Every Monday week start holding a day of ``first_day``..``last_day``."""
    weeks, monday = set(), week_start(first_day)
    while monday <= last_day:
        weeks.add(monday)
        monday += timedelta(days=7)
    return frozenset(weeks)


def weeks_of_days(days: Iterable[date], first_day: date, last_day: date) -> frozenset[date]:
    """Monday week starts of the days inside ``first_day``..``last_day``; days outside are ignored."""
    return frozenset(week_start(d) for d in days if first_day <= d <= last_day)


@dataclass
class ChangeLog:
    """A high-water mark over a vendor's modification stamps that never skips a change.

    Records stamped at or before ``since`` are known (reported by an earlier check or covered by
    the sync that followed the first one). A check asks the vendor for records stamped after
    ``since`` and reports those not in ``seen`` with the same stamp. Afterwards ``since`` moves to
    ``overlap`` before the newest stamp seen, and ``seen`` keeps the records stamped after it: a
    change that becomes visible late with a stamp inside the overlap (same-second ties, a
    transaction committing after our read, wall-time clocks repeating an hour at a DST change) is
    still reported by the next check, and a change already reported is not reported twice.
    """

    since: str
    seen: dict[str, str] = field(default_factory=dict)
    # Vendor stamps are ISO 8601: UTC with "Z" or an offset, or offset-less wall time (Aspire).
    parse: Callable[[str], datetime] = field(
        default=lambda text: datetime.fromisoformat(text.replace("Z", "+00:00")), repr=False
    )
    _newest: datetime | None = field(default=None, init=False, repr=False)
    _observed: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def is_new(self, key: str, stamp: str) -> bool:
        """Record ``key`` stamped ``stamp`` was read: True when no earlier check reported it."""
        moment = self.parse(stamp)
        if self._newest is None or moment > self._newest:
            self._newest = moment
        if moment <= self.parse(self.since):
            return False
        self._observed[key] = stamp
        return self.seen.get(key) != stamp

    def advanced(self, overlap: timedelta, render: Callable[[datetime], str]) -> ChangeLog:
        """The log after this check: ``since`` at most ``overlap`` behind the newest stamp seen."""
        since = self.parse(self.since)
        if self._newest is not None:
            since = max(since, self._newest - overlap)
        seen = {**self.seen, **self._observed}
        kept = {key: stamp for key, stamp in seen.items() if self.parse(stamp) > since}
        return ChangeLog(render(since), kept, self.parse)

    def state(self) -> dict[str, Any]:
        return {"since": self.since, "seen": dict(sorted(self.seen.items()))}


def encode_cursor(provider: str, state: Mapping[str, Any]) -> str:
    """A compact JSON cursor naming its vendor, so a cursor of another vendor is never misread."""
    return json.dumps({"provider": provider, "v": 1, **state}, separators=(",", ":"), sort_keys=True)


def decode_cursor(provider: str, cursor: str | None) -> dict[str, Any] | None:
    """The state of a cursor written by ``encode_cursor`` for ``provider``; ``None`` for no cursor
    or one that cannot be read (the caller then treats the company as never synced: safe)."""
    if not cursor:
        return None
    try:
        state = json.loads(cursor)
    except ValueError:
        return None
    if not isinstance(state, dict) or state.get("provider") != provider or state.get("v") != 1:
        return None
    return state


def records_digest(records: Iterable[Mapping[str, Any]], fields: Iterable[str] = ("id",)) -> str:
    """Count and short hash of the ``fields`` of records listed whole, in any order: it changes when
    a record comes, goes or (with more fields than the id) is edited. For what a vendor lists
    without any modification stamp to track changes by."""
    fields = list(fields)
    rows = sorted(json.dumps([record.get(name) for name in fields], sort_keys=True, default=str) for record in records)
    return f"{len(rows)}:{hashlib.sha1(chr(10).join(rows).encode()).hexdigest()[:12]}"


def is_stamp(value: object, *, aware: bool = True) -> bool:
    """Whether ``value`` is an ISO 8601 date-time as vendors stamp records: with an offset (or "Z")
    when ``aware``, as wall time otherwise (Aspire)."""
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return moment.tzinfo is not None or not aware


def chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def day_of_text(text: object) -> date | None:
    """The date an ISO 8601 date or date-time text starts with (None when it has none)."""
    try:
        return date.fromisoformat(str(text)[:10]) if text else None
    except ValueError:
        return None


Page = TypeVar("Page")
_PAGE, _END, _FAILED = "page", "end", "failed"
# How long a caller that stops reading (a failed write, a terminated run) waits for the reading
# thread to finish the request under way; past it the thread ends by itself, within the client's
# request deadline, and drops the answer.
READ_AHEAD_STOP_SECONDS = 5.0


def read_ahead(pages: Iterable[Page]) -> Iterator[Page]:
    """``pages`` as they come, the next ones asked for while the caller handles the one it holds.

    A listing pages one request after another (QuickBooks Time says whether there is ``more`` only
    in each answer), so most of a large company's sync is the vendor's latency, and the caller's
    work on each page (splitting it by week, spooling it) used to sit between two requests. Here a
    thread pulls ``pages`` ahead of the caller, at most two pages: no request is made that the
    listing would not have made (it asks for page n+1 only once page n said there is more), and a
    failure of the listing is raised here, after the pages before it, as it was raised there.

    The listing runs in that thread only (its client is never used by two threads at once). When the
    caller stops early, the thread stops after the request under way, closes the listing and is
    waited for up to ``READ_AHEAD_STOP_SECONDS``."""
    listing = iter(pages)
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(item: tuple[str, Any]) -> bool:
        """Put ``item`` where the caller takes it; False once the caller has stopped reading."""
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in listing:
                if not hand_over((_PAGE, page)):
                    return
            hand_over((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who raises it
            hand_over((_FAILED, exc))
        finally:
            close = getattr(listing, "close", None)
            if close is not None:
                close()

    # In the caller's context (its context variables), as if the caller read the listing itself.
    reader = threading.Thread(
        target=contextvars.copy_context().run, args=(produce,), name="vendor-read-ahead", daemon=True
    )
    reader.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == _END:
                return
            if kind == _FAILED:
                raise value
            yield value
    finally:
        stop.set()
        reader.join(timeout=READ_AHEAD_STOP_SECONDS)


def pages_by_week(
    source: Source, mondays: list[date], pull_date: date | None = None
) -> Iterator[tuple[date, str, list[dict[str, Any]]]]:
    """The time-entry feeds of consecutive weeks, asked for once for the whole window and handed out
    as (Monday, feed, records) as the pages arrive.

    One query over three weeks costs the requests of the records, where three weekly queries each
    end on a part-filled page (and a small feed such as deleted sheets costs one request per week).
    A record goes to the week of the date the vendor filtered on (``source.work_day``), so every
    week holds exactly what a query for that week alone would have returned. A record of a lookup
    feed (not in ``source.weekly_feeds``) goes to every week; one whose date cannot be read, or that
    the vendor sent although it lies outside the window, goes to the first week, where the
    attendance mapping sets it aside with its reason instead of dropping it.

    Copies of one id (a vendor listing the same entry twice, possibly with different dates) all go
    to the week of the first copy, where attendance sets every copy aside as a repeated id: loading
    a lone copy in another week would pay hours the vendor itself is unsure of. (A copy on a later
    page never gets here: the client's ``ListingGuard`` fails such a listing.)

    Nothing before the company's attendance ``pull_date`` is synced, even in the pull date's own
    week: the vendor is asked from the pull date when it falls in the window, and a record dated
    before it is dropped here (never stored, so never set aside nor counted as deleted).

    The pages are read ahead (``read_ahead``): the vendor answers the next request while this
    page's records are split by week and stored by the caller."""
    start, last = mondays[0], mondays[-1] + timedelta(days=6)
    first = max(pull_date or start, start)
    for feed, records in read_ahead(source.time_entry_pages(first, last)):
        if feed not in source.weekly_feeds:
            for monday in mondays:
                yield monday, feed, records
            continue
        id_field = source.feed_fields.get(feed, ("id", None))[0]
        week_of_id: dict[str, date] = {}
        by_week: dict[date, list[dict[str, Any]]] = {}
        for record in records:
            day = source.work_day(feed, record)
            if day is not None and pull_date is not None and day < pull_date:
                continue
            monday = week_start(day) if day is not None and first <= day <= last else start
            entry_id = record.get(id_field)
            if entry_id is not None and not isinstance(entry_id, (list, dict)):
                monday = week_of_id.setdefault(str(entry_id), monday)
            by_week.setdefault(monday, []).append(record)
        for monday, part in by_week.items():
            yield monday, feed, part


class Source:
    """A company's source of attendance: the vendor client for its provider plus that vendor's
    mapping. Each vendor's ``source.py`` subclasses it and sets the class attributes; assets ask a
    source for records and cleaned frames without knowing which vendor answers.

    Capabilities a vendor may have are declared here with the behaviour of a vendor without them:
    a vendor that keeps no wage history, line items or assignments inherits the methods answering
    no rows; one that cannot hand out time entries page by page inherits ``time_entry_pages`` giving
    each feed as one page; ``maps_records_independently`` is False unless its mapping reads each
    live record on its own."""

    provider: str
    live_feed: str
    # Per raw feed: the record's id field and its modification-time field (None when it has none),
    # stored beside each raw record so analysts can find it without parsing the payload.
    feed_fields: Mapping[str, tuple[str, str | None]]
    # The feeds whose records each belong to one week (by ``work_day``); the others are lookups.
    weekly_feeds: frozenset[str]
    # Each live record maps on its own (the other feeds are lookups), so a large week may be mapped
    # in chunks; False when the mapping needs every record of the window at once.
    maps_records_independently: bool = False

    def _missing(self, what: str) -> NotImplementedError:
        return NotImplementedError(f"the {self.provider} source does not implement {what}")

    def work_day(self, feed: str, record: Mapping[str, Any]) -> date | None:
        """The local work date ``feed`` is filtered on at the vendor (None when unreadable)."""
        raise self._missing("work_day")

    def time_entry_feeds(self, first_day: date, last_day: date) -> dict[str, list[dict[str, Any]]]:
        """The raw time-entry feeds of ``first_day``..``last_day``, each whole."""
        raise self._missing("time_entry_feeds")

    def time_entry_pages(self, first_day: date, last_day: date) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """The records of ``time_entry_feeds`` as (feed, records) pages as they arrive, so a large
        week is never held whole; without paging, each feed is one page."""
        yield from self.time_entry_feeds(first_day, last_day).items()

    def live_entries(self, entry_ids: list[str]) -> dict[str, date | None]:
        """Of ``entry_ids``, those the vendor holds live now, asked by id, with the work date each is
        dated on now (None when unreadable); deleted ones are left out."""
        raise self._missing("live_entries")

    def workers(self) -> Mapped:
        raise self._missing("workers")

    def worker_wages(self, worker_ids: Iterable[str]) -> Mapped:
        """The wage histories (worker_wages rows) of the workers among ``worker_ids`` (the valid
        workers); a wage of any other worker is set aside. None kept by the vendor: no rows."""
        return nothing()

    def jobs(self) -> Mapped:
        raise self._missing("jobs")

    def task_lines(self, job_ids: Iterable[str]) -> Mapped:
        """The line items (task_lines rows) of the jobs and milestones among ``job_ids``."""
        return nothing()

    def job_assignments(self, job_ids: Iterable[str]) -> Mapped:
        """The crew leads and managers (job_assignments rows) of the jobs and milestones among ``job_ids``."""
        return nothing()

    def attendance(
        self, feeds: Mapping[str, list[dict[str, Any]]], jobs: pd.DataFrame, worker_ids: Iterable[str]
    ) -> Mapped:
        raise self._missing("attendance")

    def changes_since(self, cursor: str | None, first_day: date, last_day: date) -> Changes:
        """What changed at the vendor since ``cursor`` (``None``: never synced, every week of
        ``first_day``..``last_day`` and the reference data are reported)."""
        raise self._missing("changes_since")

    @property
    def request_count(self) -> int:
        """Vendor HTTP requests this source has made."""
        raise self._missing("request_count")
