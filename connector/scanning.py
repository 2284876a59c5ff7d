"""Find TemplateTo API key values in files and directories (``templateto-bridge scan``): by
format and checksum alone (:func:`connector.keys.find_values`), with no network and no database.

Files are read in chunks, so a file of any size takes bounded memory. What is not scanned, and
why: binary files (a NUL byte in their first 8 KiB, as git decides), symbolic links (never
followed: a link's target is scanned where it lives, when it is among the paths scanned, so
nothing outside them is read), other special files (a FIFO would block), and version control
directories (``.git``: history is another matter than the files about to be committed).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from . import keys

CHUNK_BYTES = 1 << 20
BINARY_SNIFF_BYTES = 8192
VERSION_CONTROL_DIRECTORIES = frozenset({".git", ".hg", ".svn"})


@dataclass(frozen=True)
class Finding:
    """A key value found in a file: where, and what may be shown or sent of it (its SHA-256
    and hint), never the value itself."""

    path: str
    line: int
    digest: str
    hint: str

    @property
    def location(self) -> str:
        """FILE:LINE, as printed and reported: a file named after a value does not name it."""
        return keys.redact(f"{self.path}:{self.line}")


@dataclass
class Scan:
    """One scan's findings (as they are found, from :meth:`run`) and what it could not read."""

    unreadable: list[tuple[str, str]] = field(default_factory=list)
    files: int = 0

    def run(self, paths: Iterable[str]) -> Iterator[Finding]:
        for path in paths:
            yield from self._path(path)

    def _path(self, path: str) -> Iterator[Finding]:
        try:
            mode = os.lstat(path).st_mode
        except OSError as error:
            self.unreadable.append((path, error.strerror or type(error).__name__))
            return
        if stat.S_ISDIR(mode):
            yield from self._directory(path)
        elif stat.S_ISREG(mode):
            yield from self._file(path)
        # Named, yet not read: said, so that finding nothing is not taken for all clean.
        elif stat.S_ISLNK(mode):
            self.unreadable.append((path, "a symbolic link (not followed): scan its target"))
        else:
            self.unreadable.append((path, "not a regular file or directory"))

    def _directory(self, path: str) -> Iterator[Finding]:
        try:
            with os.scandir(path) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as error:
            self.unreadable.append((path, error.strerror or type(error).__name__))
            return
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in VERSION_CONTROL_DIRECTORIES:
                    yield from self._directory(entry.path)
            elif entry.is_file(follow_symlinks=False):
                yield from self._file(entry.path)

    def _file(self, path: str) -> Iterator[Finding]:
        try:
            # O_NOFOLLOW: a file swapped for a link since it was listed is still not followed.
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as error:
            self.unreadable.append((path, error.strerror or type(error).__name__))
            return
        with os.fdopen(descriptor, "rb") as stream:
            try:
                found = list(_values_in(stream))
            except OSError as error:
                self.unreadable.append((path, error.strerror or type(error).__name__))
                return
        self.files += 1
        for line, value in found:
            hint = keys.display_hint(keys.last_four(value))
            yield Finding(path=path, line=line, digest=keys.fingerprint(value), hint=hint)


def _values_in(stream: IO[bytes]) -> Iterator[tuple[int, str]]:
    """The line and value of each key in a binary stream, read a chunk at a time; nothing for a
    binary file. A value may straddle two chunks: the last ``KEY_LENGTH`` bytes of one are
    searched again with the next, and a value is taken only once the byte after it is seen
    (a longer run of letters and digits is not a value)."""
    buffer = b""
    line = 1  # the line buffer[0] is on
    first = True
    while True:
        chunk = stream.read(CHUNK_BYTES)
        if first and b"\0" in chunk[:BINARY_SNIFF_BYTES]:
            return
        first = False
        buffer += chunk
        complete = len(buffer) if not chunk else len(buffer) - keys.KEY_LENGTH
        counted, at_line = 0, line
        for offset, value in keys.find_values(buffer):
            if offset >= complete:
                break
            at_line += buffer.count(b"\n", counted, offset)
            counted = offset
            yield at_line, value
        if not chunk:
            return
        kept_from = max(complete, 0)
        line += buffer.count(b"\n", 0, kept_from)
        buffer = buffer[kept_from:]
