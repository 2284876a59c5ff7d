"""Signed, expiring download links: they need no API key and carry none, so Zapier and n8n can
fetch a document's file with a plain GET."""

from __future__ import annotations

from datetime import datetime

from itsdangerous import BadSignature, URLSafeSerializer

from .errors import DownloadLinkExpired, DownloadLinkInvalid

_SALT = "templateto-bridge document download"


class DownloadLinks:
    def __init__(
        self, secret_key: str, public_url: str, previous_secret_key: str | None = None
    ) -> None:
        # Signed with the secret key; links signed with the previous one (before a rotation)
        # still work. itsdangerous takes the keys oldest first.
        keys = [*([previous_secret_key] if previous_secret_key else []), secret_key]
        self._serializer = URLSafeSerializer(keys, salt=_SALT)
        self._base = public_url.rstrip("/") + "/files/"

    def url(self, document_id: str, expires_at: datetime) -> str:
        token = self._serializer.dumps([document_id, int(expires_at.timestamp())])
        return self._base + token

    def document_id(self, token: str, now: datetime) -> str:
        """The document a link names. Raises 403 for a link we did not sign (or that was
        altered), 410 for one past its expiry."""
        try:
            document_id, expires = self._serializer.loads(token)
        except (BadSignature, ValueError, TypeError):
            raise DownloadLinkInvalid(
                "This download link is not valid: it was altered or cut short. Use the file_url "
                "exactly as the API returned it.",
            ) from None
        if now.timestamp() >= expires:
            raise DownloadLinkExpired(
                "This download link has expired, and with it the file. Render the document again "
                "to get a new link."
            )
        return str(document_id)
