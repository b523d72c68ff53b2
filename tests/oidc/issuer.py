"""An OIDC issuer on 127.0.0.1 for tests: a discovery document, a JWKS (with key rotation), RS256 tokens
signed for chosen users, groups, audience and lifetimes, and a real sign-in for the web page.

Tokens are signed with PyJWT and real RSA keys, so whatever verifies them verifies real signatures. The
endpoints live at Keycloak's paths (`<issuer>/protocol/openid-connect/{certs,auth,token}`), where llmpack
looks by default.

The sign-in is the authorization code flow as an OIDC provider runs it for a confidential client: the
authorization endpoint checks the client and its exact redirect URI, insists on a PKCE S256 challenge and
shows a login form (username, password); a good password sends the browser back with a one-time code
(60 s); the token endpoint wants the client's secret, the same redirect URI and the verifier whose S256 is
the challenge, and answers with an access token and an ID token carrying the nonce. Every token request is
kept in `token_requests`, so tests can see what the client sent.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

JWKS_PATH = "/protocol/openid-connect/certs"
AUTH_PATH = "/protocol/openid-connect/auth"
TOKEN_PATH = "/protocol/openid-connect/token"
DISCOVERY_PATH = "/.well-known/openid-configuration"
CODE_LIFETIME = 60.0


@dataclass
class User:
    password: str
    groups: list[str]
    claims: dict[str, Any] = field(default_factory=dict)  # e.g. a display name


@dataclass
class Client:
    secret: str
    redirect_uris: list[str]


@dataclass
class Grant:
    """What a code stands for until the token endpoint redeems it (once)."""

    client_id: str
    redirect_uri: str
    username: str
    nonce: str
    challenge: str
    expires: float


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}


def new_key() -> SigningKey:
    return SigningKey(kid=uuid.uuid4().hex[:12], private=rsa.generate_private_key(public_exponent=65537, key_size=2048))


@dataclass
class Issuer:
    """Start with `start()`, stop with `stop()`; `url` is the issuer (the `iss` of its tokens)."""

    keys: list[SigningKey] = field(default_factory=lambda: [new_key()])
    jwks_requests: int = 0
    jwks_down: bool = False  # answer the JWKS with 503 (an issuer that is not up yet)
    down: bool = False  # answer discovery, the login form and the token endpoint with 503
    users: dict[str, User] = field(default_factory=dict)
    clients: dict[str, Client] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)  # the form fields, and how the client authed
    authorizations: list[dict[str, str]] = field(default_factory=list)  # every authorization request's parameters
    issued: list[str] = field(default_factory=list)  # every token the token endpoint handed out
    id_token_claims: dict[str, Any] = field(default_factory=dict)  # override claims of every ID token (a bad nonce)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the issuer first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def jwks_uri(self) -> str:
        return self.url + JWKS_PATH

    @property
    def signing(self) -> SigningKey:
        return self.keys[0]

    def rotate(self, *, keep_old: bool = True) -> SigningKey:
        """A new signing key, published first; the old one stays published (for tokens in flight) or not."""
        key = new_key()
        self.keys = [key, *(self.keys if keep_old else [])]
        return key

    def token(self, username: str, groups: list[str] | None = None, *, audience: str | list[str] | None = None,
              expires_in: float = 300, not_before: float | None = None, issuer: str | None = None,
              key: SigningKey | None = None, claims: dict[str, Any] | None = None) -> str:
        moment = int(time.time())
        body: dict[str, Any] = {
            "iss": issuer or self.url, "sub": f"sub-{username}", "preferred_username": username,
            "name": username.title(), "email": f"{username}@example.test", "groups": groups or [],
            "iat": moment, "exp": moment + int(expires_in), "jti": uuid.uuid4().hex,
        }
        if audience is not None:
            body["aud"] = audience
        if not_before is not None:
            body["nbf"] = moment + int(not_before)
        body.update(claims or {})
        signer = key or self.signing
        return jwt.encode(body, signer.private, algorithm="RS256", headers={"kid": signer.kid})

    def add_user(self, username: str, password: str, groups: list[str], **claims: Any) -> None:
        self.users[username] = User(password, groups, claims)

    def add_client(self, client_id: str, secret: str, redirect_uris: list[str]) -> None:
        self.clients[client_id] = Client(secret, redirect_uris)

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "jwks_uri": self.jwks_uri, "authorization_endpoint": self.url + AUTH_PATH,
                "token_endpoint": self.url + TOKEN_PATH, "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"], "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"]}

    # -- the authorization endpoint: check the request, show the form, hand out a code ---------------------

    def authorize(self, params: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        """(status, HTML, headers) for GET (the form) and POST (the form's answer) of the endpoint."""
        if "username" not in params:
            self.authorizations.append(dict(params))
        client = self.clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if client is None or redirect_uri not in client.redirect_uris:
            return 400, _page("Unknown client or redirect URI", "<p>This sign-in was not started by a known "
                              "application.</p>"), {}
        if params.get("response_type") != "code" or params.get("code_challenge_method") != "S256" or len(
                params.get("code_challenge", "")) < 43 or "openid" not in params.get("scope", "").split():
            return 400, _page("Bad sign-in request", "<p>response_type=code, scope openid and a PKCE S256 "
                              "challenge are required.</p>"), {}
        if "username" not in params:
            return 200, _login_form(params, ""), {}
        user = self.users.get(params["username"])
        if user is None or not secrets.compare_digest(user.password, params.get("password", "")):
            return 401, _login_form(params, "Invalid username or password."), {}
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(params["client_id"], redirect_uri, params["username"], params.get("nonce", ""),
                                  params["code_challenge"], time.time() + CODE_LIFETIME)
        answer = urlencode({"code": code, **({"state": params["state"]} if "state" in params else {})})
        return 302, "", {"Location": f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{answer}"}

    # -- the token endpoint: a code, once, for the client that asked, with the right verifier --------------

    def exchange(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict[str, Any]]:
        self.token_requests.append({**form, "auth": "basic" if basic else "post"})
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(client.secret, secret):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        grant = self.grants.pop(form.get("code", ""), None)
        if grant is None or grant.expires < time.time() or grant.client_id != client_id:
            return 400, {"error": "invalid_grant", "error_description": "unknown, used or expired code"}
        if grant.redirect_uri != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        if not secrets.compare_digest(s256(form.get("code_verifier", "")), grant.challenge):
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        user = self.users[grant.username]
        access = self.token(grant.username, user.groups, claims=user.claims)
        id_claims = {**user.claims, "nonce": grant.nonce, "azp": client_id, **self.id_token_claims}
        id_token = self.token(grant.username, user.groups, audience=client_id, claims=id_claims)
        self.issued += [access, id_token]
        return 200, {"access_token": access, "id_token": id_token, "token_type": "Bearer", "expires_in": 300}

    def start(self) -> Issuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _html(self, status: int, body: str, headers: dict[str, str]) -> None:
                data = body.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _form(self) -> dict[str, str]:
                length = int(self.headers.get("Content-Length") or 0)
                fields = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
                return {k: v[0] for k, v in fields.items()}

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if issuer.down and path in (DISCOVERY_PATH, AUTH_PATH):
                    self._json(503, {"error": "temporarily_unavailable"})
                elif path == AUTH_PATH:
                    self._html(*issuer.authorize({k: v[0] for k, v in parse_qs(query).items()}))
                elif self.path == DISCOVERY_PATH:
                    self._json(200, issuer.discovery())
                elif self.path == JWKS_PATH:
                    issuer.jwks_requests += 1
                    if issuer.jwks_down:
                        self._json(503, {"error": "starting"})
                    else:
                        self._json(200, {"keys": [k.jwk() for k in issuer.keys]})
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                if issuer.down:
                    self._json(503, {"error": "temporarily_unavailable"})
                elif self.path == AUTH_PATH:
                    self._html(*issuer.authorize(self._form()))
                elif self.path == TOKEN_PATH:
                    basic = None
                    scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
                    if scheme.lower() == "basic":
                        user, _, password = base64.b64decode(value).decode().partition(":")
                        basic = (unquote(user.replace("+", " ")), unquote(password.replace("+", " ")))
                    self._json(*issuer.exchange(self._form(), basic))
                else:
                    self._json(404, {"error": "not_found"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-issuer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"</head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>")


def _login_form(params: dict[str, str], problem: str) -> str:
    """The issuer's own sign-in form: it posts the original request back with the credentials."""
    carried = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                      for k, v in params.items() if k not in ("username", "password"))
    alert = f'<p role="alert">{html.escape(problem)}</p>' if problem else ""
    host = urlsplit(params.get("redirect_uri", "")).netloc
    return _page("Sign in to the test issuer", f"""{alert}<p>{html.escape(host)} asks who you are.</p>
<form method="post" action="{AUTH_PATH}">{carried}
<p><label for="username">Username</label> <input id="username" name="username" autocomplete="username"></p>
<p><label for="password">Password</label> <input id="password" name="password" type="password"
   autocomplete="current-password"></p>
<p><button type="submit">Sign in</button></p></form>""")
