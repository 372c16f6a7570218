"""``taktline web``: the Flask app under gunicorn (gthread) for production.

Each worker process starts its own MQTT publisher and its own non-shared subscription
to the stations' retained ``state`` (``server.runtime``), after the fork, so every
tablet and line board sees every station whichever worker serves it. The ingest runs
apart (``taktline ingest``); there is no embedded broker here: ``TAKTLINE_MQTT_URL``
is required. Threads, not processes, carry the SSE streams: size ``--threads`` above
the screens one worker serves.
"""

from __future__ import annotations

import logging
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from gunicorn.app.base import BaseApplication

from server import runtime
from server.operations import metrics, startup

log = logging.getLogger(__name__)


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def options(app: Flask, *, bind: str, workers: int, threads: int) -> dict[str, Any]:
    """gunicorn settings; the worker hooks start and stop this process's services."""
    services: dict[int, runtime.Services] = {}

    def post_worker_init(worker: Any) -> None:
        services[worker.pid] = runtime.start(app)
        # As `taktline serve` and `taktline ingest`: a full collector pass over the
        # app's start-up objects took 107-116 ms in a worker (bench/README.md).
        startup.freeze()

    def worker_exit(_server: Any, worker: Any) -> None:
        started = services.pop(worker.pid, None)
        if started is not None:
            started.stop()

    def child_exit(_server: Any, worker: Any) -> None:
        # In the master, after any end of a worker (a crash or SIGKILL too): its live
        # gauges (open SSE streams, queue depth) stop counting in /api/v1/metrics.
        metrics.process_exited(worker.pid)

    return {
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        # An SSE stream is a long request: never kill a worker for it.
        "timeout": 0,
        "graceful_timeout": 20,
        "keepalive": 75,
        "post_worker_init": post_worker_init,
        "worker_exit": worker_exit,
        "child_exit": child_exit,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": app.config["LOG_LEVEL"].lower(),
    }


@click.command("web")
@click.option("--bind", default=None, help="HOST:PORT; default TAKTLINE_HOST:TAKTLINE_PORT.")
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--threads", default=None, type=int, help="Per worker; default TAKTLINE_WEB_THREADS.")
@with_appcontext
def web_command(bind: str | None, workers: int, threads: int | None) -> None:
    """Run the web app under gunicorn (production; needs TAKTLINE_MQTT_URL)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config["MQTT_URL"]:
        raise click.ClickException(
            "taktline web needs TAKTLINE_MQTT_URL (the plant's broker); "
            "for one machine use taktline serve."
        )
    app.config["RUN_INGEST"] = False  # ingest runs as `taktline ingest`
    app.config["RUN_DELIVER"] = False  # and outbound events as `taktline deliver`
    bind = bind or f"{app.config['HOST']}:{app.config['PORT']}"
    _Gunicorn(
        app, options(app, bind=bind, workers=workers, threads=threads or app.config["WEB_THREADS"])
    ).run()
