"""What the cluster would hold for a few models, built from the plan the operator applies, as egctl's input.

Per model, from `plan()` with the facts the operator would gather (every CRD, a Ready replica, its model id
its own, the namespace's key Secrets, this model's client ids): its SecurityPolicies and, for each
AIGatewayRoute, the HTTPRoute and HTTPRouteFilters AI Gateway writes for it (ai_gateway.py). Beside them what
others write: the key Secrets filled as a key manager fills them, the model's Service (from `render()`), the
Gateway with the listeners the operator merges into it (render/listeners.py) and their TLS Secret.

The InferencePool: Envoy Gateway resolves an HTTPRoute's InferencePool backend only through AI Gateway's
extension server (which egctl lacks), so as AI Gateway writes it the rule's backend is `InvalidKind` and the
rule answers 500 behind the same filters. `pool_stand_in=True` routes the rule to the model's Service instead:
the same vLLM pods on the same port, so a request that passes the filters reaches a cluster. egctl translates
with endpoint routing off (a Service's ClusterIP) and reads no EndpointSlices, so none are given.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from llmpack.api import LLMModel
from llmpack.api.passthrough import PassthroughModel
from llmpack.certs import KeyPair
from llmpack.config import Config
from llmpack.kinds import (
    AI_GATEWAY_ROUTE,
    AI_SERVICE_BACKEND,
    BACKEND,
    BACKEND_TLS_POLICY,
    INFERENCE_POOL,
    SECURITY_POLICY,
)
from llmpack.render import offline_facts, plan, render
from llmpack.render.auth import key_secret
from llmpack.render.listeners import gateway_patches
from llmpack.render.passthrough_plan import plan as passthrough_plan
from llmpack.render.serving import PORT
from tests.translate import ai_gateway

CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
GATEWAY_CLASS = "envoy-gateway"
CONFIG = Config(base_domain="example.test", oidc_issuer="https://id.example.test/realms/llm",
                oidc_audience="llm-api", manage_listeners=True)


@dataclass(frozen=True)
class Served:
    """A model and the keys a key manager wrote into its `<m>-api-keys` (client id -> API key)."""

    model: LLMModel
    keys: Mapping[str, str] = field(default_factory=dict)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _secret(meta: dict[str, Any], data: Mapping[str, str], kind: str = "Opaque") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": kind,
            "data": {k: _b64(v) for k, v in data.items()}}


def key_secret_of(model: LLMModel, keys: Mapping[str, str]) -> dict[str, Any]:
    return _secret(key_secret(model)["metadata"], keys)


def service(model: LLMModel, config: Config, cluster_ip: str) -> dict[str, Any]:
    """The model's Service as `render()` makes it, with the address the cluster gave it."""
    rendered = next(o for o in render(model, config) if o["kind"] == "Service")
    return {**rendered, "spec": {**rendered["spec"], "clusterIP": cluster_ip}}


def _pool_stand_in(route: dict[str, Any]) -> dict[str, Any]:
    """`route` with each InferencePool backend replaced by the Service of the same name on vLLM's port."""
    def backend(ref: dict[str, Any]) -> dict[str, Any]:
        if ref.get("kind") != INFERENCE_POOL.kind:
            return ref
        return {"group": "", "kind": "Service", "name": ref["name"], "namespace": ref["namespace"], "port": PORT}
    rules = [{**rule, "backendRefs": [backend(ref) for ref in rule.get("backendRefs", [])]}
             for rule in route["spec"]["rules"]]
    return {**route, "spec": {**route["spec"], "rules": rules}}


def gateway_objects(config: Config, tls: KeyPair) -> list[dict[str, Any]]:
    """The GatewayClass, each Gateway holding (only) the listeners the operator merges, and their TLS Secret."""
    objects: list[dict[str, Any]] = [
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": GATEWAY_CLASS},
         "spec": {"controllerName": CONTROLLER}}]
    for patch in gateway_patches(config):
        objects.append({**patch, "spec": {"gatewayClassName": GATEWAY_CLASS, **patch["spec"]}})
        namespace = patch["metadata"]["namespace"]
        objects.append(_secret({"name": config.tls_secret_name, "namespace": namespace},
                               {"tls.crt": tls.cert.read_text(), "tls.key": tls.key.read_text()},
                               "kubernetes.io/tls"))
    return objects


def model_objects(served: Served, config: Config, key_secrets: frozenset[str], *,
                  pool_stand_in: bool = True) -> list[dict[str, Any]]:
    """What the plan applies for one model that routing reaches, as the gateways see it."""
    # `render --routing`'s facts (a Ready replica, every CRD, the model id its own) and this namespace's keys.
    facts = replace(offline_facts(), key_secrets=key_secrets, client_ids=tuple(sorted(served.keys)))
    objects: list[dict[str, Any]] = []
    for obj in plan(served.model, config, facts).objects:
        if obj["kind"] == SECURITY_POLICY.kind:
            objects.append(obj)
        elif obj["kind"] == AI_GATEWAY_ROUTE.kind:
            route = ai_gateway.http_route(obj)
            objects += [_pool_stand_in(route) if pool_stand_in else route, *ai_gateway.route_filters(obj)]
    return objects


def passthrough_objects(pm: PassthroughModel, config: Config, key_secrets: frozenset[str],
                        client_ids: Iterable[str], created: str | None = None) -> list[dict[str, Any]]:
    """What the gateways see of a PassthroughModel's plan: its SecurityPolicies, Backend and BackendTLSPolicy,
    and its routes as AI Gateway writes them (created at `created`). Its AIServiceBackend only resolves the
    routes' backendRefs and its BackendSecurityPolicy is AI Gateway's alone (neither is Envoy Gateway's kind)."""
    facts = replace(offline_facts(), key_secrets=key_secrets, client_ids=tuple(sorted(client_ids)))
    applied = passthrough_plan(pm, config, facts).objects
    services = {o["metadata"]["name"]: o for o in applied if o["kind"] == AI_SERVICE_BACKEND.kind}
    objects: list[dict[str, Any]] = []
    for obj in applied:
        if obj["kind"] in (SECURITY_POLICY.kind, BACKEND.kind, BACKEND_TLS_POLICY.kind):
            objects.append(obj)
        elif obj["kind"] == AI_GATEWAY_ROUTE.kind:
            route = ai_gateway.http_route(obj, services)
            if created is not None:
                route["metadata"]["creationTimestamp"] = created
            objects += [route, *ai_gateway.route_filters(obj)]
    return objects


def cluster(models: Iterable[Served], tls: KeyPair, *, config: Config = CONFIG, retained: Iterable[Served] = (),
            pool_stand_in: bool = True) -> list[dict[str, Any]]:
    """Everything egctl is given: `models` are served; `retained` are models deleted whose key Secrets a key
    manager keeps for its grace period (they still exist, so every policy of their namespace names them)."""
    models, retained = list(models), list(retained)
    secrets = [key_secret_of(s.model, s.keys) for s in [*models, *retained]]
    objects = gateway_objects(config, tls) + secrets
    for index, served in enumerate(models):
        in_namespace = frozenset(s["metadata"]["name"] for s in secrets
                                 if s["metadata"]["namespace"] == served.model.namespace)
        objects += model_objects(served, config, in_namespace, pool_stand_in=pool_stand_in)
        objects.append(service(served.model, config, f"10.96.0.{10 + index}"))
    return objects
