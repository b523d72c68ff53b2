"""What Envoy would do with one request, read off the configuration egctl translated: the listener and
virtual host for the request's hostname, the first route that matches it, then the route's HTTP filters in
the listener's order, and the router.

Only the filters our policies produce are modelled, as Envoy implements them (source named in each); any
other filter enabled on the route, any matcher or option not modelled here, fails the test rather than being
passed over, so a change in what Envoy Gateway emits cannot pass unnoticed.
- `api_key_auth` (source/extensions/filters/http/api_key_auth/api_key_auth.cc): the key is the first
  configured header's value (a leading `Bearer ` stripped); missing or unknown: 401; the matched credential's
  client is written into the forwarding header with `setCopy`, which replaces whatever the client sent
  (envoy/http/header_map.h: "If there are multiple values for one header, this removes all existing values
  and add the new one"); `hide_credentials` removes the key's header before the request goes on.
- `jwt_authn`: a token is required unless the requirement allows a missing one; its signature and expiry are
  Envoy's to check against the JWKS (a live gateway's part); a token is taken as signed here when its
  issuer and audience are the provider's, and its payload lands in the filter's metadata under the provider's
  `payload_in_metadata`.
- `rbac` with a unified matcher (xds.type.matcher.v3): the first matcher whose predicate holds decides;
  none: `on_no_match`. DENY gives 403. A route without its own RBAC config gets the listener's, which Envoy
  Gateway leaves empty (nothing enforced).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.translate.egctl import Translation

API_KEY_AUTH = "envoy.filters.http.api_key_auth"
JWT_AUTHN = "envoy.filters.http.jwt_authn"
RBAC = "envoy.filters.http.rbac"
ROUTER = "envoy.filters.http.router"
HCM = "envoy.filters.network.http_connection_manager"


class Unmodelled(AssertionError):
    """The configuration holds something this model of Envoy does not know: read it and extend the model."""


@dataclass(frozen=True)
class Request:
    host: str
    headers: Mapping[str, str] = field(default_factory=dict)  # as the client sends them, names in any case
    path: str = "/v1/chat/completions"
    token: Mapping[str, Any] | None = None  # the payload of a JWT from the client (signature taken as valid)


@dataclass(frozen=True)
class Outcome:
    status: int  # 200: handed to the router for `cluster`; else Envoy's own answer
    cluster: str | None = None
    upstream: Mapping[str, str] = field(default_factory=dict)  # the headers the upstream would get
    route: str | None = None  # the name of the matched route


def _typed(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """A per-route config (`FilterConfig` wraps one with `disabled`) or an Any, unwrapped."""
    if config.get("@type", "").endswith("envoy.config.route.v3.FilterConfig"):
        return dict(config.get("config", {}))
    return config


def _listeners(t: Translation, gateway: str) -> list[dict[str, Any]]:
    return [item["activeState"]["listener"] for item in t.resources_of(gateway, "ListenersConfigDump")]


def _route_configs(t: Translation, gateway: str) -> dict[str, dict[str, Any]]:
    return {item["routeConfig"]["name"]: item["routeConfig"] for item in t.resources_of(gateway, "RoutesConfigDump")}


def hcm(t: Translation, gateway: str, host: str) -> dict[str, Any]:
    """The HTTP connection manager of the TLS filter chain that serves `host` (by SNI)."""
    found = []
    for listener in _listeners(t, gateway):
        for chain in listener.get("filterChains", []):
            if host in chain.get("filterChainMatch", {}).get("serverNames", []):
                found += [f["typedConfig"] for f in chain["filters"] if f["name"] == HCM]
    if len(found) != 1:
        raise Unmodelled(f"{len(found)} filter chains serve {host}")
    return dict(found[0])


def routes(t: Translation, gateway: str, host: str) -> list[dict[str, Any]]:
    """The routes of the virtual host that serves `host`, in the order Envoy tries them."""
    config = _route_configs(t, gateway)[hcm(t, gateway, host)["rds"]["routeConfigName"]]
    hosts = [vh for vh in config.get("virtualHosts", []) if any(_domain_matches(d, host) for d in vh["domains"])]
    return list(hosts[0].get("routes", [])) if hosts else []


def per_route(route: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A route's per-filter configs, by filter name."""
    return {name: _typed(cfg) for name, cfg in route.get("typedPerFilterConfig", {}).items()}


def clusters(t: Translation, gateway: str) -> dict[str, dict[str, Any]]:
    return {item["cluster"]["name"]: item["cluster"] for item in t.resources_of(gateway, "ClustersConfigDump")}


