"""The audit trail for supervisors: a filterable page and CSV / JSON exports.

Filters (query string, all optional, combined with AND): ``actor`` and ``action``
(substring, case-insensitive, every character literal: ``%`` and ``_`` are no
wildcards), ``entity``, ``entity_id`` (exact), ``since`` and ``until`` (ISO dates or
date-times in the plant's time zone unless they carry an offset; ``until`` as a date
includes that whole day). The page shows times in the plant's time zone and each
entry's detail as labelled lines (``server.audit.readable``); the CSV and JSON exports
keep UTC and the detail as stored.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, Response, render_template, request
from flask_babel import gettext as _
from sqlmodel import col, select

from server import exports, plant_time
from server.audit import readable
from server.db import contains_text, get_session
from server.models import AuditEntry
from server.models.types import rfc3339
from server.security import auth

log = logging.getLogger(__name__)
bp = Blueprint("audit", __name__, url_prefix="/audit")
PAGE_SIZE = 100
EXPORT_LIMIT = 100_000
MAX_PAGE = 1_000_000  # a larger page number reads as this one (an OFFSET past 64 bits fails)
COLUMNS = ("id", "at", "actor", "address", "action", "entity", "entity_id", "detail")


class FilterError(ValueError):
    pass


def _when(text: str, *, end: bool) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise FilterError(_("Not a date: %(text)s", text=text)) from exc
    if end and len(text) <= 10:  # a bare date: up to the end of that day
        value += timedelta(days=1)
    return value if value.tzinfo else value.replace(tzinfo=plant_time.zone())


def _query(args: Any) -> Any:
    query = select(AuditEntry)
    if args.get("actor"):
        query = query.where(contains_text(AuditEntry.actor, args["actor"]))
    if args.get("action"):
        query = query.where(contains_text(AuditEntry.action, args["action"]))
    if args.get("entity"):
        query = query.where(AuditEntry.entity == args["entity"])
    if args.get("entity_id"):
        query = query.where(AuditEntry.entity_id == args["entity_id"])
    since = _when(args.get("since", ""), end=False)
    until = _when(args.get("until", ""), end=True)
    if since:
        query = query.where(col(AuditEntry.at) >= since)
    if until:
        query = query.where(col(AuditEntry.at) < until)
    return query.order_by(col(AuditEntry.id).desc())


@bp.get("/")
@auth.require("supervisor")
def index() -> Any:
    db = get_session()
    page = min(max(1, request.args.get("page", 1, type=int) or 1), MAX_PAGE)
    error = None
    try:
        query = _query(request.args)
        entries = db.exec(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    except FilterError as exc:
        log.info("audit filter refused: %s", exc)
        error, entries = str(exc), []
    entities = db.exec(select(AuditEntry.entity).distinct().order_by(AuditEntry.entity)).all()
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "audit/index.html",
        entries=entries[:PAGE_SIZE],
        page=page,
        more=len(entries) > PAGE_SIZE,
        args=args,
        entities=entities,
        error=error,
        detail_lines=readable.lines,
    ), 400 if error else 200


@bp.get("/export.<fmt>")
@auth.require("supervisor")
def export(fmt: str) -> Any:
    if fmt not in ("csv", "json"):
        return {"error": _("Export as csv or json.")}, 404
    try:
        rows = get_session().exec(_query(request.args).limit(EXPORT_LIMIT)).all()
    except FilterError as exc:
        return {"error": str(exc)}, 400
    records = [_plain(entry) for entry in rows]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if fmt == "json":
        body = json.dumps(records, ensure_ascii=False, indent=1)
        mimetype = "application/json"
    else:
        rows = (
            [
                json.dumps(r["detail"], ensure_ascii=False) if c == "detail" else r[c]
                for c in COLUMNS
            ]
            for r in records
        )
        body, mimetype = exports.to_csv(COLUMNS, rows), "text/csv"
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": exports.attachment(f"taktline-audit-{stamp}.{fmt}")},
    )


def _plain(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": rfc3339(entry.at),
        "actor": entry.actor,
        "address": entry.address,
        "action": entry.action,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "detail": entry.detail,
    }


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
