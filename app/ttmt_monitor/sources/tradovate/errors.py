"""Typed Tradovate failures, each with the sentence the trader reads (``str(err)``). Never holds a secret."""

from __future__ import annotations

from ..base import AuthError, SourceError

WHERE = "File → Sources…"


class TradovateError(SourceError):
    """Any Tradovate failure that is not about the credential."""


class AuthRefused(AuthError):
    """``accesstokenrequest`` answered ``errorText`` (wrong password, wrong API key secret, …): shown as it is."""

    def __init__(self, error_text: str) -> None:
        self.error_text = error_text
        super().__init__(f"Tradovate refused the sign-in: “{error_text}” Check the user name, password and API key "
                         f"in {WHERE}")


class CaptchaRequired(AuthError):
    """A penalty ticket with ``p-captcha``: an API client cannot solve it, so we stop rather than retry."""

    def __init__(self) -> None:
        super().__init__("Tradovate wants a captcha after too many sign-in attempts, which an app cannot answer. "
                         "Wait about an hour, then turn this source on again.")


class TokenRejected(AuthError):
    """A fresh access token was refused by the socket: the login is no longer allowed to read."""

    def __init__(self) -> None:
        super().__init__(f"Tradovate refused a fresh access token: check the login and API access in {WHERE}")


class TokenExpired(TradovateError):
    """The access token (and its session) ended: renewal is impossible, a new token request is needed."""

    def __init__(self) -> None:
        super().__init__("The Tradovate session expired; signing in again.")


class UserRateLimited(TradovateError):
    """A user-level HTTP 429 (socket ``s:429``): the docs say it cannot be resolved in code; wait about an hour."""

    def __init__(self) -> None:
        super().__init__("Tradovate is throttling this user (too many requests); waiting before trying again.")


class RequestFailed(TradovateError):
    def __init__(self, endpoint: str, status: int, text: str = "") -> None:
        self.endpoint, self.status = endpoint, status
        super().__init__(f"Tradovate answered {status} to {endpoint}" + (f": {text[:200]}" if text else ""))


class QuotesNotEntitled(TradovateError):
    def __init__(self, error_text: str) -> None:
        super().__init__(f"No Tradovate quotes for this login ({error_text}); open P&L comes from the cash "
                         "balance instead.")
