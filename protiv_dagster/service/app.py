"""The integrations service over HTTP: what Protiv's app calls from its "Integration" page.

``create_app(service, verifier)`` builds the FastAPI application; ``protiv serve`` runs it with
uvicorn. Every route but the health check and the OAuth callback needs the app's bearer token
(``integrations/auth.py``); the callback is authenticated by its single-use ``state``. The OpenAPI
document is at ``/openapi.json``; there is no interactive docs page (FastAPI's loads its script from
a CDN, and this service serves nothing from outside).

Errors are JSON ``{"detail": [{"field": ..., "message": ...}]}`` on every 4xx, the field named
(``credentials.password``, ``attendance_pull_date``); a vendor that is down answers 502 with the
failed status, never a 500.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from protiv_dagster.integrations.auth import Actor, Forbidden, TokenVerifier, Unauthenticated
from protiv_dagster.integrations.propays import WarehouseUnavailable, company_propays
from protiv_dagster.integrations.service import (
    OAUTH_PROVIDER,
    IntegrationService,
    InvalidInput,
    NotConfigured,
    NotFound,
    TooSoon,
    VendorDown,
    VendorRefused,
    integrations,
)
from protiv_dagster.service.models import (
    ConnectIn,
    DisconnectedOut,
    ForceSyncOut,
    IntegrationOut,
    Problems,
    ProPayOut,
    PullDateIn,
    PullDateOut,
    StatusOut,
    SyncOut,
    VendorDownOut,
)
from protiv_dagster.service.page import (
    CSRF_QUERY,
    PUBLIC_ORIGIN,
    Sessions,
    add_page,
    origin_of,
    require_csrf,
    session_actor,
)

# Documented only: the token is read from the Authorization header by ``_actor`` below.
_bearer = HTTPBearer(auto_error=False, description="A short-lived JWT the Protiv app signed for the admin.")
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problems, "description": "No valid token."},
    403: {"model": Problems, "description": "Not an admin of this company, nor an operator."},
    404: {"model": Problems, "description": "Unknown company, vendor or sync."},
    422: {"model": Problems, "description": "A field is unusable: named in detail."},
}


def _problem(status: int, field: str | None, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": [{"field": field, "message": message}]}, status_code=status, headers=headers)


# The callback's answer depends on Accept, and its URL held a single-use code: never cached, no referrer.
_CALLBACK_HEADERS = {"Cache-Control": "no-store", "Vary": "Accept", "Referrer-Policy": "no-referrer"}


def _wants_html(accept: str | None) -> bool:
    """A browser's navigation: its Accept names text/html (not with q=0). An API client's
    (application/json, */* or none) does not."""
    for media_range in (accept or "").split(","):
        media_type, _, parameters = media_range.partition(";")
        if media_type.strip().lower() != "text/html":
            continue
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


def _to_own_page(query: dict[str, str]) -> RedirectResponse:
    """To the service's own page with the OAuth outcome (303: the page is fetched with GET). The
    page reads the outcome from the query; the session cookie, SameSite=Strict, is not needed here
    (the navigation back from the vendor's site arrives without it)."""
    return RedirectResponse(f"/page/?{urlencode(query)}", status_code=303, headers=_CALLBACK_HEADERS)


def _field_of(location: tuple) -> str | None:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def _message(error: dict) -> str:
    if error.get("type") == "missing":
        return "is required"
    return str(error.get("msg", "is not valid"))


def quiet_access_log() -> None:
    """uvicorn's access log without query strings: an OAuth callback's ``code`` and ``state`` are
    single-use secrets and must not land in logs."""

    class _NoQuery(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
                record.args = (*record.args[:2], record.args[2].split("?", 1)[0], *record.args[3:])
            return True

    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _NoQuery) for f in access.filters):
        access.addFilter(_NoQuery())


def create_app(
    service: IntegrationService,
    verifier: TokenVerifier,
    *,
    manage_lifecycle: bool = True,
    sessions: Sessions | None = None,
) -> FastAPI:
    """The application over ``service``; with ``manage_lifecycle`` it starts the service's sync
    worker and status watcher with the server and stops them with it. It serves the integration
    page too (``service/page.py``), whose cookie sessions are kept in ``sessions``."""
    sessions = sessions or Sessions()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            service.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                service.stop()

    app = FastAPI(
        title="Protiv integrations",
        version="1",
        description=(__doc__ or "").split("\n\n")[0],
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )

    if service.settings.public_url:
        setattr(app.state, PUBLIC_ORIGIN, origin_of(service.settings.public_url))

    # The two auth dependencies are coroutines: they only verify a signature and look up a session in
    # memory, and a plain function would cost each call two hops through the threadpool.
    async def actor(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None
    ) -> Actor:
        # The page's cookie session only without an Authorization header, and with its CSRF check.
        return session_actor(request, sessions) or verifier.actor(request.headers.get("authorization"))

    Caller = Annotated[Actor, Depends(actor)]

    async def company_actor(caller: Caller, company_id: str) -> Actor:
        # Before the body is read: a caller who may not touch the company learns nothing about it.
        caller.require_company(company_id)
        return caller

    CompanyCaller = Annotated[Actor, Depends(company_actor)]

    # -- errors -------------------------------------------------------------------------------------
    @app.exception_handler(Unauthenticated)
    async def unauthenticated(_: Request, exc: Unauthenticated) -> JSONResponse:
        description = str(exc).replace('"', "'")
        return _problem(
            401,
            "authorization",
            str(exc),
            {"WWW-Authenticate": f'Bearer realm="protiv", error="invalid_token", error_description="{description}"'},
        )

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return _problem(403, None, str(exc))

    @app.exception_handler(InvalidInput)
    async def invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return JSONResponse({"detail": [p.__dict__ for p in exc.problems]}, status_code=422)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _problem(404, exc.field, str(exc))

    @app.exception_handler(VendorRefused)
    async def refused(_: Request, exc: VendorRefused) -> JSONResponse:
        return _problem(422, "credentials", f"the vendor refused the credentials (nothing was stored): {exc}")

    @app.exception_handler(VendorDown)
    async def vendor_down(_: Request, exc: VendorDown) -> JSONResponse:
        body = VendorDownOut(detail=[{"field": None, "message": str(exc)}], status=StatusOut.of(exc.status))  # type: ignore[list-item]
        return JSONResponse(body.model_dump(mode="json"), status_code=502)

    @app.exception_handler(TooSoon)
    async def too_soon(_: Request, exc: TooSoon) -> JSONResponse:
        return _problem(429, None, str(exc), {"Retry-After": str(exc.retry_after_seconds)})

    @app.exception_handler(WarehouseUnavailable)
    async def warehouse_unavailable(_: Request, exc: WarehouseUnavailable) -> JSONResponse:
        return _problem(503, None, f"the warehouse cannot be read now: {exc}", {"Retry-After": "5"})

    @app.exception_handler(NotConfigured)
    async def not_configured(_: Request, exc: NotConfigured) -> JSONResponse:
        return _problem(503, None, str(exc))

    @app.exception_handler(RequestValidationError)
    async def unreadable(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Never the input itself: a credential may be in it.
        problems = [{"field": _field_of(tuple(e.get("loc", ()))), "message": _message(e)} for e in exc.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _problem(exc.status_code, None, str(exc.detail), getattr(exc, "headers", None))

    # -- routes -----------------------------------------------------------------------------------------
    @app.get("/health", tags=["service"], include_in_schema=False)
    def health() -> dict[str, bool]:
        """Liveness for docker-compose and Kubernetes; no authentication, nothing about companies."""
        return {"ok": True}

    @app.get("/integrations", tags=["integrations"], responses=_PROBLEMS)
    def list_integrations(
        caller: Caller, search: Annotated[str | None, Query(description="Part of the vendor's name.")] = None
    ) -> list[IntegrationOut]:
        """The vendors a company can connect, with the fields each asks for."""
        caller.require_admin_role()
        return [IntegrationOut.of(found) for found in integrations(search)]

    @app.get("/integrations/{provider}", tags=["integrations"], responses=_PROBLEMS)
    def get_integration(caller: Caller, provider: str) -> IntegrationOut:
        caller.require_admin_role()
        return IntegrationOut.of(service.integration(provider))

    @app.get("/companies", tags=["companies"], responses=_PROBLEMS)
    def list_companies(caller: Caller) -> list[StatusOut]:
        """Every company the caller may see: an operator all, an admin their own."""
        return [StatusOut.of(status) for status in service.statuses(caller)]

    @app.get("/companies/{company_id}/integration", tags=["companies"], responses=_PROBLEMS)
    def get_status(caller: CompanyCaller, company_id: str) -> StatusOut:
        """The company's integration: pending, connected or failed, with the reason and the action,
        last sync, next refresh and recent syncs."""
        return StatusOut.of(service.status(caller, company_id))

    @app.put(
        "/companies/{company_id}/integration",
        tags=["companies"],
        status_code=201,
        responses={**_PROBLEMS, 502: {"model": VendorDownOut, "description": "The vendor is down: nothing stored."}},
    )
    def connect(caller: CompanyCaller, company_id: str, body: ConnectIn) -> StatusOut:
        """Connect (or reconnect) with the vendor's credentials, verified with the vendor before
        anything is stored. QuickBooks Time connects through GET /integrations/quickbooks_time/authorize."""
        if body.provider == OAUTH_PROVIDER and "access_token" not in body.credentials:
            raise InvalidInput.one(
                "provider",
                "QuickBooks Time connects through OAuth: send the admin's browser to "
                f"/integrations/{OAUTH_PROVIDER}/authorize?company_id=...",
            )
        status = service.connect(
            caller,
            company_id,
            body.provider,
            body.credentials,
            base_url=body.base_url,
            attendance_pull_date=body.attendance_pull_date,
            settings=body.settings,
        )
        return StatusOut.of(status)

    @app.patch("/companies/{company_id}/integration", tags=["companies"], responses=_PROBLEMS)
    def change_pull_date(caller: CompanyCaller, company_id: str, body: PullDateIn) -> PullDateOut:
        """Change the attendance pull date; an earlier one starts a sync of the weeks it adds."""
        status, sync, wait = service.change_pull_date(caller, company_id, body.attendance_pull_date)
        return PullDateOut(
            status=StatusOut.of(status), sync=SyncOut.of(sync) if sync else None, sync_retry_after_seconds=wait
        )

    @app.delete("/companies/{company_id}/integration", tags=["companies"], responses=_PROBLEMS)
    def disconnect(caller: CompanyCaller, company_id: str) -> DisconnectedOut:
        """Disconnect the company; its synced data stays in the warehouse."""
        service.disconnect(caller, company_id)
        return DisconnectedOut(company_id=company_id)

    @app.post(
        "/companies/{company_id}/syncs",
        tags=["syncs"],
        status_code=202,
        responses={**_PROBLEMS, 429: {"model": Problems, "description": "Force synced within the minute."}},
    )
    def force_sync(caller: CompanyCaller, company_id: str, request: Request, response: Response) -> ForceSyncOut:
        """Force sync the company now (the circular button): the same sync as `protiv sync`, in the
        background. A sync already under way is answered instead of starting another; at most one
        force sync a minute per company (429 with Retry-After)."""
        sync, new = service.force_sync(caller, company_id)
        url = str(request.url_for("get_sync", company_id=company_id, sync_id=sync.sync_id))
        response.headers["Location"] = url
        return ForceSyncOut(sync=SyncOut.of(sync), already_running=not new, status_url=url)

    @app.get("/companies/{company_id}/propays", tags=["companies"], responses=_PROBLEMS)
    def list_propays(caller: CompanyCaller, company_id: str) -> list[ProPayOut]:
        """The company's ProPays as its last sync left them (budget and actual hours, bonus pool, pay
        state), by name; read from the analysts' copy of a DuckDB warehouse when it is published."""
        return [ProPayOut(**row.__dict__) for row in company_propays(service.defs, company_id, service.instance)]

    @app.get("/companies/{company_id}/syncs/{sync_id}", tags=["syncs"], responses=_PROBLEMS, name="get_sync")
    def get_sync(caller: CompanyCaller, company_id: str, sync_id: str) -> SyncOut:
        """A sync's state: running, succeeded or failed with the reason, and its Dagster runs."""
        return SyncOut.of(service.sync(caller, company_id, sync_id))

    @app.get(
        "/integrations/{provider}/authorize",
        tags=["integrations"],
        status_code=302,
        response_class=RedirectResponse,
        responses=_PROBLEMS,
    )
    def authorize(
        caller: CompanyCaller,
        provider: str,
        request: Request,
        company_id: Annotated[str, Query()],
        attendance_pull_date: Annotated[date | None, Query(description="YYYY-MM-DD, not in the future.")] = None,
    ) -> RedirectResponse:
        """Start QuickBooks Time's OAuth: a redirect to the vendor's consent page, with a state bound
        to this admin, company and pull date (single use, 10 minutes). From the integration page
        (its cookie session) the page's CSRF token comes in the query, as a navigation has no header."""
        session = getattr(request.state, "session", None)
        if session is not None:
            require_csrf(request, session, request.query_params.get(CSRF_QUERY))
        if provider != OAUTH_PROVIDER:
            service.integration(provider)  # 404 for an unknown one
            raise InvalidInput.one("provider", f"{provider} connects with credentials: PUT its integration")
        url = service.start_authorization(
            caller, company_id, service.redirect_uri(str(request.base_url)), attendance_pull_date
        )
        return RedirectResponse(url, status_code=302)

    @app.get(
        f"/oauth/{OAUTH_PROVIDER}/callback",
        tags=["integrations"],
        responses={
            303: {"description": "A browser, no return URL configured: to /page/ with the outcome."},
            400: {"model": Problems},
        },
    )
    def oauth_callback(
        request: Request, state: str | None = None, code: str | None = None, error: str | None = None
    ) -> Response:
        """Where QuickBooks Time sends the admin's browser back: the code is exchanged, the tokens
        verified and stored encrypted; then the browser goes to the app's page with the outcome
        (``company_id``, ``outcome`` connected|failed, ``reason``). Without a page configured a
        browser (``Accept`` with text/html) goes to the service's own page (``/page/``) with it, and
        an API client gets the outcome as JSON."""
        browser = _wants_html(request.headers.get("accept"))
        page = service.settings.oauth_return_url
        try:
            outcome = service.finish_authorization(state, code, error, service.redirect_uri(str(request.base_url)))
        except InvalidInput as exc:
            problems = [p.__dict__ for p in exc.problems]
            if browser and not page:
                reason = "; ".join(f"{p['field']}: {p['message']}" if p["field"] else p["message"] for p in problems)
                return _to_own_page({"company_id": "", "outcome": "failed", "reason": reason})
            return JSONResponse({"detail": problems}, status_code=400, headers=_CALLBACK_HEADERS)
        query = {
            "company_id": outcome.company_id or "",
            "outcome": "connected" if outcome.connected else "failed",
            "reason": outcome.reason,
        }
        if page:
            return RedirectResponse(f"{page}{'&' if '?' in page else '?'}{urlencode(query)}", status_code=302)
        if browser:
            return _to_own_page(query)
        body = {**query, "status": StatusOut.of(outcome.status).model_dump(mode="json") if outcome.status else None}
        return JSONResponse(body, status_code=200 if outcome.connected else 422, headers=_CALLBACK_HEADERS)

    add_page(app, sessions, verifier)
    return app
