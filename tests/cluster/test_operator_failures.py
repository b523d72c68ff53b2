"""Failures end in a correct state with a message that says what to do — never a crash loop."""

from __future__ import annotations

from lightkube import AsyncClient, codecs
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import PersistentVolumeClaim

from llmpack_dev.cluster import LocalCluster
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_operator_lifecycle import READY_WITHIN, phases_until, ready_replicas
from tests.cluster.waiting import eventually


async def _ready_reason(client: AsyncClient, name: str, namespace: str, reason: str) -> dict[str, object] | None:
    st = await models.status(client, name, namespace)
    ready = models.condition(st, "Ready")
    return ready if st.get("phase") == "Error" and ready.get("reason") == reason else None


async def test_a_missing_token_secret_holds_the_gpus_and_says_which_secret(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    models.apply(cluster, "gated", namespace, {"model": {"authSecretName": "hf-token"}})
    ready = await eventually(lambda: _ready_reason(client, "gated", namespace, "SecretMissing"), what="SecretMissing")
    assert f"Secret hf-token not found in namespace {namespace}" in str(ready["message"])
    assert "kubectl create secret generic hf-token" in str(ready["message"])
    deployment = await client.get(Deployment, "gated", namespace=namespace)
    assert deployment.spec is not None
    assert deployment.spec.replicas == 0  # no pod sits on a GPU waiting for a token

    await client.create(codecs.from_dict({"apiVersion": "v1", "kind": "Secret",
                                          "metadata": {"name": "hf-token", "namespace": namespace},
                                          "stringData": {"WRONG_KEY": "x"}}))
    await eventually(lambda: _wrong_key(client, namespace), what="the missing key to be named")
    cluster.kubectl("patch", "secret", "hf-token", "-n", namespace, "--type=merge",
                    "-p", '{"stringData":{"HF_TOKEN":"hf_x"}}')
    # Nothing watches Secrets (the operator may not list them): the back-off retry notices.
    await eventually(lambda: ready_replicas(client, "gated", namespace, 1), within=60, what="Ready once the key exists")


async def _wrong_key(client: AsyncClient, namespace: str) -> bool:
    ready = await _ready_reason(client, "gated", namespace, "SecretMissing")
    return ready is not None and "has no key HF_TOKEN" in str(ready["message"])


async def test_a_pvc_is_never_shrunk_but_may_grow(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    models.apply(cluster, "qwen", namespace)
    await phases_until(client, "qwen", namespace, "Ready")
    refused = cluster.kubectl("patch", "llmmodel", "qwen", "-n", namespace, "--type=merge", "-p",
                              '{"spec":{"model":{"storage":{"size":"20Gi"}}}}', check=False)
    assert refused.returncode != 0
    assert "spec.model.storage.size: Invalid value: cannot shrink from 30Gi to 20Gi" in refused.stderr  # the CRD's CEL
    pvc = await client.get(PersistentVolumeClaim, "qwen-model-storage", namespace=namespace)
    assert pvc.spec.resources.requests["storage"] == "30Gi"  # type: ignore[union-attr,index]

    models.patch(cluster, "qwen", namespace, {"model": {"storage": {"size": "40Gi"}}})
    await eventually(lambda: ready_replicas(client, "qwen", namespace, 1), within=READY_WITHIN, what="Ready again")

    async def grown() -> bool:
        pvc = await client.get(PersistentVolumeClaim, "qwen-model-storage", namespace=namespace)
        return (pvc.status.capacity or {}).get("storage") == "40Gi"  # type: ignore[union-attr]

    await eventually(grown, what="the PVC to grow to 40Gi")


async def test_a_retained_cache_outlives_its_model_and_is_reused(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    spec = {"model": {"storage": {"retainOnDelete": True}}}
    models.apply(cluster, "qwen", namespace, spec)
    await phases_until(client, "qwen", namespace, "Ready")
    first = await client.get(PersistentVolumeClaim, "qwen-model-storage", namespace=namespace)
    cluster.kubectl("delete", "llmmodel", "qwen", "-n", namespace, "--wait=true")

    async def only_pvc_left() -> bool:
        deployments = [d async for d in client.list(Deployment, namespace=namespace)]
        return not deployments

    await eventually(only_pvc_left, within=60, what="the Deployment to go")
    kept = await client.get(PersistentVolumeClaim, "qwen-model-storage", namespace=namespace)
    assert kept.metadata.uid == first.metadata.uid  # type: ignore[union-attr]

    models.apply(cluster, "qwen", namespace, spec)
    await phases_until(client, "qwen", namespace, "Ready")
    again = await client.get(PersistentVolumeClaim, "qwen-model-storage", namespace=namespace)
    assert again.metadata.uid == first.metadata.uid  # type: ignore[union-attr]


async def test_the_operator_rides_out_an_api_server_restart(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    models.apply(cluster, "qwen", namespace)
    await phases_until(client, "qwen", namespace, "Ready")
    cluster.restart("kube-apiserver")
    models.patch(cluster, "qwen", namespace, {"serving": {"replicas": 2}})
    await eventually(lambda: ready_replicas(client, "qwen", namespace, 2), within=90, what="2 replicas after restart")
    assert running_operator.alive()
