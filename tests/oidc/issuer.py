"""An OIDC issuer on 127.0.0.1 for tests: a discovery document, a JWKS (with key rotation), and RS256 tokens
signed for chosen users, groups, audience and lifetimes.

Tokens are signed with PyJWT and real RSA keys, so whatever verifies them verifies real signatures. The JWKS
lives at Keycloak's path (`<issuer>/protocol/openid-connect/certs`), which is where llmpack looks by default.
The web page's login (authorization code + PKCE) extends this server with its endpoints.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

JWKS_PATH = "/protocol/openid-connect/certs"
DISCOVERY_PATH = "/.well-known/openid-configuration"


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

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "jwks_uri": self.jwks_uri, "response_types_supported": ["code"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"]}

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

            def do_GET(self) -> None:
                if self.path == DISCOVERY_PATH:
                    self._json(200, issuer.discovery())
                elif self.path == JWKS_PATH:
                    issuer.jwks_requests += 1
                    if issuer.jwks_down:
                        self._json(503, {"error": "starting"})
                    else:
                        self._json(200, {"keys": [k.jwk() for k in issuer.keys]})
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
