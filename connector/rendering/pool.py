"""The render processes of one web worker, and the only place that starts and stops them.

Each process serves one task at a time over a pipe of its own: a web worker's thread takes an
idle process (or starts one, up to the pool's size), sends it the task and waits for the answer
for at most the task's time. A process that runs late is killed, as is one that died, one that
ran out of memory, and one that grew well past its size at start (Python rarely gives memory
back): the next task gets a fresh one. The standard library's ``multiprocessing`` starts, kills
and reaps the processes, from a fork server that has already imported the rendering code: a new
process is ready in milliseconds, and nothing is forked from a web worker's threads.

A task names a function of :mod:`.sandbox`, which only render processes import: web workers
never load the rendering libraries (xhtml2pdf alone is 25 MB a process). Why not a pool library
such as pebble or billiard: docs/architecture.md ("Render processes").
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import queue
import resource
import signal
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import BridgeError, RenderLimitExceeded, RenderUnavailable
from ..logs import configure as configure_logs
from . import processes
from .engines import DEFAULT_CHROMIUM

SANDBOX = "connector.rendering.sandbox"
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload([SANDBOX])
_START_SECONDS = 30.0
_READY = "ready"
# A process whose peak resident size grew this much past its size at start is replaced after
# its task: what it allocated stays with it, and the next render would start from there.
RECYCLE_GROWTH_KB = 64 * 1024
log = logging.getLogger(__name__)


class _Answer(NamedTuple):
    succeeded: bool
    outcome: Any  # the task's result, or the exception it raised
    retire: bool  # the process should not serve another task


class _Late(Exception):
    """No answer within the task's time (not ``TimeoutError``: that is an ``OSError``, which
    a broken pipe raises too)."""


class _Gone(Exception):
    """The process had already ended when the task was sent: the task never ran."""


class _Ended(Exception):
    """The process ended while it had the task; ``exitcode`` is negative for a signal."""

    def __init__(self, exitcode: int | None) -> None:
        super().__init__(exitcode)
        self.exitcode = exitcode


class _RenderProcess:
    def __init__(self, memory_bytes: int, chromium_path: Path, warm_chromium: bool) -> None:
        self._connection, child_end = _CONTEXT.Pipe()
        self._process = _CONTEXT.Process(
            target=_serve,
            args=(child_end, memory_bytes, chromium_path, warm_chromium),
            name="render",
            daemon=True,
        )
        # Ready once it says so: a task sent before would wait, and its time run, meanwhile.
        try:
            self._process.start()
            child_end.close()
            ready = self._connection.poll(_START_SECONDS) and self._connection.recv() == _READY
        except (EOFError, OSError):  # the fork server is gone: the service is stopping
            ready = False
        if not ready:
            self.stop()
            raise RenderUnavailable("A render process did not start. Retry in a few seconds.")

    def call(self, task: str, args: tuple[Any, ...], seconds: float) -> _Answer:
        """The process's answer; raises ``_Gone``, ``_Late`` or ``_Ended`` instead."""
        try:
            self._connection.send((task, args))
        except OSError:
            raise _Gone from None
        try:
            if not self._connection.poll(seconds):
                raise _Late
            answer: _Answer = self._connection.recv()
            return answer
        except (EOFError, OSError):
            self._process.join(_START_SECONDS)
            raise _Ended(self._process.exitcode) from None

    def alive(self) -> bool:
        return self._process.is_alive()

    def kill(self) -> None:
        """End the process and its own (Chromium's); a thread waiting on it sees it end (only
        it may close the pipe)."""
        if self._process.pid is not None:
            processes.kill_all(processes.descendants(self._process.pid))
        self._process.kill()

    def stop(self) -> None:
        if self._process.pid is not None:  # started
            self.kill()
            self._process.join(_START_SECONDS)
        self._connection.close()


