"""The plant import format's line calendars and scheduled receipts (docs/import.md),
called by ``server.catalog.importer`` with its importer (problems by line and field,
the caller's transaction).

A line's ``calendar`` replaces the line's shifts and adds its closed days::

    calendar:
      shifts:
        - {name: Early, days: mon-fri, start: "06:00", end: "14:00", breaks: ["10:00-10:15"]}
      closed: [{day: 2026-12-25, reason: Christmas}]

``receipts`` items: ``part``, ``qty``, ``expected`` (YYYY-MM-DD), ``supplier``, ``ref``,
``note``; a CSV with an ``expected`` column is a receipts file.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from sqlmodel import Session, select

from server.inventory import receipts
from server.models import Line, LineClosure, LineShift
from server.promise.calendar import Shift, hhmm, parse_hhmm

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Importer(Protocol):
    db: Session
    by: str
    report: Any

    def problem(self, item: dict[str, Any], fld: str, message: str) -> None: ...


def weekdays(value: Any) -> list[int]:
    """``mon-fri``, ``mon,wed,fri``, ``[mon, tue]`` or ``[0, 1]`` -> sorted weekday numbers
    (0 Monday); ``ValueError`` otherwise."""
    items = value if isinstance(value, list) else str(value).replace(";", ",").split(",")
    out: set[int] = set()
    for raw in items:
        text = str(raw).strip().lower()
        if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= 6:
            out.add(raw)
        elif "-" in text:
            a, _, b = text.partition("-")
            if a[:3] not in DAYS or b[:3] not in DAYS:
                raise ValueError(f"{raw!r} is not a range of days such as mon-fri")
            i, j = DAYS.index(a[:3]), DAYS.index(b[:3])
            out.update(range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)])
        elif text[:3] in DAYS:
            out.add(DAYS.index(text[:3]))
        else:
            raise ValueError(f"{raw!r} is not a day (mon .. sun)")
    if not out:
        raise ValueError("no day given")
    return sorted(out)


def breaks(value: Any) -> list[list[str]]:
    if value is not None and not isinstance(value, list | tuple):
        raise ValueError(f"breaks {str(value)[:40]!r}: expected a list such as [10:00-10:15]")
    out = []
    for raw in value or []:
        if isinstance(raw, list | tuple) and len(raw) == 2:
            a, b = raw
        else:
            a, sep, b = str(raw).partition("-")
            if not sep:
                raise ValueError(f"break {raw!r}: expected HH:MM-HH:MM")
        out.append([hhmm(parse_hhmm(str(a))), hhmm(parse_hhmm(str(b)))])
    return out


def line_calendar(imp: Importer, item: dict[str, Any], line: Line) -> None:
    """Apply ``item["calendar"]`` (when given) to ``line``."""
    calendar = item.get("calendar")
    if calendar is None:
        return
    if not isinstance(calendar, dict):
        imp.problem(item, "calendar", "expected a mapping with shifts and closed")
        return
    rows = []
    for key in ("shifts", "closed"):
        if not isinstance(calendar.get(key) or [], list):
            imp.problem(calendar, key, "expected a list")
            return
    for shift in calendar.get("shifts") or []:
        if not isinstance(shift, dict):
            imp.problem(calendar, "shifts", f"expected a mapping, got {shift!r}")
            continue
        try:
            row = LineShift(
                line_id=line.id or 0,
                name=str(shift.get("name", ""))[:64],
                weekdays=weekdays(shift.get("days", "mon-fri")),
                start=hhmm(parse_hhmm(str(shift.get("start", "")))),
                end=hhmm(parse_hhmm(str(shift.get("end", ""))) % (24 * 60)),
                breaks=breaks(shift.get("breaks")),
            )
        except ValueError as exc:
            imp.problem(shift, "shifts", str(exc))
            continue
        problems = to_shift(row).problems()
        for p in problems:
            imp.problem(shift, "breaks", p)
        rows.append(row)
    for old in imp.db.exec(select(LineShift).where(LineShift.line_id == line.id)).all():
        imp.db.delete(old)
    imp.db.flush()
    for row in rows:
        imp.db.add(row)
    for closed in calendar.get("closed") or []:
        if not isinstance(closed, dict):
            closed = {"day": closed, "__line__": calendar.get("__line__", 0)}
        day = closed.get("day")
        try:
            day = day if isinstance(day, date) else date.fromisoformat(str(day))
        except ValueError:
            imp.problem(closed, "day", f"{day!r} is not a date (YYYY-MM-DD)")
            continue
        closure = imp.db.exec(
            select(LineClosure).where(LineClosure.line_id == line.id, LineClosure.day == day)
        ).first() or LineClosure(line_id=line.id or 0, day=day)
        closure.reason = str(closed.get("reason", ""))[:200]
        imp.db.add(closure)
    imp.report.add("calendars")


def to_shift(row: LineShift) -> Shift:
    return Shift(
        frozenset(row.weekdays),
        parse_hhmm(row.start),
        parse_hhmm(row.end),
        tuple((parse_hhmm(a), parse_hhmm(b)) for a, b in row.breaks),
        row.name,
    )


def receipt_items(imp: Importer, items: Any) -> None:
    """The ``receipts`` section: each item a scheduled receipt."""
    for item in items:
        try:
            wanted = receipts.from_mapping({k: v for k, v in item.items() if k != "__line__"})
            receipts.create(imp.db, receipt=wanted, by=imp.by)
        except receipts.ReceiptError as exc:
            for problem in exc.problems:
                fld, _, message = problem.partition(": ")
                imp.problem(item, fld, message)
            continue
        imp.report.add("receipts")
