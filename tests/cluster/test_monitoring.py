"""serving.monitoring.enabled: a condition that names the missing Prometheus Operator CRD, then, once the real
CRD (from the prometheus-operator module) is installed, an owned PodMonitor that the real schema admits and
that selects exactly the model's vLLM pods; turned off, the PodMonitor goes and so does the condition."""

from __future__ import annotations

from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Pod

from llmpack.operator.kube import PodMonitorResource
from llmpack.render.plan import MONITOR_CRD
from llmpack_dev.cluster import LocalCluster
from llmpack_dev.crds import install, pod_monitor_crd
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_operator_lifecycle import READY_WITHIN, ready_replicas
from tests.cluster.waiting import eventually


async def monitoring(client: AsyncClient, namespace: str, reason: str | None) -> dict[str, Any] | None:
    found = models.condition(await models.status(client, "qwen", namespace), "MonitoringReady")
    return found if found.get("reason") == reason else None


async def test_monitoring_waits_for_the_prometheus_operator_then_scrapes_exactly_the_vllm_pods(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    # Installed here and left installed (removing a watched CRD under a running operator is not safe).
    assert cluster.kubectl("get", "crd", MONITOR_CRD, check=False).returncode != 0, \
        "this test shows the condition before the CRD exists, and installs it itself"
    models.apply(cluster, "qwen", namespace, {"serving": {"monitoring": {"enabled": True}}})
    await eventually(lambda: ready_replicas(client, "qwen", namespace, 1), within=READY_WITHIN, what="Ready")
    missing = await eventually(lambda: monitoring(client, namespace, "CRDMissing"), what="MonitoringReady=CRDMissing")
    assert missing["status"] == "False"
    assert MONITOR_CRD in missing["message"]
    assert "Prometheus Operator" in missing["message"]
    assert await models.phase(client, "qwen", namespace) == "Ready"  # monitoring never holds a model back

    install(cluster, [pod_monitor_crd()])
    applied = await eventually(lambda: monitoring(client, namespace, "Applied"), within=30,
                               what="MonitoringReady=Applied once the CRD is installed (no change to the model)")
    assert applied["status"] == "True"
    monitor = (await client.get(PodMonitorResource, "qwen", namespace=namespace)).to_dict()
    assert monitor["metadata"]["ownerReferences"][0]["kind"] == "LLMModel"
    assert monitor["spec"]["podMetricsEndpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    selected = {p.metadata.name async for p in client.list(  # type: ignore[union-attr]
        Pod, namespace=namespace, labels=monitor["spec"]["selector"]["matchLabels"])}
    vllm = {p.metadata.name async for p in client.list(Pod, namespace=namespace)  # type: ignore[union-attr]
            if any(c.name == "vllm" for c in p.spec.containers)}  # type: ignore[union-attr]
    downloader = {p.metadata.name async for p in client.list(  # type: ignore[union-attr]
        Pod, namespace=namespace, labels={"app.kubernetes.io/name": "model-download"})}
    assert len(vllm) == 1
    assert downloader, "the download Job's pod, which shares the instance label, is there"
    assert selected == vllm  # and not the download pod

    models.patch(cluster, "qwen", namespace, {"serving": {"monitoring": {"enabled": False}}})

    async def gone() -> bool:
        try:
            await client.get(PodMonitorResource, "qwen", namespace=namespace)
        except ApiError as exc:
            return exc.status.code == 404
        return False

    await eventually(gone, within=30, what="the PodMonitor removed once monitoring is off")
    await eventually(lambda: _no_condition(client, namespace), within=30, what="MonitoringReady gone")


async def _no_condition(client: AsyncClient, namespace: str) -> bool:
    return models.condition(await models.status(client, "qwen", namespace), "MonitoringReady") == {}
