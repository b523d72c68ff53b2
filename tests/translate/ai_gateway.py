"""What Envoy AI Gateway's controller makes of an AIGatewayRoute, for a translator that has no AI Gateway.

Assumption, from Envoy AI Gateway v1.1.0's `internal/controller/ai_gateway_route.go` (`newHTTPRoute`,
`generateHTTPRouteFilters`; v0.5.0 builds the same for our routes): each AIGatewayRoute becomes an HTTPRoute of
the same name and namespace with the route's parentRefs and hostnames, its labels and annotations; each rule
keeps its header matches under the root prefix `/`, its timeouts (request: 60s when unset) and its backendRefs
(an InferencePool is referenced as it is), and gets the host-rewrite HTTPRouteFilter; a last rule,
`route-not-found`, answers everything else with a 404 from a second HTTPRouteFilter. Both filters are
`ai-eg-host-rewrite-<route>` and `ai-eg-route-not-found-response-<route>` in the route's namespace.
What AI Gateway adds through Envoy Gateway's extension server (its external processor, which sets the model
header from the request body, and the InferencePool's cluster) is not part of this: egctl has no extension
server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

VERSION = "v1.1.0"
ROOT_PREFIX = "/"
DEFAULT_REQUEST_TIMEOUT = "60s"
NOT_FOUND_BODY = ("No matching route found. It is likely because the model specified in your request is not "
                  "configured in the Gateway.")


def host_rewrite_filter(route: str) -> str:
    return f"ai-eg-host-rewrite-{route}"


def not_found_filter(route: str) -> str:
    return f"ai-eg-route-not-found-response-{route}"


def _extension_ref(name: str) -> dict[str, Any]:
    return {"type": "ExtensionRef",
            "extensionRef": {"group": "gateway.envoyproxy.io", "kind": "HTTPRouteFilter", "name": name}}


def _backend(ref: dict[str, Any], namespace: str, services: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """An InferencePool is referenced as it is; an AIServiceBackend (no group, no kind) by the backendRef it
    holds (AI Gateway copies it)."""
    weight = {"weight": ref["weight"]} if "weight" in ref else {}
    if ref.get("kind") is None and ref["name"] in services:
        held = services[ref["name"]]["spec"]["backendRef"]
        return {**held, "namespace": held.get("namespace", namespace), **weight}
    return {"group": ref.get("group"), "kind": ref.get("kind"), "name": ref["name"],
            "namespace": ref.get("namespace", namespace), **weight}


def _rule(rule: dict[str, Any], route: dict[str, Any], services: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    namespace = route["metadata"]["namespace"]
    backends = [_backend(ref, namespace, services) for ref in rule.get("backendRefs", [])]
    timeouts = dict(rule.get("timeouts") or {})
    timeouts.setdefault("request", DEFAULT_REQUEST_TIMEOUT)
    out: dict[str, Any] = {
        "matches": [{"headers": match.get("headers", []), "path": {"type": "PathPrefix", "value": ROOT_PREFIX}}
                    for match in rule.get("matches", [])],
        "backendRefs": backends,
        "filters": [_extension_ref(host_rewrite_filter(route["metadata"]["name"]))],
        "timeouts": timeouts,
    }
    if "name" in rule:
        out["name"] = rule["name"]
    return out


def http_route(route: dict[str, Any], services: Mapping[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The HTTPRoute AI Gateway writes for `route` (an AIGatewayRoute as llmpack renders it); `services`: the
    AIServiceBackends of its namespace, by name (a PassthroughModel's)."""
    meta, spec = route["metadata"], route["spec"]
    priorities = ",".join(f"{i}:{ref['name']}:{ref.get('priority', 0)}" for i, rule in enumerate(spec["rules"])
                          for ref in rule.get("backendRefs", []))
    annotations = {**meta.get("annotations", {}), "gateway.envoyproxy.io/backend-ref-priority": priorities,
                   "gateway.envoyproxy.io/ai-gateway-generated": "true"}
    rules = [_rule(rule, route, services or {}) for rule in spec["rules"]]
    rules.append({"name": "route-not-found", "matches": [{"path": {"type": "PathPrefix", "value": ROOT_PREFIX}}],
                  "filters": [_extension_ref(not_found_filter(meta["name"]))]})
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": dict(meta.get("labels", {})),
                     "annotations": annotations},
        "spec": {"parentRefs": spec["parentRefs"], **({"hostnames": spec["hostnames"]} if "hostnames" in spec
                                                       else {}), "rules": rules},
    }


def route_filters(route: dict[str, Any]) -> list[dict[str, Any]]:
    """The two HTTPRouteFilters AI Gateway creates beside each HTTPRoute."""
    name, namespace = route["metadata"]["name"], route["metadata"]["namespace"]
    return [
        {"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "HTTPRouteFilter",
         "metadata": {"name": host_rewrite_filter(name), "namespace": namespace},
         "spec": {"urlRewrite": {"hostname": {"type": "Backend"}}}},
        {"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "HTTPRouteFilter",
         "metadata": {"name": not_found_filter(name), "namespace": namespace},
         "spec": {"directResponse": {"statusCode": 404, "body": {"type": "Inline", "inline": NOT_FOUND_BODY}}}},
    ]
