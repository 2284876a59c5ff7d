"""Run the app under gunicorn: each worker process builds its own app (engine, key cache)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from .config import Settings
from .services import EXTENSION

# No query string (%(U)s is the path alone) and no request headers: nothing secret is logged
# even when a client wrongly puts a key in the URL.
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms "%(a)s"'


def _worker_exit(_server: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    if app is not None and EXTENSION in getattr(app, "extensions", {}):
        app.extensions[EXTENSION].close()


class BridgeServer(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        from .app import create_app

        return create_app(self._settings)


def serve(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    BridgeServer(
        settings,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "accesslog": "-",
            "errorlog": "-",
            "access_log_format": ACCESS_LOG_FORMAT,
            "timeout": 60,
            "graceful_timeout": 10,
            "worker_exit": _worker_exit,
            # One fixed control socket path per user would collide between instances.
            "control_socket_disable": True,
        },
    ).run()
