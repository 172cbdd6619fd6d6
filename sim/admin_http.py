"""The simulators' admin endpoints' plumbing (spot and perp): loopback only, a JSON object in, every refusal
a 400 with {"error": ...}."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[dict], Awaitable[web.Response]]


def is_loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def admin_error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


def loopback_json(handler: Handler, refused: tuple[type[Exception], ...]) -> Callable:
    """The handler behind the guard: off-loopback callers get a 403, bad bodies and `refused` errors a 400."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if not is_loopback(request):
            return admin_error("admin endpoints answer on loopback only", 403)
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return admin_error("body must be a JSON object")
        if not isinstance(body, dict):
            return admin_error("body must be a JSON object")
        try:
            return await handler(body)
        except refused as exc:
            return admin_error(str(exc))

    return guarded
