"""Labels, owner references and identity shared by every object an LLMModel owns."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from llmpack.api import API_VERSION, KIND, LLMModel
from llmpack.wellknown import MANAGED_BY, MANAGED_BY_LABEL, MODEL_LABEL


def selector_labels(model: LLMModel) -> dict[str, str]:
    """The labels that pick a model's vLLM pods; immutable on a Deployment, so never extend them."""
    return {"app.kubernetes.io/instance": model.name, "app.kubernetes.io/name": "llmmodel"}


def labels(model: LLMModel) -> dict[str, str]:
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        **selector_labels(model),
        MODEL_LABEL: model.name,
    }


def owner_reference(model: LLMModel) -> dict[str, Any]:
    assert model.metadata.uid is not None
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": model.name,
        "uid": model.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(model: LLMModel, name: str, *, owned: bool = True) -> dict[str, Any]:
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
    facts = {
        "source": "oci" if m.is_oci else "huggingface",
        "name": m.name,
        "revision": m.revision,
        "image": m.image if m.is_oci else None,
        "storage": m.storage.type.value,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
