"""Where webhooks may go. A subscriber chooses the URL, so an unchecked one would let anyone make
this service call its own network (SSRF): the cloud metadata address, a database, localhost.
Checked when subscribing and again before every delivery, since DNS answers can change."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from ..errors import ValidationFailed

MAX_URL_LENGTH = 2_000


class TargetRefused(ValidationFailed):
    code = "hook_target_refused"


def _refused_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def check_target(url: str, *, allow_private: bool = False) -> None:
    """Raise :class:`TargetRefused`, saying why, unless ``url`` may receive webhooks."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"The target URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("The target URL is not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("The target URL must start with https:// (or http://).")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused(
            "The target URL must not carry credentials (user:password@). Verify deliveries "
            "with their webhook-signature header instead."
        )
    if not parts.hostname:
        raise TargetRefused("The target URL has no host.")
    if allow_private:
        return
    try:
        answers = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise TargetRefused(f"The target host {parts.hostname!r} does not resolve.") from None
    for *_, sockaddr in answers:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if _refused_address(address):
            raise TargetRefused(
                f"The target host {parts.hostname!r} resolves to {address}, a loopback, private, "
                "link-local or reserved address. Webhooks go only to public addresses."
            )
