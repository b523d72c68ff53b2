"""A user applies an LLMModel; everything it needs appears, follows the spec, tells the truth, and goes
away with it — also when the operator is killed in between."""

from __future__ import annotations

import asyncio
import time

from lightkube import AsyncClient
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Event, PersistentVolumeClaim, Pod, Service, ServiceAccount

from llmpack.wellknown import IDENTITY_ANNOTATION
from llmpack_dev.cluster import LocalCluster
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.waiting import eventually

READY_WITHIN = 40.0


async def phases_until(client: AsyncClient, name: str, namespace: str, target: str, *,
                       within: float = READY_WITHIN) -> list[str]:
    """Every distinct phase seen, in order, until `target` (polled as fast as a person would refresh)."""
    seen: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        current = await models.phase(client, name, namespace)
        if current and (not seen or seen[-1] != current):
            seen.append(current)
        if current == target:
            return seen
        await asyncio.sleep(0.1)
    raise AssertionError(f"{namespace}/{name} never reached {target}; phases seen: {seen}")


async def ready_replicas(client: AsyncClient, name: str, namespace: str, want: int) -> bool:
    st = await models.status(client, name, namespace)
    return st.get("phase") == "Ready" and st.get("replicas") == {"ready": want, "desired": want}


async def children(client: AsyncClient, namespace: str) -> dict[str, list[str]]:
    out = {}
    for kind in (ServiceAccount, PersistentVolumeClaim, Service, Deployment, Pod):
        names = [o.metadata.name async for o in client.list(kind, namespace=namespace,  # type: ignore[attr-defined]
                                                             labels={"app.kubernetes.io/managed-by": "llmpack"})]
        if names:
            out[kind.__name__] = names
    return out


async def test_apply_scale_roll_and_delete(cluster: LocalCluster, client: AsyncClient, namespace: str,
                                           running_operator: OperatorProcess) -> None:
    models.apply(cluster, "qwen", namespace)
    seen = await phases_until(client, "qwen", namespace, "Ready")
    assert seen[-3:] == ["Downloading", "Starting", "Ready"], seen

    st = await models.status(client, "qwen", namespace)
    assert st["replicas"] == {"ready": 1, "desired": 1}
    for type_ in ("Ready", "StorageReady", "ModelReady", "Available"):
        assert models.condition(st, type_)["status"] == "True", st["conditions"]
    assert st["observedGeneration"] == 1
    pvc = await client.get(PersistentVolumeClaim, "qwen-model-storage", namespace=namespace)
    assert pvc.status is not None
    assert pvc.status.phase == "Bound"
    deployment = await client.get(Deployment, "qwen", namespace=namespace)
    assert deployment.metadata is not None
    assert deployment.metadata.ownerReferences is not None
    assert deployment.metadata.ownerReferences[0].kind == "LLMModel"
    async def every_transition_has_its_event() -> bool:  # the Event follows the status write it reports
        reasons = {e.reason async for e in client.list(Event, namespace=namespace)
                   if e.involvedObject.name == "qwen" and e.involvedObject.kind == "LLMModel"}
        return {"Downloading", "Starting", "Ready"} <= reasons

    await eventually(every_transition_has_its_event, within=10, what="an Event for each phase transition")

    models.patch(cluster, "qwen", namespace, {"serving": {"replicas": 3}})
    await eventually(lambda: ready_replicas(client, "qwen", namespace, 3), within=READY_WITHIN, what="3 replicas")
    models.patch(cluster, "qwen", namespace, {"serving": {"replicas": 0}})
    await eventually(lambda: ready_replicas(client, "qwen", namespace, 0), within=READY_WITHIN, what="0 replicas")
    assert models.condition(await models.status(client, "qwen", namespace), "Available")["reason"] == "ScaledToZero"

    models.patch(cluster, "qwen", namespace, {"serving": {"replicas": 1}})
    await eventually(lambda: ready_replicas(client, "qwen", namespace, 1), within=READY_WITHIN, what="1 replica")
    before = (await client.get(Deployment, "qwen", namespace=namespace)).spec.template.metadata.annotations  # type: ignore[union-attr]
    models.patch(cluster, "qwen", namespace, {"model": {"revision": "v2"}})
    seen = await phases_until(client, "qwen", namespace, "Downloading")
    seen += await phases_until(client, "qwen", namespace, "Ready")
    deployment = await client.get(Deployment, "qwen", namespace=namespace)
    template = deployment.spec.template  # type: ignore[union-attr]
    assert template.metadata.annotations[IDENTITY_ANNOTATION] != before[IDENTITY_ANNOTATION]  # type: ignore[union-attr,index]
    assert template.spec.initContainers[0].args[-2:] == ["--revision", "v2"]  # type: ignore[union-attr,index]
    pods = [p async for p in client.list(Pod, namespace=namespace, labels={"app.kubernetes.io/name": "llmmodel"})]
    assert [p.metadata.annotations[IDENTITY_ANNOTATION] for p in pods  # type: ignore[union-attr,index]
            if not p.metadata.deletionTimestamp] == [template.metadata.annotations[IDENTITY_ANNOTATION]]  # type: ignore[union-attr]

    cluster.kubectl("delete", "llmmodel", "qwen", "-n", namespace, "--wait=true", "--timeout=30s")
    await eventually(lambda: _none_left(client, namespace), within=60, what="every child to be garbage collected")


