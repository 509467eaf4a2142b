"""MetaApi account management: the ONE place the desk writes anything, and only to MetaApi's account list (never to
a broker, never a trade). seeds/metaapi-account-management.txt describes the calls.

Provides :class:`NewAccount` (what the trader types; the password is never in its repr), :class:`AccountsClient`
(create with the documented retry-after wait surfaced as :class:`Waiting` progress, configuration links for DRAFT
accounts, deploy/undeploy/delete, the filtered and paged account list, provisioning profiles) and the typed
creation failures :class:`ServerNotFoundError` (``E_SRV_NOT_FOUND``), :class:`BrokerLoginError` (``E_AUTH``) and
:class:`SettingsDetectionError` (``E_SERVER_TIMEZONE``), each with the remedy the documentation recommends in words
a trader understands.

The password travels only in the JSON body of the create request. It is not kept on the client, not put into an
error message and not logged (httpx does not log bodies).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from .. import onboarding
from ..onboarding import Created, NewAccount, Waiting
from .client import Endpoints
from .errors import MetaApiError, NetworkError, error_from_http, parse_retry_after

__all__ = [
    "AccountsClient",
    "BrokerLoginError",
    "ConfigurationLink",
    "Created",
    "NewAccount",
    "ServerNotFoundError",
    "SettingsDetectionError",
    "SetupError",
    "Waiting",
]


class SetupError(MetaApiError, onboarding.SetupError):
    """Creating the account failed; ``remedy`` says what to do next, ``profile_helps`` whether a provisioning
    profile is the documented way round it (the neutral :class:`~..onboarding.SetupError` the dialog catches)."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.service_message = message


class ServerNotFoundError(SetupError):
    remedy = ("MetaApi could not find this broker server. Check the server name exactly as MetaTrader shows it "
              "in the login window (for example “ICMarketsSC-Demo”). If it is right, use a provisioning profile "
              "with the broker's server file instead.")
    profile_helps = True


class BrokerLoginError(SetupError):
    remedy = ("The broker refused the login. Check the login number, the password and the server name, then try "
              "again.")


class SettingsDetectionError(SetupError):
    remedy = ("MetaApi could not work out the broker's settings this time. Try again later, or use a provisioning "
              "profile with the broker's server file.")
    profile_helps = True


_BY_DETAILS: dict[str, type[SetupError]] = {"E_SRV_NOT_FOUND": ServerNotFoundError, "E_AUTH": BrokerLoginError,
                                            "E_SERVER_TIMEZONE": SettingsDetectionError}


def _account_body(account: NewAccount) -> dict[str, Any]:
    """The create request's JSON body (the password only here, never kept or logged)."""
    out: dict[str, Any] = {"name": account.name, "type": "cloud", "platform": account.platform,
                           "server": account.server, "application": "MetaApi", "magic": 0}
    if not account.draft:
        out.update(login=account.login, password=account.password)
    if account.provisioning_profile_id:
        out["provisioningProfileId"] = account.provisioning_profile_id
    return out


@dataclass(frozen=True)
class ConfigurationLink:
    url: str
    expires_at: datetime


