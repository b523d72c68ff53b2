"""Every refusal the service gives: an HTTP status and one line that says what is wrong and what to do."""

from __future__ import annotations

from collections.abc import Mapping

REALM = "llmpack-key-manager"


class Problem(Exception):
    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, dict(headers or {})


def unauthorized(detail: str, *, token_given: bool) -> Problem:
    """401 with the challenge RFC 6750 asks for: `invalid_token` only when a token was sent."""
    challenge = f'Bearer realm="{REALM}"'
    if token_given:
        challenge += ', error="invalid_token", error_description="' + detail.replace('"', "'") + '"'
    return Problem(401, detail, {"WWW-Authenticate": challenge})


def bad_request(detail: str) -> Problem:
    return Problem(400, detail)


def forbidden(detail: str) -> Problem:
    return Problem(403, detail)


def not_found(detail: str) -> Problem:
    return Problem(404, detail)


def conflict(detail: str) -> Problem:
    return Problem(409, detail)


def unavailable(detail: str, retry_after: int = 5) -> Problem:
    return Problem(503, detail, {"Retry-After": str(retry_after)})
