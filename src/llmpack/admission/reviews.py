"""An AdmissionReview body in, the webhook's HTTP answer out: the whole decision, pure and total.

The webhook only warns, with rules that need other objects (no CEL in the API server can read those): every
other rule is the API server's own (admission/table.py). So a review that can be answered is always allowed:
- 400 and one line of text when the body is not an AdmissionReview we can answer: not JSON, larger than
  MAX_BYTES, nested deeper than MAX_DEPTH, no `request` mapping, or no `request.uid`. (The API server then
  admits the request without our warnings: the webhook's failurePolicy is Ignore.)
- 200 and a strict-JSON AdmissionReview that echoes `request.uid` as given, allows, and carries the warnings
  of the one rule that reads other objects: a model id another object owns (admission/claims.py).

JSON numbers that Python would read as NaN or infinity, or only slowly (more than MAX_NUMBER_LENGTH
characters), are read as their text: a uid holding one (`"uid": NaN`) is echoed as that text, a JSON string
("NaN"), so the answer is always valid JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from llmpack.admission.claims import id_owned_elsewhere, name_taken
from llmpack.assess.claims import ClaimIndex

MAX_BYTES = 8 * 1024 * 1024  # an update carries two objects of up to the API server's 3 MiB request limit
MAX_DEPTH = 64  # levels of nesting, from the review down; the deepest Kubernetes objects (affinity) take ~20
MAX_NUMBER_LENGTH = 64  # characters; Kubernetes numbers are int64 or float64, at most ~25


class BadReview(ValueError):
    """A body we cannot answer with a verdict; str() says why in one line."""


VERDICTS = ("allowed", "warned", "invalid")  # allowed as is; allowed with warnings; not a review we can answer


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str
    verdict: str  # one of VERDICTS, for the webhook's metrics


def _float(text: str) -> float | str:
    number = float(text) if len(text) <= MAX_NUMBER_LENGTH else math.inf
    return number if math.isfinite(number) else text


def _int(text: str) -> int | str:
    return int(text) if len(text) <= MAX_NUMBER_LENGTH else text


_BRACKETS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[{]}")


def _nests_deeper_than(text: bytes, limit: int) -> bool:
    """Whether arrays and objects in a valid UTF-8 JSON text nest more than `limit` levels. Byte operations
    only (a walk over the parsed value took longer than the rest of the review): drop escapes, then strings,
    then all but brackets, and take away innermost pairs `limit` times; what is left nests deeper."""
    outside = b"".join(text.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')[::2])
    brackets = outside.translate(_BRACKETS, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"()", b"")
    return bool(brackets)


def read_request(raw: bytes) -> dict[str, Any]:
    """The `request` of an AdmissionReview body, within our bounds; raises BadReview otherwise."""
    if len(raw) > MAX_BYTES:
        raise BadReview(f"the body is larger than {MAX_BYTES} bytes")
    try:
        body = json.loads(raw, parse_constant=str, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise BadReview(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # not JSON, or not UTF-8
        raise BadReview(f"the body is not JSON: {' '.join(str(exc).split())[:200]}") from None
    encoding = json.detect_encoding(raw)
    if not encoding.startswith("utf-8"):  # UTF-16 or 32, which json.loads also reads; the depth check reads UTF-8
        raw = raw.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
    if _nests_deeper_than(raw, MAX_DEPTH):
        raise BadReview(f"the body nests deeper than {MAX_DEPTH} levels")
    request = body.get("request") if isinstance(body, dict) else None
    if not isinstance(request, dict):
        raise BadReview("no request: expected an admission.k8s.io/v1 AdmissionReview with a request mapping")
    if "uid" not in request:
        raise BadReview("request.uid is missing: there is nothing to answer to")
    return request


def verdict(request: dict[str, Any], claims: ClaimIndex | None = None) -> dict[str, Any]:
    """The AdmissionReview response to a request: allowed, with the webhook's warnings for kubectl. `claims`:
    every model id claim the operator knows (none: the rule is not checked)."""
    response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
    if claims and (warnings := [str(f) for f in (*name_taken(request, claims), *id_owned_elsewhere(request, claims))]):
        response["warnings"] = warnings
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def answer(raw: bytes, claims: ClaimIndex | None = None) -> Answer:
    """The HTTP answer to a body POSTed to the webhook."""
    try:
        request = read_request(raw)
    except BadReview as exc:
        return Answer(400, f"not an AdmissionReview: {exc}".encode(), "text/plain", "invalid")
    review = verdict(request, claims)
    return Answer(200, json.dumps(review, allow_nan=False).encode(), "application/json",
                  "warned" if "warnings" in review["response"] else "allowed")
