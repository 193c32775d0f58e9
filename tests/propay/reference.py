"""A second, deliberately plain implementation of the ProPay rules, for checking the engine.

Written from the rules text (the rules brief §1-§9 and the decisions stated in the engine's module
docstrings), not from the engine's code: one loop per ProPay and per worker in plain Python, every
number a ``Fraction`` or an int, every amount rounded once. Slow and obvious on purpose. Inputs are
plain lists of dicts; ``reference`` returns plain dicts keyed by ids.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction

from protiv_dagster.company_settings import WEEKDAYS, SettingsHistory, exact

ROLES = ("crew", "crew_lead", "manager", "other", "company")
TYPES = ("hours", "amount", "contract_price", "rate", "task_hours", "task_amount")


def half_up(x: Fraction) -> int:
    """Round a non-negative fraction to the nearest integer, halves up."""
    return (2 * x.numerator + x.denominator) // (2 * x.denominator)


def largest_remainder(total: int, weights: dict, order_key=lambda k: k) -> dict:
    """Split ``total`` cents by weights: floors, then one cent each to the largest remainders, ties to
    the smaller key."""
    weight_sum = sum(weights.values())
    if weight_sum == 0:
        assert total == 0
        return {k: 0 for k in weights}
    exact_parts = {k: Fraction(total) * w / weight_sum for k, w in weights.items()}
    floors = {k: v.numerator // v.denominator for k, v in exact_parts.items()}
    left = total - sum(floors.values())
    ranked = sorted(weights, key=lambda k: (-(exact_parts[k] - floors[k]), order_key(k)))
    for k in ranked[:left]:
        floors[k] += 1
    return floors


def num(value):
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    return exact(value)


@dataclass
class Unit:
    propay_id: str
    job_id: str
    milestone_id: str | None
    rows: list  # jobs-table rows whose time counts here; the unit's own row first
    fallback_row: dict | None = None  # a recurring job's only milestone may take its job's budget
    parent_for_assignments: str | None = None
    entries: list = field(default_factory=list)


def build_units(jobs: list[dict]) -> tuple[list[Unit], dict, dict]:
    tops = {j["job_id"]: j for j in jobs if j["level"] == "job"}
    milestones = [j for j in jobs if j["level"] == "milestone"]
    units = []
    for job_id, job in sorted(tops.items()):
        if job["is_drive"]:
            continue
        mine = sorted(
            (m for m in milestones if m["parent_job_id"] == job_id and not m["is_drive"]), key=lambda m: m["job_id"]
        )
        if not job["recurring"]:
            units.append(Unit(job_id, job_id, None, [job] + mine))
        elif len(mine) == 1:
            units.append(Unit(mine[0]["job_id"], job_id, mine[0]["job_id"], [mine[0], job], fallback_row=job))
        else:
            for m in mine:
                units.append(Unit(m["job_id"], job_id, m["job_id"], [m], parent_for_assignments=job_id))
    by_milestone = {r["job_id"]: u for u in units for r in u.rows if r["level"] == "milestone"}
    by_job = {r["job_id"]: u for u in units for r in u.rows if r["level"] == "job"}
    return units, by_milestone, by_job


def row_type(row, parent, settings):
    raw = row.get("budget_type") or (parent.get("budget_type") if parent else None) or settings.default_budget_type
    return raw, str(raw).strip().lower()


def row_budget(row, parent, settings, kind, task_lines):
    if kind == "hours":
        return num(row.get("budget_hours"))
    if kind == "amount":
        return num(row.get("budget_amount"))
    if kind == "contract_price":
        pct = num(row.get("labor_budget_percent"))
        if pct is None and parent is not None:
            pct = num(parent.get("labor_budget_percent"))
        if pct is None and settings.labor_budget_percent is not None:
            pct = exact(settings.labor_budget_percent)
        price = num(row.get("contract_price"))
        return price * pct / 100 if price is not None and pct is not None else None
    if kind == "rate":
        rate, quantity = num(row.get("rate")), num(row.get("quantity"))
        return rate * quantity if rate is not None and quantity is not None else None
    column = "budget_hours" if kind == "task_hours" else "budget_amount"
    values = [num(line.get(column)) for line in task_lines if line["job_id"] == row["job_id"]]
    values = [v for v in values if v is not None]
    return sum(values, Fraction(0)) if values else None


def unit_budget(unit: Unit, jobs_by_id, settings, task_lines):
    """(budget type, budget Fraction) or (None, reason)."""

    def parent_of(row):
        return jobs_by_id.get(row["parent_job_id"]) if row["level"] == "milestone" else None

    own = unit.rows[0]
    raw, kind = row_type(own, parent_of(own), settings)
    if kind not in TYPES:
        return None, f"unknown budget type {raw!r}"
    value = row_budget(own, parent_of(own), settings, kind, task_lines)
    if value is not None:
        return kind, value
    if unit.fallback_row is not None:
        raw, kind = row_type(unit.fallback_row, None, settings)
        if kind not in TYPES:
            return None, f"unknown budget type {raw!r}"
        value = row_budget(unit.fallback_row, None, settings, kind, task_lines)
        return (kind, value) if value is not None else (None, "no budget")
    if unit.milestone_id is None:
        found = []
        for m in unit.rows[1:]:
            raw_m, kind_m = row_type(m, own, settings)
            if kind_m not in TYPES:
                return None, f"unknown budget type {raw_m!r}"
            value = row_budget(m, own, settings, kind_m, task_lines)
            if value is not None:
                found.append((kind_m, value))
        if not found:
            return None, "no budget"
        if len({k for k, _ in found}) > 1:
            return None, "different types"
        return found[0][0], sum((v for _, v in found), Fraction(0))
    return None, "no budget"


def excluded_by_rule(unit: Unit, jobs_by_id, settings, latest) -> bool:
    rules = settings.exclusions
    if unit.propay_id in latest.exclusions.manual:  # a decision about this ProPay: the newest settings hold it
        return True
    ids = {unit.job_id} | {r["job_id"] for r in unit.rows if r["level"] == "milestone"}
    if ids & set(rules.job_ids):
        return True
    for row in unit.rows:
        parent = jobs_by_id.get(row["parent_job_id"]) if row["level"] == "milestone" else None
        prop = row.get("property_id") or (parent.get("property_id") if parent else None)
        service = row.get("service_type") or (parent.get("service_type") if parent else None)
        if prop is not None and str(prop) in rules.property_ids:
            return True
        if isinstance(service, str) and service.strip().casefold() in {
            s.strip().casefold() for s in rules.service_types
        }:
            return True
        names = [row["name"]] + ([parent["name"]] if parent else [])
        if any(fnmatch.fnmatch(n.casefold(), p.casefold()) for n in names for p in rules.name_patterns):
            return True
    return False


def wage_on(worker, day, current, history):
    rows = [
        h for h in history if h["worker_id"] == worker and h["effective_date"] <= day and h["hourly_wage"] is not None
    ]
    if rows:
        latest = max(h["effective_date"] for h in rows)
        return max(exact(h["hourly_wage"]) for h in rows if h["effective_date"] == latest)
    wage = current.get(worker)
    return exact(wage) if wage is not None else None


def week_of(day: date, history: SettingsHistory) -> date:
    start = WEEKDAYS.index(history.in_force(day).settings.workweek_start)
    return day - timedelta(days=(day.weekday() - start) % 7)


@dataclass
class Result:
    propays: dict
    workers: dict  # (propay_id, worker) -> dict
    weeks: dict  # (worker, week_start) -> dict


def reference(
    jobs, entries, current_wages, settings, *, task_lines=(), wage_history=(), assignments=(), pull_date=None
) -> Result:
    history = SettingsHistory.of(settings)
    jobs_by_id = {j["job_id"]: j for j in jobs}
    units, by_milestone, by_job = build_units(jobs)
    known_milestones = {j["job_id"] for j in jobs if j["level"] == "milestone"}
    for e in entries:
        seconds = round(e["hours"] * 3600)
        if seconds <= 0:
            continue
        if e.get("milestone_id") in known_milestones:
            unit = by_milestone.get(e["milestone_id"])
        else:
            unit = by_job.get(e["job_id"])
        if unit is not None:
            unit.entries.append({**e, "seconds": seconds})

    propays, worker_rows = {}, {}
    for unit in units:
        synced = [e for e in unit.entries if pull_date is None or e["work_date"] >= pull_date]
        first = min((e["work_date"] for e in synced), default=None)
        version = history.in_force(first)
        s = version.settings
        kind, value = unit_budget(unit, jobs_by_id, s, task_lines)
        if kind is None:
            continue
        budget = value * exact(s.budget_modification_percent) / 100
        counted = [e for e in synced if s.include_drive_time or not e["is_drive"]]
        actual = sum(e["seconds"] for e in counted)
        workers = sorted({e["worker_id"] for e in counted})
        burden = 1 + exact(s.burden_percent) / 100 if s.budgets_include_burden else Fraction(1)
        cost, missing = {}, set()
        for e in counted:
            wage = wage_on(e["worker_id"], e["work_date"], current_wages, wage_history)
            if wage is None:
                missing.add(e["worker_id"])
                continue
            cost[e["worker_id"]] = cost.get(e["worker_id"], Fraction(0)) + Fraction(e["seconds"], 3600) * wage * burden
        labor = None if missing else sum(cost.values(), Fraction(0))

        latest = history.latest.settings
        excluded = excluded_by_rule(unit, jobs_by_id, s, latest)
        created_early = pull_date is not None and any(
            r.get("created_date") is not None and r["created_date"] < pull_date for r in unit.rows
        )
        began_early = created_early or any(pull_date is not None and e["work_date"] < pull_date for e in unit.entries)
        if began_early and not s.count_jobs_before_pull_date:
            excluded = True
        if s.launch_date is not None and any(e["work_date"] < s.launch_date for e in synced):
            excluded = True
        if missing:
            excluded = True

        source = unit.rows[0]["status"]
        status = source if source in ("canceled", "completed") else ("started" if actual >= 60 else "pending")
        hours_type = kind in ("hours", "task_hours")
        if actual > 0 and labor is not None:
            hours = Fraction(actual, 3600)
            saved = (budget - hours) * labor / hours if hours_type else budget - labor
        else:
            saved = Fraction(0)
        disqualified = unit.propay_id in latest.disqualifications
        pays = (
            not excluded
            and not disqualified
            and status in ("started", "completed")
            and actual > 0
            and labor is not None
        )
        gross = half_up(max(saved, 0) * exact(s.worker_share) * 100) if pays else 0
        penalty = half_up(exact(latest.penalties[unit.propay_id]) * 100) if unit.propay_id in latest.penalties else 0
        pool = gross - min(gross, penalty) if pays else 0
        shares = {role: exact(s.role_buckets.get(role, 0.0)) for role in ROLES}
        buckets = largest_remainder(pool, shares, order_key=ROLES.index)

        # Who holds the lead and manager buckets: the source's assignees, else by role setting with time.
        seconds_by_worker = {w: sum(e["seconds"] for e in counted if e["worker_id"] == w) for w in workers}
        member_ids = {r["job_id"] for r in unit.rows}
        holders = {}
        for role in ("crew_lead", "manager", "other"):
            assigned = sorted({a["worker_id"] for a in assignments if a["job_id"] in member_ids and a["role"] == role})
            if not assigned and unit.parent_for_assignments:
                assigned = sorted(
                    {
                        a["worker_id"]
                        for a in assignments
                        if a["job_id"] == unit.parent_for_assignments and a["role"] == role
                    }
                )
            if not assigned:
                assigned = [w for w in workers if s.worker_roles.get(w, "crew") == role and seconds_by_worker[w] > 0]
            holders[role] = assigned
        crew_total = buckets["crew"]
        role_pay = {}
        unheld = 0
        for role in ("crew_lead", "manager", "other"):
            if holders[role]:
                for w, cents in largest_remainder(buckets[role], {w: 1 for w in holders[role]}).items():
                    role_pay[w] = role_pay.get(w, 0) + cents
            else:
                unheld += buckets[role]
        crew_total += unheld

        method = s.distribution_method
        weights = {}
        for w in workers:
            if method == "hours":
                weights[w] = Fraction(seconds_by_worker[w])
            elif method == "wage":
                weights[w] = cost.get(w, Fraction(0))
            elif method == "crew_lead_weighted":
                weights[w] = seconds_by_worker[w] * (exact(s.lead_multiplier) if w in holders["crew_lead"] else 1)
            elif method == "equal":
                weights[w] = Fraction(1)
            else:
                weights[w] = exact(s.manual_distribution[w]) if w in s.manual_distribution else Fraction(0)
        weights = {w: x for w, x in weights.items() if x > 0}
        crew_pay = largest_remainder(crew_total, weights) if weights else {}
        kept = buckets["company"] + (0 if weights else crew_total)

        people = sorted(set(workers) | {w for r in holders.values() for w in r})
        for w in people:
            worker_rows[(unit.propay_id, w)] = {
                "seconds": seconds_by_worker.get(w, 0),
                "crew_share": crew_pay.get(w, 0),
                "role_share": role_pay.get(w, 0),
                "bonus": crew_pay.get(w, 0) + role_pay.get(w, 0),
                "labor": None if w in missing else cost.get(w, Fraction(0)),
                "own_week_seconds": _by_week([e for e in counted if e["worker_id"] == w], history),
                "unit_week_seconds": _by_week(counted, history),
            }
        propays[unit.propay_id] = {
            "settings_version": version.version,
            "budget_type": kind,
            "budget": budget,
            "actual_seconds": actual,
            "labor": labor,
            "saved": saved,
            "status": status,
            "excluded": excluded,
            "disqualified": disqualified,
            "pool_before_penalty": gross,
            "pool": pool,
            "buckets": buckets,
            "kept": kept,
            "paid": sum(crew_pay.values()) + sum(role_pay.values()),
            "pay_state": ("final" if status == "completed" else "provisional") if pool > 0 else "none",
            "began_before_pull_date": began_early,
        }

    weeks = _overtime(entries, worker_rows, history)
    return Result(propays, worker_rows, weeks)


def _by_week(entries, history) -> dict:
    out = {}
    for e in entries:
        week = week_of(e["work_date"], history)
        out[week] = out.get(week, 0) + e["seconds"]
    return out


def _overtime(entries, worker_rows, history) -> dict:
    """Per worker-week with a bonus: bonus in the week, overtime seconds, adjustment; per pair its adjustment."""
    worked, per_day = {}, {}
    for e in entries:
        seconds = round(e["hours"] * 3600)
        if seconds <= 0:
            continue
        key = (e["worker_id"], week_of(e["work_date"], history))
        worked[key] = worked.get(key, 0) + seconds
        day_key = (e["worker_id"], e["work_date"])
        per_day[day_key] = per_day.get(day_key, 0) + seconds
    daily_over = {}
    for (worker, day), seconds in per_day.items():
        week = week_of(day, history)
        daily = history.in_force(week).settings.overtime_daily_hours
        if daily is not None:
            daily_over[(worker, week)] = daily_over.get((worker, week), 0) + max(seconds - int(exact(daily) * 3600), 0)

    def overtime_of(key):
        week = key[1]
        weekly = int(exact(history.in_force(week).settings.overtime_weekly_hours) * 3600)
        d = daily_over.get(key, 0)
        return d + max(worked.get(key, 0) - d - weekly, 0)

    weeks = {}
    for (_propay_id, worker), row in worker_rows.items():
        row["overtime"] = Fraction(0)
        if row["bonus"] == 0:
            continue
        basis = row["own_week_seconds"] if row["seconds"] > 0 else row["unit_week_seconds"]
        total = sum(basis.values())
        for week, seconds in basis.items():
            part = Fraction(row["bonus"] * seconds, total)  # cents
            key = (worker, week)
            h = worked.get(key, 0)
            ot = overtime_of(key)
            owed = part / h * ot / 2 if h > 0 else Fraction(0)
            row["overtime"] += owed
            w = weeks.setdefault(
                key, {"bonus": Fraction(0), "owed": Fraction(0), "overtime_seconds": ot, "seconds_worked": h}
            )
            w["bonus"] += part
            w["owed"] += owed
    for row in worker_rows.values():
        row["overtime_cents"] = half_up(row["overtime"])
    for w in weeks.values():
        w["bonus_cents"] = half_up(w["bonus"])
        w["owed_cents"] = half_up(w["owed"])
    return weeks
