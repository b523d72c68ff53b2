"""The pack's meaning of resources.gpu.type and advanced.inferencePool.schedulerConfig, on a real API server:
what it keeps, what kubectl prints, where the pods land."""

from __future__ import annotations

import json
from typing import Any

import yaml
from lightkube import AsyncClient
from lightkube.resources.core_v1 import Pod

from llmpack.operator.kube import LLMModelResource
from llmpack_dev.cluster import LocalCluster
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_operator_lifecycle import READY_WITHIN, ready_replicas
from tests.cluster.waiting import eventually

# An EndpointPickerConfig as the pack's users write it: an object, not text.
PREFIX_AWARE = {"apiVersion": "inference.networking.x-k8s.io/v1alpha1", "kind": "EndpointPickerConfig",
                "plugins": [{"type": "prefix-cache-scorer"}, {"type": "max-score-picker"}],
                "schedulingProfiles": [{"name": "default", "plugins": [
                    {"pluginRef": "max-score-picker"}, {"pluginRef": "prefix-cache-scorer", "weight": 2}]}]}


def _apply(cluster: LocalCluster, name: str, namespace: str, spec: dict[str, Any], check: bool = True) -> Any:
    return cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(models.manifest(name, namespace, spec)),
                           check=check)


async def _node(client: AsyncClient, name: str, namespace: str) -> str | None:
    pods = [p async for p in client.list(Pod, namespace=namespace, labels={"app.kubernetes.io/instance": name,
                                                                         "app.kubernetes.io/name": "llmmodel"})]
    return pods[0].spec.nodeName if pods and pods[0].spec else None


async def test_a_scheduler_config_object_is_kept_as_sent_and_the_model_serves(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    # The field is schemaless, as the pack's: the server must keep the object whole, not prune it. (What the
    # picker's ConfigMap then holds is render's, unit-tested; the pool CRDs are not installed here, because
    # removing a CRD the operator watches ends the operator's process, which the next test would pay for.)
    _apply(cluster, "qwen", namespace, {"advanced": {"inferencePool": {"schedulerConfig": PREFIX_AWARE}}})
    stored = await client.get(LLMModelResource, "qwen", namespace=namespace)
    assert stored.spec["advanced"]["inferencePool"]["schedulerConfig"] == PREFIX_AWARE  # type: ignore[index]
    await eventually(lambda: ready_replicas(client, "qwen", namespace, 1), within=READY_WITHIN, what="Ready")
    as_text = yaml.safe_dump(PREFIX_AWARE)
    models.patch(cluster, "qwen", namespace, {"advanced": {"inferencePool": {"schedulerConfig": as_text}}})
    stored = await client.get(LLMModelResource, "qwen", namespace=namespace)
    assert stored.spec["advanced"]["inferencePool"]["schedulerConfig"] == as_text  # type: ignore[index]


def test_a_scheduler_config_that_is_no_endpoint_picker_config_is_refused_naming_the_field(
        cluster: LocalCluster, namespace: str, running_operator: OperatorProcess) -> None:
    result = _apply(cluster, "qwen", namespace, {"advanced": {"inferencePool": {"schedulerConfig": ["a", "b"]}}},
                    check=False)
    assert result.returncode != 0
    assert "spec.advanced.inferencePool.schedulerConfig: must be an EndpointPickerConfig" in result.stderr


async def test_a_gpu_product_places_the_model_on_that_products_node(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    _apply(cluster, "h100", namespace, {"resources": {"gpu": {"count": 1, "product": "NVIDIA-H100-80GB-HBM3"}}})
    await eventually(lambda: ready_replicas(client, "h100", namespace, 1), within=READY_WITHIN, what="Ready")
    assert await _node(client, "h100", namespace) == "gpu-node-1"


async def test_a_gpu_type_that_is_a_product_is_admitted_with_the_warning_kubectl_prints_and_still_serves(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    applied = _apply(cluster, "a100", namespace, {"resources": {"gpu": {"count": 1, "type": "NVIDIA-A100-SXM4-80GB"}}})
    assert "Warning: Validation failed for ValidatingAdmissionPolicy 'llmmodel-warnings'" in applied.stderr
    assert "spec.resources.gpu.type: 'NVIDIA-A100-SXM4-80GB' is not a GPU vendor" in applied.stderr
    assert "resources.gpu.product" in applied.stderr
    await eventually(lambda: ready_replicas(client, "a100", namespace, 1), within=READY_WITHIN, what="Ready")
    assert await _node(client, "a100", namespace) in {"gpu-node-1", "gpu-node-2"}
    stored = cluster.kubectl("get", "llmmodel", "a100", "-n", namespace, "-o", "jsonpath={.spec.resources.gpu}")
    assert json.loads(stored.stdout)["type"] == "NVIDIA-A100-SXM4-80GB"  # kept as written, never refused
