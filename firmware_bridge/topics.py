"""MQTT contract v1 topics: one builder, one parser.

Topic shape: ``{prefix}/{site}/{line}/{station}/{kind...}`` where kind is one of
``evt/scan``, ``evt/device``, ``evt/action``, ``cmd/feedback``, ``state``, ``status`` or
``andon/escalated``.
See docs/mqtt.md; devices and integrators rely on these names.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "taktline"
KINDS = (
    "evt/scan",
    "evt/device",
    "evt/action",
    "cmd/feedback",
    "state",
    "status",
    "andon/escalated",
)
_FORBIDDEN = set("/+#\x00")


@dataclass(frozen=True)
class StationTopic:
    site: str
    line: str
    station: str
    kind: str
    prefix: str = DEFAULT_PREFIX

    def __str__(self) -> str:
        return build(self.site, self.line, self.station, self.kind, prefix=self.prefix)


def _check_code(name: str, value: str) -> None:
    if not value or any(ch in _FORBIDDEN for ch in value):
        raise ValueError(f"{name} code {value!r} cannot be used in an MQTT topic")


def build(site: str, line: str, station: str, kind: str, *, prefix: str = DEFAULT_PREFIX) -> str:
    """The topic for one station and one kind of message."""
    if kind not in KINDS:
        raise ValueError(f"unknown topic kind {kind!r}; expected one of {', '.join(KINDS)}")
    _check_code("site", site)
    _check_code("line", line)
    _check_code("station", station)
    return f"{prefix}/{site}/{line}/{station}/{kind}"


def parse(topic: str, *, prefix: str = DEFAULT_PREFIX) -> StationTopic:
    """Split a topic into its parts; ``ValueError`` when it is not of contract shape."""
    parts = topic.split("/")
    head = prefix.split("/")
    if parts[: len(head)] != head:
        raise ValueError(f"topic {topic!r} does not start with {prefix!r}")
    rest = parts[len(head) :]
    if len(rest) < 4:
        raise ValueError(f"topic {topic!r} is too short for {prefix}/site/line/station/kind")
    site, line, station, *kind_parts = rest
    kind = "/".join(kind_parts)
    if kind not in KINDS:
        raise ValueError(f"topic {topic!r} has unknown kind {kind!r}")
    for name, value in (("site", site), ("line", line), ("station", station)):
        _check_code(name, value)
    return StationTopic(site, line, station, kind, prefix)


def subscription(
    kind_filter: str,
    *,
    prefix: str = DEFAULT_PREFIX,
    site: str = "+",
    line: str = "+",
    station: str = "+",
) -> str:
    """A subscription filter such as ``taktline/+/+/+/evt/#``."""
    return f"{prefix}/{site}/{line}/{station}/{kind_filter}"
