"""Routing by load: once a replica is Ready, an InferencePool and its endpoint picker, checked by the real
Gateway API Inference Extension CRDs; without those CRDs, a condition that says so and a model that serves."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Secret, Service
from lightkube.resources.networking_v1 import NetworkPolicy

from llmpack.api import LLMModel
from llmpack.assess.diff import holds
from llmpack.config import Config, load_config
from llmpack.kinds import INFERENCE_POOL, SECURITY_POLICY
from llmpack.operator import listeners
from llmpack.operator.kube import GatewayResource, InferencePoolResource, LLMModelResource, SecurityPolicyResource
from llmpack.render import Facts, plan
from llmpack.render.listeners import gateway_patches
from llmpack_dev.cluster import LocalCluster
from llmpack_dev.crds import gateway_api_crds, inference_extension_crds, install, routing_crds, uninstall
from tests.cluster import models
from tests.cluster.conftest import OPERATOR_ENV
from tests.cluster.controllers import policy_verdict, write_status
from tests.cluster.operator_process import OperatorProcess, settle_audit, writes_by
from tests.cluster.test_operator_lifecycle import READY_WITHIN, ready_replicas
from tests.cluster.waiting import eventually

SETTLED_SECONDS = 20


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


async def policy(client: AsyncClient, name: str, namespace: str) -> dict[str, Any] | None:
    try:
        return dict((await client.get(SecurityPolicyResource, name, namespace=namespace)).spec or {})
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise


async def endpoint_condition(client: AsyncClient, name: str, namespace: str, side: str,
                             reason: str) -> dict[str, Any] | None:
    st = await models.status(client, name, namespace)
    condition = models.condition(st, f"{side.capitalize()}EndpointReady")
    return condition if condition.get("reason") == reason else None


async def test_policies_keys_and_network_policy_follow_the_model_and_go_with_it(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    crds = routing_crds()
    install(cluster, crds)
    try:
        # An id of this test's own: claims are cluster-wide, and a Qwen/Qwen3-8B of an earlier test whose
        # namespace is still being deleted owns that id (ModelIdConflict) until it is gone.
        models.apply(cluster, "qwen", namespace, {"access": {"groups": ["ml-team"]},
                                                  "model": {"name": f"Qwen/{namespace}"}})
        models.apply(cluster, "llama", namespace, {"model": {"name": "meta-llama/Llama-3.1-8B"}})
        for name in ("qwen", "llama"):
            await eventually(lambda n=name: ready_replicas(client, n, namespace, 1),  # type: ignore[misc]
                             within=READY_WITHIN, what=f"{name} Ready")

        # Without Envoy AI Gateway's CRD the model still serves; the condition names what is missing.
        missing = await eventually(lambda: endpoint_condition(client, "qwen", namespace, "external", "CRDMissing"),
                                   within=30, what="ExternalEndpointReady=CRDMissing")
        assert missing["status"] == "False"
        assert "aigatewayroutes.aigateway.envoyproxy.io" in missing["message"]
        assert await models.phase(client, "qwen", namespace) == "Ready"
        assert "endpoints" not in await models.status(client, "qwen", namespace)

        async def credential_refs(name: str) -> list[str] | None:
            spec = await policy(client, f"{name}-external-auth", namespace)
            return [r["name"] for r in spec["apiKeyAuth"]["credentialRefs"]] if spec else None

        both = ["llama-api-keys", "qwen-api-keys"]
        for name in ("qwen", "llama"):
            await eventually(lambda n=name: _equal(credential_refs(n), both),  # type: ignore[misc]
                             within=30, what=f"{name}'s policy to accept every key of the namespace")
        external = await policy(client, "qwen-external-auth", namespace)
        assert external is not None
        assert external["targetRefs"][0]["name"] == "qwen-external"
        assert external["authorization"] == {"defaultAction": "Deny"}  # no key yet: nobody is let through
        internal = await policy(client, "qwen-internal-auth", namespace)
        assert internal is not None
        assert internal["jwt"]["providers"][0]["issuer"] == OPERATOR_ENV["LLMPACK_OIDC_ISSUER"]
        assert internal["authorization"]["rules"][0]["principal"]["jwt"]["claims"][0]["values"] == ["ml-team"]

        secret = await client.get(Secret, "qwen-api-keys", namespace=namespace)
        assert not secret.data
        assert secret.metadata.labels["llm.nebari.dev/model-name"] == "qwen"  # type: ignore[union-attr,index]
        await client.get(ConfigMap, "qwen-api-key-metadata", namespace=namespace)
        netpol = await client.get(NetworkPolicy, "qwen-deny-direct", namespace=namespace)
        peers = netpol.spec.ingress[0].from_  # type: ignore[union-attr,index]
        assert {p.namespaceSelector.matchLabels["kubernetes.io/metadata.name"]  # type: ignore[union-attr,index]
                for p in peers or [] if p.namespaceSelector} == {"gateways", "envoy-gateway-system", "monitoring"}

        # A key manager writes a key (the Secret, then its metadata): only qwen's allow rule names its client
        # id, with no change to the model.
        cluster.kubectl("patch", "secret", "qwen-api-keys", "-n", namespace, "--type=merge",
                        "-p", json.dumps({"data": {"team-a": base64.b64encode(b"sk-secret").decode()}}))
        cluster.kubectl("annotate", "configmap", "qwen-api-key-metadata", "-n", namespace,
                        "llm.nebari.dev/keys-changed=1")

        async def allowed(name: str) -> list[str] | None:
            spec = await policy(client, f"{name}-external-auth", namespace)
            rules = (spec or {}).get("authorization", {}).get("rules", [])
            return [v for r in rules for h in r["principal"]["headers"] for v in h["values"]]

        await eventually(lambda: _equal(allowed("qwen"), ["team-a"]), within=45,
                         what="the new client id in qwen's allow rule")
        assert await allowed("llama") == []
        # Settled: nothing is re-read on a timer, and no watch event writes anything.
        settle_audit(3)
        before = len([w for w in writes_by(cluster.audit_log) if f"/namespaces/{namespace}/" in w])
        assert before, "the audit log must show the operator's writes for this namespace"
        await asyncio.sleep(SETTLED_SECONDS)
        settle_audit()
        during = [w for w in writes_by(cluster.audit_log) if f"/namespaces/{namespace}/" in w][before:]
        assert during == [], "a settled model with routing must cause no writes"
        assert (await client.get(Secret, "qwen-api-keys", namespace=namespace)).data == {
            "team-a": base64.b64encode(b"sk-secret").decode()}  # the operator never rewrites the keys
        # The plan `llmpack render --routing` prints tells the truth: given this cluster's facts (no AI Gateway
        # CRD), the cluster holds every object of every group whose gate is open, and the route waits for its CRD.
        body = (await client.get(LLMModelResource, "qwen", namespace=namespace)).to_dict()
        facts = Facts(crds=frozenset({INFERENCE_POOL.crd, SECURITY_POLICY.crd}), ready=1, key_secrets=frozenset(both),
                      client_ids=("team-a",), claims_known=True)
        expected = plan(LLMModel.from_body(body), load_config(env=OPERATOR_ENV), facts)
        assert {g.name: g.gate.problem.reason for g in expected.groups if g.gate} == {"external route": "CRDMissing",
                                                                             "internal route": "CRDMissing"}
        for want in (o for g in expected.groups if g.gate is None for o in g.objects):
            got = cluster.kubectl("get", f"{want['kind'].lower()}.{want['apiVersion'].split('/')[0]}"
                                  if "/" in want["apiVersion"] else want["kind"].lower(),
                                  want["metadata"]["name"], "-n", namespace, "-o", "json").stdout
            assert holds(json.loads(got), want), f"{want['kind']} {want['metadata']['name']} differs from render"

        # Applied is not enforced: when Envoy Gateway refuses a policy, the condition says so in its words.
        write_status(cluster, "securitypolicy", "qwen-internal-auth", namespace,
                     policy_verdict(False, "JWKS unreachable"))
        rejected = await eventually(
            lambda: endpoint_condition(client, "qwen", namespace, "internal", "NotAccepted"), within=30,
            what="InternalEndpointReady=NotAccepted")
        assert "JWKS unreachable" in rejected["message"]

        # Disabling a side removes its policy (and its route, were AI Gateway installed).
        models.patch(cluster, "qwen", namespace, {"endpoints": {"external": {"enabled": False}}})
        await eventually(lambda: endpoint_condition(client, "qwen", namespace, "external", "EndpointDisabled"),
                         within=30, what="ExternalEndpointReady=EndpointDisabled")
        await eventually(lambda: _is_none(policy(client, "qwen-external-auth", namespace)), within=30,
                         what="qwen's external policy to be deleted")
        assert await policy(client, "qwen-internal-auth", namespace) is not None

        for name in ("qwen", "llama"):
            cluster.kubectl("delete", "llmmodel", name, "-n", namespace, "--wait=true")

        async def leftovers() -> list[str] | None:
            found = []
            for resource in (SecurityPolicyResource, InferencePoolResource, NetworkPolicy, Secret, ConfigMap,
                             Deployment, Service):
                async for obj in client.list(resource, namespace=namespace,  # type: ignore[attr-defined]
                                             labels={"app.kubernetes.io/managed-by": "llmpack"}):
                    found.append(f"{obj.kind}/{obj.metadata.name}")
            return found or None

        await eventually(lambda: _is_none(leftovers()), within=60, what="nothing of either model left behind")
    finally:
        uninstall(cluster, crds)


async def _equal(value: Awaitable[Any], want: Any) -> bool:
    return await value == want


async def _is_none(value: Awaitable[Any]) -> bool:
    return await value is None


async def test_listeners_are_merged_into_the_gateway_without_touching_anyone_elses(
        cluster: LocalCluster, client: AsyncClient, namespace: str) -> None:
    crds = gateway_api_crds()
    install(cluster, crds)
    try:
        config = Config(base_domain="example.test", external_gateway_namespace=namespace,
                        internal_gateway_namespace=namespace, tls_secret_namespace="certs")
        [patch] = gateway_patches(config)  # both sides share one Gateway
        missing = await listeners.ensure(client, patch)
        assert missing is not None
        assert f"Gateway {namespace}/llm-gateway not found" in missing

        theirs = {"name": "http", "port": 80, "protocol": "HTTP"}
        cluster.kubectl("apply", "--server-side", "--field-manager=platform-team", "-f", "-", stdin=json.dumps({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "llm-gateway", "namespace": namespace},
            "spec": {"gatewayClassName": "envoy", "listeners": [theirs]}}))
        assert await listeners.ensure(client, patch) is None
        gateway = await client.get(GatewayResource, "llm-gateway", namespace=namespace)
        by_name = {item["name"]: item for item in gateway.spec["listeners"]}  # type: ignore[index]
        assert set(by_name) == {"http", "llm-https", "llm-internal-https"}
        assert by_name["http"].items() >= theirs.items()
        assert by_name["llm-https"]["hostname"] == "llm.example.test"
        assert by_name["llm-internal-https"]["tls"]["certificateRefs"] == [
            {"group": "", "kind": "Secret", "name": "llm-gateway-tls", "namespace": "certs"}]

        # In place already: nothing is written; the other team's next apply keeps our listeners.
        version = gateway.metadata.resourceVersion  # type: ignore[union-attr]
        assert await listeners.ensure(client, patch) is None
        after = await client.get(GatewayResource, "llm-gateway", namespace=namespace)
        assert after.metadata.resourceVersion == version  # type: ignore[union-attr]
        cluster.kubectl("apply", "--server-side", "--field-manager=platform-team", "-f", "-", stdin=json.dumps({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "llm-gateway", "namespace": namespace},
            "spec": {"gatewayClassName": "envoy", "listeners": [{**theirs, "port": 8080}]}}))
        final = await client.get(GatewayResource, "llm-gateway", namespace=namespace)
        assert [item["name"] for item in final.spec["listeners"]] == ["http", "llm-https", "llm-internal-https"]  # type: ignore[index]
    finally:
        uninstall(cluster, crds)
