"""The models the key manager knows, kept from watch events, and who may use each.

An entry is what `GET /api/models` shows: the Serving Pack's fields (`Name`, `Namespace`, `ModelName`,
`Public`, `Groups`, `Passthrough`, `Provider`, PascalCase as its Go service wrote them, so its web page
reads ours) and ours (`Kind`, `Phase`, `Endpoints`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from llmpack.keymanager.kinds import ModelKind, access_of

ModelRef = tuple[str, str]  # (namespace, name): the key objects of a name serve every kind of that name


@dataclass(frozen=True)
class ModelEntry:
    kind: ModelKind
    namespace: str
    name: str
    uid: str
    served_name: str
    public: bool
    groups: tuple[str, ...]
    phase: str
    endpoints: dict[str, str]
    provider: str = ""

    @property
    def ref(self) -> ModelRef:
        return self.namespace, self.name

    def wire(self) -> dict[str, Any]:
        return {"Name": self.name, "Namespace": self.namespace, "ModelName": self.served_name,
                "Public": self.public, "Groups": list(self.groups), "Passthrough": self.kind.passthrough,
                "Provider": self.provider, "Kind": self.kind.kind, "Phase": self.phase,
                "Endpoints": dict(self.endpoints)}


def entry(kind: ModelKind, body: dict[str, Any]) -> ModelEntry:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    public, groups = access_of(body)
    endpoints = {k: str(v) for k, v in (status.get("endpoints") or {}).items() if v}
    return ModelEntry(kind=kind, namespace=meta.get("namespace", ""), name=meta["name"], uid=meta.get("uid", ""),
                      served_name=kind.served_name(body), public=public, groups=groups,
                      phase=str(status.get("phase") or "Pending"), endpoints=endpoints, provider=kind.provider(body))


def may_use(model: ModelEntry, groups: Iterable[str]) -> bool:
    return model.public or not set(model.groups).isdisjoint(groups)


@dataclass
class Catalog:
    by_ref: dict[ModelRef, dict[str, ModelEntry]] = field(default_factory=dict)  # kind name -> entry
    version: int = 0  # bumped on every change: answers computed from the catalog may be cached per version

    def put(self, model: ModelEntry) -> None:
        kinds = self.by_ref.setdefault(model.ref, {})
        if kinds.get(model.kind.kind) != model:
            kinds[model.kind.kind] = model
            self.version += 1

    def drop(self, kind: ModelKind, namespace: str, name: str) -> None:
        kinds = self.by_ref.get((namespace, name), {})
        if kinds.pop(kind.kind, None) is not None:
            self.version += 1
            if not kinds:
                del self.by_ref[(namespace, name)]

    def reset(self, kind: ModelKind, models: Iterable[ModelEntry], namespace: str | None = None) -> None:
        """After a (re)list: exactly these models of this kind (in this namespace, or everywhere)."""
        for ref in [r for r in self.by_ref if namespace is None or r[0] == namespace]:
            self.by_ref[ref].pop(kind.kind, None)
            if not self.by_ref[ref]:
                del self.by_ref[ref]
        for model in models:
            self.by_ref.setdefault(model.ref, {})[model.kind.kind] = model
        self.version += 1

    def all(self) -> list[ModelEntry]:
        return sorted((m for kinds in self.by_ref.values() for m in kinds.values()),
                      key=lambda m: (m.namespace, m.name, m.kind.kind))

    def visible(self, groups: Iterable[str]) -> list[ModelEntry]:
        mine = set(groups)
        return [m for m in self.all() if may_use(m, mine)]

    def named(self, name: str, namespace: str | None = None) -> list[ModelEntry]:
        if namespace is not None:
            return sorted(self.by_ref.get((namespace, name), {}).values(), key=lambda m: m.kind.kind)
        return [m for m in self.all() if m.name == name]

    def exists(self, ref: ModelRef) -> bool:
        return ref in self.by_ref

    def of(self, ref: ModelRef) -> ModelEntry | None:
        return next(iter(self.named(ref[1], ref[0])), None)
