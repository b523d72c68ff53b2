"""The web page's sessions: a sealed cookie that any replica opens, and the CSRF token that goes with it.

A session is who signed in (username, name, email, groups) and when it ends, sealed with AES-GCM under a
key derived from the session key, a Secret every replica shares: the browser can neither read nor change
it, and no replica stores anything per sign-in. Logging out records the session's id as revoked
(revocations.py), which every replica reads. The CSRF token is an HMAC of the session id under another
derived key: every form carries it, and a request that changes something without it is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from llmpack.keymanager.auth import Identity

SESSION = "km-session"
LOGIN = "km-login"  # the sign-in in progress: state, nonce, PKCE verifier and where to go back to
LOGIN_LIFETIME = 600.0
# A cookie is at most 4096 bytes with its name and attributes; a session larger than this (a user in a
# hundred groups or more) cannot be a cookie.
MAX_COOKIE = 3800
_VERSION = b"\x01"


def cookie_name(base: str, secure: bool) -> str:
    """`__Host-` makes the browser refuse the cookie unless it is Secure, host-only and for path /."""
    return f"__Host-{base}" if secure else base


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"llmpack key-manager " + purpose).derive(
        secret.encode())


class Sealer:
    """Seals with the first session key and opens with any (a rotation: put the new key first, drop the old
    one after a session lifetime). The cookie's name is the associated data: one kind cannot pass for another."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("a Sealer needs at least one session key")
        self._aead = [AESGCM(_derive(k, b"cookie")) for k in keys]
        self._csrf = [_derive(k, b"csrf") for k in keys]

    def seal(self, purpose: str, payload: Mapping[str, Any]) -> str:
        nonce = secrets.token_bytes(12)
        body = json.dumps(payload, separators=(",", ":")).encode()
        return _b64(_VERSION + nonce + self._aead[0].encrypt(nonce, body, purpose.encode()))

    def open(self, purpose: str, text: str) -> dict[str, Any] | None:
        """The payload, or None for anything that was not sealed here for this purpose."""
        try:
            raw = _unb64(text)
        except (binascii.Error, ValueError):
            return None
        if len(raw) < 1 + 12 + 16 or raw[:1] != _VERSION:
            return None
        for aead in self._aead:
            try:
                payload = json.loads(aead.decrypt(raw[1:13], raw[13:], purpose.encode()))
            except InvalidTag:
                continue
            return payload if isinstance(payload, dict) else None
        return None

    def csrf(self, sid: str) -> str:
        return _b64(hmac.new(self._csrf[0], sid.encode(), hashlib.sha256).digest())

    def csrf_ok(self, sid: str, token: str | None) -> bool:
        if not token:
            return False
        return any(hmac.compare_digest(_b64(hmac.new(key, sid.encode(), hashlib.sha256).digest()), token)
                   for key in self._csrf)


@dataclass(frozen=True)
class Session:
    sid: str
    username: str
    name: str
    email: str
    groups: tuple[str, ...]
    expires: float  # epoch seconds

    def payload(self) -> dict[str, Any]:
        return {"sid": self.sid, "u": self.username, "n": self.name, "e": self.email, "g": list(self.groups),
                "exp": self.expires}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Session | None:
        try:
            groups = payload["g"]
            session = cls(sid=str(payload["sid"]), username=str(payload["u"]), name=str(payload["n"]),
                          email=str(payload["e"]), groups=tuple(str(g) for g in groups),
                          expires=float(payload["exp"]))
        except (KeyError, TypeError, ValueError):
            return None
        return session if isinstance(groups, list) and session.sid and session.username else None

    def identity(self, admin_groups: Iterable[str]) -> Identity:
        """Admin is decided now, not at sign-in: a change of keyManager.adminGroups applies at once."""
        return Identity(username=self.username, name=self.name, email=self.email, groups=self.groups,
                        admin=not set(admin_groups).isdisjoint(self.groups))


def new_session(identity: Identity, lifetime: float, moment: float | None = None) -> Session:
    moment = time.time() if moment is None else moment
    return Session(sid=secrets.token_urlsafe(18), username=identity.username, name=identity.name,
                   email=identity.email, groups=identity.groups, expires=moment + lifetime)


def open_session(sealer: Sealer, cookie: str | None, moment: float | None = None) -> Session | None:
    """The session in a cookie, None when there is none, it was not sealed here, or it has ended."""
    if not cookie:
        return None
    payload = sealer.open(SESSION, cookie)
    session = Session.from_payload(payload) if payload is not None else None
    if session is None or session.expires <= (time.time() if moment is None else moment):
        return None
    return session
