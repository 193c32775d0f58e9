"""Vendors that misbehave on purpose: each emulator's answers rewritten on their way out, so a sync
over real HTTP meets a server that ignores paging, never ends a listing, repeats or mangles ids, or
keeps answering a week as empty while its entries still answer by id.

The emulators stay faithful; these rewrites sit between them and the client (``install`` wraps
``emulator._answer_vendor``, as the fault matrix's other mid-listing faults do). Each vendor's
listing shape is spoken by a ``Shape``: QuickBooks Time's objects keyed by id with ``more``,
Aspire's bare arrays paged by ``$pageNumber`` and a keyset filter, BusyBusy's GraphQL root lists
paged by cursor.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from protiv_emulators.server import Answer, Request

Rewrite = Callable[[Request, Callable[[Request], Answer]], Answer]


def install(emulator: Any, rewrite: Rewrite) -> None:
    """Answer every vendor request through ``rewrite(request, answer_vendor)`` until the fault
    matrix removes the wrapper (``emulator.__dict__.pop("_answer_vendor")``)."""
    answer_vendor = emulator._answer_vendor
    emulator._answer_vendor = lambda request: rewrite(request, answer_vendor)


def _shift(text: Any, days: int) -> Any:
    """An ISO 8601 date or date-time text moved ``days`` later (kept as is when it is not one)."""
    if not isinstance(text, str) or not text:
        return text
    try:
        if len(text) == 10:
            return (date.fromisoformat(text) + timedelta(days=days)).isoformat()
        moved = datetime.fromisoformat(text.replace("Z", "+00:00")) + timedelta(days=days)
    except ValueError:
        return text
    rendered = moved.isoformat()
    return rendered.replace("+00:00", "Z") if text.endswith("Z") else rendered


class Shape:
    """How one vendor lists the week's time entries and the workers."""

    id_field = "id"
    date_fields: tuple[str, ...] = ()

    def __init__(self, week: date, page_size: int):
        self.week, self.page_size = week, page_size

    def is_week_listing(self, request: Request) -> bool: ...
    def is_first_page(self, request: Request) -> bool: ...
    def is_workers_listing(self, request: Request) -> bool: ...
    def first_page(self, request: Request) -> Request: ...
    def records(self, body: Any) -> list[dict[str, Any]]: ...
    def with_records(self, body: Any, records: list[dict[str, Any]]) -> Any: ...
    def endless_page(self, request: Request, template: dict[str, Any], page: int) -> list[dict[str, Any]]: ...

    def next_week_copy(self, record: dict[str, Any]) -> dict[str, Any]:
        moved = copy.deepcopy(record)
        for name in self.date_fields:
            moved[name] = _shift(moved.get(name), 7)
        return moved

    def with_id(self, record: dict[str, Any], value: Any) -> dict[str, Any]:
        return {**copy.deepcopy(record), self.id_field: value}


class QuickBooksTimeShape(Shape):
    date_fields = ("date", "start", "end")

    def is_week_listing(self, request: Request) -> bool:
        return request.path.endswith("/timesheets") and "start_date" in request.query

    def is_first_page(self, request: Request) -> bool:
        return request.query.get("page", "1") == "1"

    def is_workers_listing(self, request: Request) -> bool:
        return request.path.endswith("/users")

    def first_page(self, request: Request) -> Request:
        return dataclasses.replace(request, query={**request.query, "page": "1"})

    def records(self, body: Any) -> list[dict[str, Any]]:
        (keyed,) = body["results"].values()
        return list(keyed.values()) if isinstance(keyed, dict) else []

    def with_records(self, body: Any, records: list[dict[str, Any]]) -> Any:
        (name,) = body["results"]
        keyed: dict[str, Any] = {}
        for position, record in enumerate(records):
            key = str(record.get("id"))
            keyed[key if key not in keyed else f"{key}#{position}"] = record  # keys are opaque to clients
        return {**body, "results": {name: keyed}}

    def endless_page(self, request: Request, template: dict[str, Any], page: int) -> list[dict[str, Any]]:
        return [self.with_id(template, 90_000_000 + page * 1_000 + n) for n in range(self.page_size)]


class AspireShape(Shape):
    id_field = "WorkTicketTimeID"
    date_fields = ("WorkTicketTimeDate", "StartTime", "EndTime")
    _keyset = re.compile(r" and WorkTicketTimeID gt (\d+)")

    def is_week_listing(self, request: Request) -> bool:
        week = f"WorkTicketTimeDate ge {self.week.isoformat()}T00:00:00"
        return request.path == "/WorkTicketTimes" and week in request.query.get("$filter", "")

    def is_first_page(self, request: Request) -> bool:
        return (
            not self._keyset.search(request.query.get("$filter", "")) and request.query.get("$pageNumber", "1") == "1"
        )

    def is_workers_listing(self, request: Request) -> bool:
        return request.path == "/Contacts"

    def first_page(self, request: Request) -> Request:
        query = {**request.query, "$pageNumber": "1", "$filter": self._keyset.sub("", request.query.get("$filter", ""))}
        return dataclasses.replace(request, query=query)

    def records(self, body: Any) -> list[dict[str, Any]]:
        return list(body)

    def with_records(self, body: Any, records: list[dict[str, Any]]) -> Any:
        return records

    def endless_page(self, request: Request, template: dict[str, Any], page: int) -> list[dict[str, Any]]:
        found = self._keyset.search(request.query.get("$filter", ""))
        after = int(found.group(1)) if found else 90_000_000
        return [self.with_id(template, after + 1 + n) for n in range(self.page_size)]


