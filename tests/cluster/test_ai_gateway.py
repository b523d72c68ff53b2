"""Envoy AI Gateway's real CRDs, both releases: routes are applied for real in the newest version the gateway
serves (v0.5: v1alpha1, as the Serving Pack installs it; after an upgrade to v1.1: v1beta1, and not one
request to the deprecated version), and the gateway's verdicts on route and policy reach the conditions.

It runs on a control plane of its own, with the operator as the chart's ServiceAccount (its RBAC rendered by
`helm template`): one AI Gateway release replaces the other in place, the session's cluster has tests that
need the CRD absent, and a watched CRD must not be deleted under a running operator. The same operator
proves the chart's RBAC for the PodMonitor, key objects before Ready, and why a PVC does not bind.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Namespace, PersistentVolumeClaim, Secret
from lightkube.resources.storage_v1 import StorageClass

from llmpack.operator.kube import AIGatewayRouteResources, PodMonitorResource
from llmpack_dev.cluster import LocalCluster
from llmpack_dev.crds import ai_gateway_crds, install, pod_monitor_crd, routing_crds
from tests.cluster import models
from tests.cluster.chart_operator import Gateway, chart_operator
from tests.cluster.controllers import policy_verdict, post_warning, route_verdict, write_status
from tests.cluster.test_key_manager_rbac import NAMESPACE, OPERATOR_SA
from tests.cluster.test_operator_lifecycle import READY_WITHIN, ready_replicas
from tests.cluster.waiting import eventually

GROUP = "aigateway.envoyproxy.io"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A cluster with every routing CRD, AI Gateway v0.5.0 and the PodMonitor CRD, and the operator running as
    the chart's ServiceAccount with exactly the chart's RBAC."""
    crds = [*routing_crds(), *ai_gateway_crds("v0.5.0"), pod_monitor_crd()]
    # audit_reads: deprecated_requests counts the operator's reads too
    with chart_operator(tmp_path_factory.mktemp("gateway-cluster"), crds, audit_reads=True) as gateway:
        yield gateway


async def condition(client: AsyncClient, name: str, namespace: str, type_: str, reason: str) -> dict[str, Any] | None:
    found = models.condition(await models.status(client, name, namespace), type_)
    return found if found.get("reason") == reason else None


async def route(client: AsyncClient, version: str, name: str, namespace: str) -> dict[str, Any]:
    return dict((await client.get(AIGatewayRouteResources[version], name, namespace=namespace)).to_dict())


def written_in(obj: dict[str, Any], manager: str = "llmpack") -> set[str]:
    """The API versions a field manager wrote the object in (managedFields records each)."""
    return {f["apiVersion"] for f in obj["metadata"].get("managedFields") or [] if f.get("manager") == manager}


def deprecated_requests(cluster: LocalCluster) -> list[str]:
    """Every request of the operator (its ServiceAccount) to a deprecated API, reads and watches included, as
    the API server's audit log marks them (`k8s.io/deprecated`). Not the apiserver_requested_deprecated_apis
    metric: it counts every client, and the garbage collector goes on watching v1alpha1 until it next reads
    discovery."""
    operator = f"system:serviceaccount:{NAMESPACE}:{OPERATOR_SA}"
    found = []
    for line in cluster.audit_log.read_text().splitlines():
        event = json.loads(line)
        if (event.get("annotations") or {}).get("k8s.io/deprecated") == "true" \
                and event["user"]["username"] == operator:
            found.append(f"{event['verb']} {event['requestURI']}")
    return found


async def verdicts_reach_the_condition(cluster: LocalCluster, client: AsyncClient, namespace: str,
                                      version: str) -> None:
    """The gateway refuses the route, then accepts it; Envoy Gateway refuses the policy, then accepts it. The
    route's status is written in `version`, as the gateway of that release does."""
    refused = "InferencePool qwen not found in namespace"
    routes = f"aigatewayroutes.{version}.{GROUP}"  # kubectl's cached discovery may still name the old version
    write_status(cluster, routes, "qwen-external", namespace, route_verdict(False, refused))
    seen = await eventually(lambda: condition(client, "qwen", namespace, "ExternalEndpointReady", "NotAccepted"),
                            within=30, what="ExternalEndpointReady=NotAccepted once the gateway refuses the route")
    assert seen["status"] == "False"
    assert seen["message"] == (f"the gateway did not accept AIGatewayRoute qwen-external: NotAccepted: {refused}")
    assert "external" not in (await models.status(client, "qwen", namespace)).get("endpoints", {})
    write_status(cluster, routes, "qwen-external", namespace, route_verdict(True, "reconciled"))
    await eventually(lambda: condition(client, "qwen", namespace, "ExternalEndpointReady", "Applied"), within=30,
                     what="ExternalEndpointReady=Applied once the gateway accepts the route")
    write_status(cluster, "securitypolicy", "qwen-internal-auth", namespace, policy_verdict(False, "JWKS unreachable"))
    seen = await eventually(lambda: condition(client, "qwen", namespace, "InternalEndpointReady", "NotAccepted"),
                            within=30, what="InternalEndpointReady=NotAccepted once Envoy Gateway refuses the policy")
    assert "SecurityPolicy qwen-internal-auth: Invalid: JWKS unreachable" in seen["message"]
    write_status(cluster, "securitypolicy", "qwen-internal-auth", namespace, policy_verdict(True, "Policy accepted"))
    await eventually(lambda: condition(client, "qwen", namespace, "InternalEndpointReady", "Applied"), within=30,
                     what="InternalEndpointReady=Applied once the policy is accepted")
    assert (await models.status(client, "qwen", namespace))["endpoints"] == {
        "external": "https://llm.example.test", "internal": "https://llm-internal.example.test"}


