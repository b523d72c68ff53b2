"""What a PassthroughModel puts in front of its provider, as pure functions of the spec (render/plan.py orders
and gates them). Names are the LLM Serving Pack's:

- Envoy Gateway `Backend` `<p>-backend`: the provider's FQDN and port;
- Gateway API `BackendTLSPolicy` `<p>-backend-tls`: TLS to it, checked against the system CAs, SNI = hostname;
- Envoy AI Gateway `AIServiceBackend` `<p>`: OpenAI schema, with the provider's path prefix as its version;
- `BackendSecurityPolicy` `<p>-upstream-auth`: the provider's key, from the credential Secret (key `apiKey`);
- `AIGatewayRoute` `<p>-external` / `<p>-internal`: declared ids matched exactly, and the catch-all.

The catch-all. Envoy Gateway orders the rules of one listener by path, then by the number of header matches,
then by the number of *exact* header matches (then by age). Every exact id (an LLMModel, a declared id) is one
exact match on the model header; the catch-all is one RegularExpression match on the same header. So it
always comes after every exact id, whichever route is older, and before AI Gateway's own `route-not-found`
rules (no header match). Neither AI Gateway release lists a regular-expression rule in /v1/models, which is
right: it names no model. (The Serving Pack matched the catch-all on the Host header: a rule with as many
headers as an exact id, ordered against them by route age, which its own comment found receives no traffic.)
"""

from __future__ import annotations

from typing import Any

from llmpack.api import names
from llmpack.api.passthrough import PassthroughModel
from llmpack.config import Config
from llmpack.kinds import AI_GATEWAY_ROUTE, AI_SERVICE_BACKEND, BACKEND, BACKEND_SECURITY_POLICY, BACKEND_TLS_POLICY
from llmpack.kinds import GATEWAY as GATEWAY_KIND
from llmpack.render.auth import LISTENERS, MODEL_HEADER, Side, gateway, gateway_duration
from llmpack.render.meta import metadata

CATCH_ALL = ".+"  # any model id at all: ordered after every exact id (see above)
OPENAI_SCHEMA = "OpenAI"


def _backend_ref(pm: PassthroughModel) -> dict[str, Any]:
    return {"group": BACKEND.group, "kind": BACKEND.kind, "name": names.provider_backend(pm.name)}


def backend(pm: PassthroughModel) -> dict[str, Any]:
    provider = pm.spec.provider
    return {
        "apiVersion": BACKEND.api_version, "kind": BACKEND.kind,
        "metadata": metadata(pm, names.provider_backend(pm.name)),
        "spec": {"endpoints": [{"fqdn": {"hostname": provider.hostname, "port": provider.port}}]},
    }


def backend_tls(pm: PassthroughModel) -> dict[str, Any]:
    return {
        "apiVersion": BACKEND_TLS_POLICY.api_version, "kind": BACKEND_TLS_POLICY.kind,
        "metadata": metadata(pm, names.provider_tls(pm.name)),
        "spec": {"targetRefs": [_backend_ref(pm)],
                 "validation": {"wellKnownCACertificates": "System", "hostname": pm.spec.provider.hostname}},
    }


def ai_service_backend(pm: PassthroughModel, version: str = AI_SERVICE_BACKEND.version) -> dict[str, Any]:
    return {
        "apiVersion": AI_SERVICE_BACKEND.api_version_at(version), "kind": AI_SERVICE_BACKEND.kind,
        "metadata": metadata(pm, names.ai_service_backend(pm.name)),
        "spec": {"schema": {"name": OPENAI_SCHEMA, "version": pm.spec.provider.schema_version},
                 "backendRef": _backend_ref(pm)},
    }


def upstream_auth(pm: PassthroughModel, version: str = BACKEND_SECURITY_POLICY.version) -> dict[str, Any]:
    """Names the credential Secret only: the key itself is read by the gateway, never by us."""
    return {
        "apiVersion": BACKEND_SECURITY_POLICY.api_version_at(version), "kind": BACKEND_SECURITY_POLICY.kind,
        "metadata": metadata(pm, names.upstream_auth(pm.name)),
        "spec": {"targetRefs": [{"group": AI_SERVICE_BACKEND.group, "kind": AI_SERVICE_BACKEND.kind,
                                 "name": names.ai_service_backend(pm.name)}],
                 "type": "APIKey", "apiKey": {"secretRef": {"name": pm.spec.provider.credential_secret_name}}},
    }


def provider_objects(pm: PassthroughModel, ai_version: str = AI_SERVICE_BACKEND.version) -> tuple[dict[str, Any], ...]:
    """Dependencies first: the Backend, its TLS, the AIServiceBackend that names it, its upstream key."""
    return backend(pm), backend_tls(pm), ai_service_backend(pm, ai_version), upstream_auth(pm, ai_version)


def route(pm: PassthroughModel, config: Config, side: Side, *, declared: tuple[str, ...], catch_all: bool,
          version: str = AI_GATEWAY_ROUTE.version) -> dict[str, Any]:
    """`declared` and `catch_all`: what this side routes (the ids this PassthroughModel owns on the Gateway).
    Declared ids are listed by /v1/models as owned by the PassthroughModel, on the external route only: the
    list is per Gateway and would name them twice."""
    namespace, name = gateway(config, side)
    target = {"backendRefs": [{"name": names.ai_service_backend(pm.name)}],
              "timeouts": {"request": gateway_duration(pm.spec.endpoints.request_timeout)}}
    rules: list[dict[str, Any]] = []
    if declared:
        rules.append({"matches": [{"headers": [{"type": "Exact", "name": MODEL_HEADER, "value": model}]}
                                  for model in declared], **target,
                      **({"modelsOwnedBy": pm.name} if side == "external" else {})})
    if catch_all:
        rules.append({"matches": [{"headers": [{"type": "RegularExpression", "name": MODEL_HEADER,
                                                "value": CATCH_ALL}]}], **target})
    return {
        "apiVersion": AI_GATEWAY_ROUTE.api_version_at(version), "kind": AI_GATEWAY_ROUTE.kind,
        "metadata": metadata(pm, names.route(pm.name, side)),
        "spec": {"parentRefs": [{"group": GATEWAY_KIND.group, "kind": GATEWAY_KIND.kind, "name": name,
                                 "namespace": namespace, "sectionName": LISTENERS[side]}],
                 "rules": rules},
    }
