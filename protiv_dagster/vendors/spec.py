"""What the rest of the code location knows about a vendor: one ``VendorSpec`` per vendor package,
listed once in ``vendors/registry.py``.

A vendor package (``vendors/<provider>/``) holds its HTTP client and tuning (``client.py``), the
source that turns the vendor's records into the shared tables (``source.py``, on the contract of
``vendors/base.py``), the mapping of records to rows (``mapping.py``, whose docstring is the vendor's
page in docs/vendor-mapping.md), and the credentials model of its connections (``credentials.py``).
Connections, the CLI, the vendor resource and the docs read the spec instead of naming vendors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

if TYPE_CHECKING:
    from protiv_dagster.vendors.base import Source

# Marks on a credential field (pydantic ``json_schema_extra``): how the field is shown, who writes it.
_SECRET, _GIVEN_BY, _INNER_SPACES = "secret", "given_by", "inner_spaces"
ADMIN, ADMIN_THEN_VENDOR, VENDOR = "admin", "admin, rotated by the vendor", "vendor"


def credential(
    description: str,
    *,
    secret: bool = True,
    required: bool = True,
    given_by: str = ADMIN,
    inner_spaces: bool = False,
) -> Any:
    """A credential field of a connection.

    ``secret`` fields are typed without echo and never shown; ``given_by`` says who writes the
    value: the admin at connect (``ADMIN``), the admin first and then the vendor when it rotates it
    (``ADMIN_THEN_VENDOR``: QuickBooks Time's OAuth pair), or only the vendor (``VENDOR``: tokens the
    code location obtains and keeps between checks). ``inner_spaces``: a space inside the value is part
    of the secret (a password), not a paste accident."""
    extra: JsonDict = {_SECRET: secret, _GIVEN_BY: given_by, _INNER_SPACES: inner_spaces}
    if required:
        return Field(description=description, repr=not secret, json_schema_extra=extra)
    return Field(default=None, description=description, repr=not secret, json_schema_extra=extra)


class VendorCredentials(BaseModel):
    """The credentials of one vendor's connections, as stored (encrypted) in the registry."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    @classmethod
    def _mark(cls, name: str, mark: str) -> Any:
        extra = cls.model_fields[name].json_schema_extra
        return extra.get(mark) if isinstance(extra, dict) else None

    @classmethod
    def given_by_admin(cls) -> tuple[frozenset[str], frozenset[str]]:
        """The fields an admin gives at connect: (required, optional)."""
        fields = [name for name in cls.model_fields if cls._mark(name, _GIVEN_BY) != VENDOR]
        required = frozenset(name for name in fields if cls.model_fields[name].is_required())
        return required, frozenset(fields) - required

    @classmethod
    def written_by_vendor(cls) -> frozenset[str]:
        """The fields the code location may write back: tokens the vendor issued, never the admin's
        own client id, secret or password."""
        return frozenset(name for name in cls.model_fields if cls._mark(name, _GIVEN_BY) != ADMIN)

    @classmethod
    def secret_fields(cls) -> frozenset[str]:
        return frozenset(name for name in cls.model_fields if cls._mark(name, _SECRET))

    @classmethod
    def keeps_inner_spaces(cls, name: str) -> bool:
        return name in cls.model_fields and bool(cls._mark(name, _INNER_SPACES))

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """The fields an admin is asked for, in order: name, description, secret, required."""
        required, optional = cls.given_by_admin()
        return [
            {
                "name": name,
                "description": field.description or name,
                "secret": bool(cls._mark(name, _SECRET)),
                "required": name in required,
            }
            for name, field in cls.model_fields.items()
            if name in required | optional
        ]

    @classmethod
    def stored(cls, values: Mapping[str, str]) -> Self:
        """The model of a connection's stored credentials (``Connection.credentials()``); an empty
        value counts as absent (a rotated token the vendor did not issue)."""
        return cls.model_validate({name: value for name, value in values.items() if value != ""})

    def __repr__(self) -> str:  # the values of secret fields never reach a log or traceback
        return f"{type(self).__name__}(***)"

    __str__ = __repr__


@dataclass(frozen=True)
class VendorSpec:
    """One vendor, as the registry of vendors lists it.

    - ``provider``: the id stored with each connection and put in run tags and pools.
    - ``label``: the vendor's name as people write it.
    - ``credentials``: the credentials model of its connections.
    - ``tuning``: the Dagster resource class holding its client's tuning (page size, timeouts,
      retries); one field of ``VendorApis`` per vendor, named by ``provider``.
    - ``source``: the vendor's ``Source`` class as ``"module:Class"``, imported when a company's
      source is first made, so listing vendors stays cheap.
    - ``mapping``: the module whose docstring is the vendor's page in docs/vendor-mapping.md.
    """

    provider: str
    label: str
    credentials: type[VendorCredentials]
    tuning: type[Any]
    source: str
    mapping: str

    def make_source(self, connection: Any, tuning: Any, registry: Any) -> Source:
        """The source of a company from its connection, this vendor's tuning and the connection
        registry (where a vendor keeps the tokens it issued between checks)."""
        module, _, name = self.source.partition(":")
        source_class: Callable[[Any, Any, Any], Source] = getattr(import_module(module), name)
        return source_class(connection, tuning, registry)

    def mapping_module(self) -> ModuleType:
        return import_module(self.mapping)
