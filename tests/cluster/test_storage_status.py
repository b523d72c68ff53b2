"""Status tells the truth about storage and the download's pod, on the real control plane: while a PVC does not
bind, StorageReady names why (a StorageClass that does not exist, a provisioner's failure, a class that waits
for a first pod), ModelReady says it waits for storage, the phase is Pending, and no condition claims a
download; a download pod that cannot be scheduled says why in the scheduler's words."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from lightkube import AsyncClient, codecs
from lightkube.resources.core_v1 import PersistentVolume, PersistentVolumeClaim, Pod

from llmpack_dev.cluster import LocalCluster
from llmpack_dev.provisioner import PROVISIONER
from tests.cluster import models
from tests.cluster.controllers import post_warning
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_operator_lifecycle import READY_WITHIN, ready_replicas
from tests.cluster.waiting import eventually

NOTHING_YET = 60.0  # the first cause shows after a few seconds' grace, then at least every 15 s


async def condition(client: AsyncClient, name: str, namespace: str, type_: str, reason: str) -> dict[str, Any] | None:
    found = models.condition(await models.status(client, name, namespace), type_)
    return found if found.get("reason") == reason else None


async def claims_of_a_download(client: AsyncClient, name: str, namespace: str) -> list[str]:
    st = await models.status(client, name, namespace)
    return [f"{c['type']}={c['reason']}: {c['message']}" for c in st.get("conditions", [])
            if c["reason"] == "Downloading" or "fetching" in c["message"] or "being fetched" in c["message"]]


@pytest.fixture
def storage_classes(cluster: LocalCluster) -> Iterator[list[str]]:
    """StorageClasses (cluster-scoped) a test creates, deleted after it."""
    created: list[str] = []
    yield created
    for name in created:
        cluster.kubectl("delete", "storageclass", name, "--ignore-not-found")


async def create_class(client: AsyncClient, created: list[str], name: str, **spec: Any) -> None:
    await client.create(codecs.from_dict({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                          "metadata": {"name": name}, **spec}))
    created.append(name)


async def test_a_missing_storage_class_is_named_nothing_claims_a_download_and_creating_it_lets_the_model_go_on(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess,
        storage_classes: list[str]) -> None:
    fast = f"fast-{namespace}"
    models.apply(cluster, "qwen", namespace, {"model": {"storage": {"storageClassName": fast}}})
    missing = await eventually(lambda: condition(client, "qwen", namespace, "StorageReady", "StorageClassNotFound"),
                               within=NOTHING_YET, what="StorageReady=StorageClassNotFound")
    assert missing["status"] == "False"
    assert f"StorageClass {fast} does not exist" in missing["message"]
    st = await models.status(client, "qwen", namespace)
    assert st["phase"] == "Pending"
    assert fast in models.condition(st, "Ready")["message"]
    assert models.condition(st, "ModelReady")["reason"] == "WaitingForStorage"
    assert await claims_of_a_download(client, "qwen", namespace) == []

    # The class appears (with the cluster's provisioner): the PVC binds and the model goes on by itself.
    await create_class(client, storage_classes, fast, provisioner=PROVISIONER, volumeBindingMode="Immediate")
    await eventually(lambda: ready_replicas(client, "qwen", namespace, 1), within=90,
                     what="Ready once the class exists")


async def test_a_provisioning_failure_is_quoted_from_the_pvcs_warning_event(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess,
        storage_classes: list[str]) -> None:
    broken = f"broken-{namespace}"
    provisioner = f"csi.example.com-{namespace}"
    await create_class(client, storage_classes, broken, provisioner=provisioner)
    models.apply(cluster, "qwen", namespace, {"model": {"storage": {"storageClassName": broken}}})
    # Until the provisioner says anything, the condition names who the PVC waits for (once the volume
    # controller or our read of the class says who: a plain "waits for a volume" comes first).
    expected = f"waits for a volume from {provisioner} (StorageClass {broken})"

    async def names_the_provisioner() -> dict[str, Any] | None:
        found = await condition(client, "qwen", namespace, "StorageReady", "Pending")
        return found if found is not None and expected in found["message"] else None

    await eventually(names_the_provisioner, within=NOTHING_YET, what=f"StorageReady=Pending: {expected}")

    pvc = await client.get(PersistentVolumeClaim, "qwen-model-storage", namespace=namespace)
    words = f'failed to provision volume with StorageClass "{broken}": rpc error: code = ResourceExhausted desc = ' \
            "volume quota exceeded"
    await post_warning(client, pvc, "ProvisioningFailed", words, provisioner)
    failed = await eventually(lambda: condition(client, "qwen", namespace, "StorageReady", "ProvisioningFailed"),
                              within=30, what="StorageReady=ProvisioningFailed from the PVC's event")
    assert failed["message"] == f"PVC qwen-model-storage is not bound; {provisioner} reports: {words}"
    assert await models.phase(client, "qwen", namespace) == "Pending"
    assert models.condition(await models.status(client, "qwen", namespace), "ModelReady")["reason"] == \
        "WaitingForStorage"
    assert await claims_of_a_download(client, "qwen", namespace) == []


async def test_a_class_that_binds_on_first_use_waits_for_the_download_pod_and_says_why_it_cannot_be_scheduled(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess,
        storage_classes: list[str]) -> None:
    first_use, nowhere = f"first-use-{namespace}", f"nowhere-{namespace}"
    await create_class(client, storage_classes, first_use, provisioner=PROVISIONER,
                       volumeBindingMode="WaitForFirstConsumer")
    # Volumes only in a zone no node is in: the download pod, the PVC's first consumer, fits nowhere.
    await create_class(client, storage_classes, nowhere, provisioner=PROVISIONER,
                       volumeBindingMode="WaitForFirstConsumer", allowedTopologies=[{"matchLabelExpressions": [
                           {"key": "topology.kubernetes.io/zone", "values": ["nowhere-1a"]}]}])
    models.apply(cluster, "qwen", namespace, {"model": {"storage": {"storageClassName": first_use}}})
    models.apply(cluster, "llama", namespace, {"model": {"name": "meta-llama/Llama-3.1-8B",
                                                         "storage": {"storageClassName": nowhere}}})
    # The usual case: the download pod is scheduled, the PVC binds where it runs, the model goes on.
    await eventually(lambda: ready_replicas(client, "qwen", namespace, 1), within=READY_WITHIN * 2,
                     what="Ready with a WaitForFirstConsumer class")

    await eventually(lambda: condition(client, "llama", namespace, "StorageReady", "WaitingForFirstConsumer"),
                     within=NOTHING_YET, what="StorageReady=WaitingForFirstConsumer")

    why = await eventually(lambda: schedulers_words(client, namespace, "llama"),
                           what="the scheduler's reason on the download pod")
    stuck = await eventually(lambda: _with(condition(client, "llama", namespace, "StorageReady",
                                                     "WaitingForFirstConsumer"), why), within=30,
                             what="the scheduler's words in StorageReady")
    assert f"StorageClass {nowhere} has volumeBindingMode WaitForFirstConsumer" in stuck["message"]
    assert f"the download Job's pod cannot be scheduled: {why}" in stuck["message"]
    st = await models.status(client, "llama", namespace)
    assert st["phase"] == "Pending"
    assert models.condition(st, "ModelReady")["reason"] == "WaitingForStorage"
    assert await claims_of_a_download(client, "llama", namespace) == []


async def schedulers_words(client: AsyncClient, namespace: str, model: str) -> str | None:
    """Why the scheduler cannot place the model's download pod, as it wrote it on the pod."""
    async for pod in client.list(Pod, namespace=namespace, labels={"app.kubernetes.io/name": "model-download",
                                                                   "app.kubernetes.io/instance": model}):
        for c in pod.status.conditions or []:  # type: ignore[union-attr]
            if c.type == "PodScheduled" and c.reason == "Unschedulable":
                return c.message
    return None


