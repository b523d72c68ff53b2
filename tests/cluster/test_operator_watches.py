"""The operator's watches outlive what they watch: a CRD deleted under them is forgotten, not fatal, and the
same CRD installed again is watched again."""

from __future__ import annotations

from lightkube import AsyncClient

from llmpack_dev.cluster import LocalCluster
from llmpack_dev.crds import inference_extension_crds, install, uninstall
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_operator_lifecycle import READY_WITHIN, ready_replicas
from tests.cluster.waiting import eventually


async def pool_reason(client: AsyncClient, name: str, namespace: str, reason: str) -> bool:
    condition = models.condition(await models.status(client, name, namespace), "InferencePoolReady")
    return condition.get("reason") == reason


async def test_deleting_a_watched_crd_keeps_the_operator_serving_and_installing_it_again_routes_again(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    crds = inference_extension_crds()
    logged = running_operator.log.stat().st_size
    install(cluster, crds)
    try:
        models.apply(cluster, "qwen", namespace)
        await eventually(lambda: pool_reason(client, "qwen", namespace, "Applied"), within=READY_WITHIN,
                         what="qwen's pool")

        for crd in crds:  # what `helm uninstall` of the inference extension does
            cluster.kubectl("delete", "-f", str(crd), "--wait=true")
        await eventually(lambda: pool_reason(client, "qwen", namespace, "CRDMissing"), within=30,
                         what="qwen to report the missing CRD")
        assert running_operator.alive(), "the operator must outlive a CRD it watched"
        # The webhook (failurePolicy Fail) still answers and the operator still reconciles: a new model is served.
        models.apply(cluster, "llama", namespace, {"model": {"name": "meta-llama/Llama-3.1-8B"}})
        await eventually(lambda: ready_replicas(client, "llama", namespace, 1), within=READY_WITHIN,
                         what="a model created after the CRD went")

        install(cluster, crds)  # the pools went with their CRD: both models get theirs again
        for name in ("qwen", "llama"):
            await eventually(lambda n=name: pool_reason(client, n, namespace, "Applied"),  # type: ignore[misc]
                             within=30, what=f"{name}'s pool once the CRD is back")
        assert running_operator.alive()
        log = running_operator.log.read_bytes()[logged:].decode(errors="replace")
        assert "Traceback" not in log, log[-3000:]
        assert " ERROR " not in log, log[-3000:]
    finally:
        uninstall(cluster, crds)
