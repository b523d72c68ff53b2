"""What the operator has seen, kept from watch events: models and their children, by model.

Reconciles read from here instead of the API server, so a reconcile that finds nothing to change
makes no request at all.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from llmpack.wellknown import MODEL_LABEL

Key = tuple[str, str]  # (namespace, LLMModel name)
ChildKey = tuple[str, str]  # (kind, name)


def slim(body: dict[str, Any]) -> dict[str, Any]:
    """The object without metadata.managedFields: server-side apply makes those the bulk of many objects,
    and nothing here reads them (peak RSS 187 -> 150 MB for 200 routed models, bench/operator_scale.py)."""
    meta = body.get("metadata") or {}
    if "managedFields" not in meta:
        return body
    return {**body, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def key_of(body: dict[str, Any]) -> Key:
    meta = body["metadata"]
    return meta.get("namespace", ""), meta["name"]


def owner_of(body: dict[str, Any]) -> Key | None:
    """The model a child belongs to, from its llm.nebari.dev/model label."""
    meta = body.get("metadata") or {}
    model = (meta.get("labels") or {}).get(MODEL_LABEL)
    return (meta.get("namespace", ""), model) if model else None


@dataclass
class Store:
    models: dict[Key, dict[str, Any]] = field(default_factory=dict)
    children: dict[Key, dict[ChildKey, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    crds: set[str] = field(default_factory=set)  # established CRDs by name, e.g. inferencepools.inference...
    served: dict[str, tuple[str, ...]] = field(default_factory=dict)  # established CRD -> the versions it serves
    # Models whose `<m>-api-keys` Secret exists, with its data keys (read by get: Secrets are not watched).
    api_keys: dict[Key, tuple[str, ...]] = field(default_factory=dict)

    def put_model(self, body: dict[str, Any]) -> Key:
        key = key_of(body)
        self.models[key] = slim(body)
        return key

    def drop_model(self, body: dict[str, Any]) -> Key:
        key = key_of(body)
        self.models.pop(key, None)
        return key

    def put_child(self, kind: str, body: dict[str, Any]) -> Key | None:
        if (owner := owner_of(body)) is not None:
            self.children[owner][(kind, body["metadata"]["name"])] = slim(body)
        return owner

    def drop_child(self, kind: str, body: dict[str, Any]) -> Key | None:
        if (owner := owner_of(body)) is not None:
            self.children[owner].pop((kind, body["metadata"]["name"]), None)
        return owner

    def child(self, key: Key, kind: str, name: str) -> dict[str, Any] | None:
        return self.children.get(key, {}).get((kind, name))

    def of_kind(self, key: Key, kind: str) -> list[dict[str, Any]]:
        return [body for (k, _), body in self.children.get(key, {}).items() if k == kind]
