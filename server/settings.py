"""Every setting, declared once: name, default and help.

A setting ``X`` is read, later sources winning, from: its default; the instance config
file (``instance/taktline.toml``, key ``X`` lower-case or upper-case); the environment
variable ``TAKTLINE_X``; the ``test_config`` mapping given to ``create_app``.
docs/configuration.md lists them all; ``tests/test_settings.py`` fails when one is missing.

A setting marked ``secret`` (or named ``*PASSWORD*``, ``*SECRET*``, ``*TOKEN*``) never
reaches a log line: ``mask_logs(config)`` makes every log record of the process mask
its value (a URL's password), any ``scheme://user:password@`` URL, API and device
tokens and ``token=`` query values; ``mask(text)`` does the same for a CLI echo.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _positive_int(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"expected 1 or more, got {value!r}")
    return number


def _non_negative_int(value: Any) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(f"expected 0 or more, got {value!r}")
    return number


def _time_zone(value: Any) -> str:
    """An IANA time-zone name the system knows (``Europe/Paris``); empty is UTC."""
    name = str(value).strip() or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}, expected an IANA name") from exc
    return name


def _order_number_pattern(value: Any) -> str:
    """A pattern with ``{seq}`` (and optionally ``{year}``) that formats."""
    text = str(value)
    if "{seq" not in text:
        raise ValueError(f"the pattern needs {{seq}}, got {text!r}")
    try:
        text.format(seq=1, year=2026)
    except (IndexError, KeyError, ValueError) as exc:
        raise ValueError(f"{text!r} is not a pattern: {exc}") from None
    return text


STATION_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
LABEL_PRINTER_PORT = 9100


def _label_printers(value: Any) -> dict[str, tuple[str, int]]:
    """Station code -> (host, port) of its label printer. A TOML table
    ``{"KIT-1" = "10.0.4.21:9100"}`` or text ``KIT-1=10.0.4.21:9100,FIN-1=zebra-fin``
    (the port defaults to 9100; an IPv6 address in brackets, ``[fd00::7]:9100``)."""
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        pairs = []
        for item in re.split(r"[,\s]+", str(value).strip()):
            if not item:
                continue
            code, eq, where = item.partition("=")
            if not eq:
                raise ValueError(f"expected STATION=HOST[:PORT], got {item!r}")
            pairs.append((code, where))
    printers: dict[str, tuple[str, int]] = {}
    for code, where in pairs:
        code, where = code.strip(), where.strip()
        if not STATION_CODE.match(code):
            raise ValueError(f"bad station code {code!r}")
        parts = urlsplit("//" + where)
        try:
            host, port = parts.hostname, parts.port or LABEL_PRINTER_PORT
        except ValueError as exc:
            raise ValueError(f"{code}: bad port in {where!r}") from exc
        if not host or parts.path or parts.query or parts.username or "@" in where:
            raise ValueError(f"{code}: expected HOST[:PORT], got {where!r}")
        printers[code] = (host, port)
    return printers


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any] = str
    secret: bool = False  # masked in every log line (mask_logs)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DATABASE_URL",
        "",
        "SQLAlchemy URL of the database. Empty: SQLite file "
        "`instance/taktline.db`. PostgreSQL: `postgresql+psycopg://user@host/db`.",
        secret=True,
    ),
    Setting(
        "MQTT_URL",
        "",
        "Broker URL, `mqtt://user:password@host:1883` (`mqtts://` for "
        "TLS). Empty: `taktline serve` starts an embedded broker on 127.0.0.1.",
        secret=True,
    ),
    Setting("MQTT_PREFIX", "taktline", "First level of every MQTT topic."),
    Setting(
        "EMBEDDED_BROKER_PORT",
        1884,
        "Port of the embedded broker (when MQTT_URL is "
        "empty). Not 1883, so it never collides with a system broker.",
        int,
    ),
    Setting(
        "SECRET_KEY",
        "",
        "Key that signs session cookies. Empty: generated once and kept in `instance/secret_key`.",
        secret=True,
    ),
    Setting("HOST", "127.0.0.1", "Address `taktline serve` listens on."),
    Setting("PORT", 8000, "Port `taktline serve` listens on.", int),
    Setting(
        "WEB_THREADS",
        48,
        "Waitress threads. Each open tablet or line board holds one "
        "for its SSE stream, so size it above the number of screens.",
        int,
    ),
    Setting("RUN_INGEST", True, "Run the MQTT ingest worker inside `taktline serve`.", _bool),
    Setting(
        "INGEST_SHARED",
        False,
        "Subscribe through `$share/taktline-ingest/` so several "
        "`taktline ingest` processes share the load (Mosquitto). See docs/deploy.md for "
        "the broker-restart caveat of shared subscriptions on Mosquitto 2.0.",
        _bool,
    ),
    Setting(
        "INGEST_CLIENT_ID",
        "",
        "Stable MQTT client id of the ingest (persistent "
        "session: what arrives while it is down waits at the broker). Empty: its login "
        "when MQTT_URL's is `taktline-ingest-<n>` (`taktline mqtt-credentials`), else "
        "`taktline-ingest-<host>` (`taktline-serve-<host>` inside `taktline serve`); "
        "give each ingest process its own.",
    ),
    Setting(
        "INGEST_GARBAGE_RATE",
        20.0,
        "Bad payloads per second one station may send before the rest are answered "
        "`rate_limited` without being recorded (bursts of `INGEST_GARBAGE_BURST`). Valid "
        "events are never rate limited.",
        float,
    ),
    Setting("INGEST_GARBAGE_BURST", 100, "Burst of bad payloads a station may send.", int),
    Setting(
        "INGEST_STALL_SECONDS",
        10.0,
        "PostgreSQL: how long a batch's transaction may sit idle (its ingest process "
        "stopped, not dead) before the server ends it and gives back the stations and "
        "lots it locked, so their tablets go on; the ingest runs the batch again when it "
        "resumes.",
        float,
    ),
    Setting(
        "DEAD_LETTER_MAX",
        10000,
        "Dead letters kept (messages the ingest could not decode or decide); older ones "
        "are deleted.",
        int,
    ),
    Setting(
        "RUN_DELIVER",
        True,
        "Run the outbound event deliverer (webhooks, MQTT) inside `taktline serve`; "
        "`taktline deliver` runs it alone (docs/integration.md).",
        _bool,
    ),
    Setting(
        "ERP_MQTT",
        True,
        "Publish outbound events on `{MQTT_PREFIX}/{site}/erp/{type}` at QoS 1 too.",
        _bool,
    ),
    Setting(
        "ERP_SITE",
        "",
        "Site code in the outbound events' MQTT topics and CloudEvent `source`. Empty: "
        "the first site of the plant.",
    ),
    Setting(
        "WEBHOOK_RETRY_BASE_SECONDS",
        5.0,
        "Wait before the second try of a failed delivery; it doubles with each failure "
        "(with jitter: between half and all of it).",
        float,
    ),
    Setting(
        "WEBHOOK_RETRY_MAX_SECONDS",
        3600.0,
        "Longest wait between two tries of a delivery.",
        float,
    ),
    Setting(
        "WEBHOOK_DEAD_AFTER_SECONDS",
        259200.0,
        "A delivery still failing this long after it was created (default 3 days) is "
        "dead: no more tries until it is replayed from the Webhooks page or the API.",
        float,
    ),
    Setting(
        "WEBHOOK_TIMEOUT_SECONDS",
        10.0,
        "Seconds a webhook receiver (or the broker's PUBACK) has to answer.",
        float,
    ),
    Setting(
        "DELIVER_POLL_SECONDS",
        1.0,
        "Seconds the deliverer waits between passes when there was nothing to send.",
        float,
    ),
    Setting(
        "DEFAULT_LOCALE", "en", "Language of screens before an operator signs in (`en` or `fr`)."
    ),
    Setting(
        "PLANT_TIMEZONE",
        "UTC",
        "Time zone of the plant (an IANA name, `Europe/Paris`): every time shown on the "
        "desk pages, the line board and the station tablets, and the line board's plant "
        "day (midnight to midnight). The API, MQTT and exports stay in UTC.",
        _time_zone,
    ),
    Setting(
        "ORDER_NUMBER_PATTERN",
        "SO-{year}-{seq:05d}",
        "Pattern of the order number the order form proposes when none is typed: "
        "`{seq}` (the next free number, with a format such as `{seq:05d}`) and `{year}`.",
        _order_number_pattern,
    ),
    Setting(
        "PROMISE_LEAD_DAYS",
        1,
        "Shipping lead: days from an order's planned completion to the date promised "
        "(docs/promise.md).",
        _non_negative_int,
    ),
    Setting(
        "PROMISE_HORIZON_DAYS",
        120,
        "Days ahead the promise plan looks (line calendars, receipts); an order that "
        "does not complete within them gets no date.",
        _positive_int,
    ),
    Setting(
        "PROMISE_MIN_HISTORY",
        20,
        "Measured steps an operation needs (in the last 90 days) before the promise plan "
        "uses their median instead of the routing's standard time; 0: standard times only.",
        _non_negative_int,
    ),
    Setting(
        "PROMISE_BOOK_ON_ACCEPT",
        True,
        "The order form books the promise shown when an order is saved (the customer is "
        "told that date); off: promises are booked from the order page or the API.",
        _bool,
    ),
    Setting("SESSION_MINUTES", 720, "Minutes of inactivity after which a sign-in expires.", int),
    Setting("SECURE_COOKIES", False, "Mark cookies Secure; turn on behind HTTPS.", _bool),
    Setting(
        "SIGNIN_MAX_FAILURES",
        5,
        "Failed sign-ins per user name or badge (PIN) within SIGNIN_WINDOW_SECONDS "
        "before further tries for it are refused (429) until the oldest leaves the window; "
        "a browser that signed in as that person before is not refused for others' "
        "failures. An address (or a tablet) may fail four times as often before it is "
        "slowed down (SIGNIN_THROTTLE_MAX_SECONDS).",
        int,
    ),
    Setting("SIGNIN_WINDOW_SECONDS", 300, "Sliding window of the sign-in limits.", int),
    Setting(
        "SIGNIN_THROTTLE_MAX_SECONDS",
        30,
        "Longest wait of an address or tablet once it reached its failures allowance "
        "(four times SIGNIN_MAX_FAILURES): its next try waits 1 s after that failure, "
        "then 2, 4 ... up to this many seconds after each further one (429 with "
        "`Retry-After`); it is never locked out for the whole window.",
        int,
    ),
    Setting(
        "TRUSTED_PROXIES",
        0,
        "Reverse proxies in front of the web processes whose `X-Forwarded-For` and "
        "`X-Forwarded-Proto` are believed (Werkzeug's ProxyFix): the client address of "
        "the sign-in limits, audit and logs. 0: none, the address is the peer's. Set it "
        "to the number of proxies (1 for one nginx); more than there are lets clients "
        "choose their own address.",
        _non_negative_int,
    ),
    Setting(
        "STATION_HEARTBEAT_SECONDS",
        15.0,
        "Seconds between heartbeats on a tablet's "
        'live stream; the tablet says "reconnecting" after missing about two. Lower '
        "it behind a proxy that closes idle connections sooner.",
        float,
    ),
    Setting(
        "ANDON_ESCALATE_MINUTES",
        10,
        "Minutes an andon call may stay unacknowledged before it is escalated: published "
        "once on `taktline/{site}/{line}/{station}/andon/escalated` (docs/mqtt.md). 0: never.",
        _non_negative_int,
    ),
    Setting(
        "STATION_NUMBER_SIGN_IN",
        False,
        "Let an operator without their badge sign in on the tablet with their operator "
        "number and PIN on a touch keypad (operators without a PIN cannot).",
        _bool,
    ),
    Setting(
        "DEFECT_PHOTO_MAX_BYTES",
        600_000,
        "Largest defect photo kept (JPEG, PNG or WebP); the tablet shrinks a camera "
        "picture before sending it, a bigger one is refused. Stays below MAX_CONTENT_LENGTH.",
        _positive_int,
    ),
    Setting("LOG_LEVEL", "INFO", "Python logging level of the server processes."),
    Setting(
        "METRICS_DIR",
        "",
        "Folder where each process keeps its Prometheus values (prometheus_client's "
        "multiprocess mode; exported as `PROMETHEUS_MULTIPROC_DIR`). Empty: "
        "`instance/metrics`. Give `taktline web` and `taktline ingest` on one machine the "
        "same folder, so `/api/v1/metrics` shows the ingest's figures too. Emptied at start "
        "when no process that wrote to it still runs (docs/operations.md).",
    ),
    Setting(
        "BOARD_REFRESH_SECONDS",
        10,
        "Seconds between refreshes of the line board's "
        "day figures when no station changes (station changes refresh it at once).",
        int,
    ),
    Setting(
        "LABEL_PRINTERS",
        "",
        "Label printers by station: `KIT-1=10.0.4.21:9100,FIN-1=zebra-fin` (a table in "
        "the TOML file). Zebra-compatible, ZPL over raw TCP (port 9100 by default). A "
        "unit's label is printed when its first step starts at a station that has one, "
        "and on demand from the unit page (docs/traceability.md). Empty: no labels.",
        _label_printers,
    ),
    Setting(
        "MAX_CONTENT_LENGTH",
        1024 * 1024,
        "Largest request body in bytes (default 1 MiB). A bigger one is refused with 413 "
        "before it is read (a JSON error under `/api/`). Raise it for larger order CSV "
        "uploads.",
        _positive_int,
    ),
)

BY_NAME = {s.name: s for s in SETTINGS}
ENV_PREFIX = "TAKTLINE_"


def load(
    instance_path: Path,
    test_config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Resolve every setting; a bad value raises ``ValueError`` naming the setting."""
    environ = os.environ if environ is None else environ
    file_values: dict[str, Any] = {}
    config_file = instance_path / "taktline.toml"
    if config_file.exists():
        with config_file.open("rb") as fh:
            file_values = {k.upper(): v for k, v in tomllib.load(fh).items()}
        unknown = sorted(set(file_values) - set(BY_NAME))
        if unknown:
            raise ValueError(f"{config_file}: unknown setting(s) {', '.join(unknown)}")
    resolved: dict[str, Any] = {}
    for setting in SETTINGS:
        raw: Any = setting.default
        source = "default"
        if setting.name in file_values:
            raw, source = file_values[setting.name], str(config_file)
        if ENV_PREFIX + setting.name in environ:
            raw, source = environ[ENV_PREFIX + setting.name], ENV_PREFIX + setting.name
        if test_config and setting.name in test_config:
            raw, source = test_config[setting.name], "test_config"
        try:
            resolved[setting.name] = setting.parse(raw)
        except ValueError as exc:
            raise ValueError(f"setting {setting.name} (from {source}): {exc}") from exc
    if not resolved["DATABASE_URL"]:
        resolved["DATABASE_URL"] = f"sqlite:///{instance_path / 'taktline.db'}"
    if not resolved["SECRET_KEY"]:
        resolved["SECRET_KEY"] = _instance_secret(instance_path)
    if test_config:
        # Flask's own keys (TESTING, SERVER_NAME, ...) pass straight through.
        resolved.update({k: v for k, v in test_config.items() if k not in BY_NAME})
    return resolved


