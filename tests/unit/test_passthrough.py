"""PassthroughModel: the pack's manifest parses unchanged; its objects are rendered as the gateway needs them;
bad input is refused with the CRD's own words; a catch-all never comes before an exact id; no credential, no
route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from llmpack.api.passthrough import (
    ENDPOINTS_MESSAGE,
    HOSTNAME_RULES,
    MODELS_MESSAGE,
    PassthroughModel,
    PassthroughModelStatus,
    PassthroughPhase,
)
from llmpack.api.passthrough_crd import crd
from llmpack.assess.claims import CATCH_ALL, Claim, model_claim, owners, passthrough_claim
from llmpack.assess.passthrough import claim_fields, phase
from llmpack.assess.report import Report
from llmpack.config import Config
from llmpack.kinds import AI_GATEWAY_ROUTE, AI_SERVICE_BACKEND, BACKEND_SECURITY_POLICY
from llmpack.render import plan as llm_plan
from llmpack.render.passthrough_plan import BACKEND_CONFIGURED, plan
from llmpack.render.plan import Facts, offline_facts
from tests.unit.factories import model as llm_model

ROOT = Path(__file__).resolve().parents[2]
PACK_EXAMPLE = ROOT.parent / "shared" / "reference" / "serving-pack" / "examples" / "passthrough-openrouter.yaml"
CONFIG = Config(base_domain="example.org", oidc_issuer="https://id.example.org/realms/llm")


def example() -> dict[str, Any]:
    return dict(yaml.safe_load(PACK_EXAMPLE.read_text()))


def passthrough(**spec: Any) -> PassthroughModel:
    body = example()
    body["metadata"]["uid"] = "u-1"
    body["spec"] = {**body["spec"], **spec}
    return PassthroughModel.from_body(body)


def by_kind(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def test_the_checked_in_crd_is_what_the_models_generate() -> None:
    checked_in = ROOT / "charts/llmpack/crds/passthroughmodels.llm.nebari.dev.yaml"
    assert yaml.safe_load(checked_in.read_text()) == crd(), "run `make crd` and commit the result"


def test_the_packs_example_renders_every_object_with_the_packs_names_owned_and_labelled() -> None:
    objects = by_kind(plan(passthrough(), CONFIG, offline_facts()).objects)
    assert sorted(objects) == sorted([
        ("Backend", "openrouter-backend"), ("BackendTLSPolicy", "openrouter-backend-tls"),
        ("AIServiceBackend", "openrouter"), ("BackendSecurityPolicy", "openrouter-upstream-auth"),
        ("Secret", "openrouter-api-keys"), ("ConfigMap", "openrouter-api-key-metadata"),
        ("SecurityPolicy", "openrouter-external-auth"), ("AIGatewayRoute", "openrouter-external"),
        ("SecurityPolicy", "openrouter-internal-auth"), ("AIGatewayRoute", "openrouter-internal")])
    for obj in objects.values():
        meta = obj["metadata"]
        assert meta["ownerReferences"][0]["kind"] == "PassthroughModel"
        assert meta["labels"]["app.kubernetes.io/name"] == "passthroughmodel"
        assert meta["labels"]["llm.nebari.dev/model"] == "openrouter"
    assert objects["Backend", "openrouter-backend"]["spec"] == {
        "endpoints": [{"fqdn": {"hostname": "openrouter.ai", "port": 443}}]}
    assert objects["BackendTLSPolicy", "openrouter-backend-tls"]["spec"]["validation"] == {
        "wellKnownCACertificates": "System", "hostname": "openrouter.ai"}
    assert objects["AIServiceBackend", "openrouter"]["spec"]["schema"] == {"name": "OpenAI", "version": "api/v1"}
    assert objects["BackendSecurityPolicy", "openrouter-upstream-auth"]["spec"]["apiKey"] == {
        "secretRef": {"name": "openrouter-api-key"}}
    internal = objects["SecurityPolicy", "openrouter-internal-auth"]["spec"]["authorization"]
    assert internal["rules"][0]["principal"]["jwt"]["claims"][0]["values"] == ["llm"]


def test_declared_ids_are_matched_exactly_and_listed_once_and_the_catch_all_by_expression() -> None:
    objects = by_kind(plan(passthrough(), CONFIG, offline_facts()).objects)
    for side in ("external", "internal"):
        declared, catch_all = objects["AIGatewayRoute", f"openrouter-{side}"]["spec"]["rules"]
        assert [m["headers"] for m in declared["matches"]] == [
            [{"type": "Exact", "name": "x-ai-eg-model", "value": v}]
            for v in ("openai/gpt-5.2", "anthropic/claude-opus-4.6", "meta-llama/llama-4-maverick")]
        assert declared.get("modelsOwnedBy") == ("openrouter" if side == "external" else None)
        assert catch_all["matches"] == [{"headers": [{"type": "RegularExpression", "name": "x-ai-eg-model",
                                                      "value": ".+"}]}]
        assert catch_all["backendRefs"] == declared["backendRefs"] == [{"name": "openrouter"}]


def _envoy_gateway_order(rule_match: dict[str, Any]) -> tuple[int, int]:
    """Envoy Gateway's precedence among rules of equal path (internal/gatewayapi/sort.go): more header
    matches first, then more exact header matches; route age only after both."""
    headers = rule_match.get("headers") or []
    return len(headers), sum(1 for h in headers if h.get("type", "Exact") == "Exact")


def test_a_catch_all_comes_after_every_exact_id_served_in_the_cluster_whatever_the_routes_age() -> None:
    qwen = llm_model(name="qwen")
    served = llm_plan(qwen, CONFIG, offline_facts()).objects
    provider = plan(passthrough(), CONFIG, offline_facts()).objects
    matches = [(rule["backendRefs"][0]["name"], match) for obj in [*provider, *served]  # the passthrough is older
               if obj["kind"] == "AIGatewayRoute" and obj["metadata"]["name"].endswith("-external")
               for rule in obj["spec"]["rules"] for match in rule["matches"]]
    ordered = sorted(matches, key=lambda m: _envoy_gateway_order(m[1]), reverse=True)  # stable: age breaks ties
    assert ordered[-1][1]["headers"][0]["type"] == "RegularExpression"
    assert all(h["type"] == "Exact" for _, m in ordered[:-1] for h in m["headers"])
    assert ("qwen", {"headers": [{"type": "Exact", "name": "x-ai-eg-model", "value": qwen.spec.model.name}]}) in ordered


def test_without_its_credential_a_passthrough_gets_its_key_objects_and_no_backend_policy_or_route() -> None:
    missing = "Secret ns/openrouter-api-key has no key apiKey: add the provider's API key under that key"
    routing = plan(passthrough(), CONFIG, Facts(crds=offline_facts().crds, credential=missing, claims_known=True))
    kinds = sorted(o["kind"] for o in routing.objects)
    assert kinds == ["ConfigMap", "Secret"]
    backend = next(g for g in routing.groups if g.condition == BACKEND_CONFIGURED)
    assert backend.gate is not None
    assert backend.gate.problem.message == missing
    route = next(g for g in routing.groups if g.name == "external route")
    assert route.gate is not None
    assert route.gate.problem.reason == "BackendNotConfigured"
    assert missing in route.gate.problem.message


def test_objects_are_written_in_the_newest_version_the_gateway_serves() -> None:
    served = {kind.crd: ("v1alpha1", "v1beta1") for kind in (AI_GATEWAY_ROUTE, AI_SERVICE_BACKEND,
                                                            BACKEND_SECURITY_POLICY)}
    facts = Facts(crds=offline_facts().crds, served=served, claims_known=True)
    versions = {o["kind"]: o["apiVersion"] for o in plan(passthrough(), CONFIG, facts).objects}
    for kind in ("AIGatewayRoute", "AIServiceBackend", "BackendSecurityPolicy"):
        assert versions[kind] == "aigateway.envoyproxy.io/v1beta1"


@pytest.mark.parametrize(("hostname", "rule"), [("https://openrouter.ai", 0), ("openrouter.ai/api", 1),
                                                ("openrouter.ai:8443", 2)])
def test_a_hostname_with_a_scheme_path_or_port_is_refused_with_the_crds_words(hostname: str, rule: int) -> None:
    with pytest.raises(ValidationError) as caught:
        passthrough(provider={"hostname": hostname, "credentialSecretName": "k"})
    assert HOSTNAME_RULES[rule][1].removeprefix("spec.provider.hostname ") in str(caught.value)
    cel = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["provider"]
    assert HOSTNAME_RULES[rule][1] in [v["message"] for v in cel["x-kubernetes-validations"]]


def test_a_spec_that_routes_nothing_or_has_both_endpoints_off_is_refused() -> None:
    with pytest.raises(ValidationError, match="must route something"):
        passthrough(models={"catchAll": False})
    with pytest.raises(ValidationError, match=r"at least one of external\.enabled"):
        passthrough(endpoints={"external": {"enabled": False}, "internal": {"enabled": False}})
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    spec = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert MODELS_MESSAGE in [v["message"] for v in spec["x-kubernetes-validations"]]
    assert schema["endpoints"]["x-kubernetes-validations"][0]["message"] == ENDPOINTS_MESSAGE


def test_printer_columns_show_phase_provider_models_and_age() -> None:
    columns = [c["name"] for c in crd()["spec"]["versions"][0]["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["Phase", "Provider", "Models", "Age"]


def _report(type_: str, ok: bool, reason: str) -> Report:
    return Report(type_, ok, reason, "")


def test_phase_is_error_without_credential_pending_while_a_route_waits_and_ready_once_routed() -> None:
    backend_ok = _report(BACKEND_CONFIGURED, True, "Applied")
    assert phase((_report(BACKEND_CONFIGURED, False, "CredentialMissing"),)) is PassthroughPhase.ERROR
    assert phase((backend_ok, _report("ExternalEndpointReady", False, "CRDMissing"))) is PassthroughPhase.PENDING
    assert phase((backend_ok, _report("ExternalEndpointReady", True, "Applied"),
                  _report("InternalEndpointReady", False, "NotConfigured"))) is PassthroughPhase.READY
    assert phase((backend_ok, _report("ExternalEndpointReady", False, "EndpointDisabled"),
                  _report("InternalEndpointReady", False, "NotConfigured"))) is PassthroughPhase.ERROR


model_ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@given(declared=st.lists(model_ids, unique=True, max_size=20), catch_all=st.booleans(),
       hostname=st.lists(labels, min_size=1, max_size=4).map(".".join), port=st.integers(1, 65535))
def test_every_declared_id_and_only_those_are_routed_exactly_to_the_provider(
        declared: list[str], catch_all: bool, hostname: str, port: int) -> None:
    if not declared and not catch_all:
        return  # refused (above)
    pm = passthrough(provider={"hostname": hostname, "port": port, "credentialSecretName": "key"},
                     models={"catchAll": catch_all, "declared": declared})
    objects = by_kind(plan(pm, CONFIG, offline_facts()).objects)
    assert objects["Backend", "openrouter-backend"]["spec"]["endpoints"] == [
        {"fqdn": {"hostname": hostname, "port": port}}]
    rules = objects["AIGatewayRoute", "openrouter-external"]["spec"]["rules"]
    exact = [h["value"] for r in rules for m in r["matches"] for h in m["headers"] if h["type"] == "Exact"]
    assert exact == declared
    assert sum(h["type"] == "RegularExpression" for r in rules for m in r["matches"] for h in m["headers"]) == \
        int(catch_all)
    assert len(rules) <= 15  # AI Gateway v1.1's limit per route


def test_ids_another_object_owns_are_left_out_of_the_route_and_named_in_the_condition() -> None:
    owner = Claim("LLMModel", "team-a", "gpt", frozenset({"openai/gpt-5.2"}), "2026-01-01T00:00:00Z")
    facts = Facts(crds=offline_facts().crds, claims_known=True, taken={"openai/gpt-5.2": owner})
    routing = plan(passthrough(), CONFIG, facts)
    route = by_kind(routing.objects)["AIGatewayRoute", "openrouter-external"]
    assert "openai/gpt-5.2" not in [h["value"] for r in route["spec"]["rules"] for m in r["matches"]
                                    for h in m["headers"]]
    done = next(g for g in routing.groups if g.name == "external route").done
    assert "openai/gpt-5.2 is owned by LLMModel team-a/gpt, which claimed it first (2026-01-01T00:00:00Z)" in done


def test_a_passthrough_whose_every_id_and_catch_all_are_owned_elsewhere_gets_no_route_and_says_by_whom() -> None:
    pm = passthrough(models={"declared": ["openai/gpt-5.2"], "catchAll": True})
    older = Claim("PassthroughModel", "team-a", "first", frozenset({"openai/gpt-5.2"}), "2026-01-01T00:00:00Z",
                  catch_all=True)
    facts = Facts(crds=offline_facts().crds, claims_known=True, taken={"openai/gpt-5.2": older, CATCH_ALL: older})
    routing = plan(pm, CONFIG, facts)
    assert "AIGatewayRoute" not in [o["kind"] for o in routing.objects]
    closed = next(g for g in routing.groups if g.name == "external ids")
    assert closed.gate is not None
    assert closed.gate.problem.reason == "ModelIdConflict"
    assert "PassthroughModel team-a/first" in closed.gate.problem.message


def test_an_llmmodel_and_a_passthrough_declaring_one_id_the_older_owns_it_and_an_exact_id_beats_a_catch_all() -> None:
    def body(kind: str, name: str, created: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"kind": kind, "metadata": {"name": name, "namespace": "ns", "uid": name, "generation": 1,
                                           "creationTimestamp": created}, "spec": spec}

    llm = model_claim("LLMModel", body("LLMModel", "gpt", "2026-01-02T00:00:00Z", {"model": {"name": "gpt-5"}}),
                      previous=None, index={}, now="2026-01-03T00:00:00Z", after_known=False)
    pt = passthrough_claim(body("PassthroughModel", "openai", "2026-01-01T00:00:00Z",
                                {"models": {"declared": ["gpt-5"], "catchAll": True}}),
                           previous=None, index={}, now="2026-01-03T00:00:00Z", after_known=False)
    assert llm is not None
    assert pt is not None
    assert {t: str(c) for t, c in owners([llm, pt]).items()} == {
        "gpt-5": "PassthroughModel ns/openai", CATCH_ALL: "PassthroughModel ns/openai"}
    # The status the operator writes lets a restart decide the same way, even for an edited object.
    recorded = {"metadata": {"name": "openai", "namespace": "ns", "generation": 7,
                             "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"models": {"declared": ["gpt-5"], "catchAll": True}},
                "status": PassthroughModelStatus(**claim_fields(pt)).wire()}
    again = passthrough_claim(recorded, previous=None, index={}, now="2026-02-01T00:00:00Z", after_known=True)
    assert again is not None
    assert again.claimed_at == pt.claimed_at
