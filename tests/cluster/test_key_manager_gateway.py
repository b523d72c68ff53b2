"""A key created through the key manager reaches the model's SecurityPolicy on the server (the operator
reads key Secrets again when their metadata changes), and a revoked one leaves it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import AsyncClient

from llmpack_dev.cluster import LocalCluster
from llmpack_dev.crds import install, routing_crds, uninstall
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_key_manager import new_key
from tests.cluster.test_operator_lifecycle import READY_WITHIN, ready_replicas
from tests.cluster.test_routing import policy
from tests.cluster.waiting import eventually
from tests.oidc.issuer import Issuer
from tests.oidc.service import RunningKeyManager, start_key_manager


@pytest.fixture
async def routed(cluster: LocalCluster, kubeconfig: Path, running_operator: OperatorProcess,
                 crd_installed: None) -> AsyncIterator[tuple[Issuer, RunningKeyManager]]:
    crds = routing_crds()
    install(cluster, crds)
    issuer = Issuer().start()
    km = await start_key_manager(kubeconfig, issuer)
    try:
        yield issuer, km
    finally:
        await km.stop()
        issuer.stop()
        uninstall(cluster, crds)


async def allowed(client: AsyncClient, name: str, namespace: str) -> list[str]:
    spec = await policy(client, f"{name}-external-auth", namespace) or {}
    rules: list[dict[str, Any]] = spec.get("authorization", {}).get("rules", [])
    return [v for r in rules for h in r["principal"]["headers"] for v in h["values"]]


async def test_a_key_created_here_reaches_the_models_policy_and_a_revoked_one_leaves_it(
        cluster: LocalCluster, client: AsyncClient, namespace: str,
        routed: tuple[Issuer, RunningKeyManager]) -> None:
    _, km = routed
    # An id of this test's own: a Qwen/Qwen3-8B of an earlier test's namespace, still being deleted, would own it.
    models.apply(cluster, "qwen", namespace, {"access": {"groups": ["ml-team"]},
                                              "model": {"name": f"Qwen/{namespace}"}})
    await eventually(lambda: ready_replicas(client, "qwen", namespace, 1), within=READY_WITHIN, what="Ready")
    async with km.as_user("alice", ["ml-team"]) as alice:
        async def can_create() -> dict[str, Any] | None:
            answer = await alice.post("/api/keys", json={"modelName": "qwen", "namespace": namespace})
            return dict(answer.json()) if answer.status_code == 201 else None

        # 409 until the operator has created the key objects (a replica Ready and the policy CRD installed).
        key = await eventually(can_create, within=30, interval=0.5, what="a key once the key objects exist")
        created = time.monotonic()
        await eventually(lambda: _contains(allowed(client, "qwen", namespace), key["clientId"]), within=20,
                         interval=0.2, what="the client id in qwen's allow rule")
        print(f"key live in the policy {time.monotonic() - created:.1f}s after its create answered")
        spec = await policy(client, "qwen-external-auth", namespace)
        assert spec is not None
        assert "qwen-api-keys" in [r["name"] for r in spec["apiKeyAuth"]["credentialRefs"]]

        other = await new_key(alice, "qwen", namespace=namespace)
        await eventually(lambda: _contains(allowed(client, "qwen", namespace), other["clientId"]), within=20,
                         interval=0.2, what="the second client id")
        assert (await alice.delete(f"/api/keys/{namespace}/qwen/{key['clientId']}")).status_code == 204

        async def revoked() -> bool:
            return await allowed(client, "qwen", namespace) == [other["clientId"]]

        await eventually(revoked, within=20, interval=0.2, what="the revoked client id gone from the allow rule")


async def _contains(values: Any, wanted: str) -> bool:
    return wanted in await values
