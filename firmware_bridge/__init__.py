"""Station-side bridge: serial scanners and line-protocol devices <-> MQTT.

Runs on each station PC. Nothing here imports Flask or the server package, so the
bridge installs and runs on a small box with only its own dependencies.
"""
