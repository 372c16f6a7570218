"""``python -m firmware_bridge bridge|simulate ...`` without the server installed."""

from __future__ import annotations

import click

from firmware_bridge.cli import bridge_command, simulate_group


@click.group()
def main() -> None:
    """Taktline station bridge."""


main.add_command(bridge_command)
main.add_command(simulate_group)

if __name__ == "__main__":
    main()
