"""The render processes of one web worker: pebble's ``ProcessPool``, which kills a task's process
when its time is up and starts a new one in its place.

Tasks name a function of :mod:`.sandbox`, which only render processes import: web workers never
load the rendering libraries (xhtml2pdf alone is 25 MB a process). Processes start from a fork
server that has already imported them, so a replaced process is ready in milliseconds, and
nothing is forked from a web worker's threads.
"""

from __future__ import annotations

import importlib
import multiprocessing
import signal
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from pebble import ProcessExpired, ProcessPool

from ..errors import RenderLimitExceeded

SANDBOX = "connector.rendering.sandbox"
_CONTEXT = multiprocessing.get_context("forkserver")
# "__main__" too: each new process would otherwise import the main module again by itself.
_CONTEXT.set_forkserver_preload(["__main__", SANDBOX])
# Past its limit a task is killed within pebble's check interval (0.1 s); this only guards
# against a pool that stopped answering altogether.
_SAFETY_SECONDS = 5.0


class RenderPool:
    def __init__(self, processes: int, memory_mb: int) -> None:
        self._memory_mb = memory_mb
        self._pool = ProcessPool(
            max_workers=processes,
            initializer=_call,
            initargs=("start_process", memory_mb * 2**20),
            context=_CONTEXT,
        )

    def start(self) -> None:
        """Start the processes now rather than on the first render."""
        self._pool.schedule(_call, args=("ready",)).result(timeout=30)

    def run(self, task: str, *args: Any, seconds: float) -> Any:
        """``sandbox.<task>(*args, seconds)`` in a render process, killed after ``seconds``."""
        future = self._pool.schedule(_call, args=(task, *args, seconds), timeout=seconds)
        try:
            return future.result(timeout=seconds + _SAFETY_SECONDS)
        except FutureTimeout:
            future.cancel()
            raise _over_time(seconds) from None
        except MemoryError:  # raised in the render process, at its address-space cap
            raise self._over_memory() from None
        except ProcessExpired as error:
            if error.exitcode == -signal.SIGXCPU:
                raise _over_time(seconds) from None
            # C code that cannot allocate aborts instead of raising MemoryError.
            raise self._over_memory() from None

    def _over_memory(self) -> RenderLimitExceeded:
        return RenderLimitExceeded(
            f"The render needed more than the {self._memory_mb} MB of memory a render may use and "
            "was stopped. Send less data or simplify the template.",
            details={"limit": "memory", "megabytes": self._memory_mb},
        )

    def close(self) -> None:
        self._pool.stop()
        self._pool.join(timeout=10)


def _call(task: str, *args: Any) -> Any:
    """In a render process: run one of the sandbox's functions."""
    return getattr(importlib.import_module(SANDBOX), task)(*args)


def _over_time(seconds: float) -> RenderLimitExceeded:
    return RenderLimitExceeded(
        f"The render took longer than {seconds:g} seconds and was stopped. Reduce the loops or "
        "the data the template works through.",
        details={"limit": "time", "seconds": seconds},
    )