class BusyBusyShape(Shape):
    date_fields = ("startTime", "endTime")

    @staticmethod
    def _graphql(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def is_week_listing(self, request: Request) -> bool:
        body = self._graphql(request)
        filter_ = (body.get("variables") or {}).get("filter") or {}
        return "timeEntries(" in str(body.get("query")) and "startTime" in filter_ and "id" not in filter_

    def is_first_page(self, request: Request) -> bool:
        return (self._graphql(request).get("variables") or {}).get("after") is None

    def is_workers_listing(self, request: Request) -> bool:
        return str(self._graphql(request).get("query")).startswith("query Members(")

    def first_page(self, request: Request) -> Request:
        body = self._graphql(request)
        body["variables"] = {**(body.get("variables") or {}), "after": None}
        return dataclasses.replace(request, body=json.dumps(body).encode())

    def records(self, body: Any) -> list[dict[str, Any]]:
        (records,) = body["data"].values()
        return list(records or [])

    def with_records(self, body: Any, records: list[dict[str, Any]]) -> Any:
        (name,) = body["data"]
        return {**body, "data": {name: records}}

    def endless_page(self, request: Request, template: dict[str, Any], page: int) -> list[dict[str, Any]]:
        made = [self.with_id(template, f"endless-{page}-{n}") for n in range(self.page_size)]
        for record in made:
            record["cursor"] = record["id"]
        return made


SHAPES = {"quickbooks_time": QuickBooksTimeShape, "aspire": AspireShape, "busybusy": BusyBusyShape}


def shape_of(provider: str, week: date, page_size: int) -> Shape:
    return SHAPES[provider](week, page_size)


# -- the misbehaviours ------------------------------------------------------------------------------
def _rewritten(answer: Answer, body: Any) -> Answer:
    return Answer(answer.status, body, dict(answer.headers), page=answer.page, clock=answer.clock)


def ignoring_the_page_parameter(shape: Shape) -> Rewrite:
    """Every page of the week's listing is its first page again; QuickBooks Time says ``more`` for
    two pages, then stops (a listing that looks complete, made of the same records three times)."""

    def rewrite(request: Request, answer_vendor: Callable[[Request], Answer]) -> Answer:
        if not shape.is_week_listing(request):
            return answer_vendor(request)
        answer = answer_vendor(shape.first_page(request))
        if answer.status == 200 and isinstance(answer.body, dict) and "more" in answer.body:
            answer = _rewritten(answer, {**answer.body, "more": int(request.query.get("page", "1")) < 3})
        return answer

    return rewrite


def endless_listing(shape: Shape) -> Rewrite:
    """The week's listing never ends: after the real first page, every page is full of new records
    (new ids, and ``more`` on QuickBooks Time)."""
    pages = {"served": 0}

    def rewrite(request: Request, answer_vendor: Callable[[Request], Answer]) -> Answer:
        if not shape.is_week_listing(request):
            return answer_vendor(request)
        first = answer_vendor(shape.first_page(request))
        if first.status != 200:
            return first
        template = shape.records(first.body)[0]
        if shape.is_first_page(request):
            records = shape.records(first.body)
        else:
            pages["served"] += 1
            records = shape.endless_page(request, template, pages["served"])
        body = shape.with_records(first.body, records)
        if isinstance(body, dict) and "more" in body:
            body["more"] = True
        return _rewritten(first, body)

    return rewrite


def _on_first_pages(
    shape: Shape,
    change_week: Callable[[list[dict]], list[dict]],
    change_workers: Callable[[list[dict]], list[dict]] | None = None,
) -> Rewrite:
    def rewrite(request: Request, answer_vendor: Callable[[Request], Answer]) -> Answer:
        answer = answer_vendor(request)
        if answer.status != 200 or not shape.is_first_page(request):
            return answer
        if shape.is_week_listing(request):
            return _rewritten(answer, shape.with_records(answer.body, change_week(shape.records(answer.body))))
        if change_workers is not None and shape.is_workers_listing(request):
            return _rewritten(answer, shape.with_records(answer.body, change_workers(shape.records(answer.body))))
        return answer

    return rewrite


def one_entry_twice_in_two_weeks(shape: Shape, copied: list[str]) -> Rewrite:
    """The week's first page lists its first entry twice: as it is, and dated a week later (the
    copy first). ``copied`` receives the entry's id."""

    def change(records: list[dict]) -> list[dict]:
        original = records[0]
        copied.append(str(original[shape.id_field]))
        return [shape.next_week_copy(original), *records]

    return _on_first_pages(shape, change)


def malformed_ids(shape: Shape, provider: str) -> Rewrite:
    """The week's first page carries two more entries, copies of its first one, whose id is null
    and not an id at all (text where the vendor numbers its records, an empty id on BusyBusy);
    the workers listing's first page a worker whose id is null."""
    odd_id = "" if provider == "busybusy" else "not-a-number"
    worker_id = {"quickbooks_time": "id", "aspire": "ContactID", "busybusy": "id"}[provider]

    def change_week(records: list[dict]) -> list[dict]:
        return [shape.with_id(records[0], None), shape.with_id(records[0], odd_id), *records]

    def change_workers(records: list[dict]) -> list[dict]:
        return [{**copy.deepcopy(records[0]), worker_id: None}, *records]

    return _on_first_pages(shape, change_week, change_workers)


def week_always_empty(shape: Shape) -> Rewrite:
    """Every listing of the week's time entries comes back empty, read after read; asked for the
    same entries by id, the vendor still answers them as they are."""

    def rewrite(request: Request, answer_vendor: Callable[[Request], Answer]) -> Answer:
        answer = answer_vendor(request)
        if answer.status == 200 and shape.is_week_listing(request):
            body = shape.with_records(answer.body, [])
            if isinstance(body, dict) and "more" in body:
                body["more"] = False
            return _rewritten(answer, body)
        return answer

    return rewrite
