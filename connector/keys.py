"""The API key format: generate values, check their shape and checksum. Pure functions, no I/O.

A value is ``tt_live_`` + 32 random base62 characters + a 6-character base62 CRC32 of those 32
characters: 46 characters in all. The checksum lets a server reject a mistyped or truncated value
without a database lookup, and lets secret scanners recognise a leaked value.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import string
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

PREFIX = "tt_live_"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_BASE62_SET = frozenset(BASE62)
_QUOTES = "\"'`"
_PLACEHOLDER_MARKS = ("{{", "}}", "bundle.authData", "$credentials", "${")
# Key-shaped: the prefix in any case, then letters and digits (a whole value, or part of one).
_KEY_SHAPED = re.compile(f"{re.escape(PREFIX)}[0-9A-Za-z]+", re.IGNORECASE | re.ASCII)
# A whole value in bytes of any ASCII-compatible text: the prefix, then exactly 38 letters and
# digits that no further letter or digit follows (a longer run is not one of our values).
_CANDIDATE = re.compile(
    re.escape(PREFIX).encode() + rb"[0-9A-Za-z]{%d}(?![0-9A-Za-z])" % (KEY_LENGTH - len(PREFIX))
)
REDACTED = PREFIX + "[redacted]"


class FormatProblem(enum.Enum):
    """Why a presented value cannot be a TemplateTo key, with the sentence a user needs."""

    EMPTY = "the X-Api-Key header is empty"
    PLACEHOLDER = (
        "the X-Api-Key header holds a placeholder, not a key: the integration did not fill it "
        "in. Re-enter the key"
    )
    WHITESPACE = "the key has spaces or line breaks before or after it. Copy it again without them"
    QUOTED = "the key is wrapped in quotes. Send the key alone, without quotes"
    BEARER = "the header starts with 'Bearer'. Send the key alone in the X-Api-Key header"
    WRONG_PREFIX = f"the value does not start with '{PREFIX}', as every TemplateTo API key does"
    WRONG_LENGTH = (
        f"a TemplateTo API key is {KEY_LENGTH} characters long; this one was cut off or joined "
        "with other text when it was copied"
    )
    INVALID_CHARACTERS = (
        f"the value contains characters other than letters and digits after '{PREFIX}'"
    )

    @property
    def code(self) -> str:
        return self.name.lower()


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(BASE62[remainder])
    return "".join(reversed(digits)).rjust(width, "0")


def checksum(random_part: str) -> str:
    """The 6-character base62 CRC32 of a key's random part."""
    return _base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_LENGTH)


def generate() -> str:
    """A new random key value. Its 32 random characters carry about 190 bits of entropy."""
    random_part = "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    return PREFIX + random_part + checksum(random_part)


def fingerprint(value: str) -> str:
    """The SHA-256 (hex) under which a value is stored and looked up: never the value itself."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def last_four(value: str) -> str:
    return value[-4:]


def display_hint(last4: str) -> str:
    """How a key is shown once its value is gone: ``tt_live_…abcd``."""
    return f"{PREFIX}…{last4}"


def redact(text: str) -> str:
    """``text`` with everything key-shaped in it replaced by ``tt_live_[redacted]``: for text
    taken from a request (a path, a parameter name, an ID) that is kept, logged or answered."""
    # Searching the lowered text first is several times quicker where there is nothing to find.
    return _KEY_SHAPED.sub(REDACTED, text) if PREFIX in text.lower() else text


def printable(text: str, limit: int) -> str:
    """Client text (a path, a URL) fit to store and show: at most ``limit`` characters, control
    characters as ``?`` (PostgreSQL refuses NUL), nothing key-shaped."""
    return redact("".join(c if c.isprintable() else "?" for c in text[:limit]))


def diagnose(value: str) -> FormatProblem | None:
    """Why ``value`` is not shaped like a TemplateTo key, or None when it is."""
    if value == "":
        return FormatProblem.EMPTY
    if any(mark in value for mark in _PLACEHOLDER_MARKS):
        return FormatProblem.PLACEHOLDER
    if value != value.strip():
        return FormatProblem.WHITESPACE
    if value[0] in _QUOTES or value[-1] in _QUOTES:
        return FormatProblem.QUOTED
    if value[:7].lower() == "bearer ":
        return FormatProblem.BEARER
    if not value.startswith(PREFIX):
        return FormatProblem.WRONG_PREFIX
    if len(value) != KEY_LENGTH:
        return FormatProblem.WRONG_LENGTH
    if not _BASE62_SET.issuperset(value[len(PREFIX) :]):
        return FormatProblem.INVALID_CHARACTERS
    return None


def checksum_matches(value: str) -> bool:
    """Whether a well-shaped value's last 6 characters are the checksum of its random part."""
    random_part = value[len(PREFIX) : len(PREFIX) + RANDOM_LENGTH]
    return secrets.compare_digest(checksum(random_part), value[-CHECKSUM_LENGTH:])


def find_values(data: bytes) -> Iterator[tuple[int, str]]:
    """Where in ``data`` a TemplateTo key value stands, and the value: shaped like one and with
    a matching checksum, so a mistyped or made-up look-alike is not one. For secret scanning."""
    for match in _CANDIDATE.finditer(data):
        value = match.group().decode("ascii")
        if checksum_matches(value):
            yield match.start(), value


@dataclass(frozen=True)
class NewKeyValue:
    """A freshly generated value with what may be stored of it."""

    value: str
    fingerprint: str
    last4: str

    @classmethod
    def generate(cls) -> NewKeyValue:
        value = generate()
        return cls(value=value, fingerprint=fingerprint(value), last4=last_four(value))
