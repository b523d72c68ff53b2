"""How clients reach a model by name, and who may: Envoy AI Gateway routes on the shared hostnames, Envoy
Gateway SecurityPolicies (API keys outside, OIDC groups inside), the API-key Secret a key manager fills,
and a NetworkPolicy that keeps everyone else off the vLLM pods.

Names are the LLM Serving Pack's (api/names.py): AIGatewayRoute `<m>-external` / `<m>-internal`,
SecurityPolicy `<m>-external-auth` / `<m>-internal-auth` (each on the HTTPRoute that AI Gateway generates
under the route's name), Secret `<m>-api-keys`, ConfigMap `<m>-api-key-metadata`, NetworkPolicy
`<m>-deny-direct`. Which of them a model gets, and when, is the routing plan's decision (render/plan.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Literal

from llmpack.api import LLMModel, names
from llmpack.config import Config
from llmpack.kinds import AI_GATEWAY_ROUTE, GATEWAY, GATEWAY_API_GROUP, INFERENCE_POOL, SECURITY_POLICY
from llmpack.render.meta import metadata, selector_labels
from llmpack.render.serving import PORT
from llmpack.wellknown import MODEL_NAME_LABEL

Side = Literal["external", "internal"]
SIDES: tuple[Side, ...] = ("external", "internal")
MODEL_HEADER = "x-ai-eg-model"
CLIENT_ID_HEADER = "x-llm-client-id"
LISTENERS: dict[Side, str] = {"external": "llm-https", "internal": "llm-internal-https"}
HOST_PREFIX: dict[Side, str] = {"external": "llm", "internal": "llm-internal"}
OIDC_PROVIDER = "oidc"
# Gateway API durations (GEP-2257) are narrower than Go's, which the LLMModel accepts: no fractions, no µs.
GATEWAY_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
_GO_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def gateway_duration(text: str) -> str:
    """A Go duration as a Gateway API duration of the same length, rounded up to a whole millisecond."""
    if GATEWAY_DURATION.match(text):
        return text
    total = math.ceil(sum(float(n) * _MS[unit] for n, unit in _GO_PART.findall(text)) - 1e-9)
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def hostname(config: Config, side: Side) -> str | None:
    return f"{HOST_PREFIX[side]}.{config.base_domain}" if config.base_domain else None


def enabled(model: LLMModel, side: Side) -> bool:
    endpoints = model.spec.endpoints
    return (endpoints.external if side == "external" else endpoints.internal).enabled


def policy(model: LLMModel, config: Config, side: Side, credential_secrets: Sequence[str] = (),
           client_ids: Sequence[str] = ()) -> dict[str, Any]:
    if side == "external":
        return external_policy(model, credential_secrets, client_ids)
    return internal_policy(model, config)


def gateway(config: Config, side: Side) -> tuple[str, str]:
    """(namespace, name) of the Gateway that carries this side's listener."""
    if side == "external":
        return config.external_gateway_namespace, config.external_gateway_name
    return config.internal_gateway_namespace, config.internal_gateway_name


def route(model: LLMModel, config: Config, side: Side, version: str = AI_GATEWAY_ROUTE.version) -> dict[str, Any]:
    """`version`: the AIGatewayRoute version to write (the plan picks the newest the cluster serves)."""
    namespace, name = gateway(config, side)
    return {
        "apiVersion": AI_GATEWAY_ROUTE.api_version_at(version),
        "kind": AI_GATEWAY_ROUTE.kind,
        "metadata": metadata(model, names.route(model.name, side)),
        "spec": {
            "parentRefs": [{"group": GATEWAY.group, "kind": GATEWAY.kind, "name": name,
                            "namespace": namespace, "sectionName": LISTENERS[side]}],
            # Only the model header: AI Gateway v0.5 fails to register a rule with any other match.
            "rules": [{
                "matches": [{"headers": [{"type": "Exact", "name": MODEL_HEADER, "value": model.spec.model.name}]}],
                "backendRefs": [{"group": INFERENCE_POOL.group, "kind": INFERENCE_POOL.kind,
                                 "name": names.inference_pool(model.name)}],
                "timeouts": {"request": gateway_duration(model.spec.endpoints.request_timeout)},
            }],
        },
    }


