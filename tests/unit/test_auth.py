"""Routes and policies as the Serving Pack names and wires them, with what it left out: owner references,
a configurable JWKS URI and audience, and no route that is open to a key of another model."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from llmpack.api import LLMModel, names
from llmpack.api.spec import DURATION_PATTERN
from llmpack.config import Config
from llmpack.render import auth
from tests.unit.factories import model
from tests.unit.strategies import model_bodies

CONFIG = Config(base_domain="example.org", external_gateway_name="public", external_gateway_namespace="gw",
                internal_gateway_name="private", internal_gateway_namespace="gw-internal",
                oidc_issuer="https://id.example.org/realms/main")


def test_routes_match_only_the_model_header_and_point_at_the_pool() -> None:
    m = model({"endpoints": {"requestTimeout": "15m"}})
    for side, gateway, listener in (("external", "public", "llm-https"), ("internal", "private", "llm-internal-https")):
        route = auth.route(m, CONFIG, side)  # type: ignore[arg-type]
        assert route["metadata"]["name"] == f"qwen-{side}"
        assert route["metadata"]["ownerReferences"][0]["kind"] == "LLMModel"
        assert route["spec"]["parentRefs"][0]["name"] == gateway
        assert route["spec"]["parentRefs"][0]["sectionName"] == listener
        [rule] = route["spec"]["rules"]
        assert rule["matches"] == [{"headers": [{"type": "Exact", "name": "x-ai-eg-model", "value": "Qwen/Qwen3-8B"}]}]
        assert rule["backendRefs"] == [{"group": "inference.networking.k8s.io", "kind": "InferencePool",
                                        "name": "qwen"}]
        assert rule["timeouts"] == {"request": "15m"}


def test_the_request_timeout_defaults_to_ten_minutes_not_the_gateways_sixty_seconds() -> None:
    assert auth.route(model(), CONFIG, "external")["spec"]["rules"][0]["timeouts"] == {"request": "600s"}


def test_external_policy_accepts_every_key_of_the_namespace_but_allows_only_this_models_clients() -> None:
    policy = auth.external_policy(model(), ["zeta-api-keys", "qwen-api-keys"], ["team-b", "team-a"])
    spec = policy["spec"]
    assert policy["metadata"]["name"] == "qwen-external-auth"
    assert spec["targetRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "qwen-external"}]
    keys = spec["apiKeyAuth"]
    assert [r["name"] for r in keys["credentialRefs"]] == ["qwen-api-keys", "zeta-api-keys"]
    assert keys["extractFrom"] == [{"headers": ["Authorization"]}]
    assert keys["forwardClientIDHeader"] == "x-llm-client-id"
    assert keys["sanitize"] is True
    assert spec["authorization"]["defaultAction"] == "Deny"
    [rule] = spec["authorization"]["rules"]
    assert rule["principal"]["headers"] == [{"name": "x-llm-client-id", "values": ["team-a", "team-b"]}]


def test_a_model_without_keys_denies_everyone() -> None:
    spec = auth.external_policy(model(), ["qwen-api-keys"], [])["spec"]
    assert spec["authorization"] == {"defaultAction": "Deny"}


def test_internal_policy_uses_the_configured_oidc_provider_and_allows_the_models_groups() -> None:
    config = CONFIG.model_copy(update={"oidc_audience": "llm", "oidc_jwks_uri": "https://id.example.org/jwks"})
    spec = auth.internal_policy(model({"access": {"groups": ["ml", "admins", "ml"]}}), config)["spec"]
    [provider] = spec["jwt"]["providers"]
    assert provider["issuer"] == "https://id.example.org/realms/main"
    assert provider["remoteJWKS"] == {"uri": "https://id.example.org/jwks"}
    assert provider["audiences"] == ["llm"]
    assert {"claim": "groups", "header": "X-Auth-Groups"} in provider["claimToHeaders"]
    assert {"claim": "preferred_username", "header": "X-Auth-User"} in provider["claimToHeaders"]
    [rule] = spec["authorization"]["rules"]
    assert rule["principal"]["jwt"]["claims"] == [{"name": "groups", "valueType": "StringArray",
                                                   "values": ["admins", "ml"]}]
    assert spec["authorization"]["defaultAction"] == "Deny"


def test_jwks_defaults_to_keycloaks_path_and_no_audience_is_set_unless_configured() -> None:
    [provider] = auth.internal_policy(model(), CONFIG)["spec"]["jwt"]["providers"]
    assert provider["remoteJWKS"]["uri"] == "https://id.example.org/realms/main/protocol/openid-connect/certs"
    assert "audiences" not in provider


def test_a_public_model_is_open_to_every_signed_in_user() -> None:
    spec = auth.internal_policy(model({"access": {"public": True, "groups": ["ml"]}}), CONFIG)["spec"]
    assert "authorization" not in spec
    assert spec["jwt"]["providers"][0]["name"] == "oidc"


def test_key_objects_are_empty_and_labelled_for_the_key_manager() -> None:
    secret, metadata = auth.key_secret(model()), auth.key_metadata(model())
    assert (secret["kind"], secret["metadata"]["name"]) == ("Secret", "qwen-api-keys")
    assert (metadata["kind"], metadata["metadata"]["name"]) == ("ConfigMap", "qwen-api-key-metadata")
    for obj in (secret, metadata):
        assert obj["metadata"]["labels"]["llm.nebari.dev/model-name"] == "qwen"
        assert not {"data", "stringData"} & obj.keys()
        assert obj["metadata"]["ownerReferences"][0]["name"] == "qwen"


def test_network_policy_admits_only_gateways_pickers_and_monitoring_to_vllm() -> None:
    policy = auth.network_policy(model(), CONFIG.model_copy(update={"monitoring_namespace": "obs"}))
    assert policy["metadata"]["name"] == "qwen-deny-direct"
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/instance": "qwen",
                                                   "app.kubernetes.io/name": "llmmodel"}}
    assert spec["policyTypes"] == ["Ingress"]
    [rule] = spec["ingress"]
    namespaces = [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                  for p in rule["from"] if "namespaceSelector" in p]
    assert namespaces == ["gw", "gw-internal", "obs"]
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "epp"}}} in rule["from"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]


@given(model_bodies(), st.lists(st.text("abcdef-", min_size=1, max_size=8), max_size=5))
def test_every_policy_targets_the_route_of_its_own_side(body: dict[str, Any], ids: list[str]) -> None:
    m = LLMModel.from_body(body)
    for side, policy in (("external", auth.external_policy(m, [names.api_keys(m.name)], ids)),
                         ("internal", auth.internal_policy(m, CONFIG))):
        route = auth.route(m, CONFIG, side)  # type: ignore[arg-type]
        assert policy["spec"]["targetRefs"][0]["name"] == route["metadata"]["name"]
        assert policy["metadata"]["namespace"] == route["metadata"]["namespace"]
        rules = policy["spec"].get("authorization", {}).get("rules", [])
        assert all(r["action"] == "Allow" for r in rules)
        if side == "external":
            allowed = {v for r in rules for h in r["principal"]["headers"] for v in h["values"]}
            assert allowed == set(ids)  # exactly this model's clients, never an empty match list
            assert policy["spec"]["authorization"]["defaultAction"] == "Deny"
        else:
            public = m.spec.access is not None and m.spec.access.public
            assert public == ("authorization" not in policy["spec"])


def test_go_durations_the_gateway_would_refuse_are_rewritten_to_the_same_length() -> None:
    assert auth.gateway_duration("600s") == "600s"
    assert auth.gateway_duration("1h30m") == "1h30m"
    assert auth.gateway_duration("1.5h") == "1h30m"
    assert auth.gateway_duration("2.5s") == "2s500ms"
    assert auth.gateway_duration("1500us") == "2ms"  # rounded up: never shorter than asked


@given(st.lists(st.tuples(st.integers(0, 500), st.sampled_from(["h", "m", "s", "ms", "us", "ns"])), min_size=1,
                max_size=4),
       st.booleans())
def test_every_accepted_duration_becomes_a_gateway_duration_no_shorter(parts: list[tuple[int, str]],
                                                                        fraction: bool) -> None:
    text = "".join(f"{n}{'.5' if fraction else ''}{unit}" for n, unit in parts)
    assert re.fullmatch(DURATION_PATTERN, text)  # what the CRD admits
    out = auth.gateway_duration(text)
    assert auth.GATEWAY_DURATION.match(out), out
    scale = {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1, "us": 1e-3, "ns": 1e-6}
    asked = sum((n + (0.5 if fraction else 0)) * scale[u] for n, u in parts)
    got = sum(int(n) * scale[u] for n, u in re.findall(r"([0-9]+)(h|ms|m|s)", out))
    assert asked - 1e-6 <= got < asked + 1 or (out == text and got == asked)
