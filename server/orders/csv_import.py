"""Import customer orders from CSV, all or nothing, through the same intake as the API.

Columns (header row, any order): ``number, customer, due_date, priority, product,
quantity, options``. One row per order line; rows sharing a ``number`` form one order
(header fields are taken from its first row). ``options`` are option codes separated by
spaces or semicolons. Every problem names its CSV line.
"""

from __future__ import annotations

import csv
import io
import logging

from sqlmodel import Session

from server.orders.intake import InvalidOrder, create_order, from_mapping

log = logging.getLogger(__name__)
REQUIRED = ("number", "customer", "due_date", "product", "quantity")


class CsvOrderError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("CSV refused: " + " ".join(problems))
        self.problems = problems


def parse(text: str) -> tuple[list[dict[str, object]], dict[str, int]]:
    """Orders as intake mappings, and the CSV line of each order's first row."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CsvOrderError([f"line 1: missing column(s) {', '.join(missing)}."])
    reader.fieldnames = header
    orders: dict[str, dict[str, object]] = {}
    first_line: dict[str, int] = {}
    for row in reader:
        values = {k: (v or "").strip() for k, v in row.items() if k}
        number = values.get("number", "")
        if not any(values.values()):
            continue
        if number not in orders:
            first_line[number] = reader.line_num
            orders[number] = {
                "number": number,
                "customer": values.get("customer", ""),
                "due_date": values.get("due_date", ""),
                "priority": values.get("priority") or 0,
                "lines": [],
            }
        lines = orders[number]["lines"]
        assert isinstance(lines, list)
        lines.append(
            {
                "product": values.get("product", ""),
                "quantity": values.get("quantity", ""),
                "options": values.get("options", ""),
                "csv_line": reader.line_num,
            }
        )
    if not orders:
        raise CsvOrderError(["the file has no order rows."])
    return list(orders.values()), first_line


def import_orders(
    session: Session, *, text: str, by: str, address: str = "", source: str = ""
) -> list[str]:
    """Create every order of the CSV or none (the caller's transaction is rolled back on
    ``CsvOrderError``). Returns the order numbers created."""
    docs, first_line = parse(text)
    problems: list[str] = []
    created: list[str] = []
    for doc in docs:
        at = first_line[str(doc["number"])]
        csv_lines = [li.pop("csv_line") for li in doc["lines"]]  # type: ignore[attr-defined]
        try:
            order = create_order(
                session, order=from_mapping(doc), by=by, address=address, channel="csv"
            )
            created.append(order.number)
        except InvalidOrder as exc:
            for p in exc.problems:
                # "line N ..." from the intake means the Nth line of this order.
                if p.startswith("line ") and p[5:].split(" ")[0].rstrip(":").isdigit():
                    n = int(p[5:].split(" ")[0].rstrip(":"))
                    problems.append(f"CSV line {csv_lines[n - 1]}: {p}")
                else:
                    problems.append(f"CSV line {at}: order {doc['number'] or '?'}: {p}")
    if problems:
        raise CsvOrderError(problems)
    log.info("imported %d order(s) from CSV %s", len(created), source)
    return created