def _instance_secret(instance_path: Path) -> str:
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


# -- secrets out of the logs -------------------------------------------------------------

MASK = "***"
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:)[^\s/@]+@")
_TOKEN = re.compile(r"\b(tl[a-z]_)[A-Za-z0-9_-]{8,}")  # server.security.auth's tokens
_QUERY = re.compile(r"(?i)([?&;](?:token|password|passwd|secret|api_key)=)[^&\s\"']+")
_BEARER = re.compile(r"(?i)(\bBearer\s+)[A-Za-z0-9._~+/=-]+")  # RFC 6750 token68
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN")
_known: set[str] = set()
_lock = threading.Lock()
_installed = False


def secret_values(config: Mapping[str, Any]) -> set[str]:
    """The secret settings' values: a URL's password, else the whole value."""
    found: set[str] = set()
    for name, value in config.items():
        setting = BY_NAME.get(name)
        if not isinstance(value, str) or not value:
            continue
        if not ((setting and setting.secret) or _SECRET_NAME.search(name)):
            continue
        try:
            password = urlsplit(value).password if "://" in value else None
        except ValueError:
            password = None
        if password:
            found |= {password, unquote(password)}
        elif "://" not in value:
            found.add(value)
    return {value for value in found if len(value) >= 6}


def mask(text: str) -> str:
    """``text`` without passwords in URLs, tokens and the known secret values."""
    text = _URL_PASSWORD.sub(rf"\1{MASK}@", text)
    text = _BEARER.sub(rf"\1{MASK}", text)
    text = _TOKEN.sub(rf"\1{MASK}", text)
    text = _QUERY.sub(rf"\1{MASK}", text)
    for value in sorted(_known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


def mask_logs(config: Mapping[str, Any]) -> None:
    """From now on every log record of this process is masked (``mask``), whichever
    logger and handler (gunicorn's access log too): its message, traceback and stack."""
    global _installed
    with _lock:
        _known.update(secret_values(config))
        if _installed:
            return
        _installed = True
        base = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = base(*args, **kwargs)
            _mask_record(record)
            return record

        logging.setLogRecordFactory(factory)


def _mask_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it when it emits
        return
    masked = mask(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        masked = mask(text)
        if masked != text:
            record.exc_text = masked
    if record.stack_info:
        record.stack_info = mask(record.stack_info)