async def _none_left(client: AsyncClient, namespace: str) -> bool:
    return not await children(client, namespace)


async def test_the_same_lifecycle_with_the_operator_killed_in_between(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    models.apply(cluster, "qwen", namespace)
    await asyncio.sleep(0.3)
    running_operator.kill()  # mid-reconcile: some children may exist, some not
    running_operator.start()
    await phases_until(client, "qwen", namespace, "Ready")

    # Changed, then the operator dies before it can act (with failurePolicy Fail, nothing can be admitted
    # while it is down, so "changed while it is dead" is this).
    models.patch(cluster, "qwen", namespace, {"serving": {"replicas": 2}})
    running_operator.kill()
    running_operator.start()
    await eventually(lambda: ready_replicas(client, "qwen", namespace, 2), within=READY_WITHIN, what="2 replicas")

    running_operator.kill()
    cluster.kubectl("delete", "llmmodel", "qwen", "-n", namespace, "--wait=true", "--timeout=30s")
    # No finalizer: owner references alone let the garbage collector clean up, operator or not.
    await eventually(lambda: _none_left(client, namespace), within=60, what="children gone without the operator")
    running_operator.start()


async def test_models_in_two_namespaces_reconcile_independently(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    other = f"{namespace}-b"
    cluster.kubectl("create", "namespace", other)
    try:
        models.apply(cluster, "qwen", namespace)
        models.apply(cluster, "qwen", other, {"serving": {"replicas": 2}})
        await eventually(lambda: ready_replicas(client, "qwen", namespace, 1), within=READY_WITHIN, what="ns a")
        await eventually(lambda: ready_replicas(client, "qwen", other, 2), within=READY_WITHIN, what="ns b")
        cluster.kubectl("delete", "llmmodel", "qwen", "-n", other, "--wait=true")
        await eventually(lambda: _none_left(client, other), within=60, what="ns b children gone")
        assert await ready_replicas(client, "qwen", namespace, 1)
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false")


async def test_children_deleted_or_edited_by_hand_are_restored(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    models.apply(cluster, "qwen", namespace)
    await phases_until(client, "qwen", namespace, "Ready")
    await client.delete(Service, "qwen", namespace=namespace)
    cluster.kubectl("patch", "deployment", "qwen", "-n", namespace, "--type=merge", "-p",
                    '{"spec":{"template":{"spec":{"containers":[{"name":"vllm","image":"evil/vllm:1"}]}}}}')

    async def restored() -> bool:
        await client.get(Service, "qwen", namespace=namespace)
        d = await client.get(Deployment, "qwen", namespace=namespace)
        return d.spec.template.spec.containers[0].image != "evil/vllm:1"  # type: ignore[union-attr]

    await eventually(restored, within=5, what="the Service and the Deployment's image to be restored")


async def test_gpus_start_only_once_the_download_job_has_the_weights(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    from lightkube.resources.batch_v1 import Job

    models.apply(cluster, "qwen", namespace, {"serving": {"replicas": 2}})

    def downloads(job: Job) -> bool:
        return job.spec.template.metadata.labels["app.kubernetes.io/name"] == "model-download"  # type: ignore[index,union-attr]

    async def job_and_held_deployment() -> bool:
        jobs = [j async for j in client.list(Job, namespace=namespace) if downloads(j)]
        deployment = await client.get(Deployment, "qwen", namespace=namespace)
        return len(jobs) == 1 and deployment.spec is not None and deployment.spec.replicas == 0

    await eventually(job_and_held_deployment, what="a download Job and a Deployment held at 0 replicas")
    async def waits_for_the_weights() -> bool:  # the status follows the children it reports on
        return await models.phase(client, "qwen", namespace) in ("Pending", "Downloading")

    await eventually(waits_for_the_weights, within=10, what="phase Pending or Downloading while the Job runs")
    job = next(iter([j async for j in client.list(Job, namespace=namespace) if downloads(j)]))
    container = job.spec.template.spec.containers[0]  # type: ignore[union-attr]
    assert "nvidia.com/gpu" not in str(container.resources)
    await eventually(lambda: ready_replicas(client, "qwen", namespace, 2), within=READY_WITHIN, what="2 replicas")
    assert job.status is None or not job.status.failed
