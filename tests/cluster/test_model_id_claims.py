"""One model id, one owner: on the shared hostnames only the oldest claim of a model id gets a route; a newer
claim, from another namespace or an old model edited to the id, is told who owns it, never routed, and
takes over within seconds once the owner goes. Restarting the operator changes nothing.

These tests need routes to exist, so they install Envoy AI Gateway's AIGatewayRoute CRD next to the other
routing CRDs, and never uninstall a CRD. That is why they run on a control plane of their own (started for
this module, stopped after it): the other routing tests expect that CRD to be missing.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import yaml
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Service

from llmpack.api.crd import crd
from llmpack.operator.kube import AIGatewayRouteResource, InferencePoolResource, SecurityPolicyResource
from llmpack.render.auth import MODEL_HEADER
from llmpack_dev.cluster import LocalCluster, free_port, wait_for_webhook
from llmpack_dev.crds import ai_gateway_crds, install, routing_crds
from tests.cluster import models
from tests.cluster.conftest import OPERATOR_ENV, own_cluster
from tests.cluster.operator_process import OperatorProcess, settle_audit, writes_by
from tests.cluster.test_operator_lifecycle import READY_WITHIN, ready_replicas
from tests.cluster.waiting import eventually

CPU = {"resources": {"gpu": {"count": 0}}}
HANDOVER_WITHIN = 20.0  # seconds for the next claimant's route once the owner goes ("within seconds")


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with own_cluster(tmp_path_factory.mktemp("claims-cluster")) as local:
        local.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(crd()))
        install(local, [*routing_crds(), *ai_gateway_crds("v0.5.0")])
        local.kubectl("wait", "--for=condition=Established", "crd/llmmodels.llm.nebari.dev", "--timeout=30s")
        yield local


@pytest.fixture(scope="module")
def operator(plane: LocalCluster) -> Iterator[OperatorProcess]:
    process = OperatorProcess(plane.kubeconfig_for("operator"), plane.state / "logs" / "operator.log",
                              ["--webhook-port", str(free_port()), "--webhook-listen", "127.0.0.1",
                               "--webhook-cert-dir", str(plane.state / "webhook")], env=OPERATOR_ENV)
    process.start()
    wait_for_webhook(plane)
    yield process
    process.stop()


@pytest.fixture(scope="module")
async def client(plane: LocalCluster) -> AsyncIterator[AsyncClient]:
    api = AsyncClient(KubeConfig.from_file(str(plane.kubeconfig)), field_manager="llmpack-tests")
    yield api
    await api.close()


@pytest.fixture
async def namespaces(client: AsyncClient) -> AsyncIterator[list[str]]:
    """The test's namespaces (made by `namespace`), deleted afterwards with their models and claims."""
    made: list[str] = []
    yield made
    for name in made:
        await client.delete(Namespace, name)


async def namespace(client: AsyncClient, made: list[str], prefix: str) -> str:
    """A fresh namespace whose name sorts by `prefix`: at the same second, namespace/name decides."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    await client.create(Namespace(metadata=ObjectMeta(name=name)))
    made.append(name)
    return name


def model_id(name: str) -> str:
    """A model id no other test claims."""
    return f"{name}-{uuid.uuid4().hex[:6]}"


def apply(plane: LocalCluster, name: str, ns: str, model_id: str) -> str:
    """kubectl apply, as a user does; returns what kubectl printed on stderr (the webhook's warnings)."""
    manifest = models.manifest(name, ns, {**CPU, "model": {"name": model_id}})
    return plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest)).stderr


async def routes_for(client: AsyncClient, model_id: str) -> list[str]:
    """Every AIGatewayRoute in the cluster that matches `model_id`, as namespace/name."""
    found = []
    async for route in client.list(AIGatewayRouteResource, namespace="*"):
        for rule in (route.spec or {}).get("rules", []):
            headers = [h for m in rule.get("matches", []) for h in m.get("headers", [])]
            if any(h["name"] == MODEL_HEADER and h["value"] == model_id for h in headers):
                found.append(f"{route.metadata.namespace}/{route.metadata.name}")  # type: ignore[union-attr]
    return sorted(found)


def sides(ns: str, name: str) -> list[str]:
    return [f"{ns}/{name}-external", f"{ns}/{name}-internal"]


