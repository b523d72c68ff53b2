"""PassthroughModel on a real control plane with the real CRDs (Envoy Gateway's Backend and SecurityPolicy from
its module, BackendTLSPolicy from the Gateway API standard channel, Envoy AI Gateway v0.5 then v1.1 from its
published CRDs), with the operator as the chart's ServiceAccount holding exactly the chart's RBAC.

The Serving Pack's own example applies unchanged and gets every object, owned; without its credential Secret
nothing is routed and the condition says which Secret and key; deleting it leaves nothing; beside an LLMModel
each exact id goes to its own backend (on the objects: no request path exists here); settled, it is quiet.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Secret

from llmpack.operator.kube import PassthroughModelResource
from llmpack_dev.cluster import LocalCluster
from llmpack_dev.crds import ai_gateway_crds, install, passthrough_crds, routing_crds
from tests.cluster import models
from tests.cluster.chart_operator import Gateway, chart_operator
from tests.cluster.conftest import ROOT
from tests.cluster.operator_process import settle_audit, writes_by
from tests.cluster.test_key_manager_rbac import NAMESPACE, OPERATOR_SA
from tests.cluster.test_operator_lifecycle import READY_WITHIN, ready_replicas
from tests.cluster.waiting import eventually

PACK_EXAMPLE = ROOT.parent / "shared" / "reference" / "serving-pack" / "examples" / "passthrough-openrouter.yaml"
PACK_NAMESPACE = "nebari-llm-serving-system"
IDLE_SECONDS = 60
# (kubectl resource, name) of every object the pack's example gets
OBJECTS = [("backends.gateway.envoyproxy.io", "openrouter-backend"),
           ("backendtlspolicies.gateway.networking.k8s.io", "openrouter-backend-tls"),
           ("aiservicebackends.aigateway.envoyproxy.io", "openrouter"),
           ("backendsecuritypolicies.aigateway.envoyproxy.io", "openrouter-upstream-auth"),
           ("securitypolicies.gateway.envoyproxy.io", "openrouter-external-auth"),
           ("securitypolicies.gateway.envoyproxy.io", "openrouter-internal-auth"),
           ("aigatewayroutes.aigateway.envoyproxy.io", "openrouter-external"),
           ("aigatewayroutes.aigateway.envoyproxy.io", "openrouter-internal"),
           ("secrets", "openrouter-api-keys"), ("configmaps", "openrouter-api-key-metadata")]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A control plane of its own (AI Gateway is upgraded in place here) with both of our CRDs and every
    third-party CRD a PassthroughModel needs; the operator runs with the chart's RBAC."""
    crds = [*routing_crds(), *passthrough_crds("v0.5.0")]
    with chart_operator(tmp_path_factory.mktemp("passthrough-cluster"), crds) as gateway:
        yield gateway


async def fresh_namespace(client: AsyncClient, name: str | None = None) -> str:
    name = name or f"t-{uuid.uuid4().hex[:8]}"
    await client.create(Namespace(metadata=ObjectMeta(name=name)))
    return name


async def credential(client: AsyncClient, namespace: str, name: str = "openrouter-api-key") -> None:
    await client.create(Secret(metadata=ObjectMeta(name=name, namespace=namespace),
                               stringData={"apiKey": "sk-or-v1-never-shown"}))


async def status(client: AsyncClient, name: str, namespace: str) -> dict[str, Any]:
    obj = (await client.get(PassthroughModelResource, name, namespace=namespace)).to_dict()  # type: ignore[no-untyped-call]
    return dict(obj.get("status") or {})


async def phase_is(client: AsyncClient, name: str, namespace: str, phase: str) -> dict[str, Any] | None:
    found = await status(client, name, namespace)
    return found if found.get("phase") == phase else None


def get(cluster: LocalCluster, resource: str, name: str, namespace: str) -> dict[str, Any] | None:
    out = cluster.kubectl("get", resource, name, "-n", namespace, "-o", "yaml", "--ignore-not-found",
                          "--show-managed-fields").stdout
    return yaml.safe_load(out) if out.strip() else None


async def found(cluster: LocalCluster, resource: str, name: str, namespace: str) -> dict[str, Any] | None:
    return get(cluster, resource, name, namespace)


