"""One small error taxonomy for every venue.

Adapters map each venue's codes onto these classes and keep the venue's own code and message,
so the trader sees exactly what the exchange said while the pipeline decides by class alone.
"""

from __future__ import annotations

from core.outbound import reply_text


class ExchangeError(Exception):
    """Base class. `retryable` says whether sending the same request again may succeed."""

    kind = "unknown"
    retryable = False

    def __init__(
        self, message: str, *, venue: str = "", code: str | int | None = None, retry_after: float | None = None
    ):
        message = reply_text(message)  # a venue's body is never passed on raw (size, controls)
        super().__init__(message)
        self.message = message
        self.venue = venue
        self.code = reply_text(code, 40) if isinstance(code, str) else code
        self.retry_after = retry_after

    def __str__(self) -> str:
        prefix = f"{self.venue}: " if self.venue else ""
        code = f" (code {self.code})" if self.code is not None else ""
        return f"{prefix}{self.message}{code}"


class AuthError(ExchangeError):
    kind = "auth"


class InsufficientFunds(ExchangeError):
    kind = "insufficient_funds"


class InvalidOrder(ExchangeError):
    """The venue (or our own pre-check against the symbol rules) refused the order as given."""

    kind = "invalid_order"


class UnknownSymbol(InvalidOrder):
    """The venue does not list the symbol (delisted, or never there): retrying cannot help."""


class OrderNotFound(ExchangeError):
    kind = "not_found"


class RateLimited(ExchangeError):
    kind = "rate_limited"
    retryable = True


class OrderWindowPassed(RateLimited):
    """Our own limiter: the venue's budget would not free up for this order before its deadline (the
    signal's useful life). Nothing was sent; the order is `expired`, not refused by the venue."""

    kind = "window_passed"


class Unavailable(ExchangeError):
    """Venue down, 5xx, timeout, connection refused. The request's outcome may be unknown."""

    kind = "unavailable"
    retryable = True


class MalformedResponse(ExchangeError):
    """The venue answered something we cannot parse; treated like an unknown outcome."""

    kind = "unknown"