async def endpoint_reasons(client: AsyncClient, name: str, ns: str) -> dict[str, dict[str, Any]]:
    st = await models.status(client, name, ns)
    return {side: models.condition(st, f"{side}EndpointReady") for side in ("External", "Internal")}


async def routed(client: AsyncClient, model_id: str, want: list[str]) -> bool:
    return await routes_for(client, model_id) == want


async def in_conflict_with(client: AsyncClient, name: str, ns: str, owner: str) -> dict[str, dict[str, Any]] | None:
    found = await endpoint_reasons(client, name, ns)
    ok = all(c.get("reason") == "ModelIdConflict" and c.get("status") == "False" and owner in c.get("message", "")
             for c in found.values())
    return found if ok else None


async def exists(client: AsyncClient, resource: Any, name: str, ns: str) -> bool:
    try:
        await client.get(resource, name, namespace=ns)
    except ApiError as exc:
        if exc.status.code == 404:
            return False
        raise
    return True


def route_writes(plane: LocalCluster, ns: str) -> list[str]:
    """The operator's writes to a namespace's routes and policies, from the API server's audit log."""
    return [w for w in writes_by(plane.audit_log) if f"/namespaces/{ns}/aigatewayroutes" in w
            or f"/namespaces/{ns}/securitypolicies" in w]


def restart(plane: LocalCluster, operator: OperatorProcess) -> None:
    """SIGKILL and start again: the new process knows only what the API server holds."""
    operator.restart()
    wait_for_webhook(plane)


async def test_only_the_older_of_two_namespaces_claiming_one_id_is_routed_and_the_route_moves_when_it_goes(
        plane: LocalCluster, client: AsyncClient, operator: OperatorProcess, namespaces: list[str]) -> None:
    qwen = model_id("Qwen/Qwen3-8B")
    # The newcomer's namespace sorts first: were the claims tied (a restart forgetting them), it would win.
    first, newcomer = await namespace(client, namespaces, "claims-z"), await namespace(client, namespaces, "claims-a")
    apply(plane, "qwen", first, qwen)
    await eventually(lambda: routed(client, qwen, sides(first, "qwen")), within=READY_WITHIN + 30,
                     what="the first model's routes")

    warned = apply(plane, "qwen", newcomer, qwen)
    assert f"model id {qwen} is already claimed by LLMModel {first}/qwen" in warned  # at the door, not refused
    conflict = await eventually(lambda: in_conflict_with(client, "qwen", newcomer, f"{first}/qwen"),
                                within=READY_WITHIN, what="the newcomer's ModelIdConflict naming the owner")
    assert "still serves inside the cluster" in conflict["External"]["message"]
    await eventually(lambda: ready_replicas(client, "qwen", newcomer, 1), within=READY_WITHIN, what="newcomer Ready")
    # It serves in its namespace: Service and InferencePool, but no route or policy.
    assert await exists(client, Service, "qwen", newcomer)
    assert await eventually(lambda: exists(client, InferencePoolResource, "qwen", newcomer), within=30,
                            what="the newcomer's InferencePool")
    assert not await exists(client, SecurityPolicyResource, "qwen-external-auth", newcomer)
    assert await routes_for(client, qwen) == sides(first, "qwen")
    owner_routes = {r.metadata.uid async for r in client.list(AIGatewayRouteResource, namespace=first)}  # type: ignore[union-attr]

    # Restarting the operator changes nothing: it writes nothing at all, so no condition flips on the way and
    # no route is applied for the newcomer.
    settle_audit()
    before = len(writes_by(plane.audit_log, conflicts=False))
    restart(plane, operator)
    await eventually(lambda: in_conflict_with(client, "qwen", newcomer, f"{first}/qwen"), within=10,
                     what="the conflict still reported")
    await asyncio.sleep(5)  # the new operator lists, then reconciles every model
    settle_audit()
    # Secrets are not listed, so a model whose keys are not read (the one that lost) learns that its key Secret
    # exists from a create refused with 409: a request, no change.
    after = [w for w in writes_by(plane.audit_log, conflicts=False)[before:] if f"/namespaces/{first}/" in w
             or f"/namespaces/{newcomer}/" in w]
    assert after == [], f"a restart changed {after[:5]}"
    assert route_writes(plane, newcomer) == [], "a route or policy was applied for the model that lost its id"
    assert {r.metadata.uid async for r in client.list(AIGatewayRouteResource, namespace=first)} == owner_routes  # type: ignore[union-attr]

    # The owner goes: the newcomer's routes follow within seconds, and it says so.
    gone = time.monotonic()
    plane.kubectl("delete", "llmmodel", "qwen", "-n", first, "--wait=false")
    await eventually(lambda: routed(client, qwen, sides(newcomer, "qwen")), within=HANDOVER_WITHIN,
                     what="the route to move to the next claimant")
    print(f"route handed over {time.monotonic() - gone:.1f} s after the owner was deleted")
    reasons = await endpoint_reasons(client, "qwen", newcomer)
    assert {c["reason"] for c in reasons.values()} == {"Applied"}
    assert (await models.status(client, "qwen", newcomer))["endpoints"] == {
        "external": "https://llm.example.test", "internal": "https://llm-internal.example.test"}


