"""Catalog: parts, configurable products, their options, BOM and routing.

BOM lines and operations carry ``when_options``: the option codes that must all be
chosen for the line to apply (empty: always). That is enough for the usual ATO
catalog (a memory size picks a DIMM, a case picks its fans); richer rules live in
``OptionRule`` (requires / excludes) and are checked by ``server.catalog.configure``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.types import Tracking, json_list, translations


class Part(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=64, unique=True)
    description: str = Field(max_length=300)
    tracking: str = Field(default=Tracking.NONE, max_length=8)
    uom: str = Field(default="ea", max_length=8)
    bin_location: str = Field(default="", max_length=32, description="line-side bin")
    # A part built here can itself be a component of another product (sub-assembly).
    product_id: int | None = Field(default=None, foreign_key="product.id")
    translations: dict[str, dict[str, str]] = translations()  # description


class PartIdentifier(SQLModel, table=True):
    """A GTIN, an alias code or a regular expression that identifies a part when scanned."""

    __table_args__ = (sa.UniqueConstraint("kind", "value"),)
    id: int | None = Field(default=None, primary_key=True)
    part_id: int = Field(foreign_key="part.id", index=True)
    kind: str = Field(max_length=8, description="gtin | code | pattern")
    value: str = Field(max_length=200)


class PartSubstitute(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("part_id", "substitute_id"),)
    id: int | None = Field(default=None, primary_key=True)
    part_id: int = Field(foreign_key="part.id", index=True)
    substitute_id: int = Field(foreign_key="part.id")
    priority: int = Field(default=1)


class Product(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=200)
    line_id: int | None = Field(default=None, foreign_key="line.id")
    serial_pattern: str = Field(default="{product}-{seq:06d}", max_length=64)
    description: str = Field(default="", max_length=1000)
    translations: dict[str, dict[str, str]] = translations()  # name


class OptionGroup(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("product_id", "code"),)
    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    code: str = Field(max_length=32)
    name: str = Field(max_length=200)
    multiple: bool = Field(default=False, description="several options may be chosen")
    required: bool = Field(default=True)
    position: int = Field(default=0)


class Option(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("product_id", "code"),)
    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    group_id: int = Field(foreign_key="optiongroup.id", index=True)
    code: str = Field(max_length=32)
    name: str = Field(max_length=200)
    position: int = Field(default=0)
    translations: dict[str, dict[str, str]] = translations()  # name


class OptionRule(SQLModel, table=True):
    """``option`` requires / excludes ``other`` (both option codes of the product)."""

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    kind: str = Field(max_length=8, description="requires | excludes")
    option: str = Field(max_length=32)
    other: str = Field(max_length=32)
    message: str = Field(default="", max_length=300)


class Operation(SQLModel, table=True):
    """One routing step of a product, done at a station of ``station_kind``."""

    __table_args__ = (sa.UniqueConstraint("product_id", "code"),)
    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    code: str = Field(max_length=32)
    sequence: int = Field(description="order in the routing, ascending")
    name: str = Field(max_length=200)
    station_kind: str = Field(max_length=32)
    instructions: str = Field(default="", max_length=4000)
    image: str = Field(default="", max_length=300, description="static path or URL of a picture")
    standard_seconds: int = Field(default=300)
    required_skill: str | None = Field(default=None, max_length=32)
    when_options: list[str] = json_list()
    translations: dict[str, dict[str, str]] = translations()  # name, instructions


class BomLine(SQLModel, table=True):
    """A component of a product, picked at operation ``operation_code``."""

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    part_id: int = Field(foreign_key="part.id", index=True)
    quantity: int = Field(default=1, gt=0)
    operation_code: str = Field(max_length=32)
    when_options: list[str] = json_list()


class Reason(SQLModel, table=True):
    """A reason a station offers: why an andon is called (``kind`` andon) or what a
    defect is (``kind`` defect); the import's ``reasons`` section. Without any of a
    kind, the built-in ones apply (``station.messages``)."""

    __table_args__ = (sa.UniqueConstraint("kind", "code"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16, description="andon | defect")
    code: str = Field(max_length=32)
    name: str = Field(max_length=200)
    position: int = Field(default=0)
    translations: dict[str, dict[str, str]] = translations()  # name
