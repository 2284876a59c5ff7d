"""Secrets the service must read back, encrypted at rest: webhook signing secrets (every delivery
is signed with its subscription's secret, so the secret itself is kept, not a hash).

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under a key derived from
``BRIDGE_SECRET_KEY`` with HKDF. Secrets encrypted under ``BRIDGE_SECRET_KEY_PREVIOUS`` are still
read, so the key can be rotated: set both, run ``templateto-bridge reencrypt``, then drop the
previous one (docs/deployment.md).
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# What the derived key is for: the same BRIDGE_SECRET_KEY also signs sessions and links.
_PURPOSE = b"templateto-bridge: secrets stored in the database"


class UnreadableSecret(Exception):
    """Encrypted under neither BRIDGE_SECRET_KEY nor BRIDGE_SECRET_KEY_PREVIOUS (or altered)."""


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(
        secret_key.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(key))


class StoredSecrets:
    """Encrypts with the current secret key; decrypts with it or the previous one."""

    def __init__(self, secret_key: str, previous_secret_key: str | None = None) -> None:
        keys = [secret_key, *([previous_secret_key] if previous_secret_key else [])]
        self._fernet = MultiFernet([_fernet(key) for key in keys])

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        try:
            return self._fernet.decrypt(stored.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            raise UnreadableSecret() from None

    def reencrypt(self, stored: str) -> str:
        """``stored`` encrypted under the current key, whichever of the two it was under."""
        try:
            return self._fernet.rotate(stored.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            raise UnreadableSecret() from None
