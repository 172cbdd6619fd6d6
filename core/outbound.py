"""Outbound requests made on a user's behalf (a broker's base URL, the AI assistant): only to the public
internet, unless the admin allows more in config.yaml.

A URL is refused when its host is, or resolves to (any one of its addresses), a loopback, private,
link-local (cloud metadata), multicast, reserved or unspecified address: a user must not make the
platform call its own database, Redis, simulator admin API or the cloud provider's metadata service.
Allowed anyway: the configured simulator URL, the networks in `security.allowed_networks`, and
everything when `security.allow_private_urls` is true. Checked when a URL is saved and again right
before the client that uses it is built; those clients follow no redirects.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from core.config import Settings, get_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class UnsafeUrl(ValueError):
    """The URL may not be called on a user's behalf; the message says why, in one line."""


def resolve(host: str, port: int) -> list[str]:
    return sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def _is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_unspecified)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default_port


def check_url(url: str, settings: Settings | None = None, *, resolver: Resolver = resolve) -> None:
    """Raise UnsafeUrl unless `url` may be called on a user's behalf (see the module's docstring)."""
    settings = settings or get_settings()
    try:
        scheme, host, port = _origin(url)
    except ValueError:
        raise UnsafeUrl("the URL is not valid (bad port or brackets)") from None
    if scheme not in ("http", "https") or not host:
        raise UnsafeUrl("the URL must look like https://host[:port]")
    if urlsplit(url).username is not None:
        raise UnsafeUrl("the URL may not carry a user name or password")
    policy = settings.file.security
    if policy.allow_private_urls or (scheme, host, port) == _origin(settings.sim_url):
        return
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolver(host, port or 443)]
        except (OSError, UnicodeError):
            raise UnsafeUrl(f"the host {host!r} does not resolve") from None
    if not addresses:
        raise UnsafeUrl(f"the host {host!r} does not resolve")
    allowed = [ipaddress.ip_network(network) for network in policy.allowed_networks]
    for address in addresses:
        if not _is_public(address) and not any(address in network for network in allowed):
            shown = f"{host!r}" if host == str(address) else f"{host!r} (it resolves to one)"
            raise UnsafeUrl(f"{shown} is a loopback, private, link-local or reserved address, which this "
                            "platform does not call on a user's behalf (an admin can allow it in config.yaml, "
                            "security.allow_private_urls)")
