"""Routing by load: once a replica is Ready, an InferencePool and its endpoint picker, checked by the real
Gateway API Inference Extension CRDs; without those CRDs, a condition that says so and a model that serves."""

from __future__ import annotations

from lightkube import AsyncClient
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Service

from llmpack.operator.kube import InferencePoolResource
from llmpack.testing.cluster import LocalCluster
from llmpack.testing.crds import inference_extension_crds
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_operator_lifecycle import READY_WITHIN, ready_replicas
from tests.cluster.waiting import eventually


async def pool_condition(client: AsyncClient, namespace: str, reason: str) -> dict[str, object] | None:
    condition = models.condition(await models.status(client, "qwen", namespace), "InferencePoolReady")
    return condition if condition.get("reason") == reason else None


async def test_a_ready_model_gets_its_pool_and_picker_once_the_crds_exist(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    models.apply(cluster, "qwen", namespace)
    await eventually(lambda: ready_replicas(client, "qwen", namespace, 1), within=READY_WITHIN, what="Ready")
    missing = await eventually(lambda: pool_condition(client, namespace, "CRDMissing"), what="CRDMissing")
    assert "inferencepools.inference.networking.k8s.io" in str(missing["message"])
    assert missing["status"] == "False"

    crds = inference_extension_crds()
    try:
        for crd in crds:
            cluster.kubectl("apply", "--server-side", "-f", str(crd))
        cluster.kubectl("wait", "--for=condition=Established", "crd/inferencepools.inference.networking.k8s.io")
        applied = await eventually(lambda: pool_condition(client, namespace, "Applied"), within=30,
                                   what="the pool to be applied once the CRD appears (no change to the model)")
        assert applied["status"] == "True"
        pool = await client.get(InferencePoolResource, "qwen", namespace=namespace)
        assert pool.spec["endpointPickerRef"]["name"] == "qwen-epp"  # type: ignore[index]
        assert pool.metadata.ownerReferences[0].kind == "LLMModel"  # type: ignore[union-attr,index]
        epp = await client.get(Deployment, "qwen-epp", namespace=namespace)
        assert epp.spec.template.spec.containers[0].args[:2] == ["--pool-name", "qwen"]  # type: ignore[union-attr,index]
        await client.get(Service, "qwen-epp", namespace=namespace)
        await client.get(ConfigMap, "qwen-epp-config", namespace=namespace)
        assert await ready_replicas(client, "qwen", namespace, 1)

        cluster.kubectl("delete", "llmmodel", "qwen", "-n", namespace, "--wait=true")

        async def pool_gone() -> bool:
            return not [p async for p in client.list(InferencePoolResource, namespace=namespace)]

        await eventually(pool_gone, within=60, what="the pool to go with the model")
    finally:
        for crd in crds:
            cluster.kubectl("delete", "-f", str(crd), "--ignore-not-found")
