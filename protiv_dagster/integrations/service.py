"""What an admin does about their company's integration, whoever asks: the HTTP service (an app's
"Integration" page) and the ``protiv`` CLI call these same functions.

- ``integrations``: the vendors one can connect, searchable by name, with the fields each asks for;
- ``IntegrationService.connect``: verify the credentials with the vendor *before* anything is stored;
  a refusal is ``VendorRefused`` with the vendor's reason, an outage ``VendorDown`` with the failed
  status: nothing is stored either way;
- ``start_authorization`` / ``finish_authorization``: QuickBooks Time's OAuth 2.0 code flow;
- ``status``: pending, connected or failed, with the reason and the action, last sync, next refresh
  and the sync history;
- ``force_sync``: the same sync as ``protiv sync`` (``sync.company.force_sync``), in the background,
  one per company at a time, at most once a minute per company;
- ``disconnect`` (the warehouse keeps the data) and ``change_pull_date`` (re-syncs what it adds).

Every connect, authorization, force sync, disconnect and pull date change is recorded in the audit
log with the actor. No web framework here: ``protiv_dagster/service`` is the HTTP layer over it.

Syncs run in the service process, one at a time (a DuckDB warehouse takes one writer, and Dagster's
in-process execution of a sync is what ``protiv sync`` does too): deploy the service as one replica.
Every sync it starts is recorded in the sync state before it is queued, only when the company has
none in flight (``SyncStateStore.open_batch(only_when_idle=True)``, as the daemon's sensors do), so
the daemon never syncs a company at the same time and a sync's id outlives a restart. Several
replicas would still need the page's sessions in a shared place, the watcher's webhooks sent by one
of them only, and their queues drained by whichever replica took the click.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from protiv_dagster.company_settings import SettingsError, parse_settings
from protiv_dagster.connections.registry import (
    Connection,
    ConnectionRegistry,
    EnvReference,
    RegistryError,
    UnknownCompanyError,
    check_credential,
    latest_pull_date,
    validate_base_url,
    validate_company_id,
    validate_pull_date,
)
from protiv_dagster.integrations import audit as audited
from protiv_dagster.integrations.audit import AuditLog
from protiv_dagster.integrations.auth import Actor
from protiv_dagster.integrations.oauth import OAuthStates, PendingAuthorization
from protiv_dagster.integrations.webhooks import STATUS_CHANGED, SYNC_FINISHED, Webhooks
from protiv_dagster.settings import SettingError, refresh_cron, refresh_spread
from protiv_dagster.vendors.registry import VENDORS
from protiv_dagster.vendors.registry import label as vendor_label

if TYPE_CHECKING:
    import dagster as dg

    from protiv_dagster.sync.state import CompanySyncState, SyncBatch, SyncStateStore

log = logging.getLogger(__name__)

# Attempts and longest wait of the vendor check at connect: an admin waits for the answer, so a
# refused connection or an unreachable vendor is reported in a few seconds.
CONNECT_CHECK_RETRIES = {"max_attempts": 3, "max_wait_seconds": 2.0}
FORCE_SYNC_INTERVAL = timedelta(minutes=1)
# Syncs a status lists, newest first.
HISTORY = 10
OAUTH_PROVIDER = "quickbooks_time"
# The run tag naming the service's force sync each run belongs to.
SYNC_TAG = "protiv/service_sync"
APP_FORCE_SYNC = "app_force_sync"
INITIAL_SYNC = "initial_sync"
PENDING, CONNECTED, FAILED = "pending", "connected", "failed"
# Vendors whose times carry no offset of the company's: its sync fails without the timezone setting
# (vendors/busybusy/mapping.py), so connect asks for it instead of storing a connection that cannot sync.
UTC_ONLY_VENDORS = frozenset({"busybusy"})
RECONNECT, VENDOR_DOWN, FORCE_SYNC_AGAIN = "reconnect", "vendor_down", "force_sync"
ACTION_MESSAGES = {
    RECONNECT: "the vendor refused the credentials: an admin reconnects the integration",
    VENDOR_DOWN: "the vendor is down: try again later (syncs resume by themselves)",
    FORCE_SYNC_AGAIN: "force sync it; if it fails again, Protiv support reads the failed run",
}


# -- errors, each saying which field or what to do ---------------------------------------------------
class IntegrationError(Exception):
    """Something an admin can act on; the message never holds a secret."""


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


class InvalidInput(IntegrationError):
    """One or more fields are unusable (HTTP 422)."""

    def __init__(self, problems: list[FieldProblem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))

    @classmethod
    def one(cls, field_name: str, message: str) -> InvalidInput:
        return cls([FieldProblem(field_name, message)])


class NotFound(IntegrationError):
    """An unknown vendor, company or sync (HTTP 404); ``field`` names what was not found."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(message)


class VendorRefused(IntegrationError):
    """The vendor refused the credentials (HTTP 422 on ``credentials``): nothing was stored."""


class VendorDown(IntegrationError):
    """The vendor could not be asked (unreachable, 5xx): nothing was stored; ``status`` is the failed
    status to show."""

    def __init__(self, status: IntegrationStatus):
        self.status = status
        super().__init__(status.reason)


class TooSoon(IntegrationError):
    """A force sync within a minute of the last one (HTTP 429)."""

    def __init__(self, retry_after_seconds: int):
        self.retry_after_seconds = retry_after_seconds
        super().__init__(f"a company is force synced at most once a minute: try again in {retry_after_seconds} s")


class NotConfigured(IntegrationError):
    """The service lacks a setting for this (HTTP 503): the message names the variable."""


# -- what the service answers ----------------------------------------------------------------------
@dataclass(frozen=True)
class Integration:
    """A vendor one can connect: how (credentials, or OAuth), and the fields it asks for."""

    provider: str
    label: str
    connects_with: str  # credentials | oauth
    fields: list[dict[str, Any]]


