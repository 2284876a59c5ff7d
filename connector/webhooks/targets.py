"""Where webhooks may go. A subscriber chooses the URL, so an unchecked one would let anyone make
this service call its own network (SSRF): the cloud metadata address, a database, localhost.

Checked when subscribing and again before every delivery (DNS answers change), and a delivery
connects to the very address that was checked (:class:`Target`), so a name cannot answer with
a public address for the check and a private one for the connection."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from ..errors import HookTargetRefused

MAX_URL_LENGTH = 2_000
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    host_header: str
    address: str = ""


def _refused_address(address: _Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = (
            address.ipv4_mapped
            or address.sixtofour
            or (address.teredo[1] if address.teredo else None)
        )
        if embedded is not None:
            return _refused_address(embedded)
        if address.is_site_local:
            return True
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def parse_target(url: str) -> Target:
    """The parts of a target URL, or :class:`HookTargetRefused` saying what is wrong with it."""
    if len(url) > MAX_URL_LENGTH:
        raise HookTargetRefused(f"The target URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        scheme = parts.scheme
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise HookTargetRefused("The target URL is not a valid URL.") from None
    if scheme not in ("http", "https"):
        raise HookTargetRefused("The target URL must start with https:// (or http://).")
    if parts.username is not None or parts.password is not None:
        raise HookTargetRefused(
            "The target URL must not carry credentials (user:password@). Verify deliveries "
            "with their webhook-signature header instead."
        )
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise HookTargetRefused("The target URL has no host.")
    if not host.isascii():
        # Name encodings differ between libraries (IDNA 2003 and 2008): the name checked must
        # be the name connected to, so only the ASCII (xn--) form is accepted.
        raise HookTargetRefused(
            "The target host has non-ASCII characters. Use its ASCII (xn--) form."
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = port == (443 if scheme == "https" else 80)
    shown_host = f"[{host}]" if ":" in host else host
    host_header = shown_host if default_port else f"{shown_host}:{port}"
    return Target(scheme, host, port, path, host_header)


def resolve_target(url: str, *, allow_private: bool = False) -> Target:
    """The target with the address to connect to, refusing any that is not public (unless
    ``allow_private``): every address the name has must be public."""
    target = parse_target(url)
    try:
        answers = socket.getaddrinfo(target.host, target.port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise HookTargetRefused(f"The target host {target.host!r} does not resolve.") from None
    addresses = [
        ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]) for *_, sockaddr in answers
    ]
    if not allow_private:
        for address in addresses:
            if _refused_address(address):
                raise HookTargetRefused(
                    f"The target host {target.host!r} resolves to {address}, a loopback, "
                    "private, link-local or reserved address. Webhooks go only to public "
                    "addresses."
                )
    return replace(target, address=str(addresses[0]))


def check_target(url: str, *, allow_private: bool = False) -> None:
    """Raise :class:`HookTargetRefused`, saying why, unless ``url`` may receive webhooks."""
    if allow_private:
        parse_target(url)
    else:
        resolve_target(url)
