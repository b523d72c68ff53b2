"""What the operator has seen, kept from watch events: models and their children, by model.

Reconciles read from here instead of the API server, so a reconcile that finds nothing to change
makes no request at all. Each object is kept cut to what a reconcile reads (`keep`): of
metadata.managedFields only, for a kind we write in several versions, the versions we wrote it in; of a Pod
only what the phase ladder looks at.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmpack.config import FIELD_MANAGER
from llmpack.kinds import CHILDREN
from llmpack.wellknown import MODEL_LABEL

Key = tuple[str, str]  # (namespace, LLMModel name)
ChildKey = tuple[str, str]  # (kind, name)
Body = dict[str, Any]


def slim(body: Body) -> Body:
    """The object without metadata.managedFields: server-side apply makes those the bulk of many objects,
    and nothing here reads them (peak RSS 187 -> 150 MB for 200 routed models, bench/operator_scale.py)."""
    meta = body.get("metadata") or {}
    if "managedFields" not in meta:
        return body
    return {**body, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


_POD_META = ("name", "namespace", "uid", "labels", "annotations", "deletionTimestamp", "resourceVersion")
_POD_STATUS = ("phase", "conditions", "initContainerStatuses", "containerStatuses")


def pod(body: Body) -> Body:
    """What assess/status.py reads of a pod: its identity, its download step's name, and its status. A pod
    is never applied, so nothing compares its spec (the bulk of it)."""
    meta, spec, status = body.get("metadata") or {}, body.get("spec") or {}, body.get("status") or {}
    return {"metadata": {k: meta[k] for k in _POD_META if k in meta},
            "spec": {"initContainers": [{"name": c.get("name")} for c in spec.get("initContainers") or ()]},
            "status": {k: status[k] for k in _POD_STATUS if k in status}}


def unread_status(body: Body) -> Body:
    """Kinds whose status no reconcile reads (a Deployment's changes with every pod) keep none."""
    return slim({k: v for k, v in body.items() if k != "status"})


def written_in(body: Body) -> Body:
    """For a kind we write in several versions: which of them we wrote it in, and no more of managedFields
    (apply.py writes an object again when the version we write now is not among them)."""
    fields = (body.get("metadata") or {}).get("managedFields") or ()
    ours = sorted({str(f["apiVersion"]) for f in fields if f.get("manager") == FIELD_MANAGER and f.get("apiVersion")})
    kept = slim(body)
    return {**kept, "metadata": {**kept.get("metadata", {}),
                                 "managedFields": [{"manager": FIELD_MANAGER, "apiVersion": v} for v in ours]}}


_KEEP: dict[str, Callable[[Body], Body]] = {
    "Pod": pod, "Deployment": unread_status, "Service": unread_status, "NetworkPolicy": unread_status,
    **{kind.kind: written_in for kind in CHILDREN if kind.versions},
}


def keep(kind: str) -> Callable[[Body], Body]:
    """How an object of `kind` is cut before it is stored (watch events and apply responses alike)."""
    return _KEEP.get(kind, slim)


def key_of(body: Body) -> Key:
    meta = body["metadata"]
    return meta.get("namespace", ""), meta["name"]


def owner_of(body: Body) -> Key | None:
    """The model a child belongs to, from its llm.nebari.dev/model label."""
    meta = body.get("metadata") or {}
    model = (meta.get("labels") or {}).get(MODEL_LABEL)
    return (meta.get("namespace", ""), model) if model else None


@dataclass
class Store:
    models: dict[Key, Body] = field(default_factory=dict)
    children: dict[Key, dict[ChildKey, Body]] = field(default_factory=lambda: defaultdict(dict))
    crds: set[str] = field(default_factory=set)  # established CRDs by name, e.g. inferencepools.inference...
    served: dict[str, tuple[str, ...]] = field(default_factory=dict)  # established CRD -> the versions it serves
    # Models whose `<m>-api-keys` Secret exists, with its data keys (read by get: Secrets are not watched).
    api_keys: dict[Key, tuple[str, ...]] = field(default_factory=dict)
    synced: bool = False  # every LLMModel has been listed once (the first complete list)

    def put_model(self, body: Body) -> Key:
        key = key_of(body)
        self.models[key] = slim(body)
        return key

    def drop_model(self, body: Body) -> Key:
        key = key_of(body)
        self.models.pop(key, None)
        return key

    def put_child(self, kind: str, body: Body) -> Key | None:
        if (owner := owner_of(body)) is not None:
            self.children[owner][(kind, body["metadata"]["name"])] = keep(kind)(body)
        return owner

    def drop_child(self, kind: str, body: Body) -> Key | None:
        if (owner := owner_of(body)) is not None:
            children = self.children.get(owner)
            if children is not None:
                children.pop((kind, body["metadata"]["name"]), None)
                if not children:
                    del self.children[owner]
        return owner

    def drop_kind(self, kind: str) -> None:
        for owner in list(self.children):
            children = self.children[owner]
            for child in [c for c in children if c[0] == kind]:
                del children[child]
            if not children:
                del self.children[owner]

    def child(self, key: Key, kind: str, name: str) -> Body | None:
        children = self.children.get(key)
        return children.get((kind, name)) if children else None

    def of_kind(self, key: Key, kind: str) -> list[Body]:
        children = self.children.get(key)
        return [body for (k, _), body in children.items() if k == kind] if children else []
