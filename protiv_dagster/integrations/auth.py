"""Who calls the integrations service, and what they may do.

Protiv's app already signs its admins in; this service does not keep passwords of its own. The app
gives each call a short-lived JWT it signed (``Authorization: Bearer <token>``), and the service
verifies it against the app's public keys:

- keys from a JWKS file (``PROTIV_SERVICE_JWKS``), picked by the token's ``kid``, re-read when the
  file changes: rotating keys is publishing a new JWKS, no restart, no shared secret;
- ES256 or RS256 only (never ``none`` or HMAC: a public key must not double as a shared secret);
- ``iss`` and ``aud`` must be the configured ones (``PROTIV_SERVICE_ISSUER``,
  ``PROTIV_SERVICE_AUDIENCE``), ``exp`` and ``iat`` are required, and a token may live at most
  ``PROTIV_SERVICE_TOKEN_MAX_SECONDS`` (15 minutes by default): revoking an admin is the app no longer
  minting tokens for them, effective within that time;
- claims: ``sub`` (who: recorded in the audit log), ``role`` (``admin`` or ``operator``) and, for an
  admin, ``company_id`` (the one company they manage). An operator reaches every company.

Anything else (no token, a malformed, forged or expired one, another audience) is ``Unauthenticated``
(HTTP 401); a valid token whose role or company does not allow the call is ``Forbidden`` (HTTP 403).

The token is read from the Authorization header only, never from a cookie or the query. The
integration page's cookie session (``service/page.py``, opened with such a token) is accepted only
without an Authorization header and, for unsafe methods, only with its CSRF token from the page's
own origin: what a browser sends by itself never rides this API.

``DevelopmentKeys`` makes a key pair in the data folder and mints tokens with it, for the demo and
tests only (``protiv service keygen`` / ``protiv service token``): in production the app holds the
private key and the service only its JWKS.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from protiv_dagster.settings import data_dir

JWKS_VARIABLE = "PROTIV_SERVICE_JWKS"
ISSUER_VARIABLE = "PROTIV_SERVICE_ISSUER"
AUDIENCE_VARIABLE = "PROTIV_SERVICE_AUDIENCE"
MAX_LIFETIME_VARIABLE = "PROTIV_SERVICE_TOKEN_MAX_SECONDS"
DEFAULT_ISSUER = "protiv-app"
DEFAULT_AUDIENCE = "protiv-integrations"
DEFAULT_MAX_LIFETIME_SECONDS = 900
ALGORITHMS = ("ES256", "RS256")
ADMIN, OPERATOR = "admin", "operator"
ROLES = (ADMIN, OPERATOR)
# Clock skew allowed between the app's and the service's machines.
LEEWAY_SECONDS = 30


class Unauthenticated(Exception):
    """No usable token: the caller is nobody (HTTP 401). The message says what is wrong with the
    token, never its content."""


class Forbidden(Exception):
    """A known caller that may not do this (HTTP 403)."""


@dataclass(frozen=True)
class Actor:
    """Who acts: ``subject`` as the app names them, their role, and an admin's company."""

    subject: str
    role: str
    company_id: str | None = None

    def require_company(self, company_id: str) -> None:
        """An operator may act on every company, an admin on their own only."""
        if self.role == OPERATOR:
            return
        if self.role == ADMIN and self.company_id == company_id:
            return
        if self.role == ADMIN:
            raise Forbidden("an admin acts on their own company only")
        raise Forbidden(f"role {self.role!r} may not manage integrations (admins and operators may)")

    def require_admin_role(self) -> None:
        if self.role not in ROLES:
            raise Forbidden(f"role {self.role!r} may not manage integrations (admins and operators may)")

    def may_see(self, company_id: str) -> bool:
        return self.role == OPERATOR or (self.role == ADMIN and self.company_id == company_id)


def cli_actor() -> Actor:
    """The operator at this machine's terminal (``protiv connect``, ``sync``, ``disconnect``)."""
    try:
        login = os.getlogin()
    except OSError:  # no controlling terminal (a container, a test)
        login = os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
    return Actor(f"cli:{login}", OPERATOR)


