"""Checks in the catalog import format (docs/quality.md): a ``checks`` list under an
operation of a product, with configure-to-order ``when`` rules like BOM lines::

    operations:
      - code: BRD
        ...
        checks:
          - {code: TQ-M3, kind: count, name: Torque M3 board screws, count: 4,
             nominal: 0.6, lower: 0.5, upper: 0.7, unit: Nm, source: torque}
          - {code: LED, kind: pass_fail, name: Power LED lights green, when: [wifi],
             translations: {fr: {name: Le voyant d’alimentation s’allume en vert}}}

A check's ``name`` and ``instructions`` may be translated like an operation's (the
tablet shows them in the operator's language); ``unit`` is a symbol (Nm, kg, mm),
the same in every language.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from sqlmodel import Session

from server.models import Check
from station import checks as qc


class _Importer(Protocol):
    db: Session

    def problem(self, item: dict[str, Any], fld: str, message: str) -> None: ...

    def text(
        self,
        item: dict[str, Any],
        key: str,
        *,
        required: bool = True,
        default: str = "",
        max_len: int = 200,
    ) -> str: ...

    def integer(self, item: dict[str, Any], key: str, default: int, *, minimum: int = 0) -> int: ...

    def items(self, doc: dict[str, Any], section: str) -> Any: ...

    def translations(self, item: dict[str, Any], **fields: int) -> dict[str, dict[str, str]]: ...


def import_checks(
    imp: _Importer,
    item: dict[str, Any],
    *,
    operation_id: int,
    when: Callable[[dict[str, Any], str, list[str]], list[str]],
    as_list: Callable[[Any], list[str]],
) -> int:
    """Add the ``checks`` of operation ``item``; problems go to the importer. Returns
    how many were added."""
    seen: set[str] = set()
    added = 0
    for pos, c in enumerate(imp.items(item, "checks")):
        code = imp.text(c, "code", max_len=32)
        if code in seen:
            imp.problem(c, "code", f"check {code!r} appears twice in this operation")
        seen.add(code)
        kind = imp.text(c, "kind", max_len=16)
        if kind and kind not in qc.KINDS:
            imp.problem(c, "kind", f"must be one of {', '.join(qc.KINDS)}")
        source = imp.text(c, "source", required=False, default="typed", max_len=16)
        if source not in qc.SOURCES:
            imp.problem(c, "source", f"must be one of {', '.join(qc.SOURCES)}")
        limits = {k: _number(imp, c, k) for k in ("nominal", "lower", "upper")}
        lower, upper = limits["lower"], limits["upper"]
        if kind in qc.MEASURED:
            if lower is None and upper is None:
                imp.problem(c, "lower", "a measured check needs a lower or an upper limit")
            if lower is not None and upper is not None and lower > upper:
                imp.problem(c, "upper", "must not be below lower")
        count = imp.integer(c, "count", 1, minimum=1)
        if count > qc.MAX_COUNT:
            imp.problem(c, "count", f"must be at most {qc.MAX_COUNT}")
        retries = imp.integer(c, "retries", 2, minimum=0)
        if retries > qc.MAX_RETRIES:
            imp.problem(c, "retries", f"must be at most {qc.MAX_RETRIES}")
        imp.db.add(
            Check(
                operation_id=operation_id,
                code=code,
                position=pos,
                kind=kind,
                name=imp.text(c, "name", max_len=200),
                instructions=imp.text(c, "instructions", required=False, max_len=1000),
                unit=imp.text(c, "unit", required=False, max_len=16),
                source=source,
                tool=imp.text(c, "tool", required=False, max_len=64),
                count=count,
                retries=retries,
                when_options=when(c, "when", as_list(c.get("when"))),
                nominal=limits["nominal"],
                lower=lower,
                upper=upper,
                translations=imp.translations(c, name=200, instructions=1000),
            )
        )
        added += 1
    return added


def _number(imp: _Importer, item: dict[str, Any], key: str) -> float | None:
    raw = item.get(key)
    if raw is None or raw == "":
        return None
    value = qc.usable(raw)
    if value is None:
        imp.problem(item, key, f"{str(raw)[:32]!r} is not a finite number")
    return value
