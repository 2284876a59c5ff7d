"""Where document files live. ``LocalFileStore`` keeps them under the data directory; an object
store can take its place behind the same three methods."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Protocol


def owner_only(path: Path) -> None:
    """Take group and others' permissions off a file or directory of this user's (0644 becomes
    0600, 0755 becomes 0700). Another user's is left as its owner set it."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(status.st_mode)
    if mode & 0o077 and status.st_uid == os.getuid():
        path.chmod(mode & 0o700)


class FileStore(Protocol):
    def put(self, key: str, content: bytes) -> None: ...

    def get(self, key: str) -> bytes | None:
        """The file's bytes, or None when it is not (or no longer) stored."""
        ...

    def delete(self, key: str) -> None: ...


class LocalFileStore:
    """Files under ``root``, readable by the service's user alone (directories 0700, files 0600,
    as ``mkstemp`` makes them). Keys are relative paths made by the service, never by users."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def put(self, key: str, content: bytes) -> None:
        path = self._path(key)
        self._root.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Written to a temporary file and renamed: a reader never sees half a file, and a crash
        # leaves no truncated one under the real name.
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(content)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def _path(self, key: str) -> Path:
        path = (self._root / key).resolve()
        if not path.is_relative_to(self._root.resolve()):
            raise ValueError(f"storage key outside the store: {key!r}")
        return path