@dataclass(frozen=True)
class AuthSettings:
    jwks_path: Path
    issuer: str
    audience: str
    max_lifetime_seconds: int

    @classmethod
    def from_environment(cls) -> AuthSettings:
        lifetime = os.environ.get(MAX_LIFETIME_VARIABLE) or str(DEFAULT_MAX_LIFETIME_SECONDS)
        if not lifetime.isdigit() or int(lifetime) < 1:
            raise ValueError(f"{MAX_LIFETIME_VARIABLE} must be a whole number of seconds, at least 1")
        return cls(
            jwks_path=Path(os.environ.get(JWKS_VARIABLE) or DevelopmentKeys.default_folder() / "jwks.json"),
            issuer=os.environ.get(ISSUER_VARIABLE) or DEFAULT_ISSUER,
            audience=os.environ.get(AUDIENCE_VARIABLE) or DEFAULT_AUDIENCE,
            max_lifetime_seconds=int(lifetime),
        )


class TokenVerifier:
    """Verifies the app's tokens against the keys of a JWKS file (re-read when it changes)."""

    def __init__(self, settings: AuthSettings):
        self.settings = settings
        self._keys: dict[str, Any] = {}
        self._stamp: tuple[float, int] | None = None
        self._lock = threading.Lock()

    def _current_keys(self) -> dict[str, Any]:
        path = self.settings.jwks_path
        try:
            stat = path.stat()
        except OSError:
            raise Unauthenticated(
                "the service has no keys to verify tokens with (PROTIV_SERVICE_JWKS names no readable file)"
            ) from None
        with self._lock:
            if self._stamp != (stat.st_mtime, stat.st_size):
                keys: dict[str, Any] = {}
                for entry in json.loads(path.read_text()).get("keys", []):
                    if entry.get("kid") and entry.get("kty") in ("EC", "RSA"):
                        keys[entry["kid"]] = jwt.PyJWK(entry).key
                self._keys, self._stamp = keys, (stat.st_mtime, stat.st_size)
            return self._keys

    def actor(self, authorization: str | None) -> Actor:
        """The actor of an ``Authorization`` header value, or Unauthenticated saying why not."""
        if not authorization:
            raise Unauthenticated("no bearer token: send Authorization: Bearer <token from the Protiv app>")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("the bearer token is not a JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise Unauthenticated(f"tokens must be signed with {' or '.join(ALGORITHMS)}")
        key = self._current_keys().get(str(header.get("kid")))
        if key is None:
            raise Unauthenticated("the token's key (kid) is not among the service's keys")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the token is from another issuer") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the token is not valid ({type(exc).__name__})") from None
        if int(claims["exp"]) - int(claims["iat"]) > self.settings.max_lifetime_seconds:
            raise Unauthenticated(f"the token lives longer than {self.settings.max_lifetime_seconds} s")
        role, company_id = claims.get("role"), claims.get("company_id")
        if not isinstance(role, str) or not role:
            raise Unauthenticated("the token has no role claim")
        if role == ADMIN and not (isinstance(company_id, str) and company_id):
            raise Unauthenticated("an admin's token must name their company_id")
        return Actor(str(claims["sub"]), role, company_id if isinstance(company_id, str) else None)


class DevelopmentKeys:
    """For development, the demo and tests only: an EC P-256 key pair in the data folder
    (``service_keys/``: the private key, mode 0600, and the JWKS the service reads by default), and
    tokens signed with it. In production the app holds the private key."""

    KID = "protiv-dev-1"

    def __init__(self, folder: Path | None = None):
        self.folder = folder or self.default_folder()
        self.private_key_path = self.folder / "dev-signing-key.pem"
        self.jwks_path = self.folder / "jwks.json"

    @staticmethod
    def default_folder() -> Path:
        return data_dir() / "service_keys"

    def create(self, replace: bool = False) -> bool:
        """Make the pair unless it exists (or ``replace``); returns whether a new pair was made."""
        if self.private_key_path.exists() and not replace:
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self.private_key_path.touch(mode=0o600, exist_ok=True)
        self.private_key_path.chmod(0o600)
        self.private_key_path.write_bytes(pem)
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        public.update({"kid": self.KID, "alg": "ES256", "use": "sig"})
        self.jwks_path.write_text(json.dumps({"keys": [public]}, indent=2) + "\n")
        return True

    def token(
        self,
        subject: str,
        role: str,
        company_id: str | None = None,
        *,
        lifetime_seconds: int = 600,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        issued_at: float | None = None,
    ) -> str:
        key = serialization.load_pem_private_key(self.private_key_path.read_bytes(), password=None)
        now = int(time.time() if issued_at is None else issued_at)
        claims: dict[str, Any] = {
            "sub": subject,
            "role": role,
            "iss": issuer,
            "aud": audience,
            "iat": now,
            "exp": now + lifetime_seconds,
        }
        if company_id is not None:
            claims["company_id"] = company_id
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": self.KID})  # type: ignore[arg-type]
