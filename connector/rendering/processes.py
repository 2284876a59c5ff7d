"""A render process's own child processes (Chromium's, through Playwright's driver): found
through /proc, measured and killed. The kernel's limits on the render process do not reach them
(they are started without them), so these are how their memory and lifetime stay bounded."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before their children."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            # "pid (name) state ppid …": the name may hold spaces and parentheses.
            fields = _read(f"/proc/{entry}/stat").rpartition(")")[2].split()
            if len(fields) > 1:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    parents = [pid]
    while parents:
        below = children.get(parents.pop(), [])
        found.extend(below)
        parents.extend(below)
    return found


def resident_bytes(pids: list[int]) -> int:
    """The memory of their own these processes hold together: the anonymous part of each one's
    resident size (heaps, not the libraries they share, which RSS counts once per process)."""
    total = 0
    for pid in pids:
        for line in _read(f"/proc/{pid}/status").splitlines():
            if line.startswith("RssAnon:"):
                total += int(line.split()[1]) * 1024
    return total


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # gone already
            os.kill(pid, signal.SIGKILL)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:  # the process ended meanwhile
        return ""
