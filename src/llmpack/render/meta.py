"""Labels, owner references and identity shared by every object an LLMModel (or a PassthroughModel) owns."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any, Protocol

from llmpack.api import API_VERSION, LLMModel, ObjectMeta
from llmpack.wellknown import MANAGED_BY, MANAGED_BY_LABEL, MODEL_LABEL


class Owner(Protocol):
    """What owns objects: an LLMModel or a PassthroughModel (both of our group and version)."""

    @property
    def kind(self) -> str: ...
    @property
    def metadata(self) -> ObjectMeta: ...
    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str | None: ...


def selector_labels(model: Owner) -> dict[str, str]:
    """The labels that pick a model's vLLM pods; immutable on a Deployment, so never extend them. A
    PassthroughModel's objects say `passthroughmodel` (the Serving Pack's labels)."""
    return {"app.kubernetes.io/instance": model.name, "app.kubernetes.io/name": model.kind.lower()}


def labels(model: Owner) -> dict[str, str]:
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        **selector_labels(model),
        MODEL_LABEL: model.name,
    }


def owner_reference(model: Owner) -> dict[str, Any]:
    assert model.metadata.uid is not None
    return {
        "apiVersion": API_VERSION,
        "kind": model.kind,
        "name": model.name,
        "uid": model.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(model: Owner, name: str, *, owned: bool = True) -> dict[str, Any]:
    """Metadata of a child; `owned=False` leaves it out of garbage collection (a retained cache)."""
    meta: dict[str, Any] = {"name": name, "labels": labels(model)}
    if model.namespace:
        meta["namespace"] = model.namespace
    if owned and model.metadata.uid is not None:  # manifests rendered offline have no uid yet
        meta["ownerReferences"] = [owner_reference(model)]
    return meta


def identity(model: LLMModel) -> str:
    """A digest of what decides which weights a pod holds; when it changes the pods must roll."""
    m = model.spec.model
    return _digest("oci" if m.is_oci else "huggingface", m.name, m.revision, m.image if m.is_oci else None,
                   m.storage.type.value)


@functools.lru_cache(maxsize=4096)  # asked several times by every reconcile pass (job names, current pods)
def _digest(source: str, name: str, revision: str | None, image: str | None, storage: str) -> str:
    facts = {"source": source, "name": name, "revision": revision, "image": image, "storage": storage}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
