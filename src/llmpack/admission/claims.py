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
from llmpack.assess.claims import CATCH_ALL, PASSTHROUGH, ClaimIndex, Target, first, model_ids, passthrough_ids


def _meta(obj: object) -> dict[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) else {}


def _targets(kind: str, obj: object) -> tuple[Target, ...]:
    """What an admitted object claims: an LLMModel its `spec.model.name`; a PassthroughModel its declared ids
    and, with `catchAll`, the catch-all."""
    if not isinstance(obj, dict):
        return ()
    if kind == PASSTHROUGH:
        ids, catch_all = passthrough_ids(obj)
        return (*sorted(ids), *((CATCH_ALL,) if catch_all else ()))
    return tuple(sorted(model_ids(obj)))


def id_owned_elsewhere(request: Mapping[str, Any], index: ClaimIndex) -> list[Finding]:
    """A warning for each model id of the admitted LLMModel or PassthroughModel (its catch-all included) that
    another object owns, or will own before it: a new claim (a create, or changed ids) ranks after every claim
    already known."""
    new, old = request.get("object"), request.get("oldObject") or None
    if not isinstance(new, dict):
        return []
    kind = str((request.get("kind") or {}).get("kind") or new.get("kind") or KIND)
    meta = _meta(new)
    key = (kind, str(request.get("namespace") or meta.get("namespace") or ""), str(meta.get("name") or ""))
    targets = _targets(kind, new)
    fresh = _targets(kind, old) != targets
    findings = []
    for target in targets:
        claims = index.get(target) or {}
        owner = first(c for k, c in claims.items() if not (fresh and k == key))
        if owner is None or owner.key == key:
            continue
        if kind != PASSTHROUGH:
            findings.append(finding("model-id-owned-elsewhere", model_id=target, owner=owner, since=owner.claimed_at))
        elif target is CATCH_ALL:
            findings.append(finding("passthrough-catch-all-owned-elsewhere", owner=owner, since=owner.claimed_at))
        else:
            findings.append(finding("passthrough-id-owned-elsewhere", model_id=target, owner=owner,
                                    since=owner.claimed_at))
    return findings


def name_taken(request: Mapping[str, Any], index: ClaimIndex) -> list[Finding]:
    """A warning when an object of the other kind (LLMModel, PassthroughModel) has the admitted one's name in its
    namespace, from the claims the operator holds (every such object claims something)."""
    new = request.get("object")
    if not isinstance(new, dict) or request.get("operation") != "CREATE":
        return []
    kind = str((request.get("kind") or {}).get("kind") or new.get("kind") or KIND)
    other = KIND if kind == PASSTHROUGH else PASSTHROUGH
    meta = _meta(new)
    namespace, name = str(request.get("namespace") or meta.get("namespace") or ""), str(meta.get("name") or "")
    if not any((other, namespace, name) in claims for claims in index.values()):
        return []
    return [finding("name-taken-by-other-kind", other=other, namespace=namespace, name=name)]
