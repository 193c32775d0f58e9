"""The settings page (docs/settings.md), built from the ``CompanySettings`` model: every field with
its type, default and description, so the page and the validation never disagree.

``python -m protiv_dagster.settings_reference`` rewrites the page; a test fails when it is stale.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from protiv_dagster.company_settings import CompanySettings, ExclusionRules

PAGE = Path("docs") / "settings.md"

INTRODUCTION = """\
# Company settings

A company's ProPay settings are one JSON object. Every key is optional (the default applies); an
unknown key, a wrong type or a value out of range is refused with the setting named, and nothing
changes. Fractions are written as fractions (`worker_share` 0.5 = 50 %), every setting ending in
`_percent` as a percentage (35 = 35 %), money in dollars, dates as `YYYY-MM-DD`. Numbers are read as
the decimals they are written as: 0.1 is one tenth exactly.

Settings have history (ProPay rules, section 9). Each change is a new version in force from a date
(today or later, never before the newest version); a ProPay is priced with the version in force on
its first work date, so a change never rewrites a ProPay already under way. Exclusions by hand,
disqualifications and penalties are decisions about one ProPay: the newest version holds them
whatever version prices it. The warehouse keeps the versions (`propay_settings_versions`) and each
ProPay names the one it used (`settings_version`).

```console
$ protiv settings show demo-landscaping            # the settings in force now, defaults left out
$ protiv settings show demo-landscaping --all      # every setting, defaults included
$ protiv settings set demo-landscaping --file settings.json --effective-from 2027-01-04
$ protiv settings versions demo-landscaping        # every version and the date it applies from
```

An example file:

```json
{example}
```
"""

EXAMPLE = {
    "timezone": "America/Denver",
    "worker_share": 0.5,
    "role_buckets": {"crew": 0.7, "crew_lead": 0.2, "manager": 0.1},
    "distribution_method": "hours",
    "worker_roles": {"1042": "crew_lead", "1077": "manager"},
    "exclusions": {"service_types": ["Warranty"], "name_patterns": ["TEST*"]},
    "penalties": {"5531": 25.0},
    "overtime_daily_hours": 8,
}


def _type_text(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_type_text(option) for option in schema["anyOf"])
    kind = schema.get("type", "object")
    if kind == "array":
        return f"list of {_type_text(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        return f"object of {_type_text(schema['additionalProperties'])}"
    if schema.get("format") == "date":
        return "date"
    if "$ref" in schema:
        return "object (below)"
    return {"number": "number", "integer": "integer", "string": "text", "boolean": "true/false", "null": "null"}.get(
        kind, kind
    )


def _limits(schema: dict[str, Any]) -> str:
    parts = []
    for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in schema:
            parts.append(f"{sign} {schema[key]}")
    for option in schema.get("anyOf", []):
        inner = _limits(option)
        if inner:
            parts.append(inner)
    return ", ".join(parts)


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(below)"
    return f"`{json.dumps(value, default=str)}`"


def _rows(model: type[BaseModel]) -> list[str]:
    properties = model.model_json_schema()["properties"]
    rows = ["| setting | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        schema = properties[name]
        limits = _limits(schema)
        kind = _type_text(schema) + (f" ({limits})" if limits else "")
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{name}` | {kind} | {_default(field)} | {description} |")
    return rows


def settings_page() -> str:
    lines = [
        INTRODUCTION.replace("{example}", json.dumps(EXAMPLE, indent=2)),
        "## Settings",
        "",
        *_rows(CompanySettings),
        "",
    ]
    lines += ["## exclusions", "", inspect.cleandoc(ExclusionRules.__doc__ or ""), "", *_rows(ExclusionRules), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else PAGE
    target.write_text(settings_page(), encoding="utf-8")
    print(f"wrote {target}")
