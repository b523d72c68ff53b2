"""Per-model API keys through Envoy Gateway's own translator (egctl v1.6.3): every key Secret of a namespace is
pooled into each external policy, yet each model's route lets through exactly its own clients."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from llmpack.certs import KeyPair
from llmpack.render.auth import CLIENT_ID_HEADER
from tests.translate.clients import EXTERNAL_HOST, GATEWAY, cluster_of, with_key
from tests.translate.cluster_state import Served, cluster
from tests.translate.conftest import Translate
from tests.translate.egctl import Translation
from tests.translate.envoy import API_KEY_AUTH, RBAC, ROUTER, hcm, per_route, routes, values_of
from tests.unit.factories import model

ALPHA = Served(model({"model": {"name": "acme/alpha-8b"}}, name="alpha"),
               {"alpha-app": "sk-alpha-app-0001", "alpha-batch": "sk-alpha-batch-0002"})
BETA = Served(model({"model": {"name": "acme/beta-70b"}}, name="beta"), {"beta-app": "sk-beta-app-0003"})
# Another namespace: its Secret is pooled into its own namespace's policies only.
GAMMA = Served(model({"model": {"name": "acme/gamma-1b"}}, name="gamma", namespace="elsewhere"),
               {"gamma-app": "sk-gamma-app-0004"})
NO_KEYS = Served(model({"model": {"name": "acme/no-keys"}}, name="no-keys"))
SERVED = (ALPHA, BETA, GAMMA, NO_KEYS)


def unordered(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Per-route configs with api_key_auth's credentials sorted (Envoy Gateway lists them in Go map order)."""
    out: dict[str, Any] = dict(configs)
    if API_KEY_AUTH in out:
        auth = dict(out[API_KEY_AUTH])
        auth["credentials"] = sorted(auth["credentials"], key=lambda c: (c["client"], c["key"]))
        out[API_KEY_AUTH] = auth
    return out


@pytest.fixture(scope="module")
def gateway(egctl: Translate, tls: KeyPair) -> Translation:
    return egctl(cluster(SERVED, tls))


@pytest.mark.parametrize("target", [ALPHA, BETA], ids=lambda s: s.model.name)
def test_each_models_route_lets_through_exactly_its_own_clients(gateway: Translation, target: Served) -> None:
    for served in (ALPHA, BETA, GAMMA):
        for client, key in served.keys.items():
            outcome = with_key(gateway, target, key)
            if served is target:
                assert (outcome.status, outcome.cluster) == (200, cluster_of(target, "external")), client
                assert outcome.upstream[CLIENT_ID_HEADER] == client
            elif served.model.namespace == target.model.namespace:
                assert outcome.status == 403, f"{client}'s key authenticates but is not allowed on {target.model.name}"
            else:
                assert outcome.status == 401, f"{client}'s key is unknown outside its namespace"


def test_a_key_that_belongs_to_no_model_is_refused(gateway: Translation) -> None:
    for key in ("sk-never-issued", "", None):
        assert with_key(gateway, ALPHA, key).status == 401
    assert with_key(gateway, ALPHA, "sk-alpha-app-0001-and-more").status == 401  # keys match whole


def test_a_model_without_keys_lets_no_key_through(gateway: Translation) -> None:
    for served in (ALPHA, BETA):
        for key in served.keys.values():
            assert with_key(gateway, NO_KEYS, key).status == 403


def test_the_policies_are_accepted_and_the_routes_resolved(gateway: Translation) -> None:
    for served in SERVED:
        namespace, name = served.model.namespace or "", served.model.name
        for side in ("external", "internal"):
            policy = gateway.status("securityPolicies", namespace, f"{name}-{side}-auth")
            [ancestor] = policy["ancestors"]
            assert {c["type"]: c["status"] for c in ancestor["conditions"]} == {"Accepted": "True"}, ancestor
            [parent] = gateway.status("httpRoutes", namespace, f"{name}-{side}")["parents"]
            assert {c["type"]: c["status"] for c in parent["conditions"]} == {"Accepted": "True",
                                                                               "ResolvedRefs": "True"}, parent


def test_a_client_id_sent_by_the_client_is_replaced_by_the_one_of_its_key(gateway: Translation) -> None:
    # B's key claiming to be one of A's clients: api_key_auth writes beta-app over it, RBAC refuses.
    assert with_key(gateway, ALPHA, BETA.keys["beta-app"], x_llm_client_id="alpha-app").status == 403
    # No key at all: refused before any rule reads the header.
    assert with_key(gateway, ALPHA, None, x_llm_client_id="alpha-app").status == 401
    # A's own key claiming another id reaches A as itself.
    outcome = with_key(gateway, ALPHA, ALPHA.keys["alpha-batch"], x_llm_client_id="beta-app")
    assert (outcome.status, outcome.upstream[CLIENT_ID_HEADER]) == (200, "alpha-batch")


