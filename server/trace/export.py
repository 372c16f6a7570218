"""Exports of a genealogy and of a recall: CSV rows and a printable device history
record (PDF, fpdf2).

The PDF uses DejaVu Sans when the system has it (accents, any Latin or Cyrillic name);
otherwise the core Helvetica font with text reduced to Latin-1 (``?`` for the rest), so
odd data never makes an export fail. The CSV goes through ``server.exports`` (the one
writer of every export: a cell a spreadsheet would run as a formula gets a leading ``'``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF

from server import exports
from server.models.types import rfc3339
from server.trace.genealogy import Genealogy
from server.trace.recall import Component, Hit
from station.checks import limits_text

log = logging.getLogger(__name__)

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts"),
)
GENEALOGY_COLUMNS = (
    "unit",
    "level",
    "kind",
    "operation",
    "sku",
    "description",
    "quantity",
    "lot",
    "serial",
    "for_sku",
    "station",
    "operator",
    "start",
    "end",
    "paused_s",
    "duration_s",
    "standard_s",
    "scan",
    "note",
)
RECALL_COLUMNS = (
    "serial",
    "product",
    "status",
    "order",
    "customer",
    "due_date",
    "component",
    "lot",
    "component_serial",
    "level",
    "via",
)
ORDER_COLUMNS = (
    "unit",
    "sku",
    "description",
    "quantity",
    "lot",
    "serial",
    "for_sku",
    "substituted",
    "via",
)


def _text(value: Any) -> str:
    """A value as the PDF prints it (no CSV neutralising: a PDF runs no formula)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return rfc3339(value) or ""
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _csv_value(value: Any) -> Any:
    """Seconds to a tenth in the CSV; everything else as ``server.exports`` writes it."""
    return round(value, 1) if isinstance(value, float) else value


def genealogy_rows(g: Genealogy) -> Iterator[list[Any]]:
    """One row per component, step and defect; sub-assemblies follow their pick."""
    for s in g.steps:
        yield [
            g.serial,
            g.depth,
            "step",
            s.operation,
            "",
            s.name,
            "",
            "",
            "",
            "",
            s.station,
            s.operator,
            s.started_at,
            s.ended_at,
            s.paused_seconds,
            s.duration_seconds,
            s.standard_seconds,
            "",
            "",
        ]
    for p in g.picks:
        yield [
            g.serial,
            g.depth,
            "component",
            p.operation,
            p.sku,
            p.description,
            p.quantity,
            p.lot_code,
            p.serial,
            p.for_sku,
            p.station,
            p.operator,
            p.at,
            "",
            "",
            "",
            "",
            p.scan,
            "; ".join(
                n
                for n in (
                    "substitute" if p.substituted else "",
                    f"removed {_short(p.removed_at)}" if p.removed_at else "",
                )
                if n
            ),
        ]
        if p.sub_unit is not None:
            yield from genealogy_rows(p.sub_unit)
    for d in g.defects:
        yield [
            g.serial,
            g.depth,
            "defect",
            d.operation,
            d.reason_code,
            d.note,
            "",
            "",
            "",
            "",
            d.station,
            d.operator,
            d.at,
            d.resolved_at,
            "",
            "",
            "",
            "",
            d.disposition,
        ]
    for c in g.quality.get("checks", []):
        value = "" if c["value"] is None else f"{c['value']:g} {c['unit']} "
        limits = _limits(c["lower"], c["upper"], c["unit"])
        yield [
            g.serial,
            g.depth,
            "check",
            "",
            c["check"],
            c["name"],
            "",
            "",
            "",
            "",
            c["station"],
            c["operator"],
            c["at"],
            "",
            "",
            "",
            "",
            c["tool"] or c["source"],
            f"{'pass' if c['passed'] else 'fail'} {value}{f'({limits})' if limits else ''}".strip(),
        ]


