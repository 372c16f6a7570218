"""Mosquitto logins, ACL and listeners from the database: one login per station, per
ingest process and for the web processes.

``taktline mqtt-credentials --out DIR [--ingests N]`` writes:
- ``passwd-stations``: the stations' logins (``station-<code>``), and ``passwd-server``:
  the server processes' logins (``taktline-web``, ``taktline-ingest-1`` .. ``-N``, and
  the login of MQTT_URL, or ``taktline-server``), mosquitto_passwd-compatible (``$7$``:
  PBKDF2-SHA512, 101 iterations, 12-byte salt, as mosquitto_passwd 2.x writes it);
- ``passwd``: every login in one file, for a broker still configured with one listener
  (the layout before ``listeners.conf``; it binds no client id to a login);
- ``acl``: station ``station-<code>`` may publish only its own
  ``{prefix}/{site}/{line}/{code}/evt/#`` and ``.../status`` (its last will) and read
  its own ``.../cmd/#`` and ``.../state``; the server logins read and write ``{prefix}/#``;
- ``listeners.conf``: the broker's listeners (``per_listener_settings true``): the
  server listener accepts the server logins only, the station listener the station
  logins only, with ``use_username_as_clientid``: a station's connection always has its
  login as client id, so it can never take over the ingest's persistent session (or
  another station's);
- ``bridge-<code>.password`` and ``<login>.password`` (mode 600): each bridge's and each
  generated server login's password.

Passwords are derived from SECRET_KEY with HMAC-SHA256 and the login name, so running
the command again (a station added) keeps every existing login working; they change
only when SECRET_KEY does. The password of MQTT_URL's login is the one in that URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlmodel import Session, select

from firmware_bridge import topics
from server.models import Line, Site, Station

log = logging.getLogger(__name__)
PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default for $7$
SERVER_USER = "taktline-server"  # the one server login before per-process logins
WEB_USER = "taktline-web"
INGEST_USER_PREFIX = "taktline-ingest-"
LISTENERS_FILE = "listeners.conf"


def mosquitto_hash(
    password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """A password-file hash mosquitto 2.x accepts: ``$7$iterations$salt$hash`` (base64)."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def derived_password(secret_key: str, username: str) -> str:
    mac = hmac.new(secret_key.encode(), f"taktline-mqtt:{username}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def station_user(code: str) -> str:
    return f"station-{code}"


def ingest_user(number: int) -> str:
    return f"{INGEST_USER_PREFIX}{number}"


@dataclass(frozen=True)
class Listener:
    """``PORT`` or ``HOST:PORT`` of a Mosquitto listener (no host: every interface)."""

    port: int
    host: str = ""

    @classmethod
    def parse(cls, text: str) -> Listener:
        host, _, port = text.strip().rpartition(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"listener {text!r}: expected PORT or HOST:PORT")
        return cls(int(port), host.strip("[]"))

    def line(self) -> str:
        return f"listener {self.port} {self.host}".rstrip()


@dataclass(frozen=True)
class Tls:
    cafile: str
    certfile: str
    keyfile: str


@dataclass
class Credentials:
    passwords: dict[str, str] = field(default_factory=dict)  # user -> plain password
    acl: list[str] = field(default_factory=list)
    stations: dict[str, str] = field(default_factory=dict)  # station code -> user
    servers: list[str] = field(default_factory=list)  # server logins, the ingests' first
    generated: list[str] = field(default_factory=list)  # server logins we made up

    def passwd_text(self, users: list[str] | None = None) -> str:
        chosen = self.passwords if users is None else users
        return "".join(f"{user}:{mosquitto_hash(self.passwords[user])}\n" for user in chosen)

    def acl_text(self) -> str:
        return "\n".join(self.acl) + "\n"


def build(
    db: Session, *, prefix: str, secret_key: str, mqtt_url: str = "", ingests: int = 1
) -> Credentials:
    """Logins and ACL for every active station, ``ingests`` ingest processes, the web
    processes, and the login of ``mqtt_url`` (``taktline-server`` without one)."""
    if ingests < 1:
        raise ValueError("at least one ingest login")
    creds = Credentials()
    url_user, url_password = _url_login(mqtt_url)
    for user in [ingest_user(n) for n in range(1, ingests + 1)] + [
        WEB_USER,
        url_user or SERVER_USER,
    ]:
        if user in creds.passwords:
            continue
        if user == url_user and url_password:
            creds.passwords[user] = url_password
        else:
            creds.passwords[user] = derived_password(secret_key, user)
            creds.generated.append(user)
        creds.servers.append(user)
    creds.acl += ["# Generated by `taktline mqtt-credentials`; do not edit by hand."]
    for user in creds.servers:
        creds.acl += [
            f"# server login ({_role(user)}): everything under the prefix",
            f"user {user}",
            f"topic readwrite {prefix}/#",
            "",
        ]
    rows = db.exec(
        select(Station, Line, Site)
        .join(Line, Station.line_id == Line.id)  # type: ignore[arg-type]
        .join(Site, Line.site_id == Site.id)  # type: ignore[arg-type]
        .where(Station.active == True)  # noqa: E712
        .order_by(Site.code, Line.code, Station.code)
    ).all()
    for station, line, site in rows:
        user = station_user(station.code)
        if any(ch.isspace() for ch in user):
            raise ValueError(
                f"station code {station.code!r} has white space; an MQTT login name cannot"
            )
        if user in creds.passwords:
            raise ValueError(f"station login {user!r} is also a server login")
        base = topics.build(site.code, line.code, station.code, "status", prefix=prefix).rsplit(
            "/", 1
        )[0]
        creds.passwords[user] = derived_password(secret_key, user)
        creds.stations[station.code] = user
        creds.acl += [
            f"# {site.code}/{line.code}/{station.code}: {station.name}",
            f"user {user}",
            f"topic write {base}/evt/#",
            f"topic write {base}/status",
            f"topic read {base}/cmd/#",
            f"topic read {base}/state",
            "",
        ]
    return creds


def _role(user: str) -> str:
    if user.startswith(INGEST_USER_PREFIX):
        return "one `taktline ingest` process"
    if user == WEB_USER:
        return "the web processes"
    return "any server process, from MQTT_URL"


def _url_login(mqtt_url: str) -> tuple[str | None, str | None]:
    parts = urlsplit(mqtt_url) if mqtt_url else None
    if not parts or not parts.username:
        return None, None
    return unquote(parts.username), unquote(parts.password) if parts.password else None


def listeners_conf(out: Path, *, server: Listener, station: Listener, tls: Tls | None) -> str:
    """The broker's listeners and their logins (include it from mosquitto.conf)."""
    folder = out.resolve()
    lines = [
        "# Generated by `taktline mqtt-credentials`; do not edit by hand (run it again).",
        "# Include it as the last line of mosquitto.conf (`include_dir` this folder), with",
        "# no listener, password_file, acl_file or allow_anonymous line there (docs/deploy.md).",
        "per_listener_settings true",
        "",
        "# The server processes (web, ingest) with their own logins only. They name their",
        "# client ids: an ingest's is its persistent session (its login, by default).",
        server.line(),
        "allow_anonymous false",
        f"password_file {folder / 'passwd-server'}",
        f"acl_file {folder / 'acl'}",
        "",
        "# The stations' bridges with their logins only. Each connection's client id is its",
        "# login, whatever the client sent: a station cannot take over the ingest's session",
        "# (nor another station's); two bridges with one login disconnect each other.",
        station.line(),
    ]
    if tls is not None:
        lines += [f"cafile {tls.cafile}", f"certfile {tls.certfile}", f"keyfile {tls.keyfile}"]
    lines += [
        "use_username_as_clientid true",
        "allow_anonymous false",
        f"password_file {folder / 'passwd-stations'}",
        f"acl_file {folder / 'acl'}",
    ]
    return "\n".join(lines) + "\n"


def write(creds: Credentials, out: Path, *, listeners: str | None = None) -> list[Path]:
    """Write the files (secrets mode 600); returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [
        _write(out / "passwd", creds.passwd_text(), 0o600),
        _write(out / "passwd-server", creds.passwd_text(creds.servers), 0o600),
        _write(out / "passwd-stations", creds.passwd_text(list(creds.stations.values())), 0o600),
        _write(out / "acl", creds.acl_text(), 0o644),
    ]
    if listeners is not None:
        written.append(_write(out / LISTENERS_FILE, listeners, 0o644))
    for code, user in creds.stations.items():
        written.append(_write(out / f"bridge-{code}.password", creds.passwords[user] + "\n", 0o600))
    for user in creds.generated:
        written.append(_write(out / f"{user}.password", creds.passwords[user] + "\n", 0o600))
    log.info(
        "wrote MQTT credentials for %d stations and %d server logins to %s",
        len(creds.stations),
        len(creds.servers),
        out,
    )
    return written


def _write(path: Path, text: str, mode: int) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    tmp.replace(path)  # atomic: a broker reloading on SIGHUP never reads half a file
    return path
