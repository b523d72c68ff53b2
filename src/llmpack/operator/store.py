"""What the operator has seen, kept from watch events: models and their children, by model, and every
model's claim on its model id (assess/claims.py), indexed by id.

Reconciles read from here instead of the API server, so a reconcile that finds nothing to change
makes no request at all. Each object is kept cut to what a reconcile reads (`keep`): of
metadata.managedFields only, for a kind we write in several versions, the versions we wrote it in; of a Pod
only what the phase ladder looks at. Models and children are then kept as compact JSON (sorted keys) and
decoded when read: as dicts they were the operator's largest holding, ~105 KB a model, as JSON about a
seventh of that (bench/operator_scale.py). The last objects read stay decoded (`Recent`), so a pass, which
reads most of its model's children two or three times, decodes each once. What a read returns is shared:
never change it.

`sync` is the contract with whatever fills the Store (runner.py): it is called once every LLMModel has been
listed. Until then models are only kept, nobody can tell who owns a model id, and the routing plan decides
nothing about routes (render/plan.py); `sync` then decides every claim at once, whatever the list's order.
"""

from __future__ import annotations

import datetime
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from llmpack.api import KIND
from llmpack.api.passthrough import PASSTHROUGH_KIND
from llmpack.assess.claims import (
    Claim,
    ClaimKey,
    Target,
    claim_of,
    claim_settled,
    model_claim,
    passthrough_claim,
    rivals,
)
from llmpack.assess.status import JOB_ENDINGS
from llmpack.config import FIELD_MANAGER
from llmpack.kinds import CHILDREN
from llmpack.wellknown import MODEL_LABEL

Key = tuple[str, str]  # (namespace, LLMModel name)
ChildKey = tuple[str, str]  # (kind, name)
Body = dict[str, Any]
# Sorted keys: a list's items (kind and apiVersion added last) and a watch event's compare equal as bytes.
canonical_json = msgspec.json.Encoder(order="sorted").encode
_decode = msgspec.json.decode
RECENT = 256  # children kept decoded: those of the models the workers are reconciling, ~2 MB


