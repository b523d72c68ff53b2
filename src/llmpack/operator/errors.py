"""What an API error means for the operator, decided in one place."""

from __future__ import annotations

from enum import StrEnum

from lightkube.core.exceptions import ApiError


class Failure(StrEnum):
    TERMINATING = "namespace terminating"  # the namespace is being deleted, its models with it: leave them
    CONFLICT = "conflict"  # 409: it exists already, or someone wrote first
    RETRY = "retry"  # 401, 429, 5xx: the API server is unwell, not our request; back off and try again
    MISSING = "missing"  # 404: something the request names is not there
    REFUSED = "refused"  # any other 4xx (400, 403, 422, ...): the server refuses this request; only a change
    # elsewhere (a policy, a permission, a CRD's schema) helps: reported, and rechecked as a problem is


def classify(exc: ApiError) -> Failure:
    code = exc.status.code or 500
    if code == 403 and "being terminated" in (exc.status.message or ""):
        return Failure.TERMINATING
    if code == 409:
        return Failure.CONFLICT
    if code in (401, 429) or code >= 500:
        return Failure.RETRY
    if code == 404:
        return Failure.MISSING
    return Failure.REFUSED
