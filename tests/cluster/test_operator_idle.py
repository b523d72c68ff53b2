"""An operator that is idle is quiet: with 20 Ready models and nothing changing, it writes nothing."""

from __future__ import annotations

import asyncio

from lightkube import AsyncClient

from llmpack_dev.cluster import LocalCluster
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess, settle_audit, writes_by
from tests.cluster.test_operator_lifecycle import ready_replicas
from tests.cluster.waiting import eventually

MODELS = 20
IDLE_SECONDS = 60


async def test_twenty_ready_models_cause_no_writes_for_a_minute(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    for i in range(MODELS):
        models.apply(cluster, f"m{i}", namespace, {"resources": {"gpu": {"count": 0}}})  # 20 > the 16 GPUs

    async def all_ready() -> bool:
        states = await asyncio.gather(*(ready_replicas(client, f"m{i}", namespace, 1) for i in range(MODELS)))
        return all(states)

    await eventually(all_ready, within=120, interval=1, what=f"{MODELS} models to be Ready")
    settle_audit(3)
    # Only this namespace is idle: earlier tests' namespaces may still be terminating, and the operator
    # rightly tries to restore a child deleted there until the namespace takes the model too.
    ours = f"/namespaces/{namespace}/"
    before = [w for w in writes_by(cluster.audit_log) if ours in w]
    assert before, "the audit log must show the operator's writes while converging"
    await asyncio.sleep(IDLE_SECONDS)
    settle_audit()
    during = [w for w in writes_by(cluster.audit_log) if ours in w][len(before):]
    assert during == [], f"{len(during)} writes while idle, e.g. {during[:5]}"
