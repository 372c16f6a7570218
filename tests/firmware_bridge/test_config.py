from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from firmware_bridge import config as bridge_config
from firmware_bridge.__main__ import main
from firmware_bridge.config import ConfigError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "bridge.md"


def docs_example() -> str:
    return re.findall(r"```toml\n(.*?)```", DOCS.read_text(), re.S)[0]


def test_the_documented_example_loads(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    for name in ("mqtt-password", "ca.pem"):
        (tmp_path / "secrets" / name).write_text("s3cret\n")
    path = tmp_path / "station.toml"
    path.write_text(docs_example())

    cfg = bridge_config.load(path)

    assert cfg.topic("evt/scan") == "taktline/PLANT1/L1/ST10/evt/scan"
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.password) == (
        "broker.plant1.example",
        8883,
        "s3cret",
    )
    assert cfg.mqtt.tls is not None and cfg.mqtt.tls.ca_file == str(tmp_path / "secrets/ca.pem")
    scanner, board = cfg.devices
    assert (scanner.terminator, scanner.good_read, scanner.bad_read) == (None, b"\x07", b"\x07\x07")
    assert board.on_rejected == ("LIGHT 1 RED", "BEEP 300")
    assert cfg.outbox.path == tmp_path / "outbox.sqlite"


def minimal(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "station": {"site": "S", "line": "L", "station": "ST"},
        "mqtt": {"url": "mqtt://localhost"},
        "devices": [{"name": "sc", "type": "scanner", "port": "/dev/ttyX"}],
    }
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        node: Any = raw
        for part in path:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return raw


def test_minimal_config_gets_defaults() -> None:
    cfg = bridge_config.from_dict(minimal())
    assert (cfg.mqtt.port, cfg.mqtt.tls, cfg.mqtt.client_id) == (
        1883,
        None,
        "taktline-bridge-S-L-ST",
    )
    assert (cfg.devices[0].baudrate, cfg.outbox.when_full) == (9600, "refuse_new")


@pytest.mark.parametrize(
    ("changes", "key", "reason"),
    [
        ({"station.site": None}, "station.site", "is required"),
        ({"station.line": "L/1"}, "station.line", "must not contain"),
        ({"mqtt.url": "http://x"}, "mqtt.url", "is not mqtt://"),
        ({"mqtt.keepalive": "30"}, "mqtt.keepalive", "must be an integer"),
        ({"mqtt.tls": {"ca_file": "nope.pem"}}, "mqtt.tls.ca_file", "does not exist"),
        ({"outbox": {"when_full": "panic"}}, "outbox.when_full", "must be one of"),
        ({"outbox": {"max_messages": 0}}, "outbox.max_messages", "integer >= 1"),
        ({"devices": []}, "devices", "at least one"),
        ({"devices.0.type": "printer"}, "devices[0].type", "must be one of scanner, line"),
        ({"devices.0.baudrate": -5}, "devices[0].baudrate", "integer >= 50"),
        ({"devices.0.port": None}, "devices[0].port", "is required"),
        ({"devices.0.bad_read": "€"}, "devices[0].bad_read", "one byte each"),
        ({"devices.0.on_accepted": ["LIGHT 1\nON"]}, "devices[0].on_accepted", "without CR"),
    ],
)
def test_bad_config_names_key_and_reason(changes: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        bridge_config.from_dict(minimal(**changes))
    assert err.value.key == key
    assert reason in err.value.reason


def test_cli_refuses_a_bad_config_at_start(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text(
        '[station]\nsite = "S"\nline = "L"\nstation = "ST"\n'
        '[mqtt]\nurl = "mqtt://localhost:99999"\n'
    )
    result = CliRunner().invoke(main, ["bridge", "--config", str(path)])
    assert result.exit_code == 2
    assert "mqtt.url: bad port" in result.output


def test_cli_reports_unreadable_toml(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text("[station\n")
    result = CliRunner().invoke(main, ["bridge", "--config", str(path)])
    assert result.exit_code == 2 and "not valid TOML" in result.output
