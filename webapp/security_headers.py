"""Security headers on every response: a strict Content-Security-Policy and the usual browser guards.

Scripts come only from this site (`script-src 'self'`): no inline script, no inline event handler, no
eval. Inline *styles* stay allowed (`style-src 'self' 'unsafe-inline'`): the vendored chart and
editor libraries inject style elements at run time, and a style cannot run code. Nothing may frame
the app (clickjacking), and the browser must not guess content types.

Cookies are `Secure` when `web.session_cookie_secure` is set in config.yaml, and also whenever the
request itself came over HTTPS (`request.is_secure`: TLS at the WSGI server, or a proxy's
`X-Forwarded-Proto` that gunicorn trusts, by default only from 127.0.0.1 — `forwarded_allow_ips`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, Response, request

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def add_security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def secure_cookies_over_https(wsgi_app: WSGIApplication) -> WSGIApplication:
    """Mark every cookie `Secure` on HTTPS requests. A WSGI wrapper, because the session and remember-me
    cookies are written after every `after_request` function has run."""

    def middleware(environ: WSGIEnvironment, start_response: StartResponse):
        if environ.get("wsgi.url_scheme") != "https":
            return wsgi_app(environ, start_response)

        def start(status: str, headers: list[tuple[str, str]], exc_info=None):
            headers = [
                (
                    name,
                    f"{value}; Secure" if name.lower() == "set-cookie" and "; secure" not in value.lower() else value,
                )
                for name, value in headers
            ]
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, start)

    return middleware


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)
    app.wsgi_app = secure_cookies_over_https(app.wsgi_app)
