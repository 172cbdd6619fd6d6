"""Outbound requests made on a user's behalf (a broker's base URL, the AI assistant): only to the public
internet, unless the admin allows more in config.yaml.

A URL is refused when its host is, or resolves to (any one of its addresses), a loopback, private,
link-local (cloud metadata), multicast, reserved or unspecified address: a user must not make the
platform call its own database, Redis, simulator admin API or the cloud provider's metadata service.
Allowed anyway: the configured simulator URL, the networks in `security.allowed_networks`, and
everything when `security.allow_private_urls` is true. Checked when a URL is saved, again right
before the client that uses it is built, and on every new connection that client opens (the address
it actually reached: a name may resolve elsewhere by then); those clients follow no redirects.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from core.infra.config import Settings, get_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


MAX_REPLY_TEXT = 300
# C0/C1 controls, zero-width and bidirectional overrides: nothing a remote says may reorder or hide text.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def reply_text(text: object, limit: int = MAX_REPLY_TEXT) -> str:
    """What a remote server said (a venue's or the AI's error), fit to be shown: one line of printable
    text, at most `limit` characters. Pages escape it as HTML when they render it (Jinja's autoescape)."""
    text = " ".join(_UNPRINTABLE.sub(" ", str(text)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class UnsafeUrl(ValueError):
    """The URL may not be called on a user's behalf; the message says why, in one line."""


def resolve(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


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
    try:
        scheme, host, port = _origin(url)
    except ValueError:
        raise UnsafeUrl("the URL is not valid (bad port or brackets)") from None
    if scheme not in ("http", "https") or not host:
        raise UnsafeUrl("the URL must look like https://host[:port]")
    if urlsplit(url).username is not None:
        raise UnsafeUrl("the URL may not carry a user name or password")
    _check_origin(scheme, host, port, lambda: resolver(host, port or 443), settings or get_settings())


def _check_origin(
    scheme: str, host: str, port: int | None, addresses_of: Callable[[], list[str]], settings: Settings
) -> None:
    policy = settings.file.security
    if policy.allow_private_urls or (scheme, host, port) == _origin(settings.sim_url):
        return
    try:
        addresses = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in addresses_of()]
        except (OSError, UnicodeError):
            raise UnsafeUrl(f"the host {host!r} does not resolve") from None
    if not addresses:
        raise UnsafeUrl(f"the host {host!r} does not resolve")
    allowed = [ipaddress.ip_network(network) for network in policy.allowed_networks]
    for address in addresses:
        if not _is_public(address) and not any(address in network for network in allowed):
            shown = f"{host!r}" if host == str(address) else f"{host!r} (it resolves to one)"
            raise UnsafeUrl(
                f"{shown} is a loopback, private, link-local or reserved address, which this "
                "platform does not call on a user's behalf (an admin can allow it in config.yaml, "
                "security.allow_private_urls)"
            )


# ---- the same rule at connect time: the address a name resolves to may change after the check ----------

# _PeerCheck is mixed into urllib3's HTTPConnection and HTTPSConnection (see guard()).
if TYPE_CHECKING:
    _Connection = HTTPConnection
else:
    _Connection = object


class _PeerCheck(_Connection):
    """Checks the address a new connection actually reached, before a byte is sent on it."""

    scheme = "http"
    settings: Settings | None = None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        peer = sock.getpeername()[0]
        try:
            _check_origin(self.scheme, self.host.lower(), self.port, lambda: [peer], self.settings or get_settings())
        except UnsafeUrl as exc:
            sock.close()
            raise NewConnectionError(self, f"refused: {exc}") from None
        return sock


def guard(session: requests.Session, settings: Settings | None = None) -> requests.Session:
    """Make `session` check every new connection's address and follow no redirect (a 3xx is an error)."""

    def connection(base: type) -> type:
        return type(
            f"Guarded{base.__name__}",
            (_PeerCheck, base),
            {"scheme": "https" if base is HTTPSConnection else "http", "settings": settings},
        )

    pools = {
        "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": connection(HTTPConnection)}),
        "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": connection(HTTPSConnection)}),
    }

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

    for prefix in ("http://", "https://"):
        session.mount(prefix, GuardedAdapter())
    session.max_redirects = 0
    return session
