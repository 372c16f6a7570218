"""Payloads built to break a decoder or a database (issue 13), each with its msg_id."""

from __future__ import annotations

HOSTILE: dict[str, bytes] = {
    "deep": b'{"msg_id": "deep-1", "data": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    "huge int": b'{"msg_id": "int-1", "seq": ' + str(2**70).encode() + b', "data": "SCRM3"}',
    "long int": b'{"msg_id": "digits-1", "data": "SCRM3", "seq": ' + b"9" * 5000 + b"}",
    "not utf-8": b'{"msg_id": "utf-1", "data": "\xff\xfe"}',
    "1 MB": b'{"msg_id": "big-1", "data": "' + b"A" * 1_000_000 + b'"}',
    "year 1": b'{"msg_id": "ts-1", "data": "SCRM3", "ts": "0001-01-01T00:00:00Z"}',
    "year 9999": b'{"msg_id": "ts-2", "data": "SCRM3", "ts": "9999-12-31T23:59:59+14:00"}',
}