def values_of(tree: object, key: str) -> list[Any]:
    """Every value of `key` anywhere in a JSON tree."""
    if isinstance(tree, Mapping):
        return [v for k, v in tree.items() if k == key] + [x for v in tree.values() for x in values_of(v, key)]
    if isinstance(tree, list):
        return [x for v in tree for x in values_of(v, key)]
    return []


def _domain_matches(pattern: str, host: str) -> bool:
    return pattern in ("*", host) or (pattern.startswith("*.") and host.endswith(pattern[1:]))


def _header_matches(matcher: Mapping[str, Any], headers: Mapping[str, str]) -> bool:
    allowed = {"name", "stringMatch"}
    string_match = matcher.get("stringMatch", {})
    if set(matcher) - allowed or set(string_match) - {"exact", "safeRegex"} or len(string_match) != 1:
        raise Unmodelled(f"route header matcher {matcher}")
    value = headers.get(matcher["name"].lower())
    if value is None:
        return False
    if "safeRegex" in string_match:  # RE2 matches the whole value, as fullmatch does (for what we write)
        return re.fullmatch(string_match["safeRegex"]["regex"], value) is not None
    return bool(value == string_match["exact"])


def _route_matches(match: Mapping[str, Any], request: Request, headers: Mapping[str, str]) -> bool:
    if set(match) - {"prefix", "pathSeparatedPrefix", "headers"}:
        raise Unmodelled(f"route match {match}")
    if "prefix" in match and not request.path.startswith(match["prefix"]):
        return False
    if "pathSeparatedPrefix" in match:
        prefix = match["pathSeparatedPrefix"]
        if not (request.path == prefix or request.path.startswith(prefix.rstrip("/") + "/")):
            return False
    return all(_header_matches(h, headers) for h in match.get("headers", []))


def _api_key_auth(config: Mapping[str, Any], headers: dict[str, str]) -> int | None:
    if set(config) - {"@type", "credentials", "keySources", "forwarding"}:
        raise Unmodelled(f"api_key_auth {sorted(config)}")
    sources = [s["header"].lower() for s in config.get("keySources", []) if set(s) == {"header"}]
    if len(sources) != len(config.get("keySources", [])) or not sources:
        raise Unmodelled(f"api_key_auth key sources {config.get('keySources')}")
    key = next((headers[s] for s in sources if headers.get(s)), "")
    key = key.removeprefix("Bearer ")
    if not key:
        return 401
    clients = [c["client"] for c in config.get("credentials", []) if c["key"] == key]
    if not clients:
        return 401
    forwarding = config.get("forwarding", {})
    if forwarding.get("header"):
        headers[forwarding["header"].lower()] = clients[0]
    if forwarding.get("hideCredentials"):
        for source in sources:
            headers.pop(source, None)
    return None


def _jwt_authn(hcm_config: Mapping[str, Any], route_config: Mapping[str, Any], request: Request,
               metadata: dict[str, Any]) -> int | None:
    name = route_config.get("requirementName")
    if set(route_config) - {"@type", "requirementName"} or name is None:
        raise Unmodelled(f"jwt_authn per route {route_config}")
    requirement = hcm_config["requirementMap"][name]
    if set(requirement) != {"providerName"}:  # a missing token is never allowed here
        raise Unmodelled(f"jwt requirement {requirement}")
    provider = hcm_config["providers"][requirement["providerName"]]
    if request.token is None:
        return 401
    audiences = provider.get("audiences")
    if request.token.get("iss") != provider["issuer"] or (audiences and request.token.get("aud") not in audiences):
        return 401
    metadata[provider["payloadInMetadata"]] = dict(request.token)
    return None


def _input(predicate: Mapping[str, Any], headers: Mapping[str, str], metadata: Mapping[str, Any]) -> Any:
    typed = predicate["input"]["typedConfig"]
    kind = typed["@type"].rsplit(".", 1)[-1]
    if kind == "HttpRequestHeaderMatchInput":
        return headers.get(typed["headerName"].lower())
    if kind == "DynamicMetadataInput" and typed["filter"] == JWT_AUTHN:
        value: Any = metadata
        for segment in typed["path"]:
            value = value.get(segment["key"]) if isinstance(value, dict) else None
        return value
    raise Unmodelled(f"matcher input {typed}")


def _string_match(matcher: Mapping[str, Any], value: Any) -> bool:
    if set(matcher) - {"exact", "ignoreCase"} or "exact" not in matcher:
        raise Unmodelled(f"string matcher {matcher}")
    if not isinstance(value, str):
        return False
    expected = str(matcher["exact"])
    if matcher.get("ignoreCase"):
        return value.lower() == expected.lower()
    return value == expected


