"""The routing plan, walked as the operator walks it, for every example and every gate state, without a
cluster: what is applied in which order, what each condition says, and what `render --routing` prints."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmpack.api import LLMModel
from llmpack.assess.claims import Claim
from llmpack.assess.report import Problem
from llmpack.assess.routing import Routes
from llmpack.config import Config
from llmpack.manifests import load_models
from llmpack.operator.routes import walk
from llmpack.render import Facts, Plan, offline_facts, plan
from llmpack.render.plan import MONITOR_CRD, POLICY_CRD, POOL_CRD, ROUTE_CRD, Group, reads_keys
from tests.unit.factories import model
from tests.unit.strategies import model_bodies

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [m for path in sorted((ROOT / "examples").glob("*.yaml")) for m in load_models([path])]
OIDC = Config(base_domain="example.org", oidc_issuer="https://id.example.org/realms/main")
EVERY_CRD = frozenset({POOL_CRD, POLICY_CRD, ROUTE_CRD})


def known(**facts: Any) -> Facts:
    """Facts of an operator that holds every model id claim (what `Facts` alone does not assume)."""
    return Facts(claims_known=True, **facts)


OWNER = Claim("LLMModel", "team-a", "qwen", frozenset({"(the example's id)"}), "2026-01-01T00:00:00Z")


def for_example(facts: Facts, example: LLMModel) -> Facts:
    """The facts, with the ids they say another object owns being the example's own."""
    return replace(facts, taken=dict.fromkeys([example.spec.model.name], OWNER) if facts.taken else {})


# (facts, the reason of InferencePoolReady, of ExternalEndpointReady, of InternalEndpointReady)
STATES: dict[str, tuple[Facts, str, str, str]] = {
    "nothing yet": (known(), "CRDMissing", "WaitingForReplica", "WaitingForReplica"),
    "no CRD": (known(ready=1), "CRDMissing", "CRDMissing", "CRDMissing"),
    "no replica": (known(crds=EVERY_CRD), "WaitingForReplica", "WaitingForReplica", "WaitingForReplica"),
    "pool CRD only": (known(crds=frozenset({POOL_CRD}), ready=1), "Applied", "CRDMissing", "CRDMissing"),
    "no AI Gateway": (known(crds=frozenset({POOL_CRD, POLICY_CRD}), ready=1, client_ids=()), "Applied",
                      "CRDMissing", "CRDMissing"),
    "keys unreadable": (known(crds=EVERY_CRD, ready=1, keys_unreadable="forbidden"), "Applied", "ApplyFailed",
                        "Applied"),
    "keys known": (known(crds=EVERY_CRD, ready=1, client_ids=("team-a",)), "Applied", "Applied", "Applied"),
    "no key Secret yet": (offline_facts(), "Applied", "Applied", "Applied"),
    "claims unknown": (Facts(crds=EVERY_CRD, ready=1, client_ids=("team-a",)), "Applied", "ClaimsUnknown",
                       "ClaimsUnknown"),
    "id owned elsewhere": (replace(offline_facts(), taken={None: OWNER}), "Applied", "ModelIdConflict",
                           "ModelIdConflict"),
}


def walked(p: Plan, refuse: str | None = None) -> tuple[Routes, list[str], list[str]]:
    """Walk `p` as the operator does, recording the groups carried out and the objects removed; the group
    named `refuse` is refused by the server."""
    carried: list[str] = []
    removed: list[str] = []

    async def carry_out(group: Group) -> Problem | None:
        carried.append(group.name)
        return Problem("ApplyFailed", "refused") if group.name == refuse else None

    async def remove(group: Group) -> None:
        removed.extend(f"{ref.kind}/{ref.name}" for ref in group.removes)

    return asyncio.run(walk(p, carry_out, remove)), carried, removed


def reasons(routes: Routes) -> dict[str, str]:
    return {r.type: r.reason for r in routes.reports}