def to_csv(columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    return exports.to_csv(columns, ([_csv_value(v) for v in row] for row in rows))


def genealogy_csv(g: Genealogy) -> str:
    return to_csv(GENEALOGY_COLUMNS, genealogy_rows(g))


def recall_csv(hits: Iterable[Hit]) -> str:
    return to_csv(
        RECALL_COLUMNS,
        (
            (
                h.serial,
                h.product,
                h.status,
                h.order,
                h.customer,
                h.due_date,
                h.component,
                h.lot,
                h.component_serial,
                h.level,
                h.via,
            )
            for h in hits
        ),
    )


def order_csv(components: Iterable[Component]) -> str:
    return to_csv(
        ORDER_COLUMNS,
        (
            (
                c.unit,
                c.sku,
                c.description,
                c.quantity,
                c.lot,
                c.serial,
                c.for_sku,
                "yes" if c.sku != c.for_sku else "",
                c.via,
            )
            for c in components
        ),
    )


class _Doc(FPDF):
    photos: Path | None = None  # the check photos' folder (server.quality.views)

    def __init__(self) -> None:
        super().__init__(format="A4")
        self.unicode = False
        for folder in FONT_DIRS:
            if (folder / "DejaVuSans.ttf").exists() and (folder / "DejaVuSans-Bold.ttf").exists():
                self.add_font("DejaVu", "", str(folder / "DejaVuSans.ttf"))
                self.add_font("DejaVu", "B", str(folder / "DejaVuSans-Bold.ttf"))
                self.unicode = True
                break
        self.family = "DejaVu" if self.unicode else "Helvetica"
        self.set_auto_page_break(auto=True, margin=15)

    def text_(self, value: Any) -> str:
        text = _text(value)
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def font(self, size: float, bold: bool = False) -> None:
        self.set_font(self.family, "B" if bold else "", size)

    def line_(self, text: Any, h: float = 5.5) -> None:
        self.multi_cell(0, h, self.text_(text), new_x="LMARGIN", new_y="NEXT")

    def grid(self, widths: list[float], header: list[str], rows: list[list[Any]]) -> None:
        """A table whose cells wrap: every character of the data is printed."""
        self.font(8)
        with self.table(
            col_widths=widths, text_align="LEFT", line_height=4.2, first_row_as_headings=True
        ) as table:
            for values in [header, *rows]:
                row = table.row()
                for v in values:
                    row.cell(self.text_(v))


def genealogy_pdf(
    g: Genealogy, *, printed_by: str, printed_at: datetime, photos: Path | None = None
) -> bytes:
    """A device history record: identity, components, steps, defects, checks and
    measurements (with thumbnails of the check photos found under ``photos``), rework,
    signatures."""
    doc = _Doc()
    doc.photos = photos
    doc.add_page()
    _dhr(doc, g)
    doc.ln(4)
    doc.font(8)
    doc.line_(
        f"Printed {printed_at:%Y-%m-%d %H:%M} UTC by {printed_by}. "
        "Times are UTC; durations exclude pauses."
    )
    return bytes(doc.output())


def _dhr(doc: _Doc, g: Genealogy) -> None:
    doc.font(15, bold=True)
    title = "Device history record" if g.depth == 0 else "Sub-assembly"
    doc.line_(f"{title}: {g.serial}", h=8)
    doc.font(10)
    for label, value in (
        ("Product", f"{g.product} - {g.product_name}"),
        ("Options", ", ".join(g.options) or "-"),
        ("Order", f"{g.order or '-'} ({g.customer or '-'}), work order {g.work_order or '-'}"),
        ("Status", f"{g.status}; completed {_text(g.completed_at) or '-'}"),
        (
            "Assembly time",
            f"{g.assembly_seconds / 60:.1f} min worked "
            f"(standard {g.standard_seconds / 60:.1f} min)",
        ),
        ("Built into", g.built_into or "-"),
    ):
        doc.line_(f"{label}: {value}")
    doc.ln(2)
    doc.font(11, bold=True)
    doc.line_("Steps")
    doc.grid(
        [16, 18, 34, 34, 34, 18, 18, 18],
        ["Op", "Station", "Operator", "Start", "End", "Paused s", "Worked s", "Std s"],
        [
            [
                s.operation,
                s.station,
                s.operator,
                _short(s.started_at),
                _short(s.ended_at),
                round(s.paused_seconds),
                _round(s.duration_seconds),
                s.standard_seconds,
            ]
            for s in g.steps
        ],
    )
    doc.ln(2)
    doc.font(11, bold=True)
    doc.line_("Components")
    doc.grid(
        [12, 24, 50, 10, 36, 24, 34],
        ["Op", "Part", "Description", "Qty", "Lot / serial", "For", "Confirmed"],
        [
            [
                p.operation,
                p.sku,
                p.description,
                p.quantity,
                p.serial or p.lot_code or "",
                p.for_sku if p.substituted else "",
                _short(p.at),
            ]
            for p in g.picks
        ],
    )
    if g.defects:
        doc.ln(2)
        doc.font(11, bold=True)
        doc.line_("Defects and rework")
        doc.grid(
            [24, 22, 60, 20, 32, 32],
            ["Reason", "Station", "Note", "Disposition", "At", "Resolved"],
            [
                [
                    d.reason_code,
                    d.station,
                    d.note,
                    d.disposition,
                    _short(d.at),
                    _short(d.resolved_at),
                ]
                for d in g.defects
            ],
        )
    _quality(doc, g)
    for p in g.picks:
        if p.sub_unit is not None:
            doc.ln(4)
            _dhr(doc, p.sub_unit)


def _quality(doc: _Doc, g: Genealogy) -> None:
    """Checks and measurements, removed and installed components, NCRs (issue 15)."""
    q = g.quality
    if q.get("checks"):
        doc.ln(2)
        doc.font(11, bold=True)
        doc.line_("Checks and measurements")
        doc.grid(
            [34, 18, 26, 12, 22, 22, 16, 30],
            ["Check", "Value", "Limits", "Result", "Tool", "Station", "By", "At"],
            [
                [
                    c["name"],
                    "" if c["value"] is None else f"{c['value']:g} {c['unit']}",
                    _limits(c["lower"], c["upper"], c["unit"]),
                    "pass" if c["passed"] else "FAIL",
                    c["tool"] or c["source"],
                    c["station"],
                    c["operator"],
                    c["at"],
                ]
                for c in q["checks"]
            ],
        )
        _thumbnails(doc, [c for c in q["checks"] if c["photo"]])
    if q.get("component_changes"):
        doc.ln(2)
        doc.font(11, bold=True)
        doc.line_("Components removed and installed in rework")
        doc.grid(
            [20, 24, 40, 20, 30, 42],
            ["Action", "Part", "Lot / serial", "Station", "By", "At"],
            [
                [
                    c["action"],
                    c["sku"],
                    c["serial"] or c["lot"] or "",
                    c["station"],
                    c["by"],
                    c["at"],
                ]
                for c in q["component_changes"]
            ],
        )
    if q.get("non_conformances"):
        doc.ln(2)
        doc.font(11, bold=True)
        doc.line_("Non-conformances")
        doc.grid(
            [22, 30, 30, 20, 24, 50],
            ["NCR", "Cause", "Value", "Status", "Disposition", "Reason"],
            [
                [
                    n["ncr"],
                    n["characteristic"] or n["cause"],
                    "" if n["value"] is None else f"{n['value']:g} {n['unit']}",
                    n["status"],
                    n["disposition"] or "",
                    n["disposition_reason"],
                ]
                for n in q["non_conformances"]
            ],
        )


def _thumbnails(doc: _Doc, checks: list[dict[str, Any]]) -> None:
    """The check photos, 40 mm wide, each with its check's name and time."""
    if doc.photos is None:
        return
    root = doc.photos.resolve()
    for c in checks:
        path = (root / str(c["photo"])).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            continue  # never outside the photos folder; a missing file is skipped
        doc.ln(1)
        doc.font(8)
        doc.line_(f"{c['name']} ({c['at']})")
        try:
            doc.image(str(path), w=40)
        except Exception as exc:  # noqa: BLE001 - a broken image must not lose the record
            log.warning("photo %s not printed in the record: %s", path.name, exc)
            doc.line_(f"[photo {path.name} could not be read]")


def _limits(lower: float | None, upper: float | None, unit: str) -> str:
    return limits_text(lower, upper, unit)


def _short(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _round(value: float | None) -> Any:
    return None if value is None else round(value)