def _value_match(matcher: Mapping[str, Any], value: Any) -> bool:
    if "stringMatch" in matcher:
        return _string_match(matcher["stringMatch"], value)
    if "listMatch" in matcher:
        return isinstance(value, list) and any(_value_match(matcher["listMatch"]["oneOf"], v) for v in value)
    raise Unmodelled(f"value matcher {matcher}")


def _predicate(predicate: Mapping[str, Any], headers: Mapping[str, str], metadata: Mapping[str, Any]) -> bool:
    if "orMatcher" in predicate:
        return any(_predicate(p, headers, metadata) for p in predicate["orMatcher"]["predicate"])
    if "andMatcher" in predicate:
        return all(_predicate(p, headers, metadata) for p in predicate["andMatcher"]["predicate"])
    single = predicate.get("singlePredicate")
    if single is None:
        raise Unmodelled(f"predicate {predicate}")
    value = _input(single, headers, metadata)
    if "valueMatch" in single:
        return _string_match(single["valueMatch"], value)
    custom = single.get("customMatch", {}).get("typedConfig", {})
    if custom.get("@type", "").endswith("envoy.extensions.matching.input_matchers.metadata.v3.Metadata"):
        return _value_match(custom["value"], value) != bool(custom.get("invert"))
    raise Unmodelled(f"single predicate {single}")


def _action(on_match: Mapping[str, Any]) -> str:
    typed = on_match["action"]["typedConfig"]
    if not typed["@type"].endswith("envoy.config.rbac.v3.Action"):
        raise Unmodelled(f"rbac action {typed}")
    return str(typed.get("action", "ALLOW"))


def _rbac(config: Mapping[str, Any], headers: Mapping[str, str], metadata: Mapping[str, Any]) -> int | None:
    """`config`: the route's RBACPerRoute, or the listener's RBAC when the route has none."""
    if config.get("@type", "").endswith("RBACPerRoute"):
        if set(config) - {"@type", "rbac"}:
            raise Unmodelled(f"rbac per route {sorted(config)}")
        config = config.get("rbac", {})
    if set(config) - {"@type", "matcher"}:
        raise Unmodelled(f"rbac {sorted(config)}")
    if "matcher" not in config:
        return None  # Envoy's RBAC proto: with neither rules nor matcher "no enforcing RBAC policy will be applied"
    matcher = config["matcher"]
    if set(matcher) - {"matcherList", "onNoMatch"}:
        raise Unmodelled(f"rbac matcher {sorted(matcher)}")
    decided = matcher["onNoMatch"]
    for field_matcher in matcher.get("matcherList", {}).get("matchers", []):
        if _predicate(field_matcher["predicate"], headers, metadata):
            decided = field_matcher["onMatch"]
            break
    return None if _action(decided) == "ALLOW" else 403


def send(t: Translation, gateway: str, request: Request) -> Outcome:
    """What Envoy would answer `request` with, through `gateway`'s configuration."""
    manager = hcm(t, gateway, request.host)
    headers = {k.lower(): v for k, v in request.headers.items()}
    route = next((r for r in routes(t, gateway, request.host) if _route_matches(r["match"], request, headers)), None)
    if route is None:
        return Outcome(404)
    configs = per_route(route)
    metadata: dict[str, Any] = {}
    for http_filter in manager["httpFilters"]:
        name, hcm_config = http_filter["name"], http_filter.get("typedConfig", {})
        if name == ROUTER:
            break
        if http_filter.get("disabled") and name not in configs:
            continue  # off unless the route turns it on
        if name == API_KEY_AUTH:
            refused = _api_key_auth(configs.get(name, hcm_config), headers)
        elif name == JWT_AUTHN:
            refused = _jwt_authn(hcm_config, configs[name], request, metadata)
        elif name == RBAC:
            refused = _rbac(configs.get(name, hcm_config), headers, metadata)
        else:
            raise Unmodelled(f"HTTP filter {name} is on for route {route.get('name')}")
        if refused:
            return Outcome(refused, route=route.get("name"))
    if "directResponse" in route:
        return Outcome(int(route["directResponse"]["status"]), route=route.get("name"))
    action = route["route"]
    if set(action) & {"weightedClusters", "clusterHeader", "clusterSpecifierPlugin"}:
        raise Unmodelled(f"route action {sorted(action)}")
    return Outcome(200, cluster=action["cluster"], upstream=headers, route=route.get("name"))