async def _with(found: Any, words: str) -> dict[str, Any] | None:
    found = await found
    return found if found and words in found["message"] else None


async def test_a_download_pod_that_cannot_be_scheduled_is_pending_in_the_schedulers_words(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    # A local volume on a node that is gone, waiting for this model's PVC: the PVC binds, its pod fits nowhere.
    volume = f"local-{namespace}"
    await client.create(codecs.from_dict({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": volume},
        "spec": {"capacity": {"storage": "30Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                 "persistentVolumeReclaimPolicy": "Retain", "local": {"path": "/mnt/disks/ssd1"},
                 "claimRef": {"namespace": namespace, "name": "qwen-model-storage"},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                     {"key": "kubernetes.io/hostname", "operator": "In", "values": ["gone-node"]}]}]}}}}))
    try:
        models.apply(cluster, "qwen", namespace)
        unschedulable = await eventually(
            lambda: condition(client, "qwen", namespace, "ModelReady", "DownloadUnschedulable"), within=NOTHING_YET,
            what="ModelReady=DownloadUnschedulable")
        why = await eventually(lambda: schedulers_words(client, namespace, "qwen"), what="the scheduler's reason")
        assert "node affinity" in why
        assert unschedulable["message"] == f"the download Job's pod cannot be scheduled: {why}"
        st = await models.status(client, "qwen", namespace)
        assert st["phase"] == "Pending"
        assert models.condition(st, "StorageReady")["reason"] == "Bound"
        ready = models.condition(st, "Ready")
        assert (ready["reason"], ready["message"]) == ("DownloadUnschedulable", unschedulable["message"])
        assert await claims_of_a_download(client, "qwen", namespace) == []
    finally:
        cluster.kubectl("delete", "llmmodel", "qwen", "-n", namespace, "--wait=true")
        await client.delete(PersistentVolume, volume)