async def test_routes_follow_the_gateway_from_v0_5_to_v1_1_and_its_verdicts_reach_the_conditions(
        gateway: Gateway, gw_client: AsyncClient) -> None:
    cluster, client = gateway.cluster, gw_client
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    await client.create(Namespace(metadata=ObjectMeta(name=namespace)))
    models.apply(cluster, "qwen", namespace, {"serving": {"monitoring": {"enabled": True}}})
    await eventually(lambda: ready_replicas(client, "qwen", namespace, 1), within=READY_WITHIN, what="qwen Ready")

    # v0.5 serves v1alpha1 only: the routes are written in it and the real schema admits them.
    for side in ("external", "internal"):
        applied = await eventually(lambda s=side: condition(  # type: ignore[misc]
            client, "qwen", namespace, f"{s.capitalize()}EndpointReady", "Applied"), within=30,
            what=f"{side} route applied")
        assert applied["status"] == "True"
    v1alpha1 = await route(client, "v1alpha1", "qwen-external", namespace)
    assert written_in(v1alpha1) == {f"{GROUP}/v1alpha1"}
    assert v1alpha1["spec"]["rules"][0]["backendRefs"][0]["kind"] == "InferencePool"
    await verdicts_reach_the_condition(cluster, client, namespace, "v1alpha1")

    # The gateway is upgraded in place to v1.1: v1beta1 is served and stored, v1alpha1 deprecated. Without a
    # change to the model the routes are written in v1beta1, and nothing of ours asks for v1alpha1 again.
    assert deprecated_requests(cluster) == []
    install(cluster, ai_gateway_crds("v1.1.0"))

    async def rewritten() -> bool:
        routes = [await route(client, "v1beta1", f"qwen-{side}", namespace) for side in ("external", "internal")]
        return all(f"{GROUP}/v1beta1" in written_in(r) for r in routes)

    await eventually(rewritten, within=45, what="both routes written again in v1beta1")
    assert "watching aigatewayroutes in v1beta1 (was v1alpha1)" in gateway.operator.log.read_text()
    await verdicts_reach_the_condition(cluster, client, namespace, "v1beta1")
    assert deprecated_requests(cluster) == [], "a request to v1alpha1"

    # The chart's RBAC is enough for the PodMonitor too, and it selects exactly the vLLM pods.
    monitor = (await client.get(PodMonitorResource, "qwen", namespace=namespace)).to_dict()
    assert monitor["metadata"]["ownerReferences"][0]["name"] == "qwen"
    assert (await condition(client, "qwen", namespace, "MonitoringReady", "Applied")) is not None
    log = gateway.operator.log.read_text()
    assert [line for line in log.splitlines() if "forbidden" in line.lower()] == []


async def test_key_objects_and_the_cause_of_unbound_storage_as_the_charts_service_account(
        gateway: Gateway, gw_client: AsyncClient) -> None:
    """Models that never get Ready: a StorageClass that does not exist, and a provisioner that fails."""
    cluster, client = gateway.cluster, gw_client
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    await client.create(Namespace(metadata=ObjectMeta(name=namespace)))
    broken = f"broken-{namespace}"
    await client.create(StorageClass(metadata=ObjectMeta(name=broken), provisioner=f"example.com/{broken}"))
    try:
        models.apply(cluster, "nowhere", namespace, {"model": {"storage": {"storageClassName": f"none-{namespace}"}}})
        models.apply(cluster, "failing", namespace, {"model": {"storage": {"storageClassName": broken}}})
        # Keys can be issued before a model is Ready: its key objects exist from the first reconcile.
        for name in ("nowhere", "failing"):
            await eventually(lambda n=name: client.get(Secret, f"{n}-api-keys", namespace=namespace),  # type: ignore[misc]
                             what=f"{name}'s key Secret")
            # The Secret is created first and the ConfigMap applied after it in the same pass: wait for both.
            await eventually(lambda n=name: client.get(ConfigMap, f"{n}-api-key-metadata", namespace=namespace),  # type: ignore[misc]
                             what=f"{name}'s key metadata ConfigMap")
        # The StorageClass is read by name (get, cluster-scoped) ...
        missing = await eventually(lambda: condition(client, "nowhere", namespace, "StorageReady",
                                                     "StorageClassNotFound"), within=45, what="StorageClassNotFound")
        assert f"StorageClass none-{namespace} does not exist" in missing["message"]
        # ... and the PVC's Warning Events are listed: as a provisioner posts one, the condition quotes it.
        pvc = await client.get(PersistentVolumeClaim, "failing-model-storage", namespace=namespace)
        words = "rpc error: code = ResourceExhausted desc = volume quota exceeded"
        await post_warning(client, pvc, "ProvisioningFailed", words, f"example.com/{broken}")
        failed = await eventually(lambda: condition(client, "failing", namespace, "StorageReady", "ProvisioningFailed"),
                                  within=45, what="StorageReady=ProvisioningFailed from the PVC's event")
        assert failed["message"] == (f"PVC failing-model-storage is not bound; example.com/{broken} reports: {words}")
        for name in ("nowhere", "failing"):
            assert await models.phase(client, name, namespace) == "Pending"
        log = gateway.operator.log.read_text()
        assert [line for line in log.splitlines() if "forbidden" in line.lower() or "not read" in line] == []
    finally:
        await client.delete(StorageClass, broken)