def apply_passthrough(cluster: LocalCluster, name: str, namespace: str, spec: dict[str, Any]) -> None:
    body = {"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "PassthroughModel",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))


def release(cluster: LocalCluster, name: str, namespace: str) -> None:
    """Delete a PassthroughModel at the end of a test: claims are cluster-wide, and a later test's catch-all or
    declared ids must not find them owned."""
    cluster.kubectl("delete", "passthroughmodel", name, "-n", namespace, "--wait=false")


def no_secret_in(text: str) -> None:
    assert "sk-or-v1-never-shown" not in text


async def test_the_packs_example_applies_unchanged_reaches_ready_with_every_object_owned_and_is_then_quiet(
        gateway: Gateway, gw_client: AsyncClient) -> None:
    cluster, client = gateway.cluster, gw_client
    await fresh_namespace(client, PACK_NAMESPACE)
    await credential(client, PACK_NAMESPACE)
    cluster.kubectl("apply", "-f", str(PACK_EXAMPLE))  # unchanged
    ready = await eventually(lambda: phase_is(client, "openrouter", PACK_NAMESPACE, "Ready"), within=60,
                             what="the pack's PassthroughModel Ready")
    assert {c["type"]: (c["status"], c["reason"]) for c in ready["conditions"]} == {
        "BackendConfigured": ("True", "Applied"), "ExternalEndpointReady": ("True", "Applied"),
        "InternalEndpointReady": ("True", "Applied")}
    assert ready["endpoints"] == {"external": "https://llm.example.test", "internal": "https://llm-internal.example.test"}
    assert ready["models"] == "3 declared, catch-all"
    uid = cluster.kubectl("get", "passthroughmodel", "openrouter", "-n", PACK_NAMESPACE, "-o",
                          "jsonpath={.metadata.uid}").stdout
    for resource, name in OBJECTS:
        obj = get(cluster, resource, name, PACK_NAMESPACE)
        assert obj is not None, f"{resource} {name}"
        owner = obj["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("PassthroughModel", "openrouter", uid), name
    backend = get(cluster, "backends.gateway.envoyproxy.io", "openrouter-backend", PACK_NAMESPACE)
    assert backend is not None
    assert backend["spec"]["endpoints"] == [{"fqdn": {"hostname": "openrouter.ai", "port": 443}}]
    upstream = get(cluster, "backendsecuritypolicies.aigateway.envoyproxy.io", "openrouter-upstream-auth",
                   PACK_NAMESPACE)
    assert upstream is not None
    assert upstream["spec"]["apiKey"]["secretRef"]["name"] == "openrouter-api-key"
    printed = cluster.kubectl("get", "passthroughmodels", "-n", PACK_NAMESPACE).stdout
    assert printed.split()[:5] == ["NAME", "PHASE", "PROVIDER", "MODELS", "AGE"]
    assert "openrouter.ai" in printed

    # Settled, it causes no write at all.
    settle_audit(3)
    ours = f"/namespaces/{PACK_NAMESPACE}/"
    operator = f"system:serviceaccount:{NAMESPACE}:{OPERATOR_SA}"
    before = [w for w in writes_by(cluster.audit_log, operator) if ours in w]
    await asyncio.sleep(IDLE_SECONDS)
    settle_audit()
    during = [w for w in writes_by(cluster.audit_log, operator) if ours in w][len(before):]
    assert during == [], f"{len(during)} writes while idle, e.g. {during[:5]}"
    events = cluster.kubectl("get", "events", "-n", PACK_NAMESPACE, "-o", "yaml").stdout
    no_secret_in(events + gateway.operator.log.read_text() + yaml.safe_dump(ready))
    assert [line for line in gateway.operator.log.read_text().splitlines() if "forbidden" in line.lower()] == []
    release(cluster, "openrouter", PACK_NAMESPACE)


async def test_without_its_credential_nothing_is_routed_and_the_condition_names_the_secret_and_key(
        gateway: Gateway, gw_client: AsyncClient) -> None:
    cluster, client = gateway.cluster, gw_client
    namespace = await fresh_namespace(client)
    spec = {"provider": {"hostname": "api.openai.com", "credentialSecretName": "openai"},
            "models": {"declared": ["gpt-5"]}, "access": {"public": True}}
    apply_passthrough(cluster, "openai", namespace, spec)
    failed = await eventually(lambda: phase_is(client, "openai", namespace, "Error"), within=30,
                              what="Error without the credential Secret")
    backend = next(c for c in failed["conditions"] if c["type"] == "BackendConfigured")
    assert (backend["status"], backend["reason"]) == ("False", "CredentialMissing")
    assert f"Secret openai not found in namespace {namespace}" in backend["message"]
    assert "--from-literal=apiKey=" in backend["message"]
    for resource in ("aigatewayroutes.aigateway.envoyproxy.io", "securitypolicies.gateway.envoyproxy.io",
                     "backends.gateway.envoyproxy.io", "aiservicebackends.aigateway.envoyproxy.io"):
        assert cluster.kubectl("get", resource, "-n", namespace, "-o", "name").stdout.strip() == "", resource
    assert get(cluster, "secrets", "openai-api-keys", namespace) is not None  # keys can be issued meanwhile

    # A Secret without the key: the condition names the key.
    await client.create(Secret(metadata=ObjectMeta(name="openai", namespace=namespace), stringData={"token": "x"}))
    await eventually(lambda: _message_has(client, "openai", namespace, "has no key apiKey"), within=30,
                     what="the message naming the missing key")
    assert get(cluster, "aigatewayroutes.aigateway.envoyproxy.io", "openai-external", namespace) is None

    # With the key, it is routed (rechecked without any change to the PassthroughModel).
    await client.patch(Secret, "openai", {"stringData": {"apiKey": "sk-never-shown"}}, namespace=namespace)
    await eventually(lambda: phase_is(client, "openai", namespace, "Ready"), within=45, what="Ready with the key")
    assert get(cluster, "aigatewayroutes.aigateway.envoyproxy.io", "openai-external", namespace) is not None

    # Deleting it leaves nothing behind.
    cluster.kubectl("delete", "passthroughmodel", "openai", "-n", namespace)

    async def nothing_left() -> bool:
        names = cluster.kubectl("get", ",".join(r for r, _ in OBJECTS), "-n", namespace, "-o", "name",
                                "-l", "llm.nebari.dev/model=openai").stdout.split()
        return names == []

    await eventually(nothing_left, within=60, what="every object of the PassthroughModel gone")
    with pytest.raises(ApiError):
        await client.get(Secret, "openai-api-keys", namespace=namespace)


async def _message_has(client: AsyncClient, name: str, namespace: str, words: str) -> bool:
    found = await status(client, name, namespace)
    return any(words in c.get("message", "") for c in found.get("conditions") or [])


def _exact_ids(route: dict[str, Any]) -> dict[str, str]:
    """model id -> the backend its exact match sends it to."""
    return {h["value"]: rule["backendRefs"][0]["name"] for rule in route["spec"]["rules"]
            for m in rule["matches"] for h in m["headers"] if h.get("type", "Exact") == "Exact"}


async def test_beside_an_llmmodel_each_exact_id_goes_to_its_own_backend_and_the_catch_all_comes_last(
        gateway: Gateway, gw_client: AsyncClient) -> None:
    cluster, client = gateway.cluster, gw_client
    namespace = await fresh_namespace(client)
    await credential(client, namespace)
    models.apply(cluster, "qwen", namespace)
    apply_passthrough(cluster, "openrouter", namespace, {
        "provider": {"hostname": "openrouter.ai", "schemaVersion": "api/v1", "credentialSecretName":
                     "openrouter-api-key"},
        "models": {"catchAll": True, "declared": ["openai/gpt-5.2"]}, "access": {"groups": ["llm"]}})
    await eventually(lambda: ready_replicas(client, "qwen", namespace, 1), within=READY_WITHIN, what="qwen Ready")
    await eventually(lambda: phase_is(client, "openrouter", namespace, "Ready"), within=45, what="openrouter Ready")
    await eventually(lambda: found(cluster, "aigatewayroutes.aigateway.envoyproxy.io", "qwen-external", namespace),
                     within=60, what="qwen's route")
    served = get(cluster, "aigatewayroutes.aigateway.envoyproxy.io", "qwen-external", namespace)
    provider = get(cluster, "aigatewayroutes.aigateway.envoyproxy.io", "openrouter-external", namespace)
    assert served is not None
    assert provider is not None
    qwen_id = models.manifest("qwen", namespace)["spec"]["model"]["name"]
    assert _exact_ids(served) == {qwen_id: "qwen"}
    assert _exact_ids(provider) == {"openai/gpt-5.2": "openrouter"}
    # The catch-all: one header match, not exact, so Envoy Gateway orders it after every exact id.
    catch_all = provider["spec"]["rules"][-1]["matches"]
    assert catch_all == [{"headers": [{"type": "RegularExpression", "name": "x-ai-eg-model", "value": ".+"}]}]
    # One key pool per namespace: each external policy accepts both kinds' key Secrets.
    for policy in ("qwen-external-auth", "openrouter-external-auth"):
        auth = get(cluster, "securitypolicies.gateway.envoyproxy.io", policy, namespace)
        assert auth is not None
        assert [r["name"] for r in auth["spec"]["apiKeyAuth"]["credentialRefs"]] == [
            "openrouter-api-keys", "qwen-api-keys"], policy
    release(cluster, "openrouter", namespace)


async def test_after_an_upgrade_to_ai_gateway_v1_1_its_objects_are_written_in_v1beta1(
        gateway: Gateway, gw_client: AsyncClient) -> None:
    cluster, client = gateway.cluster, gw_client
    namespace = await fresh_namespace(client)
    await credential(client, namespace)
    apply_passthrough(cluster, "router", namespace, {
        "provider": {"hostname": "openrouter.ai", "credentialSecretName": "openrouter-api-key"},
        "models": {"catchAll": True}, "access": {"public": True}})
    await eventually(lambda: phase_is(client, "router", namespace, "Ready"), within=45, what="Ready on v0.5")
    install(cluster, ai_gateway_crds("v1.1.0"))

    missing: list[str] = []

    async def rewritten() -> bool:
        missing[:] = []
        for resource, name in (("aigatewayroutes", "router-external"), ("aiservicebackends", "router"),
                               ("backendsecuritypolicies", "router-upstream-auth")):
            obj = get(cluster, f"{resource}.v1beta1.aigateway.envoyproxy.io", name, namespace) or {}
            fields = obj.get("metadata", {}).get("managedFields") or []
            if not any(f.get("manager") == "llmpack" and f.get("apiVersion") == "aigateway.envoyproxy.io/v1beta1"
                       for f in fields):
                missing.append(f"{resource} {name}: {[(f.get('manager'), f.get('apiVersion')) for f in fields]}")
        return not missing

    try:
        await eventually(rewritten, within=60, what="route, AIServiceBackend and upstream policy written in v1beta1")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {missing}") from None
    assert (await status(client, "router", namespace))["phase"] == "Ready"
    release(cluster, "router", namespace)


async def test_the_api_server_refuses_a_hostname_with_a_scheme_a_spec_routing_nothing_and_both_sides_off(
        gateway: Gateway, gw_client: AsyncClient) -> None:
    cluster = gateway.cluster
    namespace = await fresh_namespace(gw_client)
    cases = [({"provider": {"hostname": "https://openrouter.ai", "credentialSecretName": "k"},
               "models": {"catchAll": True}, "access": {}}, "remove the scheme (https://)"),
             ({"provider": {"hostname": "openrouter.ai", "credentialSecretName": "k"}, "access": {}},
              "spec.models must route something"),
             ({"provider": {"hostname": "openrouter.ai", "credentialSecretName": "k"}, "models": {"catchAll": True},
               "access": {}, "endpoints": {"external": {"enabled": False}, "internal": {"enabled": False}}},
              "at least one of external.enabled and internal.enabled must be true")]
    for spec, words in cases:
        body = {"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "PassthroughModel",
                "metadata": {"name": "bad", "namespace": namespace}, "spec": spec}
        refused = cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body), check=False)
        assert refused.returncode != 0
        assert words in refused.stderr


