"""The line protocol spoken by small firmware boards (docs/bridge.md, "Line protocol").

One ASCII line per event, fields separated by single spaces, ended by LF (CR and
CRLF are accepted). Each known line maps to the fields of an ``evt/device`` payload;
anything else becomes an event with ``kind = "unknown"`` and an ``error``.
"""

from __future__ import annotations

import math
from typing import Any

WEIGHT_UNITS = ("g", "kg", "lb", "oz")
# No reading of an assembly tool comes near this; the server refuses beyond it too
# (station.checks.MAX_VALUE), so a garbled line is caught at the station PC.
MAX_VALUE = 1e9
LIGHT_STATES = ("ON", "OFF", "GREEN", "RED", "BLINK")


class LineError(ValueError):
    """A device line the protocol does not allow."""


def parse(line: str) -> dict[str, Any] | None:
    """Fields for one line; ``None`` for a comment (``# ...``); ``LineError`` if invalid."""
    if line.startswith("#"):
        return None
    word, _, rest = line.strip().partition(" ")
    args = rest.split()
    handler = _HANDLERS.get(word)
    if handler is None:
        raise LineError(f"unknown device line {word[:32]!r}")
    return handler(args)


def _count(args: list[str], word: str, name: str) -> dict[str, Any]:
    if len(args) != 1 or not args[0].isdigit():
        raise LineError(f"expected '{word} <{name} number>'")
    return {name: int(args[0])}


def _number(text: str, word: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise LineError(f"{word}: {text[:32]!r} is not a number") from None
    if not math.isfinite(value):
        raise LineError(f"{word}: value must be finite")
    if abs(value) > MAX_VALUE:
        raise LineError(f"{word}: value beyond {MAX_VALUE:g}")
    return value


def _button(args: list[str]) -> dict[str, Any]:
    return {"kind": "button", **_count(args, "BTN", "button")}


def _pick(args: list[str]) -> dict[str, Any]:
    return {"kind": "pick", **_count(args, "PICK", "slot")}


def _torque(args: list[str]) -> dict[str, Any]:
    if len(args) not in (2, 3) or args[1] not in ("OK", "NOK"):
        raise LineError("expected 'TORQUE <value> OK|NOK [unit]'")
    unit = args[2] if len(args) == 3 else "Nm"
    return {
        "kind": "torque",
        "value": _number(args[0], "TORQUE"),
        "unit": unit,
        "ok": args[1] == "OK",
    }


def _weight(args: list[str]) -> dict[str, Any]:
    if len(args) != 2 or args[1] not in WEIGHT_UNITS:
        raise LineError(f"expected 'WEIGHT <value> {'|'.join(WEIGHT_UNITS)}'")
    return {"kind": "weight", "value": _number(args[0], "WEIGHT"), "unit": args[1]}


def _hello(args: list[str]) -> dict[str, Any]:
    return {"kind": "hello", "firmware": " ".join(args)}


def _fault(args: list[str]) -> dict[str, Any]:
    return {"kind": "fault", "message": " ".join(args)}


_HANDLERS = {
    "BTN": _button,
    "PICK": _pick,
    "TORQUE": _torque,
    "WEIGHT": _weight,
    "HELLO": _hello,
    "ERR": _fault,
}


def command(line: str) -> bytes:
    """A command line for the device, LF-terminated; ``LineError`` if not sendable."""
    if not line or not line.isascii() or any(ch in line for ch in "\r\n"):
        raise LineError(f"command {line!r} must be one line of ASCII")
    return line.encode("ascii") + b"\n"
