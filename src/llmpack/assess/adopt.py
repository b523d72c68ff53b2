"""Taking over what the LLM Serving Pack's operator left in a cluster. Pure: observed objects in, what to write
out.

The pack's operator (controller-runtime, binary `manager`) writes every child with Create/Update, so the API
server files its fields under manager `manager`, operation `Update`, and marks each LLMModel with its finalizer
`llm.nebari.dev/cleanup`. That finalizer is how we tell a model still to be adopted: while it is there, the
shell looks up each child it would apply (the pack's carry another `managed-by` label, so our watches do not
see them) and hands the pack manager's fields to ours (`takeover`), so that our next server-side apply removes
whatever the pack set and we do not render, instead of merging two templates. A PVC's spec is never taken over
(it is immutable, and the weights are on it); neither is what a Deployment's selector already says
(`kept_immutable`). Once the model is Ready (or is being deleted) the finalizer is removed, and with it the
adoption: the children carry owner references to the same LLMModel uid, so the garbage collector does the
pack's cleanup.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from llmpack.assess.report import Problem
from llmpack.config import FIELD_MANAGER

PACK_MANAGERS = frozenset({"manager"})  # the pack operator's binary: client-go names the manager after it
PACK_FINALIZER = "llm.nebari.dev/cleanup"
Body = dict[str, Any]


def from_pack(model: Body) -> bool:
    """The LLMModel still carries the pack's finalizer: its children may still be the pack's."""
    return PACK_FINALIZER in ((model.get("metadata") or {}).get("finalizers") or ())


def finalizer_removal(model: Body) -> list[dict[str, Any]] | None:
    """A JSON patch that removes the pack's finalizer, and only it (the test fails the patch if the list moved
    under us: then the next pass tries again); None when it is not there."""
    finalizers = list((model.get("metadata") or {}).get("finalizers") or ())
    if PACK_FINALIZER not in finalizers:
        return None
    index = finalizers.index(PACK_FINALIZER)
    return [{"op": "test", "path": f"/metadata/finalizers/{index}", "value": PACK_FINALIZER},
            {"op": "remove", "path": f"/metadata/finalizers/{index}"}]


def _pack_entry(entry: Mapping[str, Any], subresource: str) -> bool:
    return (entry.get("manager") in PACK_MANAGERS and entry.get("operation") == "Update"
            and (entry.get("subresource") or "") == subresource)


def _union(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two fieldsV1 sets as one: a field set is a trie of dicts, so the union is a deep merge."""
    merged = dict(a)
    for name, sub in b.items():
        merged[name] = _union(merged[name], sub) if isinstance(merged.get(name), dict) and isinstance(sub, dict) \
            else sub
    return merged


def _handed_over(fields: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """What of the pack's field set becomes ours: all of it, but of a PVC only its metadata (its spec cannot
    change after creation, and a field we own and do not apply would be removed)."""
    if kind == "PersistentVolumeClaim":
        return {k: v for k, v in fields.items() if k == "f:metadata"}
    return dict(fields)


def takeover(observed: Body, subresource: str = "") -> list[dict[str, Any]] | None:
    """The object's managedFields with the pack manager's entries (of the main resource, or of `subresource`)
    handed to our apply entry, or None when the pack's manager holds nothing there."""
    entries = list((observed.get("metadata") or {}).get("managedFields") or ())
    theirs = [e for e in entries if _pack_entry(e, subresource)]
    if not theirs:
        return None
    ours_at = next((i for i, e in enumerate(entries) if e.get("manager") == FIELD_MANAGER
                    and e.get("operation") == "Apply" and (e.get("subresource") or "") == subresource), None)
    taken: dict[str, Any] = {}
    for entry in theirs:
        taken = _union(taken, _handed_over(entry.get("fieldsV1") or {}, observed.get("kind", "")))
    if ours_at is not None:
        mine = entries[ours_at]
        entry = {**mine, "fieldsV1": _union(mine.get("fieldsV1") or {}, taken)}
    else:
        entry = {k: v for k, v in theirs[0].items() if k in ("apiVersion", "fieldsType", "time", "subresource")}
        entry |= {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": taken}
    kept = [e for i, e in enumerate(entries) if i != ours_at and not _pack_entry(e, subresource)]
    return [*kept, entry] if entry["fieldsV1"] else kept


def takeover_patch(observed: Body, fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A JSON patch that sets managedFields, only if nobody wrote the object since it was read."""
    version = (observed.get("metadata") or {}).get("resourceVersion")
    return [{"op": "test", "path": "/metadata/resourceVersion", "value": version},
            {"op": "replace", "path": "/metadata/managedFields", "value": fields}]


def kept_immutable(desired: Body, observed: Body | None) -> tuple[Body, Problem | None]:
    """`desired` with what the cluster cannot change taken from `observed`: a Deployment's selector (when the
    one it has still picks our pods: the pack's `{instance: <m>}` does), a PVC's storage class when we name none
    (the default class was filled in at creation). A Deployment whose selector cannot pick our pods is a
    Problem: it must be recreated, which we leave to a person."""
    if observed is None:
        return desired, None
    kind, spec, have = desired.get("kind"), desired.get("spec") or {}, observed.get("spec") or {}
    if kind == "Deployment" and "selector" in spec and have.get("selector") not in (None, spec["selector"]):
        selector = have["selector"]
        template = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        picks = set((selector.get("matchLabels") or {}).items()) <= set(template.items())
        name = desired["metadata"]["name"]
        if not picks or selector.get("matchExpressions"):
            return desired, Problem(
                "SelectorImmutable",
                f"Deployment {name} selects pods by {selector}, which llmpack's pods do not match, and a "
                f"Deployment's selector cannot change: delete it (`kubectl delete deployment {name}`) and llmpack "
                "creates it again; the weights stay on the PVC")
        adjusted = copy.deepcopy(desired)
        adjusted["spec"]["selector"] = selector
        return adjusted, None
    if kind == "PersistentVolumeClaim" and "storageClassName" not in spec and have.get("storageClassName"):
        adjusted = copy.deepcopy(desired)
        adjusted["spec"]["storageClassName"] = have["storageClassName"]
        return adjusted, None
    return desired, None


def kept_notes(desired: Iterable[Body], observed: Callable[[str, str], Body | None]) -> tuple[str, ...]:
    """What `kept_immutable` keeps of the cluster's objects and why, for the model's status: a Deployment whose
    selector is the one the pack gave it."""
    notes = []
    for obj in desired:
        if obj["kind"] != "Deployment":  # no other object is read, nor copied (a PVC's class would be), per pass
            continue
        kept, problem = kept_immutable(obj, observed(obj["kind"], obj["metadata"]["name"]))
        if problem is None and kept is not obj:
            selector = kept["spec"]["selector"].get("matchLabels") or {}
            labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
            notes.append(f"Deployment {obj['metadata']['name']} keeps the selector it was created with ({labels}): "
                         "a Deployment's selector cannot change, and this one picks llmpack's pods all the same")
    return tuple(notes)
