"""Bridge configuration: one TOML file per station, checked completely at start.

A bad file is refused with the key and the reason (``devices[1].baudrate: must be
a positive integer``) instead of failing later on the shop floor. The documented
example lives in docs/bridge.md; tests load it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from firmware_bridge import topics
from firmware_bridge.outbox import POLICIES

DEVICE_TYPES = ("scanner", "line")
# Station actions a button may stand for (docs/bridge.md, "Buttons"; the evt/action
# payload of docs/mqtt.md): pressing it sends {"action": name} instead of a button event.
BUTTON_ACTIONS = ("start", "complete", "pause", "resume", "andon", "sign_out")
_DEFAULT_BAUD = {"scanner": 9600, "line": 115200}


class ConfigError(ValueError):
    """A configuration value that cannot be used; ``key`` is its dotted path."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class TLSConfig:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False


@dataclass(frozen=True)
class MQTTConfig:
    host: str
    port: int
    tls: TLSConfig | None
    username: str | None = None
    password: str | None = None
    client_id: str = ""
    prefix: str = topics.DEFAULT_PREFIX
    keepalive: int = 30
    reconnect_max_s: float = 10.0


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    type: str
    port: str
    baudrate: int
    terminator: bytes | None = None  # None: CR, LF or CRLF
    good_read: bytes = b""
    bad_read: bytes = b""
    on_accepted: tuple[str, ...] = ()
    on_rejected: tuple[str, ...] = ()
    reopen_max_s: float = 10.0
    buttons: dict[int, str] = field(default_factory=dict)  # BTN n -> station action


@dataclass(frozen=True)
class OutboxConfig:
    path: Path
    max_messages: int = 50_000
    when_full: str = "refuse_new"


@dataclass(frozen=True)
class BridgeConfig:
    site: str
    line: str
    station: str
    mqtt: MQTTConfig
    outbox: OutboxConfig
    devices: tuple[DeviceConfig, ...] = field(default_factory=tuple)

    def topic(self, kind: str) -> str:
        return topics.build(self.site, self.line, self.station, kind, prefix=self.mqtt.prefix)