async def test_an_old_model_edited_to_an_owned_id_does_not_take_it_even_across_a_restart(
        plane: LocalCluster, client: AsyncClient, operator: OperatorProcess, namespaces: list[str]) -> None:
    qwen, mistral, qwen_big = model_id("Qwen/Qwen3-8B"), model_id("mistralai/Mistral-Small"), model_id("Qwen/Qwen3-14B")
    # The old model is older than the owner and sorts first: only the time of its claim keeps it from the id.
    old_ns, owner_ns = await namespace(client, namespaces, "claims-a"), await namespace(client, namespaces, "claims-z")
    apply(plane, "legacy", old_ns, mistral)
    await eventually(lambda: routed(client, mistral, sides(old_ns, "legacy")), within=READY_WITHIN + 30,
                     what="the old model's routes")
    apply(plane, "qwen", owner_ns, qwen)
    await eventually(lambda: routed(client, qwen, sides(owner_ns, "qwen")), within=READY_WITHIN + 30,
                     what="the owner's routes")

    settle_audit()
    before_edit = len(route_writes(plane, old_ns))
    edit = plane.kubectl("patch", "llmmodel", "legacy", "-n", old_ns, "--type=merge",
                         "-p", json.dumps({"spec": {"model": {"name": qwen}}}))
    assert f"already claimed by LLMModel {owner_ns}/qwen" in edit.stderr
    await eventually(lambda: in_conflict_with(client, "legacy", old_ns, f"{owner_ns}/qwen"), within=30,
                     what="the edited model's ModelIdConflict naming the owner")
    # What it had for its old id is removed, and nothing of it ever matches the owner's id.
    await eventually(lambda: routed(client, mistral, []), within=30, what="the old id's routes removed")
    assert await routes_for(client, qwen) == sides(owner_ns, "qwen")
    status = await models.status(client, "legacy", old_ns)
    assert status["modelId"] == qwen
    assert status["modelIdClaimedAt"] > (await models.status(client, "qwen", owner_ns))["modelIdClaimedAt"]

    restart(plane, operator)
    await eventually(lambda: ready_replicas(client, "legacy", old_ns, 1), within=READY_WITHIN,
                     what="the edited model Ready on its new weights")
    await asyncio.sleep(5)
    assert await in_conflict_with(client, "legacy", old_ns, f"{owner_ns}/qwen")
    assert await routes_for(client, qwen) == sides(owner_ns, "qwen")
    settle_audit()
    since_edit = route_writes(plane, old_ns)[before_edit:]
    assert since_edit, "the routes and policies of the old id were deleted"
    assert all(w.startswith("delete ") for w in since_edit), since_edit

    # The owner moves to another id: the edited model is next in line for this one.
    plane.kubectl("patch", "llmmodel", "qwen", "-n", owner_ns, "--type=merge",
                  "-p", json.dumps({"spec": {"model": {"name": qwen_big}}}))
    await eventually(lambda: routed(client, qwen, sides(old_ns, "legacy")), within=HANDOVER_WITHIN,
                     what="the route for the freed id to move to the next claimant")
    await eventually(lambda: routed(client, qwen_big, sides(owner_ns, "qwen")), within=READY_WITHIN + 30,
                     what="the renamed owner's routes for its new id")
