"""Signing in to the web page: OpenID Connect's authorization code flow with PKCE (S256), run by the server
as a confidential client (backend-for-frontend).

1. `begin`: a fresh state, nonce and PKCE verifier, sealed into a short-lived HttpOnly cookie; the browser
   goes to the issuer's authorization endpoint with the state, the nonce and the verifier's S256 challenge.
2. The issuer signs the user in and sends the browser back to /auth/callback with a code and the state.
3. `finish`: the state must be the cookie's; the code is exchanged at the token endpoint with the client
   secret and the verifier; the ID token must be signed by the issuer, for this client and carry the nonce.
   Then a session starts (sessions.py) and the tokens are dropped: they never reach the browser, and the key
   manager keeps none (it acts on the cluster with its own ServiceAccount).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from starlette.requests import Request

from llmpack.keymanager import errors
from llmpack.keymanager.auth import Identity, identity_from_claims
from llmpack.keymanager.oidc import NotReady, TokenError, Verifier
from llmpack.keymanager.revocations import Revocations
from llmpack.keymanager.sessions import (
    LOGIN,
    LOGIN_LIFETIME,
    MAX_COOKIE,
    SESSION,
    Sealer,
    Session,
    cookie_name,
    new_session,
    open_session,
)
from llmpack.keymanager.settings import Settings

DISCOVERY_PATH = "/.well-known/openid-configuration"
DISCOVERY_FOR = 3600.0  # the issuer's endpoints, fetched at the first sign-in and again after this
CALLBACK_PATH = "/auth/callback"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInError(Exception):
    """One line for the page; `retry` when trying again later may help (the issuer did not answer)."""

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge): 64 characters of the unreserved set, as RFC 7636 asks (43 to 128)."""
    verifier = secrets.token_urlsafe(48)
    return verifier, s256(verifier)


def local_path(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never `//host` or `/\\host`), else the start page."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or any(
            c in target for c in "\\\r\n\t"):
        return "/"
    return target


def authorization_url(endpoint: str, *, client_id: str, redirect_uri: str, scopes: Sequence[str], state: str,
                      nonce: str, challenge: str) -> str:
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                       "scope": " ".join(scopes), "state": state, "nonce": nonce, "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


