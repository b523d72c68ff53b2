"""One example per rule of the admission table: a model (and, for an update, the model it changes) that breaks that
rule and no other. The unit tests hold the Python side to it, the cluster tests the API server's answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.unit.factories import merge


@dataclass(frozen=True)
class Example:
    spec: dict[str, Any] = field(default_factory=dict)  # merged into the base spec below
    before: dict[str, Any] | None = None  # an update of a model with this spec (merged likewise)
    status: dict[str, Any] | None = None  # ... whose status says this
    name: str = "example"


BASE_SPEC: dict[str, Any] = {"model": {"name": "Qwen/Qwen3-8B", "storage": {"size": "30Gi"}},
                             "resources": {"gpu": {"count": 1}}}
EMPTY_DIR = {"model": {"storage": {"type": "emptyDir", "size": "4Gi"}}}

EXAMPLES: dict[str, Example] = {
    "name-fits-derived-names": Example(name="m" * 60),
    "name-is-a-service-name": Example(name="1st-model"),
    "oci-needs-an-image": Example({"model": {"source": "oci", "storage": {"type": "emptyDir"}}}),
    "pvc-needs-a-size": Example({"model": {"preload": False, "storage": {"size": None}}}),
    "repo-id-is-valid": Example({"model": {"name": "org/bad--name"}}),
    "parallelism-fits-gpus": Example({"resources": {"gpu": {"count": 2}}, "serving": {"tensorParallelism": 4}}),
    "size-is-positive": Example({"model": {"storage": {"size": "0"}}}),
    "quantity-in-range": Example({"model": {"storage": {"size": "8Ei"}}}),
    "pvc-does-not-shrink": Example({"model": {"storage": {"size": "30Gi"}}},
                                   before={"model": {"storage": {"size": "80Gi"}}}),
    "storage-type-is-fixed": Example({"model": {"preload": False, **EMPTY_DIR["model"]}}, before={}),
    "storage-class-is-fixed": Example({"model": {"storage": {"storageClassName": "efs"}}}, before={}),
    "scheduler-config-is-a-picker-config": Example({"advanced": {"inferencePool": {"schedulerConfig": "just words"}}}),
    "emptydir-preload-downloads-on-every-start": Example(EMPTY_DIR),
    "emptydir-without-size-limit": Example(
        {"model": {"preload": False, "storage": {"type": "emptyDir", "size": None}}}),
    "oci-image-by-tag": Example({"model": {"source": "oci", "image": "r.example/m:v1", **EMPTY_DIR["model"]}}),
    "replicas-share-one-node": Example({"serving": {"replicas": 3}}),
    "model-larger-than-pvc": Example({"serving": {"vllmArgs": ["--max-model-len=8192"]}}, before={},
                                     status={"modelSize": "42Gi"}),
    "gpu-type-names-no-vendor": Example({"resources": {"gpu": {"type": "NVIDIA-A100-SXM4-80GB"}}}),
}


def spec_of(extra: dict[str, Any]) -> dict[str, Any]:
    return merge(BASE_SPEC, extra)


def manifest(name: str, namespace: str | None, extra: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel", "metadata": meta, "spec": spec_of(extra)}