class Recent:
    """The last `size` objects read, decoded, by where they are kept; valid while that very JSON is kept."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._bodies: OrderedDict[Hashable, tuple[bytes, Body]] = OrderedDict()

    def read(self, where: Hashable, kept: bytes) -> Body:
        recent = self._bodies.get(where)
        if recent is not None and recent[0] is kept:
            self._bodies.move_to_end(where)
            return recent[1]
        body: Body = _decode(kept)
        self._bodies[where] = (kept, body)
        if len(self._bodies) > self.size:
            self._bodies.popitem(last=False)
        return body


class Kept(MutableMapping[Key, Body]):
    """Objects by key, kept as JSON (`Recent` keeps the last few read decoded)."""

    def __init__(self, recent: int = 32) -> None:
        self._json: dict[Key, bytes] = {}
        self._recent = Recent(recent)

    def __getitem__(self, key: Key) -> Body:
        return self._recent.read(key, self._json[key])

    def __setitem__(self, key: Key, body: Body) -> None:
        kept = canonical_json(body)
        if self._json.get(key) != kept:  # else the JSON kept stays, and so does its decoded copy
            self._json[key] = kept

    def __delitem__(self, key: Key) -> None:
        del self._json[key]

    def __contains__(self, key: object) -> bool:
        return key in self._json

    def __iter__(self) -> Iterator[Key]:
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)


def slim(body: Body, unread: tuple[str, ...] = ("managedFields",)) -> Body:
    """The object without metadata.managedFields: server-side apply makes those the bulk of many objects,
    and nothing here reads them (peak RSS 187 -> 150 MB for 200 routed models, bench/operator_scale.py)."""
    meta = body.get("metadata") or {}
    if not any(k in meta for k in unread):
        return body
    return {**body, "metadata": {k: v for k, v in meta.items() if k not in unread}}


def slim_child(body: Body) -> Body:
    """A child without managedFields, nor the resourceVersion every write changes: two events that differ
    only in what is not kept then compare equal, and the second wakes no reconcile (`Store.take`)."""
    return slim(body, ("managedFields", "resourceVersion"))


# creationTimestamp: the newest of a Job's pods is the one that counts, and a pod waiting on its node is
# asked about only after a grace period (causes.py).
_POD_META = ("name", "namespace", "uid", "labels", "annotations", "creationTimestamp", "deletionTimestamp")
_POD_STATUS = ("phase", "conditions", "initContainerStatuses", "containerStatuses")


def pod(body: Body) -> Body:
    """What assess/ reads of a pod: its identity, its download step's name, the node it was placed on (a pod
    Pending there is asked about through its Events: assess/download.py), and its status. A pod is never
    applied, so nothing compares its spec (the bulk of it)."""
    meta, spec, status = body.get("metadata") or {}, body.get("spec") or {}, body.get("status") or {}
    kept_spec: Body = {"initContainers": [{"name": c.get("name")} for c in spec.get("initContainers") or ()]}
    if spec.get("nodeName"):
        kept_spec["nodeName"] = spec["nodeName"]
    return {"metadata": {k: meta[k] for k in _POD_META if k in meta}, "spec": kept_spec,
            "status": {k: status[k] for k in _POD_STATUS if k in status}}


def unread_status(body: Body) -> Body:
    """Kinds whose status no reconcile reads (a Deployment's changes with every pod) keep none."""
    return slim_child({k: v for k, v in body.items() if k != "status"})


def job(body: Body) -> Body:
    """Of a Job's status only whether it ended, and how (assess/status.job_state): the counts the Job
    controller writes while its pod runs, the conditions on the way (SuccessCriteriaMet, FailureTarget) and
    every condition's times change nothing we report. At 200 models they woke ~4 passes a download Job."""
    conditions = (body.get("status") or {}).get("conditions") or ()
    return {**slim_child(body), "status": {"conditions": [
        {"type": c["type"], "status": "True"} for c in conditions
        if c.get("type") in JOB_ENDINGS and c.get("status") == "True"]}}


def written_in(body: Body) -> Body:
    """For a kind we write in several versions: which of them we wrote it in, and no more of managedFields
    (apply.py writes an object again when the version we write now is not among them)."""
    fields = (body.get("metadata") or {}).get("managedFields") or ()
    ours = sorted({str(f["apiVersion"]) for f in fields if f.get("manager") == FIELD_MANAGER and f.get("apiVersion")})
    kept = slim_child(body)
    return {**kept, "metadata": {**kept.get("metadata", {}),
                                 "managedFields": [{"manager": FIELD_MANAGER, "apiVersion": v} for v in ours]}}


_KEEP: dict[str, Callable[[Body], Body]] = {
    "Pod": pod, "Deployment": unread_status, "Service": unread_status, "NetworkPolicy": unread_status, "Job": job,
    **{kind.kind: written_in for kind in CHILDREN if kind.versions},
}


def keep(kind: str) -> Callable[[Body], Body]:
    """How an object of `kind` is cut before it is stored (watch events and apply responses alike)."""
    return _KEEP.get(kind, slim_child)


def unwritten(body: Body) -> Body:
    """A model but for what every write of its status changes (its status, its resourceVersion)."""
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k != "resourceVersion"}
    return {**{k: v for k, v in body.items() if k != "status"}, "metadata": meta}


def key_of(body: Body) -> Key:
    meta = body["metadata"]
    return meta.get("namespace", ""), meta["name"]


def owner_of(body: Body) -> Key | None:
    """The model a child belongs to, from its llm.nebari.dev/model label."""
    meta = body.get("metadata") or {}
    model = (meta.get("labels") or {}).get(MODEL_LABEL)
    return (meta.get("namespace", ""), model) if model else None


def claim_key(key: Key, kind: str = KIND) -> ClaimKey:
    return kind, *key


