"""Times as the plant reads them: every displayed time in the plant's time zone.

Times are stored, exchanged (API, MQTT, exports) and compared in UTC; only what a
person reads on a page is converted, late, by the ``plant_time`` template filter, to
the ``PLANT_TIMEZONE`` setting (an IANA name such as ``Europe/Paris``). The same zone
bounds the line board's plant day. ``minutes_ago`` gives an age in whole minutes
(an andon raised N minutes ago), the same on every screen.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app, has_app_context

from server.models.types import rfc3339, utcnow

FORMATS = {
    "datetime": "%Y-%m-%d %H:%M",
    "seconds": "%Y-%m-%d %H:%M:%S",
    "date": "%Y-%m-%d",
    "time": "%H:%M",
    "time-seconds": "%H:%M:%S",
}


def zone_name() -> str:
    if not has_app_context():
        return "UTC"
    return str(current_app.config.get("PLANT_TIMEZONE") or "UTC")


def zone() -> ZoneInfo:
    """The plant's time zone (``PLANT_TIMEZONE``)."""
    return ZoneInfo(zone_name())


def local(value: datetime) -> datetime:
    """``value`` (aware, or naive UTC) in the plant's time zone."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone())


def plant_time(value: datetime | str | None, fmt: str = "datetime") -> str:
    """The template filter: ``{{ entry.at|plant_time }}`` -> ``2026-03-02 14:05``;
    ``fmt`` one of FORMATS (``seconds``, ``date``, ``time``, ``time-seconds``) or a
    strftime pattern. An RFC 3339 text (a record already made JSON) is read first;
    ``None`` or an empty text renders as an empty string."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return local(value).strftime(FORMATS.get(fmt, fmt))


def minutes_ago(value: datetime | None, now: datetime | None = None) -> int:
    """Whole minutes from ``value`` to now (0 for a time in the future or None)."""
    if value is None:
        return 0
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return max(int(((now or utcnow()) - value).total_seconds() // 60), 0)


def init_app(app: Flask) -> None:
    app.jinja_env.filters["plant_time"] = plant_time
    app.jinja_env.filters["minutes_ago"] = minutes_ago
    app.jinja_env.filters["rfc3339"] = rfc3339  # <time datetime="..."> stays UTC
    app.jinja_env.globals["plant_zone_name"] = zone_name
