"""Acting on LLMModels as a user does (kubectl) and reading what they would see."""

from __future__ import annotations

import json
from typing import Any

import yaml
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError

from llmpack.operator.kube import LLMModelResource
from llmpack_dev.cluster import LocalCluster
from tests.unit.factories import merge

BASE_SPEC: dict[str, Any] = {"model": {"name": "Qwen/Qwen3-8B", "storage": {"size": "30Gi"}},
                             "resources": {"gpu": {"count": 1}}}


def manifest(name: str, namespace: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel",
            "metadata": {"name": name, "namespace": namespace}, "spec": merge(BASE_SPEC, spec or {})}


def apply(cluster: LocalCluster, name: str, namespace: str, spec: dict[str, Any] | None = None) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest(name, namespace, spec)))


def patch(cluster: LocalCluster, name: str, namespace: str, spec: dict[str, Any]) -> None:
    cluster.kubectl("patch", "llmmodel", name, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": spec}))


async def status(client: AsyncClient, name: str, namespace: str) -> dict[str, Any]:
    obj = await client.get(LLMModelResource, name, namespace=namespace)
    return dict(obj.status or {})


def condition(st: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in st.get("conditions", []) if c["type"] == type_), {})


async def phase(client: AsyncClient, name: str, namespace: str) -> str | None:
    try:
        return (await status(client, name, namespace)).get("phase")
    except ApiError:
        return None