@dataclass(frozen=True)
class SyncSummary:
    sync_id: str
    company_id: str
    status: str  # queued | running | succeeded | failed
    trigger: str
    requested_at: datetime
    started_by: str  # the actor, or "automation" for the daemon's syncs
    finished_at: datetime | None = None
    error: str | None = None
    run_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class IntegrationStatus:
    company_id: str
    provider: str | None
    provider_label: str | None
    status: str  # pending | connected | failed | disconnected
    reason: str
    action: str | None = None
    action_message: str | None = None
    attendance_pull_date: date | None = None
    connected_at: datetime | None = None
    last_sync_at: datetime | None = None
    current_as_of: datetime | None = None
    next_refresh_at: datetime | None = None
    syncs: list[SyncSummary] = field(default_factory=list)
    # When what the page reads of the company's ProPays was last written, and whether a sync's
    # ProPays are still to come (``with_propays``); one company's status only.
    propays_as_of: datetime | None = None
    propays_updating: bool = False


@dataclass(frozen=True)
class VendorCheck:
    """The vendor's answer to a connection: ``error`` None when it accepted; ``refused`` when it
    rejected the credentials (as opposed to being unreachable); ``issued`` the tokens it issued."""

    error: str | None
    refused: bool = False
    issued: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuthorizationOutcome:
    """How a QuickBooks Time authorization ended, for the page the admin's browser returns to."""

    company_id: str | None
    connected: bool
    reason: str
    status: IntegrationStatus | None = None


@dataclass(frozen=True)
class ServiceSettings:
    """The service's configuration (environment variables, see README)."""

    public_url: str | None = None  # PROTIV_SERVICE_PUBLIC_URL: where the vendor redirects back to
    oauth_return_url: str | None = None  # PROTIV_SERVICE_OAUTH_RETURN_URL: the app's page after OAuth
    base_urls: Mapping[str, str] = field(default_factory=dict)  # PROTIV_<PROVIDER>_BASE_URL
    oauth_client_id: str | None = None  # PROTIV_QUICKBOOKS_TIME_CLIENT_ID
    oauth_client_secret: str | None = None  # PROTIV_QUICKBOOKS_TIME_CLIENT_SECRET
    status_check_seconds: float = 30.0  # PROTIV_SERVICE_STATUS_CHECK_SECONDS

    @classmethod
    def from_environment(cls) -> ServiceSettings:
        env = os.environ
        base_urls = {p: env[f"PROTIV_{p.upper()}_BASE_URL"] for p in VENDORS if env.get(f"PROTIV_{p.upper()}_BASE_URL")}
        base_urls.setdefault(OAUTH_PROVIDER, "https://rest.tsheets.com/api/v1")
        return cls(
            public_url=env.get("PROTIV_SERVICE_PUBLIC_URL") or None,
            oauth_return_url=env.get("PROTIV_SERVICE_OAUTH_RETURN_URL") or None,
            base_urls=base_urls,
            oauth_client_id=env.get("PROTIV_QUICKBOOKS_TIME_CLIENT_ID") or None,
            oauth_client_secret=env.get("PROTIV_QUICKBOOKS_TIME_CLIENT_SECRET") or None,
            status_check_seconds=float(env.get("PROTIV_SERVICE_STATUS_CHECK_SECONDS") or 30),
        )


# -- what the CLI shares --------------------------------------------------------------------------------
# Dagster captures a step's stdout and stderr by swapping the whole process's file descriptors for
# `tail` subprocesses while the step runs. The service runs its syncs in a thread of a threaded HTTP
# server, so that capture would also take every other thread's output into the run's logs, and its
# `tail` processes, started from a server thread, were seen outliving their runs. The service's runs
# keep their structured event logs (what the Dagster UI shows of them); they have no raw stdout files.
NO_COMPUTE_LOG_CAPTURE = {
    "compute_logs": {"module": "dagster._core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"}
}


