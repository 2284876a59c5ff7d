"""Run the app under gunicorn: each worker process builds its own app (engine, key cache)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from .config import Settings
from .services import EXTENSION, Services

# No query string (%(U)s is the path alone) and no request headers: nothing secret is logged
# even when a client wrongly puts a key in the URL.
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms "%(a)s"'


def _services_of(worker: Any) -> Services | None:
    app = getattr(worker, "wsgi", None)
    extensions = getattr(app, "extensions", {})
    return extensions.get(EXTENSION)


def _start_delivery(worker: Any) -> None:
    services = _services_of(worker)
    if services is not None:
        services.delivery.start()


def _worker_exit(_server: Any, worker: Any) -> None:
    services = _services_of(worker)
    if services is not None:
        services.close()


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


def serve(
    settings: Settings, *, host: str, port: int, workers: int, threads: int, deliver: bool
) -> None:
    """Serve with gunicorn; with ``deliver``, each web worker also runs a delivery thread
    (leases keep them from sending the same delivery twice)."""
    hooks = {"post_worker_init": _start_delivery} if deliver else {}
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
            **hooks,
        },
    ).run()