class Login:
    def __init__(self, settings: Settings, verifier: Verifier, revocations: Revocations,
                 http: httpx.AsyncClient | None = None) -> None:
        self.settings, self.verifier, self.revocations = settings, verifier, revocations
        self.sealer = Sealer(settings.session_keys)
        self.session_cookie = cookie_name(SESSION, settings.secure_cookies)
        self.login_cookie = cookie_name(LOGIN, settings.secure_cookies)
        self._http = http or httpx.AsyncClient(timeout=10.0)
        self._endpoints: Endpoints | None = None
        self._fetched_at = float("-inf")

    async def close(self) -> None:
        await self._http.aclose()

    def _down(self, what: str) -> SignInError:
        return SignInError(f"the sign-in service ({self.settings.oidc_issuer}) did not answer {what}: try again "
                           "in a minute", retry=True)

    async def endpoints(self) -> Endpoints:
        if self._endpoints is not None and time.monotonic() - self._fetched_at < DISCOVERY_FOR:
            return self._endpoints
        url = self.settings.oidc_issuer.rstrip("/") + DISCOVERY_PATH
        try:
            answer = await self._http.get(url)
            answer.raise_for_status()
            document: Any = answer.json()
        except (httpx.HTTPError, ValueError):
            raise self._down(f"at {url}") from None
        if not isinstance(document, dict):
            raise self._down(f"at {url} with a discovery document")
        authorization, token = document.get("authorization_endpoint"), document.get("token_endpoint")
        if not isinstance(authorization, str) or not isinstance(token, str):
            raise SignInError(f"the sign-in service's discovery document ({url}) names no authorization or token "
                              "endpoint: ask your administrator to check auth.oidc.issuer")
        methods = document.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise SignInError("the sign-in service does not offer PKCE with S256: ask your administrator to enable it")
        self._endpoints, self._fetched_at = Endpoints(authorization, token), time.monotonic()
        return self._endpoints

    def redirect_uri(self, request: Request) -> str:
        base = self.settings.public_url.rstrip("/") if self.settings.public_url else str(request.base_url).rstrip("/")
        return base + CALLBACK_PATH

    async def begin(self, redirect_uri: str, next_path: str) -> tuple[str, str]:
        """(where to send the browser, the sign-in cookie's value)."""
        endpoints = await self.endpoints()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier, challenge = pkce_pair()
        cookie = self.sealer.seal(LOGIN, {"state": state, "nonce": nonce, "verifier": verifier,
                                          "next": local_path(next_path), "redirect": redirect_uri,
                                          "exp": time.time() + LOGIN_LIFETIME})
        url = authorization_url(endpoints.authorization, client_id=self.settings.client_id, redirect_uri=redirect_uri,
                                scopes=self.settings.scopes, state=state, nonce=nonce, challenge=challenge)
        return url, cookie

    async def finish(self, cookie: str | None, params: Mapping[str, str]) -> tuple[Session, str]:
        """The new session and where to go, once the issuer's answer checks out."""
        pending = self.sealer.open(LOGIN, cookie) if cookie else None
        if pending is None or not isinstance(pending.get("exp"), int | float) or pending["exp"] < time.time():
            raise SignInError("this sign-in took longer than 10 minutes or was started in another browser: sign in "
                              "again")
        if "error" in params:
            said = " ".join(f"{params.get('error', '')} {params.get('error_description', '')}".split())[:300]
            raise SignInError(f"the sign-in service refused the sign-in ({said}): sign in again")
        if not hmac.compare_digest(str(params.get("state", "")), str(pending.get("state"))):
            raise SignInError("the sign-in service's answer does not belong to this sign-in (its state differs): "
                              "sign in again")
        code = params.get("code")
        if not code:
            raise SignInError("the sign-in service sent no code: sign in again")
        tokens = await self._exchange(code, str(pending["verifier"]), str(pending["redirect"]))
        try:
            claims = await self.verifier.verify_id_token(tokens["id_token"], client_id=self.settings.client_id,
                                                         nonce=str(pending["nonce"]))
            identity = identity_from_claims(claims, username_claim=self.settings.username_claim,
                                            groups_claim=self.settings.groups_claim)
        except NotReady:
            raise self._down("with its signing keys") from None
        except TokenError as exc:
            raise SignInError(f"the sign-in service's ID token was refused: {exc}") from None
        return self.start_session(identity), str(pending["next"])

    async def _exchange(self, code: str, verifier: str, redirect_uri: str) -> dict[str, str]:
        endpoints = await self.endpoints()
        # client_secret_basic, with both parts form-encoded first as RFC 6749 section 2.3.1 asks.
        auth = httpx.BasicAuth(quote(self.settings.client_id, safe=""), quote(self.settings.client_secret, safe=""))
        try:
            answer = await self._http.post(endpoints.token, auth=auth, headers={"Accept": "application/json"}, data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": verifier, "client_id": self.settings.client_id})
        except httpx.HTTPError:
            raise self._down("at its token endpoint") from None
        if answer.status_code >= 500:
            raise self._down("at its token endpoint")
        try:
            body: Any = answer.json()
        except ValueError:
            body = {}
        if answer.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
            error = body.get("error", f"HTTP {answer.status_code}") if isinstance(body, dict) else answer.status_code
            raise SignInError(f"the sign-in service did not accept this sign-in's code ({error}): sign in again")
        return {"id_token": body["id_token"]}

    def start_session(self, identity: Identity) -> Session:
        return new_session(identity, self.settings.session_lifetime)

    def seal(self, session: Session) -> str:
        value = self.sealer.seal(SESSION, session.payload())
        if len(value) > MAX_COOKIE:
            raise SignInError(f"your account is in {len(session.groups)} groups, too many to fit in the page's "
                              "session: ask your administrator to send only the groups this service needs "
                              "(a client scope of the OIDC client)")
        return value

    def session_of(self, request: Request) -> Session | None:
        """The request's live session: sealed here, not expired, not logged out on any replica."""
        session = open_session(self.sealer, request.cookies.get(self.session_cookie))
        if session is None or self.revocations.revoked(session.sid):
            return None
        return session

    async def end(self, session: Session) -> None:
        await self.revocations.revoke(session.sid, session.expires)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return self.sealer.csrf_ok(session.sid, token)


class SessionSource:
    """The web page's session as a credential for /api, in front of the bearer token. A request that changes
    something must also carry the session's CSRF token in X-CSRF-Token (the page's <meta name=csrf-token>)."""

    def __init__(self, login: Login, admin_groups: Sequence[str]) -> None:
        self.login, self.admin_groups = login, tuple(admin_groups)

    async def identify(self, request: Request) -> Identity | None:
        if self.login.session_cookie not in request.cookies:
            return None
        if not self.login.revocations.ready:
            raise errors.unavailable("the key manager has not read the list of ended sessions yet; try again in a "
                                     "few seconds")
        session = self.login.session_of(request)
        if session is None:
            return None
        if request.method not in SAFE_METHODS and not self.login.csrf_ok(session, request.headers.get("x-csrf-token")):
            raise errors.forbidden("a change made with the web page's session must carry its CSRF token in the "
                                   "X-CSRF-Token header: reload the page and try again")
        return session.identity(self.admin_groups)
