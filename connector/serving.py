"""Run the app under gunicorn: each worker process builds its own app (engine, key cache)."""

from __future__ import annotations

import errno
import logging
import math
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from prometheus_client import multiprocess

from .config import Settings
from .errors import ConfigError, RenderUnavailable
from .logs import LOGGING, JsonAccessLogger
from .metrics import MULTIPROCESS_DIR
from .refusals import JsonRefusingWorker
from .rendering.slots import WAIT_SECONDS
from .services import EXTENSION, Services

log = logging.getLogger(__name__)


def _services_of(worker: Any) -> Services | None:
    app = getattr(worker, "wsgi", None)
    extensions = getattr(app, "extensions", {})
    return extensions.get(EXTENSION)


def _start_worker(worker: Any) -> None:
    # In the background: the worker answers at once, and a render that comes before the render
    # processes are up (a second or two) waits for them.
    services = _services_of(worker)
    if services is not None:
        if services.revocation_listener is not None:
            services.revocation_listener.start()
        threading.Thread(
            target=_start_renderer, args=(services,), name="render-start", daemon=True
        ).start()


def _start_renderer(services: Services) -> None:
    try:
        services.renderer.start()
    except RenderUnavailable as error:  # stopping meanwhile; else the first render retries
        log.warning("render processes not started", extra={"reason": error.message})


def _start_worker_with_delivery(worker: Any) -> None:
    _start_worker(worker)
    services = _services_of(worker)
    if services is not None:
        services.delivery.start()


def _worker_exit(_server: Any, worker: Any) -> None:
    services = _services_of(worker)
    if services is not None:
        services.close()


class ListeningAddress(logging.Filter):
    """With reuse_port, gunicorn's master holds no socket (each worker binds its own), so its
    "Listening at: %s (%s)" line would name no address: this fills in the one bound."""

    LINE = "Listening at: %s (%s)"

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == self.LINE and isinstance(record.args, tuple) and not record.args[0]:
            record.args = (self.address, *record.args[1:])
        return True


def _on_starting(server: Any) -> None:
    address = ",".join(f"http://{bind}" for bind in server.cfg.bind)
    server.log.error_log.addFilter(ListeningAddress(address))


def _child_exit(_server: Any, worker: Any) -> None:
    # A dead worker's live gauges go; its counters stay in the totals.
    multiprocess.mark_process_dead(worker.pid)


class BridgeServer(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any], render_slots_dir: Path) -> None:
        self._settings = settings
        self._options = options
        self._render_slots_dir = render_slots_dir
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        from .app import create_app

        return create_app(self._settings, render_slots_dir=self._render_slots_dir)


def serve(
    settings: Settings, *, host: str, port: int, workers: int, threads: int, deliver: bool
) -> None:
    """Serve with gunicorn; with ``deliver``, each web worker also runs a delivery thread
    (leases keep them from sending the same delivery twice)."""
    _ensure_address_free(host, port)
    log.info("serving", extra={"url": f"http://{host}:{port}", "data_dir": str(settings.data_dir)})
    hooks = {"post_worker_init": _start_worker_with_delivery if deliver else _start_worker}
    # Every worker counts into files here, so /metrics adds up all of them whichever answers.
    made_metrics_dir = MULTIPROCESS_DIR not in os.environ
    if made_metrics_dir:
        os.environ[MULTIPROCESS_DIR] = tempfile.mkdtemp(prefix="bridge-metrics-")
    # The workers' render slots, shared so that the render limits hold for the whole machine.
    render_slots_dir = Path(tempfile.mkdtemp(prefix="bridge-render-slots-"))
    try:
        _run(settings, host, port, workers, threads, hooks, render_slots_dir)
    finally:
        shutil.rmtree(render_slots_dir, ignore_errors=True)
        if made_metrics_dir:
            shutil.rmtree(os.environ.pop(MULTIPROCESS_DIR), ignore_errors=True)


def _ensure_address_free(host: str, port: int) -> None:
    """Refuse an address that is not this machine's, or that another server listens on: with
    SO_REUSEPORT (see ``_run``), a second server of the same user would silently share the port
    instead of failing to start."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
            probe.bind(address)
    except OSError as error:
        advice = (
            "Stop the server that uses it, or choose another --port."
            if error.errno == errno.EADDRINUSE
            else "Check --host: it must name an address of this machine."
        )
        raise ConfigError(f"Cannot listen on {host}:{port}: {error.strerror}. {advice}") from None


def _run(
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    threads: int,
    hooks: dict[str, Any],
    render_slots_dir: Path,
) -> None:
    BridgeServer(
        settings,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": JsonRefusingWorker,
            "errorlog": "-",
            "logconfig_dict": LOGGING,
            "logger_class": JsonAccessLogger,
            "timeout": 60,
            "keepalive": settings.keepalive_seconds,
            # On SIGTERM a worker finishes what it has: a PDF may wait for a slot, then render.
            "graceful_timeout": math.ceil(settings.render_pdf_seconds + WAIT_SECONDS) + 1,
            "on_starting": _on_starting,
            "worker_exit": _worker_exit,
            "child_exit": _child_exit,
            # One fixed control socket path per user would collide between instances.
            "control_socket_disable": True,
            # Each worker listens on its own socket and the kernel spreads new connections
            # evenly; on one shared socket, whichever worker wakes first may take nearly all of
            # a client's keep-alive connections and serve them on one core (docs/benchmarks.md).
            "reuse_port": True,
            **hooks,
        },
        render_slots_dir,
    ).run()
