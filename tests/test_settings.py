"""Settings: every one documented, read from the instance file then the environment,
bad values named, the secret key generated once."""

from __future__ import annotations

from pathlib import Path

import pytest

from server import settings

ROOT = Path(__file__).parent.parent


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = [s.name for s in settings.SETTINGS if f"TAKTLINE_{s.name}" not in doc]
    assert missing == []


def test_settings_come_from_file_then_environment(tmp_path: Path) -> None:
    (tmp_path / "taktline.toml").write_text('port = 9000\nlog_level = "DEBUG"\n')
    resolved = settings.load(tmp_path, environ={"TAKTLINE_PORT": "9100"})
    assert resolved["PORT"] == 9100
    assert resolved["LOG_LEVEL"] == "DEBUG"
    assert resolved["DATABASE_URL"] == f"sqlite:///{tmp_path / 'taktline.db'}"


def test_bad_setting_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PORT.*TAKTLINE_PORT"):
        settings.load(tmp_path, environ={"TAKTLINE_PORT": "eighty"})
    (tmp_path / "taktline.toml").write_text("colour = 'blue'\n")
    with pytest.raises(ValueError, match="unknown setting.*COLOUR"):
        settings.load(tmp_path, environ={})


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = settings.load(tmp_path, environ={})["SECRET_KEY"]
    second = settings.load(tmp_path, environ={})["SECRET_KEY"]
    assert first == second and len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
