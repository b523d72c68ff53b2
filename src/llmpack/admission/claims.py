"""The webhook's cross-object rule: a model id another object already owns. Pure: the claims the operator's
Store holds come in as data. The API server cannot see them, which is why this rule lives in the webhook the
operator serves rather than in the CRD.

Only a warning, never a refusal: the oldest claim owns an id whether or not admission ran (assess/claims.py),
so the warning only tells the writer now what the model's conditions will say.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmpack.admission.rules import Finding, warning
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
        findings.append(warning("spec.model.name", f"model id {model_id} is already claimed by {owner} (since "
                                f"{owner.claimed_at}): the shared hostnames route it there, not to this model "
                                "(ExternalEndpointReady=False, ModelIdConflict), until that one is deleted or "
                                "its id changes; this model still serves inside the cluster"))
    return findings
