"""GitHub's secret scanning partner program: the signature on the matches GitHub sends, checked
against GitHub's public keys, and the matches themselves.

GitHub signs the raw request body with ECDSA (P-256, SHA-256), DER-encoded and base64'd in
``Github-Public-Key-Signature``, with the key named in ``Github-Public-Key-Identifier``. Its
public keys are a JSON file in GitHub's own format (``{"public_keys": [{"key_identifier",
"key", "is_current"}]}``, ``key`` in PEM) named by ``BRIDGE_GITHUB_SECRET_SCANNING_KEYS``; the
operator's cron job refreshes it, and it is read again whenever it changes.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
from pathlib import Path
from typing import Annotated

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .errors import (
    MalformedJson,
    SecretScanningKeysUnavailable,
    SecretScanningNotConfigured,
    SignatureInvalid,
    SignatureKeyUnknown,
    SignatureMissing,
)

log = logging.getLogger(__name__)

KEY_IDENTIFIER_HEADER = "Github-Public-Key-Identifier"
SIGNATURE_HEADER = "Github-Public-Key-Signature"
MAX_MATCHES = 1_000
MAX_KEYS_FILE_BYTES = 1_000_000


class GitHubMatch(BaseModel):
    """One match GitHub found: the token, our token type's name, and where."""

    model_config = ConfigDict(extra="ignore")

    token: str = Field(max_length=1_000)
    type: str = Field(max_length=200)
    url: str | None = Field(default=None, max_length=10_000)
    source: str | None = Field(default=None, max_length=200)


MATCHES: TypeAdapter[list[GitHubMatch]] = TypeAdapter(
    Annotated[list[GitHubMatch], Field(max_length=MAX_MATCHES)]
)


def parse_matches(body: bytes) -> list[GitHubMatch]:
    """The matches of a verified body. Raises :class:`MalformedJson`, or pydantic's
    ``ValidationError`` (answered 422) for JSON of another shape."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedJson(
            "The body is not valid UTF-8 JSON: GitHub sends a JSON array of "
            '{"token", "type", "url", "source"} objects.'
        ) from None
    return MATCHES.validate_python(data)


class _PublicKeysFile(BaseModel):
    class Entry(BaseModel):
        key_identifier: str
        key: str
        is_current: bool = False

    public_keys: list[Entry]


class GitHubPublicKeys:
    """Verify GitHub's signatures with the keys in ``path`` (None: none configured)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}

    def verify(self, identifier: str | None, signature: str | None, body: bytes) -> None:
        """Return when ``signature`` is a valid signature of ``body`` by the key named
        ``identifier``; else raise the :class:`~connector.errors.SignatureRefused` saying why."""
        if self._path is None:
            raise SecretScanningNotConfigured(
                "GitHub secret scanning is not set up on this service: its operator sets "
                "BRIDGE_GITHUB_SECRET_SCANNING_KEYS to a file of GitHub's public keys."
            )
        if not identifier or not signature:
            raise SignatureMissing(
                f"Send the {KEY_IDENTIFIER_HEADER} and {SIGNATURE_HEADER} headers, as GitHub's "
                "secret scanning does."
            )
        key = self._current_keys().get(identifier)
        if key is None:
            raise SignatureKeyUnknown(
                f"No GitHub public key here is named by {KEY_IDENTIFIER_HEADER}; the operator's "
                "copy of GitHub's keys may be out of date.",
            )
        try:
            key.verify(base64.b64decode(signature, validate=True), body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            raise SignatureInvalid(
                f"The {SIGNATURE_HEADER} header is not a valid signature of this body by that "
                "key: nothing was recorded.",
            ) from None

    def _current_keys(self) -> dict[str, ec.EllipticCurvePublicKey]:
        assert self._path is not None
        try:
            status = os.stat(self._path)
        except OSError as error:
            raise self._unavailable(error.strerror or type(error).__name__) from None
        seen = (status.st_ino, status.st_mtime_ns, status.st_size)
        with self._lock:
            if seen != self._seen:
                self._keys = self._load()
                self._seen = seen
            return self._keys

    def _load(self) -> dict[str, ec.EllipticCurvePublicKey]:
        assert self._path is not None
        try:
            with self._path.open("rb") as file:
                parsed = _PublicKeysFile.model_validate_json(file.read(MAX_KEYS_FILE_BYTES + 1))
            loaded = {}
            for entry in parsed.public_keys:
                key = load_pem_public_key(entry.key.encode())
                if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
                    raise ValueError(f"key {entry.key_identifier!r} is not a P-256 key")
                loaded[entry.key_identifier] = key
        except (OSError, ValidationError, ValueError) as error:
            raise self._unavailable(str(error).splitlines()[0]) from None
        return loaded

    def _unavailable(self, reason: str) -> SecretScanningKeysUnavailable:
        log.error("cannot use GitHub's secret scanning keys in %s: %s", self._path, reason)
        return SecretScanningKeysUnavailable(
            "This service cannot read its copy of GitHub's secret scanning keys right now; "
            "its operator has been told. Send the matches again later."
        )
