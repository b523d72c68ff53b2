"""Verifying OIDC bearer tokens (JWTs) with PyJWT against the issuer's JWKS.

PyJWT does the cryptography (via `cryptography`, already ours) and the claim checks; this module only
fetches the key set (with httpx, so the event loop never blocks: PyJWKClient would fetch with urllib),
caches it, and fetches it again when a token names an unknown `kid` (a key rotation), at most once per
cooldown since a forged `kid` costs an attacker nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from typing import Any

import httpx
import jwt

log = logging.getLogger("llmpack.keymanager.oidc")
# Asymmetric algorithms only: an HS256 token "signed" with the public key must never verify.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
MAX_JWKS_BYTES = 1 << 20
# A token verified once is good until its exp: the same caller's next requests skip the signature check (most
# of a small request's CPU). Bounded in size and in time, so a key the issuer withdraws stops working soon.
VERIFIED_CACHE = 4096
VERIFIED_FOR = 60.0


class TokenError(Exception):
    """The token is missing, malformed, unsigned by the issuer, expired, or for someone else (401)."""


class NotReady(Exception):
    """The issuer's keys have never been fetched: no token can be checked yet (503)."""


class Verifier:
    def __init__(self, issuer: str, jwks_uri: str, audience: str = "", *, leeway: float = 30.0,
                 refetch_cooldown: float = 10.0, http: httpx.AsyncClient | None = None) -> None:
        self.issuer, self.jwks_uri, self.audience, self.leeway = issuer, jwks_uri, audience, leeway
        self.refetch_cooldown = refetch_cooldown
        self._http = http or httpx.AsyncClient(timeout=10.0)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._refetched_at = float("-inf")  # the last fetch an unknown kid caused
        self._lock = asyncio.Lock()
        self._verified: OrderedDict[bytes, tuple[float, dict[str, Any]]] = OrderedDict()
        self.fetches = 0

    @property
    def ready(self) -> bool:
        return self._fetched_at > float("-inf")

    async def close(self) -> None:
        await self._http.aclose()

    async def refresh(self) -> None:
        """Fetch the key set (raises httpx.HTTPError or ValueError when the issuer does not give one)."""
        self.fetches += 1
        response = await self._http.get(self.jwks_uri)
        response.raise_for_status()
        if len(response.content) > MAX_JWKS_BYTES:
            raise ValueError(f"{self.jwks_uri}: the key set is larger than {MAX_JWKS_BYTES} bytes")
        keys: dict[str, jwt.PyJWK] = {}
        for jwk in response.json().get("keys", []):
            if jwk.get("use", "sig") != "sig" or not jwk.get("kid"):
                continue
            try:
                key = jwt.PyJWK.from_dict(jwk)
            except jwt.PyJWTError as exc:  # a key type we cannot use; the others still serve
                log.debug("skipping key %s of %s: %s", jwk.get("kid"), self.jwks_uri, exc)
                continue
            if key.algorithm_name in ALGORITHMS:
                keys[jwk["kid"]] = key
        self._keys, self._fetched_at = keys, time.monotonic()

    async def keep_fresh(self, interval: float) -> None:
        """Fetch until the first success (quickly), then every `interval` (rotations without new kids)."""
        delay = 1.0
        while True:
            try:
                await self.refresh()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("cannot fetch the issuer's keys from %s: %s", self.jwks_uri, exc)
                await asyncio.sleep(delay if not self.ready else interval)
                delay = min(delay * 2, 30.0)
                continue
            delay = 1.0
            await asyncio.sleep(interval)

    async def _key(self, kid: str) -> jwt.PyJWK:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:  # one fetch for every request that waits on the same new kid
            if kid not in self._keys and time.monotonic() - self._refetched_at >= self.refetch_cooldown:
                self._refetched_at = time.monotonic()
                try:
                    await self.refresh()
                except (httpx.HTTPError, ValueError) as exc:
                    log.warning("cannot fetch the issuer's keys from %s: %s", self.jwks_uri, exc)
        if kid not in self._keys:
            raise TokenError(f"the token is signed with key {kid!r}, which the issuer does not publish")
        return self._keys[kid]

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims once its signature, issuer, audience and times check out."""
        if not self.ready:
            raise NotReady("the issuer's keys have not been fetched yet")
        digest = hashlib.sha256(token.encode()).digest()
        if (known := self._verified.get(digest)) is not None and time.time() < known[0]:
            return known[1]
        claims = await self._verify(token)
        exp = claims.get("exp")
        until = min(float(exp) + self.leeway if isinstance(exp, int | float) else 0.0, time.time() + VERIFIED_FOR)
        self._verified[digest] = (until, claims)
        while len(self._verified) > VERIFIED_CACHE:
            self._verified.popitem(last=False)
        return claims

    async def verify_id_token(self, token: str, *, client_id: str, nonce: str) -> dict[str, Any]:
        """An ID token from the token endpoint (sign-in, login.py): for this client, with this sign-in's nonce."""
        if not self.ready:
            raise NotReady("the issuer's keys have not been fetched yet")
        claims = await self._verify(token, audience=client_id, require=("exp", "iss", "aud", "iat", "sub"))
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
            raise TokenError("the ID token's nonce is not this sign-in's: sign in again")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != client_id:
            raise TokenError("the ID token names several audiences but was not issued to this client (azp)")
        return claims

    async def _verify(self, token: str, *, audience: str | None = None,
                      require: tuple[str, ...] = ("exp", "iss")) -> dict[str, Any]:
        audience = self.audience if audience is None else audience
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError(f"the bearer token is not a JWT: {exc}") from None
        kid, alg = header.get("kid"), header.get("alg")
        if not isinstance(kid, str) or alg not in ALGORITHMS:
            raise TokenError("the token must name its signing key (kid) and use an asymmetric algorithm")
        key = await self._key(kid)
        try:
            return dict(jwt.decode(
                token, key.key, algorithms=[key.algorithm_name],
                issuer=self.issuer, audience=audience or None, leeway=self.leeway,
                options={"require": list(require), "verify_aud": bool(audience)},
            ))
        except jwt.ExpiredSignatureError:
            raise TokenError("the token has expired: sign in again") from None
        except jwt.InvalidAudienceError:
            raise TokenError(f"the token is not for this service (audience must be {audience!r})") from None
        except jwt.InvalidIssuerError:
            raise TokenError(f"the token was not issued by {self.issuer}") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("the token is not valid yet (nbf/iat in the future)") from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"the token is invalid: {exc}") from None
