"""Import a plant, a catalog and stock from YAML or CSV: all of it, or none of it.

A YAML document may hold any of the sections ``plant``, ``locations``, ``parts``,
``products``, ``operators`` and ``stock`` (see docs/import.md). A CSV file holds one
section, recognised by its header (``sku,...`` parts; ``part,...`` stock). Every
problem is reported with its line and field; the database is left unchanged when
there is any.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session, select

from server.inventory import ledger
from server.models import (
    BomLine,
    Line,
    Location,
    Operation,
    Operator,
    Option,
    OptionGroup,
    OptionRule,
    Part,
    PartIdentifier,
    PartSubstitute,
    Product,
    Reason,
    Site,
    Station,
    StockLot,
)
from server.models.types import Role, Tracking, pk
from server.promise import imports as calendars
from server.quality import catalog as quality_catalog

LOCALE = re.compile(r"^[a-z]{2,3}([_-][A-Za-z]{2,4})?$")

SECTIONS = (
    "plant",
    "locations",
    "parts",
    "products",
    "operators",
    "stock",
    "receipts",
    "reasons",
)
REASON_KINDS = ("andon", "defect")


@dataclass
class ImportProblem:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


class ImportError_(Exception):  # noqa: N801 - avoid shadowing the builtin ImportError
    def __init__(self, source: str, problems: list[ImportProblem]) -> None:
        self.source = source
        self.problems = problems
        shown = "\n".join(f"  {source}: {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s), nothing imported:\n{shown}{more}")


@dataclass
class ImportReport:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, section: str, n: int = 1) -> None:
        self.counts[section] = self.counts.get(section, 0) + n


class _LineLoader(yaml.SafeLoader):
    """Records the line of every mapping as ``__line__`` (1-based)."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = {str(k): v for k, v in loader.construct_mapping(node, deep=True).items()}
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_file(path: Path) -> dict[str, Any]:
    """Parse a YAML or CSV file into a document of sections."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        return parse_csv(text, source=str(path))
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise ImportError_(
            str(path), [ImportProblem(line, "yaml", str(exc).splitlines()[0])]
        ) from exc
    if not isinstance(doc, dict):
        raise ImportError_(
            str(path), [ImportProblem(1, "document", "expected a mapping of sections")]
        )
    return doc


def parse_csv(text: str, *, source: str) -> dict[str, Any]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if "sku" in header:
        section = "parts"
    elif "part" in header and "expected" in header:
        section = "receipts"  # scheduled receipts (server.promise.imports)
    elif "part" in header:
        section = "stock"
    else:
        raise ImportError_(
            source,
            [
                ImportProblem(
                    1, "header", "expected a parts CSV (sku,...) or a stock CSV (part,...)"
                )
            ],
        )
    rows = []
    for row in reader:
        item: dict[str, Any] = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        item["__line__"] = reader.line_num
        for key in ("gtins", "patterns", "substitutes"):
            if key in item:
                item[key] = [x for x in re.split(r"[;|]", item[key]) if x]
        rows.append(item)
    return {section: rows}


class _Importer:
    def __init__(self, session: Session, by: str) -> None:
        self.db = session
        self.by = by
        self.problems: list[ImportProblem] = []
        self.report = ImportReport()

    # -- helpers -------------------------------------------------------------
    def problem(self, item: dict[str, Any], fld: str, message: str) -> None:
        self.problems.append(ImportProblem(int(item.get("__line__", 0)), fld, message))

    def text(
        self,
        item: dict[str, Any],
        key: str,
        *,
        required: bool = True,
        default: str = "",
        max_len: int = 200,
    ) -> str:
        value = item.get(key)
        if value is None or value == "":
            if required:
                self.problem(item, key, "is required")
            return default
        value = str(value).strip()
        if len(value) > max_len:
            self.problem(item, key, f"is longer than {max_len} characters")
        return value

    def integer(self, item: dict[str, Any], key: str, default: int, *, minimum: int = 0) -> int:
        value = item.get(key, default)
        if value in (None, ""):
            return default
        try:
            number = int(value)
        except (TypeError, ValueError):
            self.problem(item, key, f"{value!r} is not a whole number")
            return default
        if number < minimum:
            self.problem(item, key, f"must be at least {minimum}")
        return number

    def items(self, doc: dict[str, Any], section: str) -> Iterator[dict[str, Any]]:
        values = doc.get(section) or []
        if not isinstance(values, list):
            self.problem(doc, section, "expected a list")
            return
        for item in values:
            if not isinstance(item, dict):
                self.problem(doc, section, f"expected a mapping, got {item!r}")
                continue
            yield item

    def translations(self, item: dict[str, Any], **fields: int) -> dict[str, dict[str, str]]:
        """The item's ``translations``: ``{locale: {field: text}}`` for the named
        ``fields`` (each with its length limit), e.g. ``{"fr": {"name": "Kit du boîtier"}}``.
        A text without a translation shows in the catalog's own language."""
        given = item.get("translations")
        if given is None:
            return {}
        if not isinstance(given, dict):
            self.problem(item, "translations", "must map a locale to its texts")
            return {}
        out: dict[str, dict[str, str]] = {}
        for locale, texts in given.items():
            if locale == "__line__":
                continue
            if not isinstance(locale, str) or not LOCALE.match(locale):
                self.problem(item, "translations", f"{str(locale)[:16]!r} is not a locale")
                continue
            if not isinstance(texts, dict):
                self.problem(item, "translations", f"{locale}: must map a field to its text")
                continue
            for key, value in texts.items():
                if key == "__line__":
                    continue
                if key not in fields:
                    self.problem(
                        item, "translations", f"{locale}: {str(key)[:32]!r} is not translatable"
                    )
                elif not isinstance(value, str) or len(value.strip()) > fields[key]:
                    self.problem(
                        item, "translations", f"{locale}.{key}: text of at most {fields[key]}"
                    )
                elif value.strip():
                    out.setdefault(locale, {})[key] = value.strip()
        return out

    def by_code(self, model: Any, column: Any, value: str) -> Any:
        return self.db.exec(select(model).where(column == value)).first()

    # -- sections ------------------------------------------------------------
    def plant(self, doc: dict[str, Any]) -> None:
        plant = doc.get("plant")
        if not plant:
            return
        site_code = self.text(plant, "site")
        site = self.by_code(Site, Site.code, site_code) or Site(
            code=site_code, name=self.text(plant, "name", required=False, default=site_code)
        )
        self.db.add(site)
        self.db.flush()
        self.report.add("sites")
        for line_item in self.items(plant, "lines"):
            code = self.text(line_item, "code", max_len=32)
            line = self.db.exec(
                select(Line).where(Line.site_id == site.id, Line.code == code)
            ).first() or Line(site_id=pk(site), code=code, name="")
            line.name = self.text(line_item, "name", required=False, default=code)
            line.takt_seconds = self.integer(line_item, "takt_seconds", 300, minimum=1)
            self.db.add(line)
            self.db.flush()
            self.report.add("lines")
            calendars.line_calendar(self, line_item, line)
            for pos, st in enumerate(self.items(line_item, "stations")):
                st_code = self.text(st, "code", max_len=32)
                station = self.by_code(Station, Station.code, st_code) or Station(
                    line_id=pk(line), code=st_code, name="", kind=""
                )
                station.line_id = pk(line)
                station.name = self.text(st, "name", required=False, default=st_code)
                station.kind = self.text(st, "kind", max_len=32)
                station.translations = self.translations(st, name=200)
                station.position = pos
                self.db.add(station)
                self.report.add("stations")

    def reasons(self, doc: dict[str, Any]) -> None:
        """``reasons: {andon: [{code, name, translations}], defect: [...]}``: the list
        the tablet offers, in this order; a kind given replaces that kind's list."""
        section = doc.get("reasons")
        if not isinstance(section, dict):
            self.problem(doc, "reasons", "must map andon / defect to a list of reasons")
            return
        for kind in section:
            if kind != "__line__" and kind not in REASON_KINDS:
                self.problem(section, "reasons", f"{str(kind)[:32]!r} is not andon or defect")
        for kind in REASON_KINDS:
            if kind not in section:
                continue
            for old in self.db.exec(select(Reason).where(Reason.kind == kind)):
                self.db.delete(old)
            self.db.flush()
            seen: set[str] = set()
            for pos, item in enumerate(self.items(section, kind)):
                code = self.text(item, "code", max_len=32)
                if code in seen:
                    self.problem(item, "code", f"reason {code!r} appears twice")
                seen.add(code)
                self.db.add(
                    Reason(
                        kind=kind,
                        code=code,
                        name=self.text(item, "name"),
                        position=pos,
                        translations=self.translations(item, name=200),
                    )
                )
                self.report.add("reasons")
        self.db.flush()

    def receipts(self, doc: dict[str, Any]) -> None:
        calendars.receipt_items(self, self.items(doc, "receipts"))

    def locations(self, doc: dict[str, Any]) -> None:
        for item in self.items(doc, "locations"):
            code = self.text(item, "code", max_len=32)
            loc = self.by_code(Location, Location.code, code) or Location(code=code, name="")
            loc.name = self.text(item, "name", required=False, default=code)
            loc.kind = self.text(item, "kind", required=False, default="warehouse")
            self.db.add(loc)
            self.report.add("locations")
        self.db.flush()

    def parts(self, doc: dict[str, Any]) -> None:
        pending_subs: list[tuple[dict[str, Any], Part, list[str]]] = []
        for item in self.items(doc, "parts"):
            sku = self.text(item, "sku", max_len=64)
            part = self.by_code(Part, Part.sku, sku) or Part(sku=sku, description="")
            part.description = self.text(item, "description", max_len=300)
            tracking = self.text(item, "tracking", required=False, default=Tracking.NONE)
            if tracking not in {t.value for t in Tracking}:
                self.problem(item, "tracking", f"{tracking!r} is not one of none, lot, serial")
            part.tracking = tracking
            part.bin_location = self.text(item, "bin", required=False, max_len=32)
            part.uom = self.text(item, "uom", required=False, default="ea", max_len=8)
            part.translations = self.translations(item, description=300)
            self.db.add(part)
            self.db.flush()
            for kind, key in (("gtin", "gtins"), ("pattern", "patterns"), ("code", "codes")):
                for value in item.get(key) or []:
                    self.identifier(item, part, kind, str(value))
            pending_subs.append((item, part, list(item.get("substitutes") or [])))
            self.report.add("parts")
        for item, part, subs in pending_subs:
            for priority, sub_sku in enumerate(subs, start=1):
                sub = self.by_code(Part, Part.sku, sub_sku)
                if sub is None:
                    self.problem(item, "substitutes", f"unknown part {sub_sku!r}")
                    continue
                exists = self.db.exec(
                    select(PartSubstitute).where(
                        PartSubstitute.part_id == part.id, PartSubstitute.substitute_id == sub.id
                    )
                ).first()
                if not exists:
                    self.db.add(
                        PartSubstitute(part_id=pk(part), substitute_id=sub.id, priority=priority)
                    )

    def identifier(self, item: dict[str, Any], part: Part, kind: str, value: str) -> None:
        if kind == "gtin" and not _valid_gtin(value):
            self.problem(item, "gtins", f"{value!r} is not a valid GTIN (length or check digit)")
            return
        if kind == "pattern":
            try:
                re.compile(value)
            except re.error as exc:
                self.problem(item, "patterns", f"{value!r} is not a regular expression: {exc}")
                return
        if kind == "gtin":
            value = value.zfill(14)
        owner = self.db.exec(
            select(PartIdentifier).where(PartIdentifier.kind == kind, PartIdentifier.value == value)
        ).first()
        if owner is None:
            self.db.add(PartIdentifier(part_id=pk(part), kind=kind, value=value))
        elif owner.part_id != part.id:
            self.problem(item, f"{kind}s", f"{value!r} already identifies another part")

    def products(self, doc: dict[str, Any]) -> None:
        for item in self.items(doc, "products"):
            code = self.text(item, "code", max_len=32)
            if self.by_code(Product, Product.code, code) is not None:
                self.problem(item, "code", f"product {code!r} already exists")
                continue
            product = Product(
                code=code,
                name=self.text(item, "name"),
                serial_pattern=self.text(
                    item, "serial_pattern", required=False, default="{product}-{seq:06d}"
                ),
                description=self.text(item, "description", required=False, max_len=1000),
                translations=self.translations(item, name=200),
            )
            line_code = item.get("line")
            if line_code:
                line = self.by_code(Line, Line.code, str(line_code))
                if line is None:
                    self.problem(item, "line", f"unknown line {line_code!r}")
                else:
                    product.line_id = line.id
            self.db.add(product)
            self.db.flush()
            self.product_body(item, product)
            self.built_as_part(item, product)
            self.report.add("products")

    def built_as_part(self, item: dict[str, Any], product: Product) -> None:
        """``part: SKU``: a unit of this product is that part (a sub-assembly, picked by
        its serial into other products; see docs/traceability.md)."""
        sku = item.get("part")
        if not sku:
            return
        part = self.by_code(Part, Part.sku, str(sku))
        if part is None:
            self.problem(item, "part", f"unknown part {sku!r}")
        elif part.tracking != Tracking.SERIAL:
            self.problem(item, "part", f"part {sku!r} must be serial-tracked to be built here")
        else:
            part.product_id = product.id
            self.db.add(part)

    def product_body(self, item: dict[str, Any], product: Product) -> None:
        codes: set[str] = set()
        for pos, g in enumerate(self.items(item, "option_groups")):
            group = OptionGroup(
                product_id=pk(product),
                code=self.text(g, "code", max_len=32),
                name=self.text(g, "name"),
                multiple=bool(g.get("multiple")),
                required=bool(g.get("required", True)),
                position=pos,
            )
            self.db.add(group)
            self.db.flush()
            for opos, o in enumerate(self.items(g, "options")):
                ocode = self.text(o, "code", max_len=32)
                if ocode in codes:
                    self.problem(o, "code", f"option {ocode!r} appears twice")
                codes.add(ocode)
                self.db.add(
                    Option(
                        product_id=pk(product),
                        group_id=pk(group),
                        code=ocode,
                        name=self.text(o, "name"),
                        position=opos,
                        translations=self.translations(o, name=200),
                    )
                )

        def check_codes(obj: dict[str, Any], key: str, values: list[str]) -> list[str]:
            for v in values:
                if v.lstrip("!") not in codes:
                    self.problem(obj, key, f"unknown option {v!r}")
            return values

        for r in self.items(item, "rules"):
            option = self.text(r, "option", max_len=32)
            check_codes(r, "option", [option])
            kinds = [k for k in ("requires", "excludes") if k in r]
            if len(kinds) != 1:
                self.problem(r, "rule", "give exactly one of requires / excludes")
                continue
            other = str(r[kinds[0]])
            check_codes(r, kinds[0], [other])
            self.db.add(
                OptionRule(
                    product_id=pk(product),
                    kind=kinds[0],
                    option=option,
                    other=other,
                    message=self.text(r, "message", required=False, max_len=300),
                )
            )
        ops: set[str] = set()
        for o in self.items(item, "operations"):
            ocode = self.text(o, "code", max_len=32)
            ops.add(ocode)
            operation = Operation(
                product_id=pk(product),
                code=ocode,
                sequence=self.integer(o, "sequence", 10),
                name=self.text(o, "name"),
                station_kind=self.text(o, "station_kind", max_len=32),
                instructions=self.text(o, "instructions", required=False, max_len=4000),
                image=self.text(o, "image", required=False, max_len=300),
                standard_seconds=self.integer(o, "standard_seconds", 300, minimum=1),
                required_skill=o.get("skill") or None,
                when_options=check_codes(o, "when", _as_list(o.get("when"))),
                translations=self.translations(o, name=200, instructions=4000),
            )
            self.db.add(operation)
            if o.get("checks"):  # quality checks of the operation (docs/quality.md)
                self.db.flush()
                quality_catalog.import_checks(
                    self, o, operation_id=pk(operation), when=check_codes, as_list=_as_list
                )
        for b in self.items(item, "bom"):
            sku = self.text(b, "part", max_len=64)
            part = self.by_code(Part, Part.sku, sku)
            if part is None:
                self.problem(b, "part", f"unknown part {sku!r}")
                continue
            op_code = self.text(b, "operation", max_len=32)
            if op_code not in ops:
                self.problem(b, "operation", f"unknown operation {op_code!r}")
            self.db.add(
                BomLine(
                    product_id=pk(product),
                    part_id=part.id,
                    quantity=self.integer(b, "qty", 1, minimum=1),
                    operation_code=op_code,
                    when_options=check_codes(b, "when", _as_list(b.get("when"))),
                )
            )

    def operators(self, doc: dict[str, Any]) -> None:
        from server.security.secrets import hash_secret

        for item in self.items(doc, "operators"):
            badge = self.text(item, "badge", max_len=64)
            op = self.by_code(Operator, Operator.badge, badge) or Operator(badge=badge, name="")
            op.name = self.text(item, "name")
            role = self.text(item, "role", required=False, default=Role.OPERATOR)
            if role not in {r.value for r in Role}:
                self.problem(item, "role", f"{role!r} is not one of operator, supervisor, admin")
            op.role = role
            op.skills = _as_list(item.get("skills"))
            op.locale = self.text(item, "locale", required=False, default="en", max_len=8)
            op.username = item.get("username") or None
            number = self.text(item, "number", required=False, max_len=16) or None
            if number is not None and not number.isdigit():
                self.problem(item, "number", "an operator number is digits only")
            op.number = number
            if item.get("password"):
                op.password_hash = hash_secret(str(item["password"]))
            if item.get("pin"):
                op.pin_hash = hash_secret(str(item["pin"]))
            self.db.add(op)
            self.report.add("operators")

    def stock(self, doc: dict[str, Any]) -> None:
        for item in self.items(doc, "stock"):
            sku = self.text(item, "part", max_len=64)
            part = self.by_code(Part, Part.sku, sku)
            loc_code = self.text(item, "location", max_len=32)
            loc = self.by_code(Location, Location.code, loc_code)
            if part is None:
                self.problem(item, "part", f"unknown part {sku!r}")
            if loc is None:
                self.problem(item, "location", f"unknown location {loc_code!r}")
            expires = None
            if item.get("expires"):
                try:
                    expires = date.fromisoformat(str(item["expires"]))
                except ValueError:
                    self.problem(item, "expires", f"{item['expires']!r} is not a date YYYY-MM-DD")
            if part is None or loc is None:
                continue
            serials = self.serials(item, part)
            lot_code = self.text(item, "lot", required=part.tracking == Tracking.LOT, max_len=64)
            if part.tracking != Tracking.SERIAL and serials:
                self.problem(item, "serial", f"{sku} is not serial-tracked")
                continue
            for serial in serials:
                existing = self.db.exec(
                    select(StockLot).where(StockLot.part_id == part.id, StockLot.serial == serial)
                ).first()
                if existing is not None:
                    self.problem(item, "serial", f"serial {serial} of {sku} is already in stock")
                    continue
                ledger.receive(
                    self.db,
                    part=part,
                    location_id=loc.id,
                    quantity=1,
                    by=self.by,
                    lot_code=lot_code,
                    serial=serial,
                    expires_on=expires,
                )
            if not serials:
                qty = self.integer(item, "qty", 0, minimum=1)
                if qty > 0:
                    ledger.receive(
                        self.db,
                        part=part,
                        location_id=loc.id,
                        quantity=qty,
                        by=self.by,
                        lot_code=lot_code,
                        expires_on=expires,
                    )
            self.report.add("stock lines")

    def serials(self, item: dict[str, Any], part: Part) -> list[str]:
        if item.get("serial"):
            return [str(item["serial"])]
        fmt, count = item.get("serial_format"), item.get("count")
        if fmt:
            n = self.integer(item, "count", 0, minimum=1)
            start = self.integer(item, "start", 1, minimum=0)
            try:
                return [str(fmt).format(i) for i in range(start, start + n)]
            except (IndexError, KeyError, ValueError) as exc:
                self.problem(item, "serial_format", f"{fmt!r} is not a format: {exc}")
                return []
        if part.tracking == Tracking.SERIAL and count is None:
            self.problem(
                item,
                "serial",
                f"{part.sku} is serial-tracked: give serial or serial_format and count",
            )
        return []


def _as_list(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [v.strip() for v in re.split(r"[,;]", value) if v.strip()]
    return [str(v) for v in value]


def _valid_gtin(value: str) -> bool:
    if not value.isdigit() or len(value) not in (8, 12, 13, 14):
        return False
    digits = [int(c) for c in value.zfill(14)]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits[:-1]))
    return (10 - total % 10) % 10 == digits[-1]


def import_document(
    session: Session,
    doc: dict[str, Any],
    *,
    source: str,
    by: str,
    progress: Callable[[str], None] | None = None,
) -> ImportReport:
    """Apply ``doc`` inside the caller's transaction; raise ``ImportError_`` on any problem.

    The caller owns the transaction and rolls it back on error, so nothing is half-written.
    """
    unknown = sorted(k for k in doc if k not in SECTIONS and k != "__line__")
    importer = _Importer(session, by)
    for key in unknown:
        importer.problem(doc, key, f"unknown section; expected one of {', '.join(SECTIONS)}")
    for section in SECTIONS:
        if section in doc:
            if progress:
                progress(section)
            getattr(importer, section)(doc)
            session.flush()
    if importer.problems:
        raise ImportError_(source, importer.problems)
    return importer.report