class RenderPool:
    """Up to ``processes`` render processes, started as renders need them, each with an
    address space of ``memory_mb`` (and as much for its Chromium, at ``chromium_path``, which
    ``warm_chromium`` starts with the process rather than on its first Chromium render)."""

    def __init__(
        self,
        processes: int,
        memory_mb: int,
        chromium_path: Path = DEFAULT_CHROMIUM,
        *,
        warm_chromium: bool = False,
    ) -> None:
        self._size = processes
        self._memory_mb = memory_mb
        self._chromium_path = chromium_path
        self._warm_chromium = warm_chromium
        # Most recently used first: under light load the others stay as the fork server made them.
        self._idle: queue.LifoQueue[_RenderProcess] = queue.LifoQueue()
        self._live: set[_RenderProcess] = set()
        self._count = 0  # live processes, and those being started
        self._lock = threading.Lock()
        self._starting = False
        self._closed = False

    def start(self) -> None:
        """Bring the fork server and a first process up now rather than on the first render."""
        with self._lock:
            if self._count or self._closed:
                return
            self._starting = True
        try:
            self._give_back(self._take())
        finally:
            self._starting = False

    def health(self) -> str:
        """For readiness: "starting" while :meth:`start` brings the first process up."""
        return "starting" if self._starting else "ok"

    def run(self, task: str, *args: Any, seconds: float) -> Any:
        """``sandbox.<task>(*args, seconds)`` in a render process, which is killed after
        ``seconds``. The render slots (:mod:`.slots`) keep at most ``processes`` tasks running
        at once, so a process is always at hand."""
        try:
            return self._run_once(task, (*args, seconds), seconds)
        except _Gone:  # it died while idle (the OOM killer, an operator): the task never ran
            return self._run_once(task, (*args, seconds), seconds)

    def _run_once(self, task: str, args: tuple[Any, ...], seconds: float) -> Any:
        process = self._take()
        replace = True
        try:
            answer = process.call(task, args, seconds)
            replace = answer.retire
        except _Late:
            raise _shutting_down() if self._closed else _over_time(seconds) from None
        except _Ended as ended:
            raise self._ended(ended.exitcode, seconds) from None
        finally:
            self._give_back(process, replace=replace)
        if answer.succeeded:
            return answer.outcome
        if isinstance(answer.outcome, MemoryError):  # at the process's address-space cap
            raise self._over_memory()
        raise answer.outcome

    def close(self) -> None:
        """Stop every process, idle or not; renders still running answer 503."""
        with self._lock:
            self._closed = True
            busy = set(self._live)
        while True:
            try:
                idle = self._idle.get_nowait()
            except queue.Empty:
                break
            busy.discard(idle)
            self._give_back(idle, replace=True)
        for process in busy:
            process.kill()

    def _take(self) -> _RenderProcess:
        while True:
            try:
                process = self._idle.get_nowait()
            except queue.Empty:
                break
            if process.alive():
                return process
            self._give_back(process, replace=True)
        with self._lock:
            if self._closed:
                raise _shutting_down()
            grow = self._count < self._size
            self._count += grow
        if not grow:  # every process busy: only while one is being replaced
            try:
                return self._idle.get(timeout=_START_SECONDS)
            except queue.Empty:
                raise RenderUnavailable(
                    "No render process came free. Retry in a few seconds."
                ) from None
        try:
            process = _RenderProcess(
                self._memory_mb * 2**20, self._chromium_path, self._warm_chromium
            )
        except BaseException:
            with self._lock:
                self._count -= 1
            raise
        with self._lock:
            self._live.add(process)
            closed = self._closed
        if closed:
            self._give_back(process, replace=True)
            raise _shutting_down()
        return process

    def _give_back(self, process: _RenderProcess, *, replace: bool = False) -> None:
        if not replace:
            self._idle.put(process)
            return
        with self._lock:
            if process in self._live:
                self._live.discard(process)
                self._count -= 1
        process.stop()

    def _ended(self, exitcode: int | None, seconds: float) -> BridgeError:
        if self._closed:  # stopped by close(), with the task in hand
            return _shutting_down()
        if exitcode == -signal.SIGXCPU:
            return _over_time(seconds)
        if exitcode is not None and exitcode < 0:
            # Killed by a signal: the kernel's OOM killer (SIGKILL), or C code that could not
            # allocate under the address-space limit (SIGSEGV, SIGABRT).
            return self._over_memory()
        return RenderUnavailable(
            f"A render process stopped unexpectedly (exit code {exitcode}). Retry; if it "
            "happens again, the service's operator will find why in its log."
        )

    def _over_memory(self) -> RenderLimitExceeded:
        return RenderLimitExceeded(
            f"The render needed more than the {self._memory_mb} MB of memory a render may use and "
            "was stopped. Send less data or simplify the template.",
            details={"limit": "memory", "megabytes": self._memory_mb},
        )


def _shutting_down() -> RenderUnavailable:
    return RenderUnavailable("The service is shutting down. Retry in a few seconds.")


def _serve(
    connection: Connection, memory_bytes: int, chromium_path: Path, warm_chromium: bool
) -> None:
    """A render process: answer tasks until the web worker goes away. It logs as the service
    does (JSON lines), and ends quietly when its web worker has."""
    configure_logs()
    sandbox = importlib.import_module(SANDBOX)
    sandbox.start_process(memory_bytes, chromium_path, warm_chromium)
    size_at_start = _peak_kb()
    try:
        connection.send(_READY)
        while True:
            task, args = connection.recv()
            answer = _answer(sandbox, task, args)
            retire = (
                answer.retire
                or _peak_kb() > size_at_start + RECYCLE_GROWTH_KB
                or sandbox.outgrown()
            )
            connection.send(answer._replace(retire=retire))
            # Nothing of the task may outlive it here: a failed render's traceback holds its
            # frames, and with them everything it allocated.
            del answer, args
    except (EOFError, OSError):  # the web worker closed the pipe, or is gone
        return
    except Exception:
        log.exception("render process failed")
        sys.exit(1)  # not an uncaught error: multiprocessing would print it as plain text


def _answer(sandbox: Any, task: str, args: tuple[Any, ...]) -> _Answer:
    try:
        return _Answer(True, getattr(sandbox, task)(*args), retire=False)
    except (BridgeError, MemoryError) as error:  # the web worker's thread raises it
        return _Answer(False, _bare(error), retire=isinstance(error, MemoryError))
    except Exception as error:  # a bug: a 500 there, saying what it was
        log.exception("render task %s failed", task)
        failure = RuntimeError(f"{type(error).__name__} in a render: {error}")
        return _Answer(False, failure, retire=True)


def _bare(error: BaseException) -> BaseException:
    """The error without its traceback and chained errors (their frames hold the render)."""
    error.__context__ = error.__cause__ = None
    return error.with_traceback(None)


def _peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _over_time(seconds: float) -> RenderLimitExceeded:
    return RenderLimitExceeded(
        f"The render took longer than {seconds:g} seconds and was stopped. Reduce the loops or "
        "the data the template works through.",
        details={"limit": "time", "seconds": seconds},
    )