def service_instance(dagster_home: str) -> dg.DagsterInstance:
    """The deployment's Dagster instance (``dagster_home``'s dagster.yaml: the webserver's and the
    daemon's storage, so the service's runs show in the UI beside theirs), as the service uses it:
    without compute-log capture (``NO_COMPUTE_LOG_CAPTURE``)."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(dagster_home, overrides=NO_COMPUTE_LOG_CAPTURE))


def integrations(search: str | None = None) -> list[Integration]:
    """The vendors, those whose name or id contains ``search`` (any case) when given."""
    wanted = (search or "").strip().casefold()
    found = []
    for provider, spec in VENDORS.items():
        if wanted and wanted not in spec.label.casefold() and wanted not in provider.casefold():
            continue
        oauth = provider == OAUTH_PROVIDER
        fields = [] if oauth else spec.credentials.describe()
        found.append(Integration(provider, spec.label, "oauth" if oauth else "credentials", fields))
    return found


class _IssuedTokens:
    """The registry, as a vendor check of a connection not stored yet sees it: tokens the vendor
    issues (an Aspire token, a refreshed QuickBooks Time pair) are kept here, to be stored with the
    connection if it is saved, instead of being written for a company that may not exist."""

    def __init__(self) -> None:
        self.issued: dict[str, str] = {}

    def rotate_credentials(self, company_id: str, values: Mapping[str, str], issued_for: Any = None) -> bool:
        self.issued.update({name: value for name, value in values.items() if value})
        return True


def check_with_vendor(
    defs: dg.Definitions,
    connection: Connection,
    now: datetime,
    *,
    stored: bool,
    instance: dg.DagsterInstance | None = None,
) -> VendorCheck:
    """Ask the company's vendor what changed (as the refresh does), with a few quick attempts: the
    check of ``protiv connect`` and of the service's connect. ``stored``: the connection is in the
    registry (tokens the vendor issues are written back there); otherwise they are collected in the
    answer's ``issued``. ``instance``: a threaded caller's Dagster instance (see
    ``sync.company.built_resources``)."""
    from protiv_dagster.partitions import week_start
    from protiv_dagster.sync.company import built_resources
    from protiv_dagster.sync.refresh import _error_text
    from protiv_dagster.sync.runs import sync_window
    from protiv_dagster.vendors.http import VendorAuthError

    with built_resources(defs, "registry", "vendors", instance=instance) as built:
        vendors = built.vendors
        tuning = vendors.tuning(connection.provider).model_copy(update=CONNECT_CHECK_RETRIES)
        quick = type(vendors)(**{connection.provider: tuning})
        registry = built.registry if stored else _IssuedTokens()
        try:
            source = quick.source_of(connection, registry)
            first, last = sync_window(connection, now)
            source.changes_since(None, week_start(first), last)
        except VendorAuthError as exc:
            return VendorCheck(str(exc), refused=True)
        except Exception as exc:  # noqa: BLE001 - an admin reads why; a vendor's outage is no crash
            return VendorCheck(_error_text(exc))
    return VendorCheck(None, issued=registry.issued if isinstance(registry, _IssuedTokens) else {})


def record_from_cli(company_id: str, action: str, outcome: str, detail: str | None = None) -> None:
    """An audit entry for what the operator at this terminal did (``protiv connect``, ``sync``,
    ``disconnect``), in the registry of ``PROTIV_REGISTRY_URL`` or the data folder."""
    from protiv_dagster.integrations.auth import cli_actor

    actor = cli_actor()
    AuditLog().record(
        actor=actor.subject, role=actor.role, company_id=company_id, action=action, outcome=outcome, detail=detail
    )


def failure_action(reason: str) -> str:
    """What to do about a failed integration: reconnect (the vendor refused the credentials), wait
    (the vendor is down), or force sync it again (anything else)."""
    lowered = reason.lower()
    if any(
        word in lowered for word in ("credential", "http 401", "http 403", "reconnect", "rejected", "invalid_grant")
    ):
        return RECONNECT
    if any(
        word in lowered
        for word in ("connection refused", "timed out", "unreachable", "still failing", "http 5", "http 429", "reset")
    ):
        return VENDOR_DOWN
    return FORCE_SYNC_AGAIN


# (cron, from, next moment): the next refresh after ``from`` is the next one for any time before it.
_next_refresh: tuple[str, datetime, datetime | None] | None = None


def _tick_after(moment: datetime, cron: str, count: int = 1) -> datetime | None:
    """The ``count``-th tick of ``cron`` (UTC) strictly after ``moment``; None for a malformed cron
    (it fails the schedule, not the status). Dagster's iterator starts at ``moment`` itself when it
    is a tick."""
    from dagster._utils.schedules import cron_string_iterator

    try:
        later = (tick for tick in cron_string_iterator(moment.timestamp(), cron, "UTC") if tick > moment)
        for number, tick in enumerate(later, start=1):
            if number == count:
                return tick.astimezone(UTC)
    except Exception:  # noqa: BLE001 - see above
        return None
    return None


def _next_tick(now: datetime) -> datetime | None:
    """The refresh schedule's next tick (``PROTIV_REFRESH_CRON``) after ``now``. Remembered until that
    moment: every status answers it, and iterating the cron costs milliseconds."""
    global _next_refresh
    cron = refresh_cron()
    known = _next_refresh
    if known is not None and known[0] == cron and known[1] <= now and (known[2] is None or now < known[2]):
        return known[2]
    found = _tick_after(now, cron)
    _next_refresh = (cron, now, found)
    return found


def next_refresh(now: datetime, last_checked_at: datetime | None = None) -> datetime | None:
    """When the refresh next asks the company's vendor what changed. Every tick asks every company,
    unless the refresh is spread over ``PROTIV_REFRESH_SPREAD`` ticks: then a company is asked again
    that many ticks after its last check (the schedule asks those asked longest ago first), or at the
    next tick when that is past."""
    try:
        spread = refresh_spread()
    except SettingError:
        return None  # the schedule's tick fails with the reason; the status has no time to give
    if spread == 1 or last_checked_at is None:
        return _next_tick(now)
    due = _tick_after(last_checked_at, refresh_cron(), spread)
    return due if due is not None and due > now else _next_tick(now)


def batch_summary(batch: SyncBatch) -> SyncSummary:
    status = {"pending": "running"}.get(batch.status, batch.status)
    return SyncSummary(
        sync_id=batch.batch_id,
        company_id=batch.company_id,
        status=status,
        trigger=batch.trigger,
        requested_at=batch.requested_at,
        started_by="automation" if batch.trigger in ("initial_sync", "refresh") else batch.trigger,
        finished_at=batch.finished_at,
        error=batch.error,
    )


def status_of(
    connection: Connection,
    state: CompanySyncState,
    pending: list[SyncBatch],
    now: datetime,
    history: list[SyncSummary] | None = None,
    syncing: bool = False,
) -> IntegrationStatus:
    """The integration's status from its connection and sync state (no vendor call): connected
    (green: the last sync succeeded and the data is current), pending (connected, its initial sync
    under way or about to start), failed (red, with the reason and the action)."""
    from protiv_dagster.sync.health import company_health

    health = company_health(connection, state, pending, now)
    reason = health.reason
    if health.healthy:
        status, action = CONNECTED, None
    elif reason.startswith(("initial sync in progress", "never synced")):
        status, action = PENDING, None
        reason = "connected; the initial sync is under way" if pending or syncing else reason
    elif (
        state.last_error
        and state.last_checked_at is not None
        and connection.updated_at > state.last_checked_at
        and not (state.initial_sync_retry_at() and state.initial_sync_for == connection.connected_at and pending)
    ):
        # Reconnected after the failure: the failure was the old connection's.
        status, action, reason = PENDING, None, "reconnected; the next sync checks the new connection"
    else:
        status, action = FAILED, failure_action(reason)
    return IntegrationStatus(
        company_id=connection.company_id,
        provider=connection.provider,
        provider_label=connection.provider_label,
        status=status,
        reason=reason,
        action=action,
        action_message=ACTION_MESSAGES.get(action) if action else None,
        attendance_pull_date=connection.attendance_pull_date,
        connected_at=connection.connected_at,
        last_sync_at=state.last_success_at,
        current_as_of=state.current_as_of,
        next_refresh_at=next_refresh(now, state.last_checked_at),
        syncs=list(history or []),
    )


# How long after a sync ends the page keeps asking for ProPays older than the sync. A daemon's sync
# ends before the automation computes its ProPays and publishes the analysts' copy, a tick or two
# later; a sync that changed nothing the engine reads is followed by no computation, and this bounds
# the asking then.
PROPAYS_CATCH_UP = timedelta(minutes=10)


def with_propays(status: IntegrationStatus, as_of: datetime | None, now: datetime) -> IntegrationStatus:
    """``status`` with when its company's ProPays were written (``propays.propays_as_of``) and
    whether the last sync's are still to come: it succeeded less than ``PROPAYS_CATCH_UP`` ago and
    the ProPays are older than its request."""
    latest = status.syncs[0] if status.syncs else None
    updating = (
        latest is not None
        and latest.status == "succeeded"
        and latest.finished_at is not None
        and now - latest.finished_at < PROPAYS_CATCH_UP
        and (as_of is None or as_of < latest.requested_at)
    )
    return replace(status, propays_as_of=as_of, propays_updating=updating)


def _registry_problem(exc: Exception, field_name: str) -> InvalidInput:
    return InvalidInput.one(field_name, str(exc))


def company_statuses(
    connections: list[Connection],
    store: SyncStateStore,
    now: datetime,
    *,
    company_id: str | None = None,
    queued: Callable[[str], list[SyncSummary]] | None = None,
    syncing: frozenset[str] | set[str] = frozenset(),
) -> list[IntegrationStatus]:
    """The statuses of ``connections`` (one company's with ``company_id``, else every company's read
    in one pass): what the service answers and ``protiv status`` prints. ``queued``: the syncs a
    running service holds in memory for a company (queued or running), listed first in its history;
    ``syncing``: the companies whose sync that service is running."""
    from protiv_dagster.sync.state import CompanySyncState

    records = store.status_records(company_id, HISTORY)
    statuses = []
    for connection in connections:
        company = connection.company_id
        mine = queued(company) if queued is not None else []
        shown = {s.sync_id for s in mine}
        recorded = [batch_summary(b) for b in records.recent.get(company, []) if b.batch_id not in shown]
        statuses.append(
            status_of(
                connection,
                records.states.get(company) or CompanySyncState(company),
                records.in_flight.get(company, []),
                now,
                (mine + recorded)[:HISTORY],
                syncing=company in syncing,
            )
        )
    return statuses


# -- the service ------------------------------------------------------------------------------------------
@dataclass
class _ForceSync:
    sync_id: str
    company_id: str
    trigger: str
    requested_by: str
    requested_at: datetime
    status: str = "queued"
    finished_at: datetime | None = None
    error: str | None = None
    run_ids: list[str] = field(default_factory=list)
    batch: SyncBatch | None = None  # an initial sync, recorded in the sync state before it runs

    def summary(self) -> SyncSummary:
        return SyncSummary(
            sync_id=self.sync_id,
            company_id=self.company_id,
            status=self.status,
            trigger=self.trigger,
            requested_at=self.requested_at,
            started_by=self.requested_by,
            finished_at=self.finished_at,
            error=self.error,
            run_ids=list(self.run_ids),
        )


class IntegrationService:
    """The integrations of every company: one per process (see the module docstring)."""

    def __init__(
        self,
        defs: dg.Definitions,
        instance: dg.DagsterInstance | None,
        *,
        registry_url: str | None = None,
        settings: ServiceSettings | None = None,
        webhooks: Webhooks | None = None,
        clock: Callable[[], datetime] | None = None,
    ):
        from protiv_dagster.sync.state import shared_store

        self.defs, self.instance = defs, instance
        self.registry = ConnectionRegistry(registry_url)
        self.store: SyncStateStore = shared_store(self.registry.url)
        self.audit = AuditLog(self.registry.url)
        self.states = OAuthStates(self.registry.url)
        self.settings = settings or ServiceSettings.from_environment()
        self.webhooks = webhooks or Webhooks(None, None)
        self.clock = clock or (lambda: datetime.now(UTC))
        self._syncs: dict[str, _ForceSync] = {}
        self._running: dict[str, str] = {}  # company -> its queued or running sync
        self._lock = threading.RLock()
        self._queue: queue.Queue[_ForceSync | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self._stopping = threading.Event()
        self._last_status: dict[str, str] = {}

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the sync worker and the status watcher (which tells the webhook receiver about the
        changes the daemon makes too: a refresh that failed, an initial sync that succeeded)."""
        if self.instance is None:
            raise NotConfigured("the service runs syncs through a Dagster instance: give it one (DAGSTER_HOME)")
        self._close_abandoned_syncs()
        self._stopping.clear()
        self._last_status = {s.company_id: s.status for s in self._all_statuses()}
        self._worker = threading.Thread(target=self._run_syncs, name="protiv-force-syncs", daemon=True)
        self._worker.start()
        self._watcher = threading.Thread(target=self._watch, name="protiv-status-watch", daemon=True)
        self._watcher.start()

    def _close_abandoned_syncs(self) -> None:
        """Close the syncs an earlier process of this service left in flight (it stopped or died
        with syncs queued or running): the service is one replica, so no other process runs them.
        Without this the company would count as syncing, and refuse force syncs, until the daemon's
        company_syncs gave up on them an hour later. Their runs stay in the Dagster instance."""
        from protiv_dagster.sync.state import IN_PROCESS

        for batch in self.store.pending_batches():
            if batch.phase == IN_PROCESS:
                error = "the integrations service restarted before this sync ended; force sync it again"
                self.store.finish_batch(batch.batch_id, succeeded=False, at=self.clock(), error=error)
                log.warning(
                    "closed sync %s of %r, left in flight by an earlier service process",
                    batch.batch_id,
                    batch.company_id,
                )

    def wait_until_idle(self, timeout: float) -> bool:
        """Whether every sync this service queued has ended within ``timeout`` seconds (a sync keeps
        running after ``stop`` has given up on it: its thread ends with the process)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._running:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking syncs; a sync under way gets ``timeout`` seconds to end (its runs are recorded
        in the Dagster instance either way), then webhooks queued are delivered."""
        self._stopping.set()
        self._queue.put(None)
        for thread in (self._worker, self._watcher):
            if thread is not None:
                thread.join(timeout)
        self.webhooks.stop()

    # -- listing and status -----------------------------------------------------------------------
    def integration(self, provider: str) -> Integration:
        for found in integrations():
            if found.provider == provider:
                return found
        raise NotFound("provider", f"unknown integration {provider!r}; known: {', '.join(VENDORS)}")

    def _connection(self, company_id: str) -> Connection:
        try:
            return self.registry.get(company_id)
        except UnknownCompanyError:
            raise NotFound("company_id", f"company {company_id!r} has no integration connected") from None

    def _queued(self, company_id: str) -> list[SyncSummary]:
        """The syncs this service has queued or running for the company."""
        with self._lock:
            return [
                s.summary()
                for s in self._syncs.values()
                if s.company_id == company_id and s.status in ("queued", "running")
            ]

    def status(self, actor: Actor, company_id: str) -> IntegrationStatus:
        """The company's status, with its ProPays' age (the page refreshes them when it moves)."""
        from protiv_dagster.integrations.propays import propays_as_of

        actor.require_company(company_id)
        status = self._status(self._connection(company_id))
        if self.instance is None:
            return status
        return with_propays(status, propays_as_of(self.defs, self.instance, company_id), self.clock())

    def _status(self, connection: Connection) -> IntegrationStatus:
        return self._statuses([connection], connection.company_id)[0]

    def _statuses(self, connections: list[Connection], company_id: str | None) -> list[IntegrationStatus]:
        """The statuses of ``connections``: one company's, or every company's (``company_id`` None)."""
        with self._lock:
            running = set(self._running)
        return company_statuses(
            connections, self.store, self.clock(), company_id=company_id, queued=self._queued, syncing=running
        )

    def statuses(self, actor: Actor) -> list[IntegrationStatus]:
        """Every company the actor may see: an operator all, an admin their own."""
        actor.require_admin_role()
        return [s for s in self._all_statuses() if actor.may_see(s.company_id)]

    def _all_statuses(self) -> list[IntegrationStatus]:
        """Every company's status, read in one pass (the watcher asks for them every 30 s)."""
        return self._statuses(self.registry.list(), None)

    # -- connect ------------------------------------------------------------------------------------
    def connect(
        self,
        actor: Actor,
        company_id: str,
        provider: str,
        credentials: Mapping[str, str | EnvReference],
        *,
        base_url: str | None = None,
        attendance_pull_date: date | None = None,
        settings: Mapping[str, object] | None = None,
        check: bool = True,
        via: str = "credentials",
    ) -> IntegrationStatus:
        """Connect (or reconnect) a company with credentials an admin gives: each field checked,
        then the vendor asked, and the connection stored only when the vendor accepts it.
        ``check`` False (``protiv connect --no-check``, offline) stores it without asking the vendor;
        ``via`` says in the audit log how it was given (the app's credentials, the CLI)."""
        actor.require_company(company_id)
        self.integration(provider)
        candidate = self._candidate(company_id, provider, credentials, base_url, attendance_pull_date, settings)
        return self._verify_and_save(actor, candidate, settings is not None, via=via, check=check)

    def _candidate(
        self,
        company_id: str,
        provider: str,
        credentials: Mapping[str, str | EnvReference],
        base_url: str | None,
        attendance_pull_date: date | None,
        settings: Mapping[str, object] | None,
    ) -> Connection:
        problems: list[FieldProblem] = []
        label = vendor_label(provider)
        try:
            validate_company_id(company_id)
        except RegistryError as exc:
            problems.append(FieldProblem("company_id", str(exc)))
        url = base_url or self.settings.base_urls.get(provider)
        if not url:
            problems.append(
                FieldProblem("base_url", f"give {label}'s API base URL (PROTIV_{provider.upper()}_BASE_URL is not set)")
            )
        else:
            try:
                url = validate_base_url(url, field="base_url")
            except RegistryError as exc:
                problems.append(FieldProblem("base_url", str(exc)))
        timezone = None
        try:
            timezone = parse_settings(settings, company_id=company_id).timezone
        except SettingsError as exc:
            problems.append(FieldProblem("settings", str(exc)))
        if provider in UTC_ONLY_VENDORS and not timezone and not any(p.field == "settings" for p in problems):
            problems.append(
                FieldProblem(
                    "settings.timezone",
                    f"{label} sends times in UTC only: give the company's time zone (e.g. America/Denver) so work "
                    "dates can be computed",
                )
            )
        if attendance_pull_date is not None:
            try:
                validate_pull_date(attendance_pull_date, latest_pull_date(timezone), field="attendance_pull_date")
            except RegistryError as exc:
                problems.append(FieldProblem("attendance_pull_date", str(exc)))
        required, optional = VENDORS[provider].credentials.given_by_admin()
        for name in sorted(required - set(credentials)):
            problems.append(FieldProblem(f"credentials.{name}", f"{label} {name} is required"))
        for name, value in credentials.items():
            if name not in required | optional:
                problems.append(
                    FieldProblem(
                        f"credentials.{name}",
                        f"{label} has no credential {name!r}; its credentials: {', '.join(sorted(required | optional))}",
                    )
                )
                continue
            if isinstance(value, EnvReference):  # read from the run workers' environment, not here
                continue
            try:
                check_credential(provider, name, value)
            except RegistryError as exc:
                problems.append(FieldProblem(f"credentials.{name}", str(exc)))
        if problems:
            raise InvalidInput(problems)
        assert url is not None
        try:
            return self.registry.prepare(
                company_id,
                provider,
                url,
                dict(credentials),
                attendance_pull_date=attendance_pull_date,
                settings=settings,
            )
        except RegistryError as exc:  # the encryption key is missing: the service is not set up
            raise NotConfigured(str(exc)) from None

    def _verify_and_save(
        self, actor: Actor, candidate: Connection, settings_given: bool, via: str = "credentials", check: bool = True
    ) -> IntegrationStatus:
        company_id, label = candidate.company_id, candidate.provider_label
        now = self.clock()
        answer = (
            check_with_vendor(self.defs, candidate, now, stored=False, instance=self.instance)
            if check
            else VendorCheck(None)
        )
        if answer.error is not None:
            outcome = audited.REFUSED if answer.refused else audited.FAILED
            self._record(actor, company_id, audited.CONNECT, outcome, f"{label} ({via}): {answer.error}")
            if answer.refused:
                raise VendorRefused(answer.error)
            action = failure_action(answer.error)
            raise VendorDown(
                IntegrationStatus(
                    company_id=company_id,
                    provider=candidate.provider,
                    provider_label=label,
                    status=FAILED,
                    reason=f"{answer.error} (nothing was stored)",
                    action=action,
                    action_message=ACTION_MESSAGES[action],
                )
            )
        connection = self.registry.save(candidate, settings_given=settings_given, vendor_issued=answer.issued)
        initial = self._start_initial_sync(actor, connection)
        self._record(
            actor,
            company_id,
            audited.CONNECT,
            audited.DONE,
            f"{label} ({via}), attendance from {connection.attendance_pull_date}"
            + ("" if check else ", not checked with the vendor")
            + (f"; initial sync {initial}" if initial else ""),
        )
        status = self._status(connection)
        self._observe(status)
        return status

    def _record(self, actor: Actor, company_id: str, action: str, outcome: str, detail: str | None = None) -> None:
        self.audit.record(
            actor=actor.subject, role=actor.role, company_id=company_id, action=action, outcome=outcome, detail=detail
        )

    # -- QuickBooks Time: OAuth 2.0 authorization code ----------------------------------------------------
    def redirect_uri(self, request_base_url: str) -> str:
        base = (self.settings.public_url or request_base_url).rstrip("/")
        return f"{base}/oauth/{OAUTH_PROVIDER}/callback"

    def _oauth_client(self) -> tuple[str, str, str]:
        client_id, secret = self.settings.oauth_client_id, self.settings.oauth_client_secret
        if not client_id or not secret:
            raise NotConfigured(
                "QuickBooks Time connects through OAuth: set PROTIV_QUICKBOOKS_TIME_CLIENT_ID and "
                "PROTIV_QUICKBOOKS_TIME_CLIENT_SECRET (the app registered with QuickBooks Time)"
            )
        return client_id, secret, self.settings.base_urls[OAUTH_PROVIDER]

    def start_authorization(
        self, actor: Actor, company_id: str, redirect_uri: str, attendance_pull_date: date | None = None
    ) -> str:
        """The vendor's authorize URL for the admin's browser, with a new single-use ``state``."""
        from protiv_dagster.vendors.quickbooks_time.oauth import authorize_url

        actor.require_company(company_id)
        problems = []
        try:
            validate_company_id(company_id)
        except RegistryError as exc:
            problems.append(FieldProblem("company_id", str(exc)))
        if attendance_pull_date is not None:
            try:
                validate_pull_date(attendance_pull_date, latest_pull_date(None), field="attendance_pull_date")
            except RegistryError as exc:
                problems.append(FieldProblem("attendance_pull_date", str(exc)))
        if problems:
            raise InvalidInput(problems)
        client_id, _, base_url = self._oauth_client()
        state = self.states.issue(
            PendingAuthorization(
                OAUTH_PROVIDER, company_id, actor.subject, actor.role, attendance_pull_date, self.clock()
            )
        )
        self._record(actor, company_id, audited.OAUTH_START, audited.DONE, "QuickBooks Time authorization started")
        return authorize_url(base_url, client_id, redirect_uri, state)

    def finish_authorization(
        self, state: str | None, code: str | None, error: str | None, redirect_uri: str
    ) -> AuthorizationOutcome:
        """The vendor's callback: the state redeemed (single use), the code exchanged at ``/grant``,
        the tokens checked with the vendor and stored encrypted, recorded under the admin who began."""
        from protiv_dagster.vendors.http import VendorAuthError, VendorError
        from protiv_dagster.vendors.quickbooks_time.oauth import QuickBooksTimeAuthorization

        pending = self.states.redeem(state, OAUTH_PROVIDER, self.clock()) if state else None
        if pending is None:
            raise InvalidInput.one(
                "state", "unknown, already used or expired (10 minutes): start the connection again from the app"
            )
        actor = Actor(pending.actor, pending.role, pending.company_id if pending.role == "admin" else None)
        company_id = pending.company_id
        if error or not code:
            reason = "the QuickBooks Time admin did not approve the connection" if error else "no code in the callback"
            self._record(actor, company_id, audited.CONNECT, audited.REFUSED, f"QuickBooks Time (OAuth): {reason}")
            return AuthorizationOutcome(company_id, False, reason)
        client_id, secret, base_url = self._oauth_client()
        try:
            credentials = QuickBooksTimeAuthorization(base_url, client_id, secret, max_attempts=3).exchange_code(
                code, redirect_uri
            )
        except VendorError as exc:
            outcome = (
                audited.REFUSED if isinstance(exc, VendorAuthError) or (exc.status or 500) < 500 else audited.FAILED
            )
            self._record(actor, company_id, audited.CONNECT, outcome, f"QuickBooks Time (OAuth): {exc}")
            return AuthorizationOutcome(company_id, False, str(exc))
        try:
            candidate = self.registry.prepare(
                company_id,
                OAUTH_PROVIDER,
                base_url,
                credentials.model_dump(exclude_none=True),
                attendance_pull_date=pending.attendance_pull_date,
            )
        except RegistryError as exc:
            self._record(actor, company_id, audited.CONNECT, audited.FAILED, f"QuickBooks Time (OAuth): {exc}")
            return AuthorizationOutcome(company_id, False, str(exc))
        try:
            status = self._verify_and_save(actor, candidate, False, via="OAuth")
        except VendorRefused as exc:
            return AuthorizationOutcome(company_id, False, str(exc))
        except VendorDown as exc:
            return AuthorizationOutcome(company_id, False, exc.status.reason, exc.status)
        return AuthorizationOutcome(company_id, True, status.reason, status)

    # -- force sync -------------------------------------------------------------------------------------
    def force_sync(self, actor: Actor, company_id: str) -> tuple[SyncSummary, bool]:
        """Start the company's sync (the circular button); returns it and whether it is new. A sync
        under way (the service's or the daemon's) is returned instead of starting another; otherwise
        at most one a minute (``TooSoon``), counted from the audit log so a restart does not reset it."""
        actor.require_company(company_id)
        connection = self._connection(company_id)
        return self._start_sync(actor, connection, audited.FORCE_SYNC, None)

    def _start_sync(
        self, actor: Actor, connection: Connection, action: str, note: str | None
    ) -> tuple[SyncSummary, bool]:
        """Queue a force sync, recorded in the sync state before it is queued (phase IN_PROCESS, so
        the daemon's refresh leaves the company alone while it runs, and its id outlives a restart of
        this service: ``GET .../syncs/{id}`` reads it from the sync history)."""
        from protiv_dagster.sync.state import SyncInFlight

        company_id = connection.company_id
        with self._lock:
            running = self._running.get(company_id)
            if running is not None:
                return self._syncs[running].summary(), False
            in_flight = self.store.pending_batches(company_id)
            if in_flight:
                return batch_summary(in_flight[-1]), False
            now = self.clock()
            last = self.audit.last_sync_started(company_id)
            if last is not None and now - last < FORCE_SYNC_INTERVAL:
                wait = max(1, int((FORCE_SYNC_INTERVAL - (now - last)).total_seconds() + 0.999))
                self._record(actor, company_id, action, audited.REFUSED, f"at most once a minute: {wait} s to wait")
                raise TooSoon(wait)
            try:
                batch = self._open_in_process(connection, APP_FORCE_SYNC, now)
            except SyncInFlight as exc:  # the daemon planned one since the read above
                if exc.batch is None:  # syncs keep starting and ending as we look: ask again in a second
                    raise TooSoon(1) from None
                return batch_summary(exc.batch), False
            sync = _ForceSync(batch.batch_id, company_id, APP_FORCE_SYNC, actor.subject, now, batch=batch)
            self._syncs[sync.sync_id] = sync
            self._running[company_id] = sync.sync_id
            self._record(
                actor, company_id, action, audited.DONE, f"sync {sync.sync_id}" + (f"; {note}" if note else "")
            )
        self._queue.put(sync)
        return sync.summary(), True

    def _open_in_process(self, connection: Connection, trigger: str, now: datetime) -> SyncBatch:
        """Record a sync this service runs itself as in flight (phase IN_PROCESS, every week of the
        window); ``SyncInFlight`` when the company has another."""
        from protiv_dagster.sync.runs import all_weeks
        from protiv_dagster.sync.state import IN_PROCESS

        return self.store.open_batch(
            connection.company_id,
            trigger,
            None,
            all_weeks(connection, now),
            True,
            now,
            initial_sync_for=connection.connected_at,
            phase=IN_PROCESS,
            only_when_idle=True,
        )

    def _start_initial_sync(self, actor: Actor, connection: Connection) -> str | None:
        """Queue the initial sync of a connection just saved, in the worker (without it the daemon's
        new_connections sensor starts it on a later tick; with it the admin sees green in minutes,
        daemon or not). It is recorded in the sync state as in flight (phase IN_PROCESS) before it
        is queued, so the sensor does not start a second one, and it does not count toward the
        force sync limit. Returns its id, or None when a sync of the company is already under way
        or the worker is not running (the daemon's sensor then syncs it)."""
        from protiv_dagster.sync.state import SyncInFlight

        company_id = connection.company_id
        if self._worker is None or not self._worker.is_alive():
            return None
        with self._lock:
            if company_id in self._running:
                return None
            now = self.clock()
            try:
                batch = self._open_in_process(connection, INITIAL_SYNC, now)
            except SyncInFlight:  # the daemon's new_connections sensor was first
                return None
            sync = _ForceSync(batch.batch_id, company_id, INITIAL_SYNC, actor.subject, now, batch=batch)
            self._syncs[sync.sync_id] = sync
            self._running[company_id] = sync.sync_id
        self._queue.put(sync)
        return sync.sync_id

    def sync(self, actor: Actor, company_id: str, sync_id: str) -> SyncSummary:
        """A sync's state: one the service started (with its Dagster runs), or one in the sync history."""
        actor.require_company(company_id)
        with self._lock:
            mine = self._syncs.get(sync_id)
        if mine is not None and mine.company_id == company_id:
            return replace(mine.summary(), run_ids=self._run_ids(sync_id) or mine.run_ids)
        for batch in self.store.batches_of(company_id):
            if batch.batch_id == sync_id:
                # One this service started before a restart: who asked for it is in the audit log.
                started_by = self.audit.actor_of_sync(company_id, sync_id)
                summary = batch_summary(batch)
                return replace(summary, started_by=started_by or summary.started_by, run_ids=self._run_ids(sync_id))
        raise NotFound("sync_id", f"company {company_id!r} has no sync {sync_id!r}")

    def _run_ids(self, sync_id: str) -> list[str]:
        import dagster as dg

        from protiv_dagster.sync.runs import BATCH_TAG

        # Every sync is a batch of the sync state, its runs tagged with its id (the service's, the
        # daemon's); newest first from the instance: reversed, the order they ran.
        if self.instance is None:  # a service without syncs (the CLI's connect)
            return []
        return [run.run_id for run in reversed(self.instance.get_runs(dg.RunsFilter(tags={BATCH_TAG: sync_id})))]

    def _run_syncs(self) -> None:
        while True:
            sync = self._queue.get()
            if sync is None:
                return
            if self._stopping.is_set():
                self._drop(sync)
                continue
            self._run_one(sync)

    def _drop(self, sync: _ForceSync) -> None:
        """A sync still queued when the service stops: not run; an initial sync's record is closed
        so that the daemon's sensor syncs the company instead."""
        with self._lock:
            sync.status, sync.error, sync.finished_at = "failed", "the service stopped before it began", self.clock()
            self._running.pop(sync.company_id, None)
        if sync.batch is not None:
            self.store.finish_batch(sync.batch.batch_id, succeeded=False, at=self.clock(), error=sync.error)

    def _run_one(self, sync: _ForceSync) -> None:
        from protiv_dagster.sync.company import SyncFailed, force_sync
        from protiv_dagster.sync.runs import BATCH_TAG

        assert self.instance is not None, "start() runs syncs only with a Dagster instance"
        with self._lock:
            sync.status = "running"
        try:
            connection = self.registry.get(sync.company_id)
            run_ids = force_sync(
                self.defs,
                self.instance,
                connection,
                self.clock(),
                trigger=sync.trigger,
                tags={SYNC_TAG: sync.sync_id, **({BATCH_TAG: sync.batch.batch_id} if sync.batch else {})},
                refuse_in_flight=True,
                batch=sync.batch,
            )
            outcome, error = "succeeded", None
        except (SyncFailed, RegistryError) as exc:
            run_ids, outcome, error = [], "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - the worker must outlive one sync's surprise
            log.exception("force sync %s of %r failed", sync.sync_id, sync.company_id)
            run_ids, outcome, error = [], "failed", f"the sync failed unexpectedly ({type(exc).__name__})"
        if error is not None and sync.batch is not None and self.store.batch(sync.batch.batch_id).status == "pending":
            # Failed before force_sync could close it (the connection removed meanwhile, a surprise).
            self.store.finish_batch(sync.batch.batch_id, succeeded=False, at=self.clock(), error=error)
        with self._lock:
            sync.status, sync.error, sync.finished_at = outcome, error, self.clock()
            sync.run_ids = run_ids or self._run_ids(sync.sync_id)
            self._running.pop(sync.company_id, None)
        self.webhooks.send(
            SYNC_FINISHED,
            {
                "company_id": sync.company_id,
                "sync_id": sync.sync_id,
                "status": outcome,
                "reason": error,
                "requested_at": sync.requested_at.isoformat(),
                "finished_at": sync.finished_at.isoformat() if sync.finished_at else None,
                "run_ids": sync.run_ids,
            },
        )
        self._observe_company(sync.company_id)

    # -- disconnect, pull date ------------------------------------------------------------------------------
    def disconnect(self, actor: Actor, company_id: str) -> None:
        """Remove the company's connection; its synced data stays in the warehouse."""
        actor.require_company(company_id)
        self._connection(company_id)
        self.registry.disconnect(company_id)
        self._record(actor, company_id, audited.DISCONNECT, audited.DONE, "data kept in the warehouse")
        with self._lock:
            self._last_status.pop(company_id, None)
        self.webhooks.send(
            STATUS_CHANGED, {"company_id": company_id, "status": "disconnected", "reason": "disconnected by an admin"}
        )

    def change_pull_date(
        self, actor: Actor, company_id: str, pull_date: date
    ) -> tuple[IntegrationStatus, SyncSummary | None, int | None]:
        """Move the attendance pull date. An earlier date starts a force sync of what it adds (the
        same limit applies: when it is too soon, the answer says in how many seconds to force sync).
        Returns the status, the sync started (or under way), and the seconds to wait otherwise."""
        actor.require_company(company_id)
        connection = self._connection(company_id)
        try:
            validate_pull_date(pull_date, latest_pull_date(connection.settings.timezone), field="attendance_pull_date")
        except RegistryError as exc:
            raise _registry_problem(exc, "attendance_pull_date") from None
        before = connection.attendance_pull_date
        connection = self.registry.change_pull_date(company_id, pull_date)
        note = f"attendance pull date {before} -> {pull_date}"
        sync: SyncSummary | None = None
        wait: int | None = None
        if pull_date < before:
            try:
                sync, _ = self._start_sync(actor, connection, audited.PULL_DATE, note)
            except TooSoon as exc:
                wait = exc.retry_after_seconds
        else:
            self._record(actor, company_id, audited.PULL_DATE, audited.DONE, note)
        return self._status(connection), sync, wait

    # -- status changes, for the webhook -----------------------------------------------------------------
    def _observe_company(self, company_id: str) -> None:
        try:
            self._observe(self._status(self.registry.get(company_id)))
        except UnknownCompanyError:
            return

    def _observe(self, status: IntegrationStatus) -> None:
        with self._lock:
            before = self._last_status.get(status.company_id)
            self._last_status[status.company_id] = status.status
        if before != status.status:
            self.webhooks.send(
                STATUS_CHANGED,
                {
                    "company_id": status.company_id,
                    "status": status.status,
                    "previous_status": before,
                    "reason": status.reason,
                    "action": status.action,
                    "last_sync_at": status.last_sync_at.isoformat() if status.last_sync_at else None,
                    "current_as_of": status.current_as_of.isoformat() if status.current_as_of else None,
                },
            )

    def _watch(self) -> None:
        """Every ``status_check_seconds``: each company's status, as the daemon changes it too."""
        while not self._stopping.wait(self.settings.status_check_seconds):
            try:
                for status in self._all_statuses():
                    self._observe(status)
            except Exception:  # noqa: BLE001 - a database blip must not end the watcher
                log.warning("the status check of the companies failed", exc_info=True)
