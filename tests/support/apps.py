"""Test apps on a given database, the CLI runner and the desktop sign-in.

Fixtures (``app``, ``demo_app``, ``client``, ``runner`` ...) are in ``tests/conftest.py``;
tests that need a second app or a differently configured one call ``make_app`` here.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server import create_app


def make_app(url: str, tmp_path: Path, **extra: Any) -> Flask:
    """A testing app on database ``url`` (no ingest), its instance folder in ``tmp_path``."""
    config = {
        "TESTING": True,
        "DATABASE_URL": url,
        "SECRET_KEY": "test-" + uuid.uuid4().hex,
        "RUN_INGEST": False,
        **extra,
    }
    return create_app(config, instance_path=str(tmp_path / "instance"))


class CliRunner:
    """Runs `taktline ...` commands against a test app: ``runner.invoke(["import", f])``."""

    def __init__(self, app: Flask) -> None:
        self._runner = app.test_cli_runner()

    def invoke(self, args: list[str]) -> Any:
        from server.cli import cli

        return self._runner.invoke(cli, args=args)


def login(client: FlaskClient, username: str, password: str | None = None) -> None:
    """Sign in on the desktop login form (demo users: supervisor, admin)."""
    response = client.post("/login", data={"username": username, "password": password or username})
    assert response.status_code == 303, response.data[:500]