@pytest.mark.parametrize("state", sorted(STATES))
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda m: m.name)
def test_every_example_reports_each_gate_and_applies_policies_before_routes(example: LLMModel, state: str) -> None:
    facts, pool, external, internal = STATES[state]
    facts = for_example(facts, example)
    routes, carried, removed = walked(plan(example, OIDC, facts))
    assert reasons(routes) == {"InferencePoolReady": pool, "ExternalEndpointReady": external,
                               "InternalEndpointReady": internal}
    assert routes.failed == (state == "keys unreadable")  # only what the server refused is tried again soon
    # Only a model whose id another owns loses its routes, each before its policy; and what a switched-off
    # option leaves behind is removed (the router deletes only what is there).
    assert removed == ([f"{kind}/{example.name}-{side}{suffix}" for side in ("external", "internal")
                        for kind, suffix in (("AIGatewayRoute", ""), ("SecurityPolicy", "-auth"))]
                       if state == "id owned elsewhere" else []) + (
        [] if example.spec.serving.monitoring.enabled else [f"PodMonitor/{example.name}"])
    for side in ("external", "internal"):
        if f"{side} route" in carried:  # a route is carried out only after its policy went through
            assert carried.index(f"{side} policy") < carried.index(f"{side} route")
        ok = reasons(routes)[f"{side.capitalize()}EndpointReady"] == "Applied"
        assert (side in routes.endpoints) == ok
        assert ok == (f"{side} route" in carried)
    assert ("external keys" in carried) == (state != "keys unreadable")  # from the first reconcile on
    assert reads_keys(example, OIDC, facts) == (state in ("no AI Gateway", "keys unreadable", "keys known",
                                                     "no key Secret yet"))


def test_a_gate_names_what_it_waits_for_and_every_missing_crd_of_its_side() -> None:
    p = plan(model(), OIDC, known(crds=frozenset({POOL_CRD}), ready=1))
    gates = {g.name: g.gate for g in p.groups if g.gate}
    assert set(gates) == {"external policy", "external route", "internal policy", "internal route"}
    assert {gate.name for gate in gates.values()} == {"CRDs present"}
    message = gates["external policy"].problem.message  # type: ignore[union-attr]
    assert POLICY_CRD in message
    assert ROUTE_CRD in message
    assert POOL_CRD not in message
    assert "Envoy Gateway" in message
    assert "the model still serves inside the cluster" in message


def test_a_refused_policy_keeps_its_route_closed_and_says_why() -> None:
    routes, carried, _ = walked(plan(model(), OIDC, offline_facts()), refuse="external policy")
    assert "external route" not in carried
    assert "internal route" in carried  # the other side is not held back
    assert reasons(routes)["ExternalEndpointReady"] == "ApplyFailed"
    assert "external" not in routes.endpoints
    assert routes.failed  # the pass is retried: nothing we watch announces that the refusal was lifted


def test_a_disabled_side_removes_its_route_before_its_policy_and_nothing_else() -> None:
    m = model({"endpoints": {"external": {"enabled": False}}})
    routes, carried, removed = walked(plan(m, OIDC, offline_facts()))
    assert removed == ["AIGatewayRoute/qwen-external", "SecurityPolicy/qwen-external-auth", "PodMonitor/qwen"]
    assert reasons(routes)["ExternalEndpointReady"] == "EndpointDisabled"
    # The key objects stay, as the Serving Pack keeps them: keys issued meanwhile work once the side is on.
    assert [name for name in carried if name.startswith("external")] == ["external keys"]
    assert reasons(routes)["InternalEndpointReady"] == "Applied"
    assert not reads_keys(m, OIDC, offline_facts())


def test_without_an_oidc_issuer_the_internal_side_is_removed_and_not_configured() -> None:
    routes, _, removed = walked(plan(model(), Config(), offline_facts()))
    assert removed == ["AIGatewayRoute/qwen-internal", "SecurityPolicy/qwen-internal-auth", "PodMonitor/qwen"]
    assert reasons(routes)["InternalEndpointReady"] == "NotConfigured"
    assert routes.endpoints == {}  # no base domain: routes are applied, no URL is claimed
    assert reasons(routes)["ExternalEndpointReady"] == "Applied"


def test_the_key_secret_is_created_only_while_missing_and_every_known_secret_authenticates() -> None:
    missing = plan(model(), OIDC, offline_facts())
    present = plan(model(), OIDC, known(crds=EVERY_CRD, ready=1, key_secrets=frozenset({"llama-api-keys"}),
                                        client_ids=("team-a",)))
    for p, creates in ((missing, ["qwen-api-keys"]), (present, [])):
        [keys] = [g for g in p.groups if g.name == "external keys"]
        assert [o["metadata"]["name"] for o in keys.creates] == creates
        assert [o["kind"] for o in keys.applies] == ["ConfigMap"]
    [policy] = [o for o in present.objects if o["metadata"]["name"] == "qwen-external-auth"]
    assert [r["name"] for r in policy["spec"]["apiKeyAuth"]["credentialRefs"]] == ["llama-api-keys", "qwen-api-keys"]
    assert policy["spec"]["authorization"]["rules"][0]["principal"]["headers"][0]["values"] == ["team-a"]