def test_only_api_key_auth_runs_before_the_rule_that_reads_the_client_id(gateway: Translation) -> None:
    """Nothing between the client and the RBAC rule could set the header: the chain is exactly this, and the
    header the rule matches is the one api_key_auth writes."""
    assert EXTERNAL_HOST
    chain = [f["name"] for f in hcm(gateway, GATEWAY, EXTERNAL_HOST)["httpFilters"]]
    assert chain == [API_KEY_AUTH, RBAC, ROUTER]
    for route in routes(gateway, GATEWAY, EXTERNAL_HOST):
        configs = per_route(route)
        assert configs[API_KEY_AUTH]["forwarding"]["header"] == CLIENT_ID_HEADER
        if "alpha" in route["name"]:  # a model with clients: its rule reads that header and no other
            assert set(values_of(configs[RBAC], "headerName")) == {CLIENT_ID_HEADER}


def test_the_api_key_is_not_forwarded_to_the_model(gateway: Translation) -> None:
    outcome = with_key(gateway, BETA, BETA.keys["beta-app"], x_request_id="r-1")
    assert outcome.status == 200
    assert "authorization" not in outcome.upstream
    assert outcome.upstream["x-request-id"] == "r-1"  # other headers go on


def test_the_route_as_ai_gateway_writes_it_carries_the_same_filters(egctl: Translate, tls: KeyPair,
                                                                   gateway: Translation) -> None:
    """The pool stand-in changes the backend only: as AI Gateway writes it (an InferencePool, which only its
    extension server resolves), the rule answers 500 behind the very same per-route filters."""
    as_written = egctl(cluster(SERVED, tls, pool_stand_in=False))
    assert EXTERNAL_HOST
    written = {r["name"]: r for r in routes(as_written, GATEWAY, EXTERNAL_HOST)}
    for route in routes(gateway, GATEWAY, EXTERNAL_HOST):
        assert unordered(per_route(written[route["name"]])) == unordered(per_route(route))
    [parent] = as_written.status("httpRoutes", "models", "alpha-external")["parents"]
    assert {c["type"]: c["reason"] for c in parent["conditions"]}["ResolvedRefs"] == "InvalidKind"
    assert with_key(as_written, ALPHA, ALPHA.keys["alpha-app"]).status == 500
    assert with_key(as_written, ALPHA, BETA.keys["beta-app"]).status == 403


def test_a_client_id_in_two_models_secrets_opens_both_to_the_first_ones_key(egctl: Translate, tls: KeyPair) -> None:
    """Why client ids must be unique in a namespace (llmpack's key manager makes them so, docs/key-manager.md):
    Envoy Gateway keeps one key per client id across the pooled Secrets, the first Secret's."""
    first = Served(model({"model": {"name": "acme/first"}}, name="first"), {"shared": "sk-first-0001"})
    second = Served(model({"model": {"name": "acme/second"}}, name="second"), {"shared": "sk-second-0002"})
    t = egctl(cluster([first, second], tls))
    for target in (first, second):
        assert with_key(t, target, "sk-first-0001").status == 200
        assert with_key(t, target, "sk-second-0002").status == 401


def test_keys_the_serving_packs_key_manager_minted_open_exactly_their_model(egctl: Translate, tls: KeyPair) -> None:
    """A model taken over from the pack keeps its `<m>-api-keys` as the pack's key manager filled it: client ids
    `user-<user>-<model>-<32 hex>-<n>`, `sk-` keys of 32 characters. Our policy pools and allows them as they are,
    next to keys our key manager mints for another model."""
    pack_id = "user-alice-qwen-" + "0f" * 16 + "-1"
    pack_key = "sk-" + "Ab9_-" * 6 + "xy"
    taken_over = Served(model({"model": {"name": "Qwen/Qwen3-8B"}}, name="qwen"), {pack_id: pack_key})
    ours = Served(model({"model": {"name": "acme/alpha-8b"}}, name="alpha"), {"alpha_alice_0a1b2c3d": "sk-ours-1"})
    t = egctl(cluster([taken_over, ours], tls))
    outcome = with_key(t, taken_over, pack_key)
    assert (outcome.status, outcome.upstream[CLIENT_ID_HEADER]) == (200, pack_id)
    assert with_key(t, ours, pack_key).status == 403  # it authenticates on the shared listener, not allowed here
    assert with_key(t, taken_over, "sk-ours-1").status == 403
    assert with_key(t, ours, "sk-ours-1").status == 200
