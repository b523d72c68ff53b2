"""The webhook's cross-object rule (admission/table.py, `model-id-owned-elsewhere`): a model id another object
already owns. Pure: the claims the operator's Store holds come in as data. The API server cannot see them (no
CEL over one object can), which is why this rule lives in the webhook the operator serves, with
failurePolicy Ignore: while the operator is down the model is admitted without it.

Only a warning, never a refusal: the oldest claim owns an id whether or not admission ran (assess/claims.py),
so the warning only tells the writer now what the model's conditions will say.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmpack.admission.rules import Finding, finding
from llmpack.api import KIND
from llmpack.assess.claims import ClaimIndex, first, model_ids


def _meta(obj: object) -> dict[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) else {}


def id_owned_elsewhere(request: Mapping[str, Any], index: ClaimIndex) -> list[Finding]:
    """A warning for each model id of the admitted LLMModel that another object owns, or will own before it:
    a new claim (a create, or a changed id) ranks after every claim already known."""
    new, old = request.get("object"), request.get("oldObject") or None
    if not isinstance(new, dict):
        return []
    meta = _meta(new)
    key = (KIND, str(request.get("namespace") or meta.get("namespace") or ""), str(meta.get("name") or ""))
    ids = model_ids(new)
    fresh = not isinstance(old, dict) or model_ids(old) != ids
    findings = []
    for model_id in sorted(ids):
        claims = index.get(model_id) or {}
        owner = first(c for k, c in claims.items() if not (fresh and k == key))
        if owner is None or owner.key == key:
            continue
        findings.append(finding("model-id-owned-elsewhere", model_id=model_id, owner=owner, since=owner.claimed_at))
    return findings
