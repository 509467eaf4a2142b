"""Tradovate access tokens: ``POST /auth/accesstokenrequest`` with its three answers (a token; ``errorText``; a
penalty ticket: wait ``p-time`` then resend the same body plus ``p-ticket``, or stop on ``p-captcha``), and
``/auth/renewaccesstoken`` well before ``expirationTime``.

Rules kept here: renewal never sends a new token request (each opens a session and may kick others out); a new
token request is made only at start or when the session is gone; our own limiter keeps token requests far below
Tradovate's 10 a minute; secrets are never logged nor put in an exception.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from ..base import AuthError
from .errors import AuthRefused, CaptchaRequired, RequestFailed, TokenExpired, TradovateError, UserRateLimited
from .protocol import parse_json

log = logging.getLogger("ttmt_monitor.sources.tradovate.auth")

RENEW_LEAD = 15 * 60.0          # the docs: renew about 15 minutes early
MAX_TOKEN_REQUESTS = 4          # per minute, ours (Tradovate's limit is 10)
MAX_PENALTY_ROUNDS = 5


@dataclass(frozen=True)
class Token:
    access: str
    md_access: str | None
    expires_at: datetime
    user_id: int
    issued_at: float                # time.monotonic()
    lifetime: float                 # seconds from issue to expiry

    def __repr__(self) -> str:      # a token is a credential: never in a log line or a traceback
        return f"Token(user_id={self.user_id}, expires_at={self.expires_at.isoformat()})"

    def renew_in(self) -> float:
        """Seconds from now until the renewal is due: 15 minutes early, or a quarter of a short lifetime."""
        lead = min(RENEW_LEAD, self.lifetime * 0.25)
        return max(0.0, self.issued_at + self.lifetime - lead - time.monotonic())


@dataclass(frozen=True)
class Credentials:
    name: str
    password: str
    app_id: str
    app_version: str
    cid: int | str
    sec: str
    device_id: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(name={self.name!r}, app_id={self.app_id!r}, cid={self.cid!r})"

    def body(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "password": self.password, "appId": self.app_id,
                                  "appVersion": self.app_version, "cid": self.cid, "sec": self.sec}
        if self.device_id:
            out["deviceId"] = self.device_id
        return out


def _token(data: dict) -> Token:
    expires = datetime.fromisoformat(str(data["expirationTime"]))
    lifetime = max(1.0, (expires - datetime.now(UTC)).total_seconds())
    return Token(str(data["accessToken"]), data.get("mdAccessToken"), expires, int(data.get("userId") or 0),
                 time.monotonic(), lifetime)


class TokenManager:
    """Holds the current token; ``on_wait(seconds, sentence)`` is told about every penalty wait."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, credentials: Credentials,
                 on_wait: Callable[[float, str], None] | None = None, max_requests_per_minute: int = MAX_TOKEN_REQUESTS,
                 window: float = 60.0) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.on_wait = on_wait or (lambda s, t: None)
        self.token: Token | None = None
        self.token_requests = 0
        self.renewals = 0
        self._recent: deque[float] = deque()
        self._limit = max_requests_per_minute
        self._window = window
        self._lock = asyncio.Lock()
        self.failed: AuthError | None = None

    async def _limited(self) -> None:
        """Never more than our limit of token requests in any window (waits instead)."""
        while True:
            now = time.monotonic()
            while self._recent and now - self._recent[0] > self._window:
                self._recent.popleft()
            if len(self._recent) < self._limit:
                self._recent.append(now)
                return
            wait = self._window - (now - self._recent[0]) + 0.01
            self.on_wait(wait, f"Waiting {wait:.0f} s before signing in to Tradovate again.")
            await asyncio.sleep(wait)

    async def request_token(self) -> Token:
        """A new session: the three answers of ``accesstokenrequest`` handled (penalty tickets waited out)."""
        async with self._lock:
            body = self.credentials.body()
            for _ in range(MAX_PENALTY_ROUNDS):
                if "p-ticket" not in body:
                    await self._limited()
                self.token_requests += 1
                try:
                    response = await self.http.post(f"{self.base_url}/auth/accesstokenrequest", json=body)
                except httpx.HTTPError as exc:
                    raise TradovateError(f"Cannot reach Tradovate to sign in ({type(exc).__name__}).") from None
                if response.status_code == 429:
                    raise UserRateLimited()
                if response.status_code != 200:
                    raise RequestFailed("auth/accesstokenrequest", response.status_code)
                try:
                    data = parse_json(response.content)
                except ValueError:
                    raise TradovateError("Tradovate sent an unreadable sign-in answer.") from None
                if not isinstance(data, dict):
                    raise TradovateError("Tradovate sent an unreadable sign-in answer.")
                if "p-ticket" in data:
                    if data.get("p-captcha"):
                        raise CaptchaRequired()
                    wait = float(data.get("p-time") or 1)
                    log.info("penalty ticket: waiting %.0f s before resending the token request", wait)
                    self.on_wait(wait, f"Tradovate asked us to wait {wait:.0f} s before signing in.")
                    await asyncio.sleep(wait)
                    body = {**self.credentials.body(), "p-ticket": data["p-ticket"]}
                    continue
                if data.get("errorText"):
                    raise AuthRefused(str(data["errorText"]))
                if "accessToken" in data and "expirationTime" in data:
                    self.token = _token(data)
                    return self.token
                raise TradovateError("Tradovate's sign-in answer had no token.")
            raise TradovateError("Tradovate kept asking us to wait before signing in; trying again later.")

    async def renew(self) -> Token:
        """``renewaccesstoken`` with the current token. ``TokenExpired`` when the session is gone."""
        if self.token is None:
            raise TokenExpired()
        try:
            response = await self.http.get(f"{self.base_url}/auth/renewaccesstoken",
                                           headers={"Authorization": f"Bearer {self.token.access}"})
        except httpx.HTTPError as exc:
            raise TradovateError(f"Cannot reach Tradovate to renew the token ({type(exc).__name__}).") from None
        if response.status_code == 401:
            raise TokenExpired()
        if response.status_code == 429:
            raise UserRateLimited()
        if response.status_code != 200:
            raise RequestFailed("auth/renewaccesstoken", response.status_code)
        data = parse_json(response.content)
        if not isinstance(data, dict) or "accessToken" not in data:
            raise TokenExpired()
        self.renewals += 1
        # renewal keeps the user id of the session when the answer leaves it out
        token = _token(data)
        if not token.user_id and self.token.user_id:
            token = Token(token.access, token.md_access or self.token.md_access, token.expires_at,
                          self.token.user_id, token.issued_at, token.lifetime)
        self.token = token
        return token

    async def fresh(self) -> Token:
        """A usable token: the current one; renewed when it is due; a new request only if the session is gone."""
        if self.token is None:
            return await self.request_token()
        if self.token.renew_in() > 0:
            return self.token
        try:
            return await self.renew()
        except TokenExpired:
            return await self.request_token()

    async def renew_forever(self) -> None:
        """The renewal timer: renew ahead of expiry; a dead session gets a new token request (not a loop of them)."""
        while True:
            token = self.token
            if token is None:
                return
            await asyncio.sleep(token.renew_in())
            if self.token is not token:
                continue                    # someone else renewed meanwhile
            try:
                try:
                    await self.renew()
                except TokenExpired:
                    await self.request_token()
            except AuthError as exc:         # stop here; the socket loop meets the same error and tells the user
                self.failed = exc
                return
            except (TradovateError, UserRateLimited) as exc:
                log.info("token renewal failed (%s); retrying in 10 s", exc)
                await asyncio.sleep(10.0)