def test_the_offline_plan_holds_every_object_policies_before_routes() -> None:
    objects = [(o["kind"], o["metadata"]["name"]) for o in plan(model(), OIDC, offline_facts()).objects]
    assert objects.index(("InferencePool", "qwen")) < objects.index(("AIGatewayRoute", "qwen-external"))
    assert objects[-6:] == [("Secret", "qwen-api-keys"), ("ConfigMap", "qwen-api-key-metadata"),
                            ("SecurityPolicy", "qwen-external-auth"), ("AIGatewayRoute", "qwen-external"),
                            ("SecurityPolicy", "qwen-internal-auth"), ("AIGatewayRoute", "qwen-internal")]


def test_with_a_key_manager_key_objects_outlive_the_model_and_its_role_follows_the_key_metadata() -> None:
    config = OIDC.model_copy(update={"key_manager_service_account": "llmpack/llmpack-key-manager"})

    def keys(facts: Facts) -> Group:
        [group] = [g for g in plan(model(), config, facts).groups if g.name == "external keys"]
        return group

    first = keys(offline_facts())
    assert [o["kind"] for o in first.objects] == ["Secret", "ConfigMap"]
    assert all("ownerReferences" not in o["metadata"] for o in first.objects)
    later = keys(replace(offline_facts(), key_metadata_uid="cm-uid"))  # the ConfigMap exists: its uid owns the Role
    assert [o["kind"] for o in later.applies] == ["ConfigMap", "Role", "RoleBinding"]
    assert later.applies[1]["metadata"]["ownerReferences"][0]["uid"] == "cm-uid"
    no_replica = keys(Facts(key_metadata_uid="cm-uid"))  # nor any CRD: keys can be issued before the model serves
    assert [o["kind"] for o in no_replica.objects] == ["Secret", "ConfigMap", "Role", "RoleBinding"]


def test_a_model_whose_id_another_owns_keeps_its_pool_and_keys_but_gets_no_policies_or_routes() -> None:
    owner = Claim("LLMModel", "team-a", "qwen", frozenset({"Qwen/Qwen3-8B"}), "2026-01-01T00:00:00Z")
    routes, carried, removed = walked(plan(model(), OIDC, replace(offline_facts(), taken={"Qwen/Qwen3-8B": owner})))
    # Still serves in its namespace: the pool stays, ready for the id to come back, and so do its key objects
    # (keys can be issued before a model is routed, as before it is Ready).
    assert carried == ["pool", "external keys", "monitoring off"]
    assert removed == ["AIGatewayRoute/qwen-external", "SecurityPolicy/qwen-external-auth",
                       "AIGatewayRoute/qwen-internal", "SecurityPolicy/qwen-internal-auth", "PodMonitor/qwen"]
    for report in routes.reports[1:]:
        assert (report.ok, report.reason) == (False, "ModelIdConflict")
        assert report.message.startswith("model id Qwen/Qwen3-8B is owned by LLMModel team-a/qwen, which claimed "
                                         "it first (2026-01-01T00:00:00Z)")
    assert routes.endpoints == {}
    assert not reads_keys(model(), OIDC, replace(offline_facts(), taken={"Qwen/Qwen3-8B": owner}))


def test_a_side_turned_off_says_so_rather_than_who_owns_its_id() -> None:
    owner = Claim("LLMModel", "team-a", "qwen", frozenset({"Qwen/Qwen3-8B"}), "2026-01-01T00:00:00Z")
    m = model({"endpoints": {"internal": {"enabled": False}}})
    routes, _, _ = walked(plan(m, OIDC, replace(offline_facts(), taken={"Qwen/Qwen3-8B": owner})))
    assert reasons(routes)["InternalEndpointReady"] == "EndpointDisabled"
    assert reasons(routes)["ExternalEndpointReady"] == "ModelIdConflict"


@given(model_bodies(), st.sampled_from(["owned elsewhere", "claims unknown", "own"]), st.booleans(),
       st.sampled_from([OIDC, Config()]))