def _models(keys: Iterable[ClaimKey]) -> set[Key]:
    """The objects (LLMModels, PassthroughModels) behind claim keys: the work queue's keys."""
    return {(namespace, name) for _, namespace, name in keys}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Store:
    models: Kept = field(default_factory=Kept)
    children: dict[Key, dict[ChildKey, bytes]] = field(default_factory=lambda: defaultdict(dict))  # JSON, as kept
    crds: set[str] = field(default_factory=set)  # established CRDs by name, e.g. inferencepools.inference...
    served: dict[str, tuple[str, ...]] = field(default_factory=dict)  # established CRD -> the versions it serves
    # Models whose `<m>-api-keys` Secret exists, with its data keys (read by get: Secrets are not watched).
    api_keys: dict[Key, tuple[str, ...]] = field(default_factory=dict)
    synced: bool = False  # every LLMModel has been listed once and its claim decided (`sync`)
    claims: dict[ClaimKey, Claim] = field(default_factory=dict)
    claim_index: dict[Target, dict[ClaimKey, Claim]] = field(default_factory=lambda: defaultdict(dict))
    # PassthroughModels, by the same key: their children carry the same label, so a name both kinds use in a
    # namespace is one owner of children (only the older of the two is reconciled: operator/passthrough.py).
    passthroughs: dict[Key, Body] = field(default_factory=dict)
    written: set[Key] = field(default_factory=set)  # models whose children we applied (`put_child`, `wrote`)
    # Models the Serving Pack's operator ran (its finalizer is still on them): their children may be its, unseen
    # by our watches, and are looked up before they are applied (operator/apply.py, assess/adopt.py).
    adopting: set[Key] = field(default_factory=set)
    _recent: Recent = field(default_factory=lambda: Recent(RECENT))  # children read, decoded
    _statuses: dict[Key, int] = field(default_factory=dict)  # the status last written to each model, hashed

    def holds(self, key: Key, kind: str, name: str) -> bool:
        """Whether the model has this child, without reading it."""
        return (kind, name) in self.children.get(key, {})

    def owners(self) -> list[Key]:
        """Every LLMModel and PassthroughModel, once each."""
        return list(dict.fromkeys([*self.models, *self.passthroughs]))

    def owns(self, key: Key) -> bool:
        return key in self.models or key in self.passthroughs

    def put_model(self, body: Body, now: str | None = None) -> tuple[Key, set[Key]]:
        """Keep a model; returns its key and the other models whose ownership of an id this may change
        (none before `sync`: claims are decided then)."""
        key = key_of(body)
        self.models[key] = slim(body)
        if not self.synced:
            return key, set()
        previous = self.claims.get(claim_key(key))
        claim = model_claim(KIND, body, previous=previous, index=self.claim_index, now=now or _now(),
                            after_known=True)
        return key, self._set_claim(claim_key(key), previous, claim)

    def wrote_status(self, key: Key, status: Body) -> None:
        """The status just written to a model: its watch event, when it brings back only that, wakes no pass."""
        self._statuses[key] = hash(canonical_json(status))  # a hash: the status itself is the model's to keep

    def echoes(self, body: Body) -> bool:
        """Whether a model event is the echo of our own status write: its status is the one last written and
        nothing else of it changed (the spec, labels, annotations, finalizers, deletion). At 200 models each
        such event used to wake a pass that found nothing to do: ~9 a model, one for each status write."""
        key = key_of(body)
        written = self._statuses.get(key)
        if written is None or key not in self.models or hash(canonical_json(body.get("status"))) != written:
            return False
        return unwritten(self.models[key]) == unwritten(slim(body))

    def drop_model(self, body: Body) -> tuple[Key, set[Key]]:
        key = key_of(body)
        self.models.pop(key, None)
        self._statuses.pop(key, None)
        return key, self._set_claim(claim_key(key), self.claims.get(claim_key(key)), None)

    def put_passthrough(self, body: Body, now: str | None = None) -> tuple[Key, set[Key]]:
        """Keep a PassthroughModel (stamped with its kind: a list's items come without it); as `put_model`."""
        key = key_of(body)
        self.passthroughs[key] = {**slim(body), "kind": PASSTHROUGH_KIND}
        if not self.synced:
            return key, set()
        ckey = claim_key(key, PASSTHROUGH_KIND)
        previous = self.claims.get(ckey)
        claim = passthrough_claim(body, previous=previous, index=self.claim_index, now=now or _now(),
                                  after_known=True)
        return key, self._set_claim(ckey, previous, claim)

    def drop_passthrough(self, body: Body) -> tuple[Key, set[Key]]:
        key = key_of(body)
        self.passthroughs.pop(key, None)
        ckey = claim_key(key, PASSTHROUGH_KIND)
        return key, self._set_claim(ckey, self.claims.get(ckey), None)

    def sync(self, now: str | None = None) -> None:
        """Every LLMModel and PassthroughModel is here (the first complete lists): decide every claim and mark
        the Store synced. Claims whose start the bodies say are kept first; the others (edited while no operator
        watched) are then placed after them, each as if it were alone, so the outcome does not depend on the
        lists' order."""
        now = now or _now()
        bodies = [*((KIND, b) for b in self.models.values()),
                  *((PASSTHROUGH_KIND, b) for b in self.passthroughs.values())]
        for kind, body in bodies:
            if claim_settled(kind, body):
                claim = claim_of(kind, body, previous=None, index=self.claim_index, now=now, after_known=False)
                self._set_claim(claim_key(key_of(body), kind), None, claim)
        known = {target: dict(found) for target, found in self.claim_index.items()}
        for kind, body in bodies:
            if not claim_settled(kind, body):
                claim = claim_of(kind, body, previous=None, index=known, now=now, after_known=True)
                self._set_claim(claim_key(key_of(body), kind), None, claim)
        self.synced = True

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

    def model_claim(self, key: Key, kind: str = KIND) -> Claim | None:
        return self.claims.get(claim_key(key, kind))

    def put_child(self, kind: str, body: Body) -> Key | None:
        """Keep what the server answered to our write; its model is `written` (its watch event will not wake it)."""
        owner = self._put_child(kind, body)[0]
        if owner is not None:
            self.written.add(owner)
        return owner

    def wrote(self, key: Key) -> bool:
        """Whether the model's children were written since this was last asked (and forget that they were)."""
        if key not in self.written:
            return False
        self.written.discard(key)
        return True

    def take(self, kind: str, body: Body) -> Key | None:
        """Keep a child a watch delivered; its model when what is kept of it changed, else None. The echo of
        our own apply (its answer is already here) and status nobody reads wake no reconcile: at 200 models
        most events are those (bench/operator_scale.py)."""
        owner, changed = self._put_child(kind, body)
        return owner if changed else None

    def _put_child(self, kind: str, body: Body) -> tuple[Key | None, bool]:
        if (owner := owner_of(body)) is None:
            return None, False
        children, ref, kept = self.children[owner], (kind, body["metadata"]["name"]), canonical_json(keep(kind)(body))
        if children.get(ref) == kept:
            return owner, False  # the JSON kept stays (apply.Held knows it by identity), and its decoded copy
        children[ref] = kept
        return owner, True

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

    def kept(self, key: Key, kind: str, name: str) -> bytes | None:
        """The child as kept (JSON): the same object until what is kept of it changes (apply.Held)."""
        children = self.children.get(key)
        return children.get((kind, name)) if children else None

    def child(self, key: Key, kind: str, name: str) -> Body | None:
        children = self.children.get(key)
        kept = children.get((kind, name)) if children else None
        return self._recent.read((key, kind, name), kept) if kept is not None else None

    def of_kind(self, key: Key, kind: str) -> list[Body]:
        children = self.children.get(key)
        return [self._recent.read((key, *ref), kept) for ref, kept in children.items() if ref[0] == kind] \
            if children else []