class AccountsClient:
    """MetaApi's account management with an API token. Errors are :class:`~.errors.MetaApiError` subclasses."""

    def __init__(self, endpoints: Endpoints, token: str, *, http: httpx.AsyncClient | None = None,
                 timeout: float = 60.0, tick: float = 1.0) -> None:
        self.endpoints = endpoints
        self._token = token
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(timeout))
        self.tick = tick            # how often a wait reports its seconds left

    def __repr__(self) -> str:
        return f"AccountsClient({self.endpoints.provisioning!r})"

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def _call(self, method: str, path: str, what: str, *, json_body: Any = None,
                    params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                    files: Any = None) -> httpx.Response:
        try:
            return await self._http.request(method, self.endpoints.provisioning + path, json=json_body,
                                            params=params, files=files,
                                            headers={"auth-token": self._token, **(headers or {})})
        except httpx.TimeoutException:
            raise NetworkError(f"MetaApi did not answer in time ({what}).") from None
        except httpx.HTTPError as exc:
            raise NetworkError(f"Cannot reach MetaApi ({what}): {type(exc).__name__}.") from None

    @staticmethod
    def _raise(response: httpx.Response, what: str) -> None:
        if response.status_code < 300 and response.status_code != 202:
            return
        details = None
        try:
            body = json.loads(response.content) if response.content else {}
            details = body.get("details") if isinstance(body, dict) else None
            message = str(body.get("message") or "") if isinstance(body, dict) else ""
        except ValueError:
            message = ""
        if isinstance(details, str) and details in _BY_DETAILS:
            raise _BY_DETAILS[details](message or details, status=response.status_code, error="ValidationError",
                                       details=details)
        raise error_from_http(response.status_code, response.headers, response.content, what)

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return json.loads(response.content) if response.content else None
        except ValueError:
            raise MetaApiError("MetaApi sent a body that is not JSON.", status=response.status_code) from None

    # ------------------------------------------------------------------ create

    async def create(self, account: NewAccount, *, max_waits: int = 30) -> AsyncIterator[Waiting | Created]:
        """Create the account: yields :class:`Waiting` about every ``tick`` seconds while MetaApi asks to retry,
        then one :class:`Created`. Raises :class:`SetupError` subclasses for the documented failures. Cancel by
        cancelling the task that iterates (or closing the iterator): no request is repeated after that."""
        for attempt in range(1, max_waits + 2):
            response = await self._call("POST", "/users/current/accounts", "create account",
                                        json_body=_account_body(account))
            if response.status_code == 202 and attempt <= max_waits:
                body = self._json(response)
                message = str(body.get("message") or "") if isinstance(body, dict) else ""
                wait = parse_retry_after(response.headers.get("retry-after"))
                wait = 5.0 if wait is None else min(wait, 600.0)
                deadline = time.monotonic() + wait
                while True:
                    left = deadline - time.monotonic()
                    yield Waiting(max(0.0, left), wait, attempt, message)
                    if left <= 0:
                        break
                    await asyncio.sleep(min(self.tick, left))
                continue
            self._raise(response, "create account")
            body = self._json(response)
            if not isinstance(body, dict) or not body.get("id"):
                raise MetaApiError("MetaApi created the account but sent no id.", status=response.status_code)
            yield Created(str(body["id"]), str(body.get("state") or ""))
            return
        raise SettingsDetectionError("MetaApi kept asking to retry.", details="E_SERVER_TIMEZONE")

    async def configuration_link(self, account_id: str, ttl_days: int = 7) -> ConfigurationLink:
        """A link the account's owner opens to enter login and password (DRAFT accounts), valid ``ttl_days``."""
        asked = datetime.now(UTC)
        response = await self._call("PUT", f"/users/current/accounts/{quote(account_id)}/configuration-link",
                                    "configuration link", params={"ttlInDays": ttl_days})
        self._raise(response, "configuration link")
        body = self._json(response)
        if not isinstance(body, dict) or not isinstance(body.get("configurationLink"), str):
            raise MetaApiError("MetaApi sent no configuration link.")
        # MetaApi answers the link only; it is valid for the days asked, counted from the request.
        return ConfigurationLink(body["configurationLink"], asked + timedelta(days=ttl_days))

    # ------------------------------------------------------------------ deploy / undeploy / delete

    async def deploy(self, account_id: str) -> None:
        self._raise(await self._call("POST", f"/users/current/accounts/{quote(account_id)}/deploy", "deploy"),
                    "deploy")

    async def undeploy(self, account_id: str) -> None:
        self._raise(await self._call("POST", f"/users/current/accounts/{quote(account_id)}/undeploy", "undeploy"),
                    "undeploy")

    async def delete(self, account_id: str) -> None:
        self._raise(await self._call("DELETE", f"/users/current/accounts/{quote(account_id)}", "delete"), "delete")

    async def get(self, account_id: str) -> dict[str, Any]:
        response = await self._call("GET", f"/users/current/accounts/{quote(account_id)}", "account")
        self._raise(response, "account")
        body = self._json(response)
        if not isinstance(body, dict):
            raise MetaApiError("MetaApi sent an account record of the wrong shape.")
        return body

    # ------------------------------------------------------------------ lists

    async def accounts(self, *, query: str = "", states: tuple[str, ...] = (), platform: str = "",
                       offset: int = 0, limit: int = 100, classic: bool = True
                       ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of accounts and, with ``classic`` pagination, the count of all that match (else None)."""
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if query:
            params["query"] = query
        if states:
            params["state"] = ",".join(states)
        if platform:
            params["platform"] = platform
        response = await self._call("GET", "/users/current/accounts", "accounts", params=params,
                                    headers={"api-version": "2"} if classic else None)
        self._raise(response, "accounts")
        return _page(self._json(response))

    async def profiles(self, *, query: str = "", version: int | None = None, offset: int = 0, limit: int = 100,
                       classic: bool = True) -> tuple[list[dict[str, Any]], int | None]:
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if query:
            params["query"] = query
        if version:
            params["version"] = version
        response = await self._call("GET", "/users/current/provisioning-profiles", "provisioning profiles",
                                    params=params, headers={"api-version": "2"} if classic else None)
        self._raise(response, "provisioning profiles")
        return _page(self._json(response))

    async def create_profile(self, name: str, version: int, server_file_name: str, server_file: bytes,
                             broker_timezone: str = "EET", dst_timezone: str = "EET") -> str:
        """Create a provisioning profile and upload the broker's server file (servers.dat for MT5, .srv for MT4)."""
        response = await self._call("POST", "/users/current/provisioning-profiles", "provisioning profile",
                                    json_body={"name": name, "version": version, "brokerTimezone": broker_timezone,
                                               "brokerDSTSwitchTimezone": dst_timezone})
        self._raise(response, "provisioning profile")
        body = self._json(response)
        if not isinstance(body, dict) or not body.get("id"):
            raise MetaApiError("MetaApi created the provisioning profile but sent no id.")
        profile_id = str(body["id"])
        response = await self._call("PUT", f"/users/current/provisioning-profiles/{quote(profile_id)}/files",
                                    "server file", files={"file": (server_file_name, server_file,
                                                                   "application/octet-stream")})
        self._raise(response, "server file")
        return profile_id


def _page(body: Any) -> tuple[list[dict[str, Any]], int | None]:
    if isinstance(body, dict):
        items = body.get("items", [])
        count = body.get("count")
        return [i for i in items if isinstance(i, dict)], int(count) if isinstance(count, int) else None
    if isinstance(body, list):
        return [i for i in body if isinstance(i, dict)], None
    raise MetaApiError("MetaApi sent a list of the wrong shape.")
