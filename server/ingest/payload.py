"""Validate MQTT contract v1 event payloads (``evt/scan``, ``evt/device``, ``evt/action``).

The same validation serves the MQTT ingest, ``POST /api/v1/stations/<code>/scans`` and
``POST /api/v1/stations/<code>/events``: every way in builds the same workflow event.
A payload that does not validate raises ``InvalidPayload`` with a reason for the
sender and, when it could be read, the ``msg_id`` to answer to (ARCHITECTURE.md:
"a payload that does not validate gets a rejected feedback with a reason when its
msg_id can be read").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from server.models.types import has_nul
from station import checks
from station import workflow as wf

MAX_PAYLOAD = 64 * 1024  # bytes; a scan is at most 4 KB of data plus its envelope
MAX_DATA = 4096
MAX_MSG_ID = 64
MAX_SOURCE = 64
MAX_SEQ = 2**63 - 1  # the largest 64-bit integer a database column holds (SQLite refuses more)
# A device clock may run a little ahead; the bridge's outbox may hold scans made long
# ago (a station offline for weeks). Beyond these, ``ts`` is garbage (year 0001, 9999).
TS_MAX_FUTURE = timedelta(minutes=10)
TS_MAX_PAST = timedelta(days=3653)
MEASUREMENTS = ("torque", "weight")  # device kinds whose ``value`` a quality check judges


class InvalidPayload(ValueError):
    def __init__(self, detail: str, msg_id: str | None = None, source: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.msg_id = msg_id
        self.source = source


@dataclass(frozen=True)
class Envelope:
    msg_id: str
    ts: datetime | None
    seq: int | None
    source: str
    event: wf.StationEvent
    payload: dict[str, Any] = field(default_factory=dict)


def decode(raw: bytes) -> dict[str, Any]:
    """Bytes -> JSON object; ``InvalidPayload`` for anything else."""
    if len(raw) > MAX_PAYLOAD:
        raise InvalidPayload(
            f"payload of {len(raw)} bytes, at most {MAX_PAYLOAD} allowed", _sniff_msg_id(raw[:512])
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayload(
            f"payload is not UTF-8 (byte {exc.start})", _sniff_msg_id(raw[:512])
        ) from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidPayload(
            f"payload is not JSON ({exc.msg} at character {exc.pos})", _sniff_msg_id(raw[:512])
        ) from exc
    except RecursionError as exc:  # 20,000 nested arrays fit in 40 KB (issue 13)
        raise InvalidPayload("payload is nested too deeply", _sniff_msg_id(raw[:512])) from exc
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise InvalidPayload(
            f"payload is not usable JSON ({exc})"[:200], _sniff_msg_id(raw[:512])
        ) from exc
    if not isinstance(doc, dict):
        raise InvalidPayload("payload must be a JSON object")
    if has_nul(doc):
        raise InvalidPayload("payload holds a NUL character (\\u0000)", _sniff_msg_id(raw[:512]))
    return doc


def _sniff_msg_id(head: bytes) -> str | None:
    """Best effort: the msg_id of a payload too broken to parse, to answer to it."""
    import re

    match = re.search(rb'"msg_id"\s*:\s*"([A-Za-z0-9_.:-]{1,64})"', head)
    return match.group(1).decode() if match else None


def envelope(doc: dict[str, Any], *, kind: str) -> Envelope:
    """Check the common fields and build the workflow event of ``kind`` (scan | device)."""
    msg_id = doc.get("msg_id")
    if not isinstance(msg_id, str) or not msg_id.strip():
        raise InvalidPayload("msg_id is missing or not a string")
    if len(msg_id) > MAX_MSG_ID or not msg_id.isprintable():
        raise InvalidPayload(f"msg_id must be at most {MAX_MSG_ID} printable characters")
    source = doc.get("source", "")
    if not isinstance(source, str) or len(source) > MAX_SOURCE:
        raise InvalidPayload(f"source must be a string of at most {MAX_SOURCE} characters", msg_id)
    seq = doc.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 0):
        raise InvalidPayload("seq must be a non-negative integer", msg_id, source)
    if seq is not None and seq > MAX_SEQ:
        raise InvalidPayload(f"seq must be at most {MAX_SEQ} (2**63 - 1)", msg_id, source)
    ts = _timestamp(doc.get("ts"), msg_id, source)
    if kind == "scan":
        event: wf.StationEvent = _scan(doc, msg_id, source)
    elif kind == "device":
        event = _device(doc, msg_id, source)
    elif kind == "action":
        event = _action(doc, msg_id, source)
    else:
        raise InvalidPayload(f"unknown event kind {kind!r}", msg_id, source)
    return Envelope(msg_id, ts, seq, source, event, doc)


def _timestamp(value: Any, msg_id: str, source: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidPayload(
            "ts must be an RFC 3339 UTC time such as 2026-03-02T08:00:00.123Z", msg_id, source
        )
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidPayload(f"ts {value!r} is not an RFC 3339 time", msg_id, source) from exc
    if parsed.tzinfo is None:
        raise InvalidPayload(f"ts {value!r} has no time zone (use Z for UTC)", msg_id, source)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError as exc:  # year 9999 at +14:00
        raise InvalidPayload(f"ts {value!r} is out of range", msg_id, source) from exc
    now = datetime.now(UTC)
    if not now - TS_MAX_PAST <= parsed <= now + TS_MAX_FUTURE:
        raise InvalidPayload(
            f"ts {value!r} is more than {TS_MAX_FUTURE.total_seconds() / 60:.0f} minutes ahead "
            f"or {TS_MAX_PAST.days} days behind the server's clock",
            msg_id,
            source,
        )
    return parsed


def _scan(doc: dict[str, Any], msg_id: str, source: str) -> wf.Scan:
    data = doc.get("data")
    if not isinstance(data, str):
        raise InvalidPayload("data is missing or not a string", msg_id, source)
    if len(data) > MAX_DATA:
        raise InvalidPayload(f"data of {len(data)} characters, at most {MAX_DATA}", msg_id, source)
    error = doc.get("error")
    if error is not None and not isinstance(error, str):
        raise InvalidPayload("error must be a string", msg_id, source)
    gs1 = doc.get("gs1")
    if gs1 is not None and not isinstance(gs1, dict):
        raise InvalidPayload("gs1 must be an object", msg_id, source)
    if not data and not error:
        raise InvalidPayload("data is empty", msg_id, source)
    return wf.Scan(data=data, gs1=gs1, error=error[:500] if error else None)


def _device(doc: dict[str, Any], msg_id: str, source: str) -> wf.DeviceEvent:
    kind = doc.get("kind")
    if not isinstance(kind, str) or not kind or len(kind) > 16:
        raise InvalidPayload("kind is missing or not a short string", msg_id, source)
    error = doc.get("error")
    if error is not None and not isinstance(error, str):
        raise InvalidPayload("error must be a string", msg_id, source)
    fields = {
        k: v
        for k, v in doc.items()
        if k not in ("msg_id", "ts", "seq", "source", "kind", "error", "type")
    }
    if len(json.dumps(fields)) > MAX_DATA:
        raise InvalidPayload("device event too large", msg_id, source)
    if kind in MEASUREMENTS and not error and checks.usable(fields.get("value")) is None:
        # A measurement judged against limits must be a number (docs/mqtt.md, evt/device).
        raise InvalidPayload(
            f"{kind} value must be a finite number of at most {checks.MAX_VALUE:g} in size",
            msg_id,
            source,
        )
    if kind in MEASUREMENTS and not isinstance(fields.get("ok", True), bool):
        # The workflow fails a result only on ``ok: false``: "NOK" or 0 must not pass.
        raise InvalidPayload(f"{kind} ok must be true or false", msg_id, source)
    return wf.DeviceEvent(
        kind=kind, fields=fields, source=source, error=error[:500] if error else None
    )


# The station actions (docs/mqtt.md, "evt/action"): name -> the fields they take.
ACTIONS = (
    "sign_in",
    "sign_out",
    "start",
    "complete",
    "pause",
    "resume",
    "andon",
    "defect",
    "andon_cancel",
)
_ACTION_FIELDS = {
    "msg_id",
    "ts",
    "seq",
    "source",
    "action",
    "type",
    "badge",
    "pin",
    "unit",
    "reason",
    "note",
    "disposition",
    "part",
}


def _text(
    doc: dict[str, Any], key: str, limit: int, msg_id: str, source: str, *, required: bool = False
) -> str | None:
    value = doc.get(key)
    if value is None:
        if required:
            raise InvalidPayload(f"{key} is missing", msg_id, source)
        return None
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise InvalidPayload(f"{key} must be a string of 1 to {limit} characters", msg_id, source)
    return value


def _action(doc: dict[str, Any], msg_id: str, source: str) -> wf.StationEvent:
    """A station action (what a tablet button, a button box or an integrator asks)."""
    action = doc.get("action")
    if action not in ACTIONS:
        raise InvalidPayload(f"action must be one of {', '.join(ACTIONS)}", msg_id, source)
    unknown = sorted(set(doc) - _ACTION_FIELDS)
    if unknown:
        raise InvalidPayload(f"unknown field {unknown[0][:32]!r} for an action", msg_id, source)
    if action == "sign_in":
        badge = _text(doc, "badge", 64, msg_id, source, required=True)
        pin = _text(doc, "pin", 32, msg_id, source)
        return wf.SignIn(badge=(badge or "").strip(), pin=pin)
    if action == "start":
        unit = _text(doc, "unit", 64, msg_id, source)
        return wf.StartUnit(unit.strip()) if unit and unit.strip() else wf.StartNext()
    if action == "andon":
        return wf.CallAndon(reason=(_text(doc, "reason", 200, msg_id, source) or "help"))
    if action == "defect":
        return wf.ReportDefect(
            reason_code=_text(doc, "reason", 32, msg_id, source, required=True) or "",
            note=_text(doc, "note", 1000, msg_id, source) or "",
            disposition=_text(doc, "disposition", 16, msg_id, source) or "rework",
            part_sku=(_text(doc, "part", 64, msg_id, source) or "").strip(),
        )
    simple: dict[str, wf.StationEvent] = {
        "sign_out": wf.SignOut(),
        "complete": wf.CompleteStep(),
        "pause": wf.Pause(),
        "resume": wf.Resume(),
        "andon_cancel": wf.CancelAndon(),
    }
    return simple[action]