async def test_an_llmmodel_and_a_passthrough_declaring_one_id_the_older_routes_it_until_it_is_deleted(
        gateway: Gateway, gw_client: AsyncClient) -> None:
    cluster, client = gateway.cluster, gw_client
    served, provider = await fresh_namespace(client), await fresh_namespace(client)
    qwen_id = f"Qwen/{served}"  # an id of this test's own: claims are cluster-wide
    models.apply(cluster, "qwen", served, {"model": {"name": qwen_id}})
    await eventually(lambda: found(cluster, "aigatewayroutes.aigateway.envoyproxy.io", "qwen-external", served),
                     within=READY_WITHIN + 30, what="the LLMModel's route")
    await credential(client, provider)
    apply_passthrough(cluster, "provider", provider, {
        "provider": {"hostname": "api.example.com", "credentialSecretName": "openrouter-api-key"},
        "models": {"declared": [qwen_id, "other/model"]}, "access": {"public": True}})
    ready = await eventually(lambda: phase_is(client, "provider", provider, "Ready"), within=45,
                             what="the PassthroughModel Ready for the id it owns")
    assert (ready["modelIds"], ready["catchAll"]) == (sorted([qwen_id, "other/model"]), False)
    external = next(c for c in ready["conditions"] if c["type"] == "ExternalEndpointReady")
    assert f"{qwen_id} is owned by LLMModel {served}/qwen, which claimed it first" in external["message"]
    route = get(cluster, "aigatewayroutes.aigateway.envoyproxy.io", "provider-external", provider)
    assert route is not None
    assert _exact_ids(route) == {"other/model": "provider"}

    # The owner goes: within seconds the PassthroughModel routes the id too.
    cluster.kubectl("delete", "llmmodel", "qwen", "-n", served)

    async def handed_over() -> bool:
        route = get(cluster, "aigatewayroutes.aigateway.envoyproxy.io", "provider-external", provider) or {}
        return bool(route) and _exact_ids(route) == {qwen_id: "provider", "other/model": "provider"}

    await eventually(handed_over, within=30, what="the id handed over to the PassthroughModel")
