"""The integration page the service serves itself (``/page/``), and the cookie session it runs on.

The page is three static files of the package (``service/page/``: HTML, CSS, plain JavaScript; no
build step, nothing loaded from the network) calling the same API as the app does. Its visitor logs
in once with a token the Protiv app signed for them (in development ``protiv service token --role
admin --company X``): ``POST /session`` verifies it as the API verifies a bearer token and opens a
server-side session, whose random id is the cookie ``protiv_session`` (HttpOnly, SameSite=Strict,
Path=/, Secure over https). The session keeps the verified actor and ends with the token (at most
15 minutes) or at logout (``DELETE /session``).

A call authenticated by that cookie instead of an ``Authorization`` header must, for every unsafe
method, carry the session's synchronizer token in ``X-CSRF-Token`` and come from the page's own
origin (``Origin`` and ``Sec-Fetch-Site`` when the browser sends them); otherwise it is 403 and
changes nothing. The OAuth redirect, a navigation that cannot carry a header, carries the token in
its query instead. Bearer calls are verified exactly as before: with an ``Authorization`` header
the cookie is not looked at.

Sessions live in the service's memory (one replica, as for its syncs): a restart logs everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Annotated
from urllib.parse import urlsplit

import jwt
from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from protiv_dagster.integrations.auth import Actor, Forbidden, TokenVerifier, Unauthenticated

SESSION_COOKIE = "protiv_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_QUERY = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Where create_app keeps the public URL's origin (app.state), for the same-origin check behind a proxy.
PUBLIC_ORIGIN = "public_origin"
# Sessions alive at once, at most: a flood of logins cannot fill the memory (the oldest ends first).
MAX_SESSIONS = 10_000
PAGE_FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Session:
    actor: Actor
    csrf_token: str
    expires_at: float  # unix time


class Sessions:
    """The open sessions, by a hash of their id (the id itself is only in the visitor's cookie)."""

    def __init__(self, clock: Callable[[], float] = time.time, max_sessions: int = MAX_SESSIONS):
        self.clock = clock
        self.max_sessions = max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(session_id: str) -> str:
        return hashlib.sha256(session_id.encode()).hexdigest()

    def open(self, actor: Actor, expires_at: float) -> tuple[str, Session]:
        session_id = secrets.token_urlsafe(32)
        session = Session(actor, secrets.token_urlsafe(32), expires_at)
        with self._lock:
            now = self.clock()
            for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
                del self._sessions[key]
            while len(self._sessions) >= self.max_sessions:
                del self._sessions[min(self._sessions, key=lambda k: self._sessions[k].expires_at)]
            self._sessions[self._key(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        key = self._key(session_id)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and session.expires_at <= self.clock():
                del self._sessions[key]
                return None
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(self._key(session_id), None)


def origin_of(url: str) -> str:
    """The origin (scheme://host[:port]) of ``url``, as a browser sends it in ``Origin``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _public_origin(request: Request) -> str | None:
    """The origin the browser sees (PROTIV_SERVICE_PUBLIC_URL's), when the service is behind a proxy:
    the proxy may end TLS and rewrite Host, so the request's own URL is not the page's."""
    return getattr(request.app.state, PUBLIC_ORIGIN, None)


def served_over_https(request: Request) -> bool:
    """Whether the browser reached the page over https (directly, or through the public URL's proxy)."""
    return request.url.scheme == "https" or (_public_origin(request) or "").startswith("https://")


def require_same_site(request: Request) -> None:
    """The request comes from the service's own pages: a browser's ``Sec-Fetch-Site`` says
    same-origin (or none: typed by the user), and its ``Origin``, when sent, is the service's: the
    URL it was asked on, or its public URL (PROTIV_SERVICE_PUBLIC_URL)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise Forbidden(f"a cross-site request ({site}) cannot use the page's session")
    origin = request.headers.get("origin")
    own = origin_of(str(request.url))
    if origin is not None and origin.lower() not in (own, _public_origin(request)):
        raise Forbidden("a request from another origin cannot use the page's session")


def require_csrf(request: Request, session: Session, token: str | None) -> None:
    """The session's synchronizer token, from the service's own origin: else 403 (CSRF)."""
    require_same_site(request)
    if not token or not hmac.compare_digest(token.encode(), session.csrf_token.encode()):
        raise Forbidden(f"missing or wrong {CSRF_HEADER}: reload the page (a cookie session needs its CSRF token)")


def session_actor(request: Request, sessions: Sessions) -> Actor | None:
    """The actor of the page's session when the request has no Authorization header but the
    session cookie; None without the cookie (the bearer check answers). An unsafe method needs the
    CSRF token; the session is kept in ``request.state.session`` for routes that check more."""
    if request.headers.get("authorization") is not None:
        return None
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id is None:
        return None
    session = sessions.get(session_id)
    if session is None:
        raise Unauthenticated("the page's session has ended (expired or logged out): log in again")
    if request.method not in SAFE_METHODS:
        require_csrf(request, session, request.headers.get(CSRF_HEADER))
    request.state.session = session
    return session.actor


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    token: str = Field(description="A token the Protiv app signed for the admin (as for Authorization: Bearer).")


class SessionOut(BaseModel):
    subject: str
    role: str
    company_id: str | None
    csrf_token: str = Field(description=f"Send it as {CSRF_HEADER} with every unsafe call.")
    expires_at: float = Field(description="Unix time the session ends (with its token).")

    @classmethod
    def of(cls, session: Session) -> SessionOut:
        actor = session.actor
        return cls(
            subject=actor.subject,
            role=actor.role,
            company_id=actor.company_id,
            csrf_token=session.csrf_token,
            expires_at=session.expires_at,
        )


def _page_file(name: str) -> Response:
    body = resources.files("protiv_dagster.service").joinpath("page", name).read_bytes()
    return Response(body, media_type=PAGE_FILES[name], headers=PAGE_HEADERS)


def add_page(app: FastAPI, sessions: Sessions, verifier: TokenVerifier) -> None:
    """The page's files and its session routes on ``app``."""

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/page/", status_code=302)

    @app.get("/page/", include_in_schema=False)
    def page() -> Response:
        return _page_file("index.html")

    @app.get("/page/{name}", include_in_schema=False)
    def page_file(name: str) -> Response:
        if name not in PAGE_FILES:
            return JSONResponse({"detail": [{"field": None, "message": "Not Found"}]}, 404, headers=PAGE_HEADERS)
        return _page_file(name)

    @app.post("/session", tags=["page"], status_code=201)
    def log_in(request: Request, response: Response, body: Annotated[LoginIn, Body()]) -> SessionOut:
        """Open the page's session with a token the app signed (from the page's own origin only)."""
        require_same_site(request)
        token = body.token.strip()
        actor = verifier.actor(f"Bearer {token}")
        actor.require_admin_role()
        # Verified just above: only its expiry is read again.
        expires = float(jwt.decode(token, options={"verify_signature": False})["exp"])
        session_id, session = sessions.open(actor, expires)
        sessions.close(request.cookies.get(SESSION_COOKIE))
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=max(1, int(expires - time.time())),
            path="/",
            secure=served_over_https(request),
            httponly=True,
            samesite="strict",
        )
        response.headers["Cache-Control"] = "no-store"
        return SessionOut.of(session)

    @app.get("/session", tags=["page"])
    def current_session(request: Request, response: Response) -> SessionOut:
        """The page's session (who, until when, its CSRF token); 401 without one."""
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise Unauthenticated("no session: log in with a token from the Protiv app")
        response.headers["Cache-Control"] = "no-store"
        return SessionOut.of(session)

    @app.delete("/session", tags=["page"], status_code=204)
    def log_out(request: Request) -> Response:
        """End the page's session (its CSRF token required)."""
        session_id = request.cookies.get(SESSION_COOKIE)
        session = sessions.get(session_id)
        if session is not None:
            require_csrf(request, session, request.headers.get(CSRF_HEADER))
            sessions.close(session_id)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response
