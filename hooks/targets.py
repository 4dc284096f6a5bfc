"""The SSRF guard: a webhook may only point at a public ``http``/``https`` address.

Checked when a webhook is created or its URL changed (a 400) and again before every attempt (the attempt fails),
since a name may resolve elsewhere later. Every address the host resolves to must be global: loopback, private,
link-local, reserved, multicast, unspecified and shared (CGNAT) addresses are refused, also as IPv4-mapped IPv6
addresses. ``WEBHOOK_ALLOW_PRIVATE_TARGETS=1`` turns the address check off (development, tests).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class TargetRefused(ValueError):
    """The URL is not one a webhook may be sent to; the message says why (for the API's 400 and the log)."""


def _refused_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or not address.is_global
    )


def check_target(url: str) -> None:
    """Raise ``TargetRefused`` unless ``url`` is http(s) with a host whose every address is public."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused("Enter a valid URL.") from exc
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("Only http and https URLs are allowed.")
    host = parts.hostname
    if not host:
        raise TargetRefused("The URL has no host.")
    if parts.username or parts.password:
        raise TargetRefused("The URL may not carry credentials.")
    if getattr(settings, "WEBHOOK_ALLOW_PRIVATE_TARGETS", False):
        return
    try:
        infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(f"The host {host} does not resolve.") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if _refused_address(address):
            raise TargetRefused(f"The host {host} resolves to a non-public address ({address}).")
