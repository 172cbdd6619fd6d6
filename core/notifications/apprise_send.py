"""One message through one Apprise URL, under the platform's outbound rule (core/outbound.py).

A URL is hostile input: it is parsed by Apprise itself (a malformed one is refused with a clear line),
and when its service is one the user points at a host of their choosing (json://, form://, ntfy://,
mailto://, gotify://...), that host must pass `check_url` like any URL called on a user's behalf.
Services with a fixed endpoint (Telegram, Discord...) carry tokens, not hosts, where a host would be.
The URL's parts are registered as secrets, so no log line shows them.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import apprise

from core.infra.config import get_settings
from core.infra.security import REDACTED, redact, register_secret
from core.outbound import UnsafeUrl, check_url, reply_text

NOTIFY_TYPES = {
    "info": apprise.NotifyType.INFO,
    "warning": apprise.NotifyType.WARNING,
    "error": apprise.NotifyType.FAILURE,
    "critical": apprise.NotifyType.FAILURE,
}
logging.getLogger("apprise").setLevel(logging.WARNING)  # its debug lines name the targets


class InvalidAppriseUrl(ValueError):
    """The URL cannot be used; the message says why in one line, without repeating the URL."""


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None = None
    retryable: bool = False  # the service was unreachable or refused: worth another attempt


def hide(url: str) -> None:
    """Register the URL and its token-like parts (12+ characters with a digit: bot tokens, webhook keys) as
    secrets; plain words and host names are left alone, or every log line naming them would be masked."""
    register_secret(url)
    for piece in re.split(r"[/:@?&=,#]", url.split("://", 1)[-1]):
        if len(piece) >= 12 and any(ch.isdigit() for ch in piece):
            register_secret(piece)
    with contextlib.suppress(ValueError):  # a port that is not a number: no password to find either
        register_secret(urlsplit(url).password)


def service(url: str):
    """Apprise's plugin instance for `url`, or InvalidAppriseUrl."""
    url = url.strip()
    if not url or len(url) > 1500 or any(ch.isspace() for ch in url):
        raise InvalidAppriseUrl("an Apprise URL is one line like tgram://token/chat or json://host/path")
    if "://" not in url:
        raise InvalidAppriseUrl("an Apprise URL starts with its service, like tgram:// or mailto://")
    hide(url)
    plugin = apprise.Apprise.instantiate(url, asset=apprise.AppriseAsset(secure_logging=True))
    if plugin is None:
        scheme = url.split("://", 1)[0][:20]
        raise InvalidAppriseUrl(
            f"Apprise does not understand this URL (service {reply_text(scheme, 20)!r}: "
            "unknown, or its token/host part is malformed)"
        )
    _check_target(plugin)
    return plugin


def _check_target(plugin) -> None:
    """Self-hosted services: their host passes the outbound rule (no loopback/private unless allowed)."""
    host = getattr(plugin, "host", None)
    if getattr(type(plugin), "notify_url", None) or not isinstance(host, str) or not host:
        return
    if not _is_network_name(host):
        return  # a token where a host would be (Slack-like services)
    port = getattr(plugin, "port", None)
    origin = f"{'https' if getattr(plugin, 'secure', False) else 'http'}://{_bracket(host)}"
    try:
        check_url(f"{origin}:{port}" if port else origin)
    except UnsafeUrl as exc:
        raise InvalidAppriseUrl(f"this channel's target is refused: {exc}") from None


def _is_network_name(host: str) -> bool:
    if "." in host or ":" in host or host.lower() == "localhost":
        return True
    try:  # "2130706433" or "0x7f000001" are addresses to the resolver
        socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
        return True
    except socket.gaierror:
        return False


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def send(url: str, title: str, body: str, severity: str) -> SendResult:
    """Send now (blocking up to `notifications.send_timeout_s` per try); never raises."""
    try:
        plugin = service(url)
    except InvalidAppriseUrl as exc:
        return SendResult(False, str(exc))
    timeout = float(get_settings().file.notifications.send_timeout_s)
    plugin.socket_connect_timeout = min(timeout, 5.0)
    plugin.socket_read_timeout = timeout
    sender = apprise.Apprise()
    sender.add(plugin)
    try:
        result = sender.notify(body=body or title, title=title, notify_type=NOTIFY_TYPES[severity])
    except Exception as exc:  # noqa: BLE001 - a plugin's own bug must not kill the worker
        return SendResult(False, _shown(f"{type(exc).__name__}: {exc}"), retryable=True)
    if result:
        return SendResult(True)
    problems = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR", "CRITICAL")]
    return SendResult(
        False, _shown(problems[-1] if problems else "the service did not accept the message"), retryable=True
    )


def _shown(text: str) -> str:
    return reply_text(redact(text)).replace(REDACTED, "…")