def load(path: Path | str) -> BridgeConfig:
    """Read and check a TOML file; ``ConfigError`` names the first bad key."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
    return from_dict(raw, base=path.parent)


def from_dict(raw: dict[str, Any], *, base: Path = Path(".")) -> BridgeConfig:
    station = _table(raw, "station")
    codes = {k: _str(station, "station", k) for k in ("site", "line", "station")}
    for k, v in codes.items():
        if any(ch in v for ch in "/+#\x00"):
            raise ConfigError(f"station.{k}", "must not contain /, +, # or NUL")
    mqtt = _mqtt(_table(raw, "mqtt"), codes, base)
    outbox = _outbox(raw.get("outbox", {}), base)
    devices_raw = raw.get("devices", [])
    if not isinstance(devices_raw, list) or not devices_raw:
        raise ConfigError("devices", "at least one [[devices]] entry is required")
    devices = tuple(_device(d, f"devices[{i}]", base) for i, d in enumerate(devices_raw))
    names = [d.name for d in devices]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise ConfigError(f"devices[{i}].name", f"{name!r} is used twice")
    return BridgeConfig(codes["site"], codes["line"], codes["station"], mqtt, outbox, devices)


def _mqtt(t: dict[str, Any], codes: dict[str, str], base: Path) -> MQTTConfig:
    url = _str(t, "mqtt", "url")
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError("mqtt.url", f"{url!r} is not mqtt://host[:port] or mqtts://host[:port]")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError as exc:
        raise ConfigError("mqtt.url", f"bad port: {exc}") from exc
    tls: TLSConfig | None = None
    tls_raw = t.get("tls")
    if parts.scheme == "mqtts" or tls_raw is not None:
        tt = tls_raw if isinstance(tls_raw, dict) else {}
        tls = TLSConfig(
            ca_file=_file(tt, "mqtt.tls", "ca_file", base),
            cert_file=_file(tt, "mqtt.tls", "cert_file", base),
            key_file=_file(tt, "mqtt.tls", "key_file", base),
            insecure=_bool(tt, "mqtt.tls", "insecure", False),
        )
    password = _str(t, "mqtt", "password", None)
    password_file = _file(t, "mqtt", "password_file", base)
    if password_file:
        password = Path(password_file).read_text().strip()
    default_id = f"taktline-bridge-{codes['site']}-{codes['line']}-{codes['station']}"
    return MQTTConfig(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=_str(t, "mqtt", "username", None),
        password=password,
        client_id=_str(t, "mqtt", "client_id", default_id) or default_id,
        prefix=_str(t, "mqtt", "prefix", topics.DEFAULT_PREFIX) or topics.DEFAULT_PREFIX,
        keepalive=_int(t, "mqtt", "keepalive", 30, low=5),
        reconnect_max_s=_num(t, "mqtt", "reconnect_max_s", 10.0, low=1.0),
    )


def _outbox(t: Any, base: Path) -> OutboxConfig:
    if not isinstance(t, dict):
        raise ConfigError("outbox", "must be a table")
    when_full = _str(t, "outbox", "when_full", "refuse_new") or "refuse_new"
    if when_full not in POLICIES:
        raise ConfigError("outbox.when_full", f"must be one of {', '.join(POLICIES)}")
    path = base / (_str(t, "outbox", "path", "outbox.sqlite") or "outbox.sqlite")
    if not path.parent.is_dir():
        raise ConfigError("outbox.path", f"directory {path.parent} does not exist")
    return OutboxConfig(path, _int(t, "outbox", "max_messages", 50_000, low=1), when_full)


def _device(t: Any, key: str, base: Path) -> DeviceConfig:
    if not isinstance(t, dict):
        raise ConfigError(key, "must be a table")
    kind = _str(t, key, "type")
    if kind not in DEVICE_TYPES:
        raise ConfigError(f"{key}.type", f"must be one of {', '.join(DEVICE_TYPES)}")
    terminator = _str(t, key, "terminator", "auto")
    return DeviceConfig(
        name=_str(t, key, "name"),
        type=kind,
        port=_str(t, key, "port"),
        baudrate=_int(t, key, "baudrate", _DEFAULT_BAUD[kind], low=50),
        terminator=None if terminator == "auto" else _bytes(terminator, f"{key}.terminator"),
        good_read=_bytes(_str(t, key, "good_read", "") or "", f"{key}.good_read"),
        bad_read=_bytes(_str(t, key, "bad_read", "") or "", f"{key}.bad_read"),
        on_accepted=_lines(t, key, "on_accepted"),
        on_rejected=_lines(t, key, "on_rejected"),
        reopen_max_s=_num(t, key, "reopen_max_s", 10.0, low=0.1),
        buttons=_buttons(t, key, kind),
    )


def _buttons(t: dict[str, Any], key: str, kind: str) -> dict[int, str]:
    """``[devices.buttons]``: ``"1" = "start"``, one station action per button number."""
    raw = t.get("buttons", {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{key}.buttons", "must be a table of button number = action")
    if raw and kind != "line":
        raise ConfigError(f"{key}.buttons", "only a line-protocol device has buttons")
    buttons: dict[int, str] = {}
    for number, action in raw.items():
        if not number.isdigit():
            raise ConfigError(f"{key}.buttons.{number}", "must be a button number (BTN n)")
        if action not in BUTTON_ACTIONS:
            raise ConfigError(
                f"{key}.buttons.{number}", f"must be one of {', '.join(BUTTON_ACTIONS)}"
            )
        buttons[int(number)] = action
    return buttons


# -- small typed readers; each names the key it is unhappy with ------------------

_MISSING: Any = object()


def _table(t: dict[str, Any], key: str) -> dict[str, Any]:
    value = t.get(key)
    if not isinstance(value, dict):
        raise ConfigError(key, "a [" + key + "] table is required")
    return value


def _get(t: dict[str, Any], where: str, key: str, default: Any) -> Any:
    if key in t:
        return t[key]
    if default is _MISSING:
        raise ConfigError(f"{where}.{key}", "is required")
    return default


def _str(t: dict[str, Any], where: str, key: str, default: Any = _MISSING) -> Any:
    value = _get(t, where, key, default)
    if value is not default and (not isinstance(value, str) or not value):
        raise ConfigError(f"{where}.{key}", "must be a non-empty string")
    return value


def _int(t: dict[str, Any], where: str, key: str, default: int, *, low: int) -> int:
    value = _get(t, where, key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where}.{key}", f"must be an integer >= {low}")
    return value


def _num(t: dict[str, Any], where: str, key: str, default: float, *, low: float) -> float:
    value = _get(t, where, key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise ConfigError(f"{where}.{key}", f"must be a number >= {low}")
    return float(value)


def _bool(t: dict[str, Any], where: str, key: str, default: bool) -> bool:
    value = _get(t, where, key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key}", "must be true or false")
    return value


def _file(t: dict[str, Any], where: str, key: str, base: Path) -> str | None:
    value = _str(t, where, key, None)
    if value is None:
        return None
    path = base / value
    if not path.is_file():
        raise ConfigError(f"{where}.{key}", f"file {path} does not exist")
    return str(path)


def _bytes(text: str, key: str) -> bytes:
    """TOML strings carry device bytes; ``\\u0007`` is BEL. Only U+0000..U+00FF fit."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ConfigError(key, "use only characters \\u0000 to \\u00ff (one byte each)") from exc


def _lines(t: dict[str, Any], where: str, key: str) -> tuple[str, ...]:
    value = _get(t, where, key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}.{key}", "must be a string or a list of strings")
    if any("\n" in v or "\r" in v for v in value):
        raise ConfigError(f"{where}.{key}", "one command per string, without CR or LF")
    return tuple(value)
