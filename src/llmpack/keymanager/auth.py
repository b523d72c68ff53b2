"""Who is calling: an Identity from the request's credentials.

The Authenticator asks its credential sources in turn; today there is one, the OIDC bearer token. The web
page (backend-for-frontend login) adds a session source in front of it, and every endpoint keeps taking an
Identity, whichever source vouched for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request

from llmpack.keymanager import errors, metrics
from llmpack.keymanager.oidc import NotReady, TokenError, Verifier


@dataclass(frozen=True)
class Identity:
    username: str
    name: str
    email: str
    groups: tuple[str, ...]
    admin: bool = False

    def wire(self) -> dict[str, Any]:
        return {"username": self.username, "name": self.name, "email": self.email, "groups": list(self.groups),
                "admin": self.admin}


def _groups(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(g for g in value if isinstance(g, str))
    return ()


def identity_from_claims(claims: Mapping[str, Any], *, username_claim: str, groups_claim: str,
                         admin_groups: Iterable[str] = ()) -> Identity:
    """The same claims the gateway's OIDC policy copies into X-Auth-User and X-Auth-Groups."""
    username = claims.get(username_claim) or claims.get("sub")
    if not isinstance(username, str) or not username:
        raise TokenError(f"the token has neither a {username_claim!r} nor a 'sub' claim")
    groups = _groups(claims.get(groups_claim))
    return Identity(username=username, name=str(claims.get("name") or ""), email=str(claims.get("email") or ""),
                    groups=groups, admin=not set(admin_groups).isdisjoint(groups))


class CredentialSource(Protocol):
    async def identify(self, request: Request) -> Identity | None:
        """The caller, None when the request carries nothing for this source; errors.Problem when what it
        carries is bad."""


class BearerToken:
    """`Authorization: Bearer <JWT>` from the configured issuer."""

    def __init__(self, verifier: Verifier, *, username_claim: str, groups_claim: str,
                 admin_groups: Sequence[str]) -> None:
        self.verifier, self.username_claim, self.groups_claim = verifier, username_claim, groups_claim
        self.admin_groups = tuple(admin_groups)

    async def identify(self, request: Request) -> Identity | None:
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.unauthorized("the Authorization header must be `Bearer <token>`", token_given=True)
        try:
            claims = await self.verifier.verify(token.strip())
            return identity_from_claims(claims, username_claim=self.username_claim, groups_claim=self.groups_claim,
                                        admin_groups=self.admin_groups)
        except NotReady:
            raise errors.unavailable("the key manager has not reached the OIDC issuer's keys yet; try again "
                                     "in a few seconds") from None
        except TokenError as exc:
            raise errors.unauthorized(str(exc), token_given=True) from None


class Authenticator:
    def __init__(self, sources: Sequence[CredentialSource]) -> None:
        self.sources = list(sources)

    async def __call__(self, request: Request) -> Identity:
        for source in self.sources:
            try:
                identity = await source.identify(request)
            except errors.Problem as exc:
                metrics.auth_failed(exc)
                raise
            if identity is not None:
                return identity
        refusal = errors.unauthorized("sign in first: send `Authorization: Bearer <token>` with a token from the "
                                      "OIDC issuer", token_given=False)
        metrics.auth_failed(refusal, credentials=False)
        raise refusal
