"""What the operator has seen, kept from watch events: models and their children, by model, and every
model's claim on its model id (assess/claims.py), indexed by id.

Reconciles read from here instead of the API server, so a reconcile that finds nothing to change
makes no request at all.

`synced` is the contract with whatever fills the Store (today: an initial list, then kopf's watches): it
is set once the Store has held every LLMModel, after the first complete list. Until then nobody can tell
who owns a model id, and the routing plan decides nothing about routes (render/plan.py).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from llmpack.api import KIND
from llmpack.assess.claims import Claim, ClaimKey, Target, model_claim, rivals, settled
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


def claim_key(key: Key) -> ClaimKey:
    return KIND, *key


def _models(keys: Iterable[ClaimKey]) -> set[Key]:
    """The LLMModels among claim keys (other kinds are woken by their own reconcilers)."""
    return {(namespace, name) for kind, namespace, name in keys if kind == KIND}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Store:
    models: dict[Key, dict[str, Any]] = field(default_factory=dict)
    children: dict[Key, dict[ChildKey, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    crds: set[str] = field(default_factory=set)  # established CRDs by name, e.g. inferencepools.inference...
    # Models whose `<m>-api-keys` Secret exists, with its data keys (read by get: Secrets are not watched).
    api_keys: dict[Key, tuple[str, ...]] = field(default_factory=dict)
    synced: bool = False  # every LLMModel is here: set by what fills the Store, after its first complete list
    claims: dict[ClaimKey, Claim] = field(default_factory=dict)
    claim_index: dict[Target, dict[ClaimKey, Claim]] = field(default_factory=lambda: defaultdict(dict))
    # When each model was last put, counted in puts: a list that misses a model put before it began means
    # the model is gone (see `missing`).
    puts: int = 0
    put_at: dict[Key, int] = field(default_factory=dict)

    def put_model(self, body: dict[str, Any], now: str | None = None) -> tuple[Key, set[Key]]:
        """Keep a model; returns its key and the other models whose ownership of an id this may change."""
        key = self._keep(body)
        previous = self.claims.get(claim_key(key))
        claim = model_claim(KIND, body, previous=previous, index=self.claim_index, now=now or _now(),
                                   after_known=self.synced)
        return key, self._set_claim(claim_key(key), previous, claim)

    def drop_model(self, body: dict[str, Any]) -> tuple[Key, set[Key]]:
        key = key_of(body)
        self.models.pop(key, None)
        self.put_at.pop(key, None)
        return key, self._set_claim(claim_key(key), self.claims.get(claim_key(key)), None)

    def load(self, bodies: Iterable[dict[str, Any]], now: str | None = None) -> None:
        """Keep every model of a complete list, into an empty Store not yet synced. Claims whose start the
        bodies say are kept first; the others (edited while no operator watched) are then placed after
        them, each as if it were alone, so the outcome does not depend on the list's order."""
        now = now or _now()
        bodies = list(bodies)
        for body in bodies:
            if settled(body):
                self.put_model(body, now)
        known = {target: dict(found) for target, found in self.claim_index.items()}
        for body in bodies:
            if not settled(body):
                claim = model_claim(KIND, body, previous=None, index=known, now=now, after_known=True)
                self._set_claim(claim_key(self._keep(body)), None, claim)

    def _keep(self, body: dict[str, Any]) -> Key:
        key = key_of(body)
        self.models[key] = slim(body)
        self.puts += 1
        self.put_at[key] = self.puts
        return key

    def missing(self, listed: Iterable[Key], since: int) -> list[Key]:
        """Models a complete list begun after `since` puts did not hold, though kept before it: deleted
        while no watch told us (a watch that re-lists reports no deletions it missed)."""
        seen = set(listed)
        return [key for key, at in self.put_at.items() if key not in seen and at <= since]

    def _set_claim(self, key: ClaimKey, previous: Claim | None, claim: Claim | None) -> set[Key]:
        if claim == previous:
            return set()
        woken: set[ClaimKey] = set()
        if previous is not None:
            woken |= rivals(previous, self.claim_index)
            for target in previous.targets:
                self.claim_index[target].pop(key, None)
                if not self.claim_index[target]:
                    del self.claim_index[target]
            del self.claims[key]
        if claim is not None:
            self.claims[key] = claim
            for target in claim.targets:
                self.claim_index[target][key] = claim
            woken |= rivals(claim, self.claim_index)
        return _models(woken)

    def model_claim(self, key: Key) -> Claim | None:
        return self.claims.get(claim_key(key))

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