def test_whatever_the_model_a_route_or_policy_exists_in_its_plan_only_while_its_id_is_its_own(
        body: dict[str, Any], claims: str, ready: bool, config: Config) -> None:
    m = LLMModel.from_body(body)
    owner = Claim("LLMModel", "team-a", "first", frozenset({m.spec.model.name}), "2026-01-01T00:00:00Z")
    facts = {"owned elsewhere": known(crds=EVERY_CRD, ready=int(ready), taken={m.spec.model.name: owner}),
             "claims unknown": Facts(crds=EVERY_CRD, ready=int(ready)),
             "own": known(crds=EVERY_CRD, ready=int(ready))}[claims]
    p = plan(m, config, facts)
    kinds = {o["kind"] for o in p.objects}
    removed = {f"{ref.kind}/{ref.name}" for g in p.groups for ref in g.removes}
    if claims != "own":
        # The pool and its picker, the key objects: no policy, no route.
        assert not kinds & {"AIGatewayRoute", "SecurityPolicy"}
    if claims == "claims unknown":  # nothing is decided, nothing removed but what is turned off
        assert all(g.name.endswith(" off") for g in p.groups if g.removes)
    routes_and_policies = {f"AIGatewayRoute/{m.name}-{side}" for side in ("external", "internal")} | {
        f"SecurityPolicy/{m.name}-{side}-auth" for side in ("external", "internal")}
    if claims == "owned elsewhere":
        assert routes_and_policies <= removed


def test_key_objects_exist_from_the_first_reconcile_whatever_the_replicas_crds_or_side() -> None:
    for spec in ({}, {"endpoints": {"external": {"enabled": False}}}):
        p = plan(model(spec), OIDC, Facts())  # nothing Ready, no CRD installed
        [keys] = [g for g in p.groups if g.name == "external keys"]
        assert keys.gate is None
        assert [(o["kind"], o["metadata"]["name"]) for o in keys.objects] == [
            ("Secret", "qwen-api-keys"), ("ConfigMap", "qwen-api-key-metadata")]
    # Known to exist (created earlier, or found by a create that conflicted): never created again.
    known = plan(model(), OIDC, Facts(key_secrets=frozenset({"qwen-api-keys"})))
    [keys] = [g for g in known.groups if g.name == "external keys"]
    assert keys.creates == ()
    assert not reads_keys(model(), OIDC, Facts())  # the keys are read only for a policy that names them


def test_monitoring_adds_an_owned_pod_monitor_once_its_crd_exists_and_says_so_until_then() -> None:
    m = model({"serving": {"monitoring": {"enabled": True}}}, uid="u-1")
    missing, _, _ = walked(plan(m, OIDC, Facts()))
    [report] = [r for r in missing.reports if r.type == "MonitoringReady"]
    assert (report.ok, report.reason) == (False, "CRDMissing")
    assert "podmonitors.monitoring.coreos.com" in report.message
    assert "Prometheus Operator" in report.message
    installed = plan(m, OIDC, Facts(crds=frozenset({MONITOR_CRD})))
    routes, carried, removed = walked(installed)
    assert reasons(routes)["MonitoringReady"] == "Applied"
    assert "monitoring" in carried
    assert removed == []
    [monitor] = [o for o in installed.objects if o["kind"] == "PodMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["name"] == "qwen"
    assert monitor["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    # Only vLLM's pods (the picker and the download pod share the instance label), on vLLM's port 8000.
    assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/instance": "qwen",
                                                         "app.kubernetes.io/name": "llmmodel"}
    assert monitor["spec"]["podMetricsEndpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]


def test_without_monitoring_there_is_no_pod_monitor_and_no_condition_about_it() -> None:
    p = plan(model(), OIDC, Facts(crds=frozenset({MONITOR_CRD})))
    routes, _, removed = walked(p)
    assert "MonitoringReady" not in reasons(routes)
    assert "MonitoringReady" not in p.conditions
    assert removed == ["PodMonitor/qwen"]
    assert not [o for o in p.objects if o["kind"] == "PodMonitor"]


@pytest.mark.parametrize(("served", "version"), [
    ((), "v1alpha1"),  # not known: the version every AI Gateway release serves
    (("v1alpha1",), "v1alpha1"),  # v0.5, which the Serving Pack installs
    (("v1alpha1", "v1beta1"), "v1beta1"),  # v1.1: v1alpha1 is deprecated
    (("v1beta1",), "v1beta1"),
])
def test_routes_are_written_in_the_newest_version_the_gateway_serves(served: tuple[str, ...], version: str) -> None:
    facts = replace(offline_facts(), served={ROUTE_CRD: served} if served else {})
    routes = [o for o in plan(model(), OIDC, facts).objects if o["kind"] == "AIGatewayRoute"]
    assert [o["apiVersion"] for o in routes] == [f"aigateway.envoyproxy.io/{version}"] * 2