def _policy(model: LLMModel, side: Side, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": SECURITY_POLICY.api_version,
        "kind": SECURITY_POLICY.kind,
        "metadata": metadata(model, names.policy(model.name, side)),
        "spec": {"targetRefs": [{"group": GATEWAY_API_GROUP, "kind": "HTTPRoute",
                                 "name": names.route(model.name, side)}], **spec},
    }


def external_policy(model: LLMModel, credential_secrets: Sequence[str], client_ids: Sequence[str]) -> dict[str, Any]:
    """Any key of the namespace authenticates; only this model's client ids are allowed through.

    `credential_secrets` are the namespace's `*-api-keys` Secrets known to exist (a missing one would make
    Envoy Gateway reject the whole policy); `client_ids` are the data keys of this model's Secret.
    """
    rules = [{"name": "model-clients", "action": "Allow",
              "principal": {"headers": [{"name": CLIENT_ID_HEADER, "values": sorted(client_ids)}]}}]
    return _policy(model, "external", {
        "apiKeyAuth": {
            "credentialRefs": [{"group": "", "kind": "Secret", "name": s} for s in sorted(credential_secrets)],
            "extractFrom": [{"headers": ["Authorization"]}],
            "forwardClientIDHeader": CLIENT_ID_HEADER,
            "sanitize": True,
        },
        # Header values need at least one item: a model without keys is simply denied to everyone.
        "authorization": {"defaultAction": "Deny", **({"rules": rules} if client_ids else {})},
    })


def internal_policy(model: LLMModel, config: Config) -> dict[str, Any]:
    provider: dict[str, Any] = {
        "name": OIDC_PROVIDER,
        "issuer": config.oidc_issuer,
        "remoteJWKS": {"uri": config.jwks_uri},
        "claimToHeaders": [{"claim": config.oidc_groups_claim, "header": "X-Auth-Groups"},
                           {"claim": config.oidc_username_claim, "header": "X-Auth-User"}],
    }
    if config.oidc_audience:
        provider["audiences"] = [config.oidc_audience]
    spec: dict[str, Any] = {"jwt": {"providers": [provider]}}
    access = model.spec.access
    if access is None or not access.public:
        groups = sorted(set(access.groups)) if access is not None else []
        rules = [{"name": "model-groups", "action": "Allow",
                  "principal": {"jwt": {"provider": OIDC_PROVIDER, "claims": [
                      {"name": config.oidc_groups_claim, "valueType": "StringArray", "values": groups}]}}}]
        spec["authorization"] = {"defaultAction": "Deny", **({"rules": rules} if groups else {})}
    return _policy(model, "internal", spec)


def key_object_metadata(model: LLMModel, name: str, *, owned: bool = True) -> dict[str, Any]:
    """Labelled for the key manager, which finds a model's key objects by MODEL_NAME_LABEL."""
    base = metadata(model, name, owned=owned)
    return {**base, "labels": {**base["labels"], MODEL_NAME_LABEL: model.name}}


def key_secret(model: LLMModel, *, owned: bool = True) -> dict[str, Any]:
    """Created empty for a key manager to fill (data key = client id, value = API key); never written after."""
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": key_object_metadata(model, names.api_keys(model.name), owned=owned), "type": "Opaque"}


def key_metadata(model: LLMModel, *, owned: bool = True) -> dict[str, Any]:
    """Created empty for a key manager to describe its keys in; the operator never writes its data."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": key_object_metadata(model, names.key_metadata(model.name), owned=owned)}


def api_key_objects(model: LLMModel) -> list[dict[str, Any]]:
    """The key objects owned by the model (no key manager to retire them)."""
    return [key_secret(model), key_metadata(model)]


def network_policy(model: LLMModel, config: Config) -> dict[str, Any]:
    """vLLM's port is open to the gateways, the namespace's endpoint pickers and monitoring; nothing else."""
    namespaces = sorted({*config.gateway_namespaces, *([config.monitoring_namespace] if config.monitoring_namespace
                                                       else [])})
    peers: list[dict[str, Any]] = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}} for ns in namespaces]
    peers.append({"podSelector": {"matchLabels": {"app.kubernetes.io/name": "epp"}}})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(model, names.network_policy(model.name)),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(model)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": PORT}]}],
        },
    }
