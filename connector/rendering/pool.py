"""The render processes of one web worker, and the only place that starts and stops them.

Each process serves one task at a time over a pipe of its own: a web worker's thread takes an
idle process, sends it the task and waits for the answer for at most the task's time. A process
that runs late is killed and another started in its place, as is one that died (at its memory
cap, or at the kernel's CPU limit). The standard library's ``multiprocessing`` starts, kills and
reaps the processes, from a fork server that has already imported the rendering code: a new
process is ready in milliseconds, and nothing is forked from a web worker's threads.

A task names a function of :mod:`.sandbox`, which only render processes import: web workers
never load the rendering libraries (xhtml2pdf alone is 25 MB a process). Why not a pool library
such as pebble or billiard: docs/architecture.md ("Render processes").
"""

from __future__ import annotations

import importlib
import multiprocessing
import queue
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

from ..errors import BridgeError, RenderLimitExceeded

SANDBOX = "connector.rendering.sandbox"
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload([SANDBOX])
_START_SECONDS = 30.0
_READY = "ready"


class _Late(Exception):
    """No answer within the task's time (not ``TimeoutError``: that is an ``OSError``, which
    a broken pipe raises too)."""


class _Ended(Exception):
    """The process ended before it answered; ``exitcode`` is negative for a signal."""

    def __init__(self, exitcode: int | None) -> None:
        super().__init__(exitcode)
        self.exitcode = exitcode


class _RenderProcess:
    def __init__(self, memory_bytes: int) -> None:
        self._connection, child_end = _CONTEXT.Pipe()
        self._process = _CONTEXT.Process(
            target=_serve, args=(child_end, memory_bytes), name="render", daemon=True
        )
        self._process.start()
        child_end.close()
        # Ready once it says so: a task sent before would wait, and its time run, meanwhile.
        if not self._connection.poll(_START_SECONDS) or self._connection.recv() != _READY:
            self.stop()
            raise RuntimeError("a render process did not start")

    def call(self, task: str, args: tuple[Any, ...], seconds: float) -> tuple[bool, Any]:
        """``(True, result)`` or ``(False, the exception it raised)``; raises ``_Late`` when no
        answer came within ``seconds``, and ``_Ended`` when the process died."""
        try:
            self._connection.send((task, args))
            if not self._connection.poll(seconds):
                raise _Late
            answer: tuple[bool, Any] = self._connection.recv()
            return answer
        except (EOFError, OSError):
            self._process.join(_START_SECONDS)
            raise _Ended(self._process.exitcode) from None

    def alive(self) -> bool:
        return self._process.is_alive()

    def stop(self) -> None:
        self._process.kill()
        self._process.join(_START_SECONDS)
        self._connection.close()


class RenderPool:
    """``processes`` render processes, each with an address space of ``memory_mb``."""

    def __init__(self, processes: int, memory_mb: int) -> None:
        self._size = processes
        self._memory_mb = memory_mb
        # Most recently used first: under light load the others stay as the fork server made them.
        self._idle: queue.LifoQueue[_RenderProcess] = queue.LifoQueue()
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the processes now rather than on the first render."""
        with self._lock:
            if not self._started:
                for _ in range(self._size):
                    self._idle.put(self._new_process())
                self._started = True

    def health(self) -> str:
        """For readiness: "starting" while :meth:`start` brings the processes up."""
        return "starting" if self._lock.locked() and not self._started else "ok"

    def run(self, task: str, *args: Any, seconds: float) -> Any:
        """``sandbox.<task>(*args, seconds)`` in a render process, which is killed after
        ``seconds``. The render slots (:mod:`.slots`) keep at most ``processes`` tasks running
        at once, so an idle process is always at hand."""
        self.start()
        process = self._idle.get(timeout=_START_SECONDS)
        if not process.alive():  # ended while idle (the kernel's OOM killer, an operator)
            process.stop()
            process = self._new_process()
        try:
            succeeded, outcome = process.call(task, (*args, seconds), seconds)
        except _Late:
            self._replace(process)
            raise _over_time(seconds) from None
        except _Ended as ended:
            self._replace(process)
            if ended.exitcode == -signal.SIGXCPU:
                raise _over_time(seconds) from None
            # C code that cannot allocate aborts instead of raising MemoryError.
            raise self._over_memory() from None
        self._idle.put(process)
        if succeeded:
            return outcome
        if isinstance(outcome, MemoryError):  # raised at the process's address-space cap
            raise self._over_memory()
        raise outcome

    def close(self) -> None:
        """Stop the idle processes (at shutdown no render is running)."""
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                return

    def _new_process(self) -> _RenderProcess:
        return _RenderProcess(self._memory_mb * 2**20)

    def _replace(self, process: _RenderProcess) -> None:
        process.stop()
        self._idle.put(self._new_process())

    def _over_memory(self) -> RenderLimitExceeded:
        return RenderLimitExceeded(
            f"The render needed more than the {self._memory_mb} MB of memory a render may use and "
            "was stopped. Send less data or simplify the template.",
            details={"limit": "memory", "megabytes": self._memory_mb},
        )


def _serve(connection: Connection, memory_bytes: int) -> None:
    """A render process: answer tasks until the web worker goes away."""
    sandbox = importlib.import_module(SANDBOX)
    sandbox.start_process(memory_bytes)
    connection.send(_READY)
    while True:
        try:
            task, args = connection.recv()
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, getattr(sandbox, task)(*args))
        except (BridgeError, MemoryError) as error:  # the web worker's thread raises it
            answer = (False, error)
        except Exception as error:  # a bug: a 500 there, with what it was, not a dead process
            answer = (False, RuntimeError(f"{type(error).__name__} in a render: {error}"))
        connection.send(answer)


def _over_time(seconds: float) -> RenderLimitExceeded:
    return RenderLimitExceeded(
        f"The render took longer than {seconds:g} seconds and was stopped. Reduce the loops or "
        "the data the template works through.",
        details={"limit": "time", "seconds": seconds},
    )
