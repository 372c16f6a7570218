"""Plant: sites, lines, stations, the people who work there and the devices bound to them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.types import Role, json_list, translations, when


class Site(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=200)
    timezone: str = Field(default="UTC", max_length=64)


class Line(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("site_id", "code"),)
    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    code: str = Field(max_length=32)
    name: str = Field(max_length=200)
    takt_seconds: int = Field(default=300, description="planned seconds per unit at each station")


class Station(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    line_id: int = Field(foreign_key="line.id", index=True)
    # Codes are unique plant-wide so /station/<code> and MQTT topics name one station.
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=32, index=True, description="the kind of work done here")
    position: int = Field(default=0)
    active: bool = Field(default=True)
    translations: dict[str, dict[str, str]] = translations()  # name
    # Who is signed in at the station now (set by the station workflow).
    operator_id: int | None = Field(default=None, foreign_key="operator.id")
    signed_in_at: datetime | None = when(nullable=True)


class Operator(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    badge: str = Field(max_length=64, unique=True)
    # Typed on the tablet's keypad with the PIN when the badge is not at hand
    # (STATION_NUMBER_SIGN_IN).
    number: str | None = Field(default=None, max_length=16, unique=True)
    username: str | None = Field(default=None, max_length=64, unique=True)
    pin_hash: str | None = Field(default=None, max_length=255)
    password_hash: str | None = Field(default=None, max_length=255)
    role: str = Field(default=Role.OPERATOR, max_length=16)
    skills: list[str] = json_list()
    locale: str = Field(default="en", max_length=8)
    active: bool = Field(default=True)
    # Sessions signed in under another epoch are refused; sign-out adds one (auth).
    session_epoch: int = Field(default=0)


class DeviceToken(SQLModel, table=True):
    """Binds one tablet to one station; an admin issues and can revoke it."""

    id: int | None = Field(default=None, primary_key=True)
    station_id: int = Field(foreign_key="station.id", index=True)
    token_hash: str = Field(max_length=128, unique=True)
    label: str = Field(default="", max_length=200)
    issued_by_id: int | None = Field(default=None, foreign_key="operator.id")
    issued_at: datetime = when(default_now=True)
    revoked_at: datetime | None = when(nullable=True)


class ApiToken(SQLModel, table=True):
    """A Bearer token for an integration, limited to a scope."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    token_hash: str = Field(max_length=128, unique=True)
    scopes: list[str] = json_list()
    issued_by_id: int | None = Field(default=None, foreign_key="operator.id")
    issued_at: datetime = when(default_now=True)
    revoked_at: datetime | None = when(nullable=True)
