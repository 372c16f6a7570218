"""GS1 and line-protocol parsing, the parts of the payload the server relies on."""

from __future__ import annotations

from typing import Any

import pytest

from firmware_bridge import gs1, lineproto


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "]C1010703835411019210ABC\x1d21X",
            {
                "gtin": "07038354110192",
                "lot": "ABC",
                "serial": "X",
                "ais": {"01": "07038354110192", "10": "ABC", "21": "X"},
            },
        ),
        (
            "]Q3010703835411019217250131",
            {
                "gtin": "07038354110192",
                "expiry": "2025-01-31",
                "ais": {"01": "07038354110192", "17": "250131"},
            },
        ),
        ("]E04006381333931", {"gtin": "4006381333931", "ais": {"01": "4006381333931"}}),
        ("0107038354110192", {"gtin": "07038354110192", "ais": {"01": "07038354110192"}}),
        ("1012345", None),  # a plain serial number, not "lot 12345"
        ("4006381333931", None),  # digits without a symbology identifier
        ("]d2010703835411019710ABC", None),  # bad GTIN check digit
        ("]C1PLAIN-42", None),
        ("", None),
    ],
)
def test_gs1(text: str, expected: dict[str, Any] | None) -> None:
    assert gs1.parse(text) == expected


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        ("BTN 3", {"kind": "button", "button": 3}),
        ("PICK 12", {"kind": "pick", "slot": 12}),
        ("TORQUE 5.2 OK", {"kind": "torque", "value": 5.2, "unit": "Nm", "ok": True}),
        ("TORQUE 4.1 NOK Nm", {"kind": "torque", "value": 4.1, "unit": "Nm", "ok": False}),
        ("WEIGHT 132.5 g", {"kind": "weight", "value": 132.5, "unit": "g"}),
        ("HELLO io-board 1.4.0", {"kind": "hello", "firmware": "io-board 1.4.0"}),
        ("ERR scale overload", {"kind": "fault", "message": "scale overload"}),
        ("# boot", None),
    ],
)
def test_line_protocol(line: str, fields: dict[str, Any] | None) -> None:
    assert lineproto.parse(line) == fields


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("FOO 1", "unknown device line 'FOO'"),
        ("BTN x", "expected 'BTN <button number>'"),
        ("TORQUE 5.2 MAYBE", "expected 'TORQUE"),
        ("WEIGHT nan g", "WEIGHT: value must be finite"),
        ("WEIGHT 1 stone", "expected 'WEIGHT"),
        ("TORQUE 1e12 OK Nm", "TORQUE: value beyond 1e"),
        ("TORQUE inf OK", "TORQUE: value must be finite"),
    ],
)
def test_bad_device_lines(line: str, reason: str) -> None:
    with pytest.raises(lineproto.LineError, match=reason):
        lineproto.parse(line)


def test_commands_are_single_ascii_lines() -> None:
    assert lineproto.command("LIGHT 3 ON") == b"LIGHT 3 ON\n"
    with pytest.raises(lineproto.LineError):
        lineproto.command("LIGHT 3\nON")
