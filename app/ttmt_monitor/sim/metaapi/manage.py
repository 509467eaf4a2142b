"""MetaApi account management in the simulator (seeds/metaapi-account-management.txt): the ONE kind of write the
desk makes, and only to MetaApi's account list.

:class:`AccountManager` serves, for the API token only:

- ``POST /users/current/accounts``: create. Automatic broker-settings detection first (no
  ``provisioningProfileId``): an unknown server name answers ``E_SRV_NOT_FOUND``; switches choose the other
  outcomes (:meth:`AccountManager.create_outcome`): ``created``, ``E_AUTH``, ``E_SERVER_TIMEZONE``, each after N
  answers ``202`` + ``retry-after`` ("Automatic broker settings detection is in progress, please retry in N
  seconds"). Without login and password the account is created in ``DRAFT``. Error bodies are
  ``{id: 3, error: "ValidationError", message, details}`` as documented.
- ``PUT /users/current/accounts/:id/configuration-link?ttlInDays=N`` → ``{configurationLink}`` (DRAFT accounts).
- ``POST …/:id/deploy``, ``POST …/:id/undeploy``, ``DELETE …/:id``.
- ``GET|POST /users/current/provisioning-profiles`` (filters ``query``, ``version``; both pagination styles),
  ``PUT /users/current/provisioning-profiles/:id/files`` (multipart: ``servers.dat`` for MT5, ``*.srv`` for MT4).

Every such call is recorded in ``SimServer.account_writes`` (method, path) — separately from ``SimServer.writes``,
which keeps recording (and refusing) every other write. Passwords are checked for presence only and never kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import timedelta
from decimal import Decimal
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any

from .model import SimAccount, now_ms

if TYPE_CHECKING:
    from .server import SimServer

Answer = tuple[int, Any, dict[str, str]]

KNOWN_SERVERS = ("SimMarkets-Demo", "SimMarkets-Live")

MESSAGES = {
    "E_SRV_NOT_FOUND": "We were unable to retrieve the server file for this broker. Please check the server name or "
                       "configure the provisioning profile manually.",
    "E_AUTH": "We failed to authenticate to your broker using credentials provided. Please check that your "
              "MetaTrader login, password and server name are correct.",
    "E_SERVER_TIMEZONE": "We were not able to retrieve server settings using credentials provided. Please try again "
                         "later or configure the provisioning profile manually.",
}


def validation(message: str, details: Any) -> Answer:
    return 400, {"id": 3, "error": "ValidationError", "message": message, "details": details}, {}


class AccountManager:
    """The account-management routes of one :class:`SimServer` (lives on its loop)."""

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.profiles: dict[str, dict[str, Any]] = {}
        # Each create attempt pops the front: (waits left before the answer, retry-after seconds, outcome).
        self.outcomes: list[list[Any]] = []
        self.deploy_delay = 0.2
        self.created: list[str] = []
        self.links: dict[str, str] = {}

    # ------------------------------------------------------------------ switches

    def create_outcome(self, outcome: str = "created", waits: int = 0, retry_after: float = 1.0) -> None:
        """The next create answers ``waits`` × 202 (+ retry-after) and then ``outcome``: ``created``, ``E_AUTH``,
        ``E_SERVER_TIMEZONE`` or ``E_SRV_NOT_FOUND``."""
        if outcome != "created" and outcome not in MESSAGES:
            raise TypeError(f"unknown outcome {outcome!r}")
        self.outcomes.append([int(waits), float(retry_after), outcome])

    # ------------------------------------------------------------------ routing

    def handles(self, method: str, rest: list[str]) -> bool:
        if rest[:1] == ["provisioning-profiles"]:
            return True
        if rest == ["accounts"] and method == "POST":
            return True
        if rest[:1] == ["accounts"] and len(rest) == 2 and method == "DELETE":
            return True
        return (rest[:1] == ["accounts"] and len(rest) == 3
                and (method, rest[2]) in (("POST", "deploy"), ("POST", "undeploy"), ("PUT", "configuration-link")))

    def route(self, method: str, rest: list[str], headers: dict[str, str], query: dict[str, list[str]],
              body: bytes) -> Answer:
        if rest[:1] == ["provisioning-profiles"]:
            return self._profiles(method, rest[1:], headers, query, body)
        if rest == ["accounts"]:
            return self._create(body)
        acc = self.server.world.accounts.get(rest[1])
        if acc is None:
            return self.server._error(404, "NotFoundError", f"Trading account with id {rest[1]} not found")
        if method == "DELETE":
            acc.state = "DELETING"
            asyncio.get_running_loop().call_later(self.deploy_delay, self.server.world.accounts.pop, acc.id, None)
            return 204, None, {}
        if rest[2] == "configuration-link":
            if acc.state != "DRAFT":
                return validation("A configuration link can only be made for an account in DRAFT state.",
                                  [{"parameter": "accountId", "message": "state is " + acc.state}])
            try:
                ttl = int((query.get("ttlInDays") or ["7"])[0])
            except ValueError:
                ttl = 0
            if not 1 <= ttl <= 14:
                return validation("ttlInDays must be 1..14", [{"parameter": "ttlInDays"}])
            link = f"https://app.metaapi.cloud/configure-trading-account-credentials/{uuid.uuid4().hex}"
            self.links[acc.id] = link
            return 200, {"configurationLink": link}, {}
        if rest[2] == "deploy":
            if acc.state == "DRAFT":
                return validation("An account in DRAFT state cannot be deployed: its login and password are "
                                  "not set yet.", [{"parameter": "state", "message": "DRAFT"}])
            if acc.state in ("UNDEPLOYED", "DEPLOY_FAILED"):
                acc.state = "DEPLOYING"
                asyncio.get_running_loop().call_later(self.deploy_delay, self._deployed, acc)
            return 204, None, {}
        if acc.state in ("DEPLOYED", "DEPLOYING"):
            acc.state = "UNDEPLOYED"
            acc.connection_status = "DISCONNECTED"
            for session in list(self.server.sessions):
                session.subs.pop(acc.id, None)
        return 204, None, {}

    def _deployed(self, acc: SimAccount) -> None:
        if acc.state != "DEPLOYING":
            return
        world = self.server.world
        if not acc.deals:  # a fresh account: its opening deposit
            world._deal(acc, now_ms() - timedelta(minutes=1), "DEAL_TYPE_BALANCE", None, None, None, None,
                        Decimal("10000"), None, None)
        acc.state = "DEPLOYED"
        acc.connection_status = "CONNECTED"

    # ------------------------------------------------------------------ create

    def _create(self, body: bytes) -> Answer:
        try:
            spec = json.loads(body or b"{}")
        except ValueError:
            spec = None
        if not isinstance(spec, dict):
            return validation("The request body must be a JSON object.", [{"parameter": "body"}])
        missing = [k for k in ("name", "server") if not str(spec.get(k) or "").strip()]
        platform = spec.get("platform")
        profile_id = spec.get("provisioningProfileId")
        profile = self.profiles.get(str(profile_id)) if profile_id else None
        if profile_id and profile is None:
            return validation("Provisioning profile not found.", [{"parameter": "provisioningProfileId"}])
        if platform not in ("mt4", "mt5") and profile is None:
            missing.append("platform")
        if missing:
            return validation("Validation failed", [{"parameter": k, "message": "required"} for k in missing])
        login, password = str(spec.get("login") or ""), str(spec.get("password") or "")
        draft = not login and not password
        if not draft and (not login or not password):
            return validation("Validation failed", [{"parameter": "password" if login else "login",
                                                     "message": "login and password go together"}])
        if profile is not None and profile["status"] != "active":
            return validation("The provisioning profile has no server file yet.",
                              [{"parameter": "provisioningProfileId"}])
        step: list[Any] = self.outcomes[0] if self.outcomes else [0, 1.0, "created"]
        if step[0] > 0 and not draft:
            step[0] -= 1
            seconds = step[1]
            shown = max(1, round(seconds))
            return 202, {"message": f"Automatic broker settings detection is in progress, please retry in "
                                    f"{shown} seconds"}, {"retry-after": f"{seconds:g}"}
        if self.outcomes:
            self.outcomes.pop(0)
        outcome = step[2]
        if profile is None and spec["server"] not in KNOWN_SERVERS:
            outcome = "E_SRV_NOT_FOUND"
        if draft and outcome == "E_AUTH":
            outcome = "created"  # nothing to authenticate with yet
        if profile is not None and outcome in ("E_SRV_NOT_FOUND", "E_SERVER_TIMEZONE"):
            outcome = "created"  # the profile carries the server file and the time zone
        if outcome != "created":
            return validation(MESSAGES[outcome], outcome)
        version = int(str(platform)[-1]) if platform in ("mt4", "mt5") else int(profile["version"])  # type: ignore[index]
        world = self.server.world
        n = len(world.accounts) + len(self.created) + 100
        acc = SimAccount(id=str(uuid.UUID(hashlib.md5(f"{world.seed}:new:{n}".encode()).hexdigest())),
                         name=str(spec["name"]), login=login, server=str(spec["server"]), version=version,
                         state="DRAFT" if draft else "UNDEPLOYED", connection_status="DISCONNECTED",
                         currency="USD", leverage=100,
                         token=hashlib.sha256(f"acct:{world.seed}:new:{n}".encode()).hexdigest())
        world.accounts[acc.id] = acc
        self.created.append(acc.id)
        return 201, {"id": acc.id, "state": acc.state}, {}

    # ------------------------------------------------------------------ provisioning profiles

    def _profiles(self, method: str, rest: list[str], headers: dict[str, str], query: dict[str, list[str]],
                  body: bytes) -> Answer:
        if method == "GET" and not rest:
            text = (query.get("query") or [""])[0].lower()
            version = (query.get("version") or [""])[0]
            found = [p for p in self.profiles.values()
                     if (not text or text in p["name"].lower()) and (not version or str(p["version"]) == version)]
            try:
                offset = int((query.get("offset") or ["0"])[0])
                limit = min(1000, int((query.get("limit") or ["1000"])[0]))
            except ValueError:
                return validation("offset and limit must be integers", [{"parameter": "offset"}])
            page = found[offset:offset + limit]
            if headers.get("api-version") == "2":
                return 200, {"count": len(found), "items": page}, {}
            return 200, page, {}
        if method == "GET" and len(rest) == 1:
            if rest[0] in self.profiles:
                return 200, self.profiles[rest[0]], {}
            return self.server._error(404, "NotFoundError", "Provisioning profile not found")
        self.server.account_writes.append((method, "/users/current/provisioning-profiles/" + "/".join(rest)))
        if method == "POST" and not rest:
            try:
                spec = json.loads(body or b"{}")
            except ValueError:
                spec = {}
            if not isinstance(spec, dict) or not str(spec.get("name") or "").strip() \
                    or spec.get("version") not in (4, 5):
                return validation("Validation failed", [{"parameter": "name/version", "message": "required"}])
            pid = uuid.uuid4().hex
            self.profiles[pid] = {"_id": pid, "name": str(spec["name"]), "version": spec["version"],
                                  "status": "new", "brokerTimezone": str(spec.get("brokerTimezone") or ""),
                                  "brokerDSTSwitchTimezone": str(spec.get("brokerDSTSwitchTimezone") or "")}
            return 201, {"id": pid}, {}
        if method == "PUT" and len(rest) == 2 and rest[1] == "files":
            profile = self.profiles.get(rest[0])
            if profile is None:
                return self.server._error(404, "NotFoundError", "Provisioning profile not found")
            ctype = headers.get("content-type", "")
            message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
            files = [(p.get_filename() or "", p.get_payload(decode=True) or b"") for p in message.iter_parts()] \
                if message.is_multipart() else []
            want = "servers.dat" if profile["version"] == 5 else ".srv"
            good = [f for f in files if f[0].endswith(want) and f[1]]
            if not good:
                return validation(f"Upload the broker's {'servers.dat' if want == 'servers.dat' else '.srv'} file "
                                  f"(multipart field 'file').", [{"parameter": "file"}])
            profile["status"] = "active"
            return 204, None, {}
        return self.server._error(404, "NotFoundError", "Not found")

