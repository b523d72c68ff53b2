"""The internal side through Envoy Gateway's own translator (egctl v1.6.3): a JWT from our issuer, checked with
its JWKS, and a rule on the groups claim unless `access.public`."""

from __future__ import annotations

import pytest

from llmpack.certs import KeyPair
from tests.translate.clients import GATEWAY, INTERNAL_HOST, cluster_of, token, with_token
from tests.translate.cluster_state import CONFIG, Served, cluster
from tests.translate.conftest import Translate
from tests.translate.egctl import Translation
from tests.translate.envoy import JWT_AUTHN, RBAC, ROUTER, clusters, hcm, per_route, routes, values_of
from tests.unit.factories import model

TEAMS = Served(model({"model": {"name": "acme/teams"}, "access": {"groups": ["ml-team", "research"]}}, name="teams"))
PUBLIC = Served(model({"model": {"name": "acme/public"}, "access": {"public": True, "groups": ["ml-team"]}},
                      name="public"))
NOBODY = Served(model({"model": {"name": "acme/nobody"}}, name="nobody"))  # no access at all
SERVED = (TEAMS, PUBLIC, NOBODY)


@pytest.fixture(scope="module")
def gateway(egctl: Translate, tls: KeyPair) -> Translation:
    return egctl(cluster(SERVED, tls))


def model_routes(t: Translation, served: Served) -> list[dict[str, object]]:
    assert INTERNAL_HOST
    found = [r for r in routes(t, GATEWAY, INTERNAL_HOST) if f"/{served.model.name}-internal/" in str(r["name"])]
    assert found, f"no internal route of {served.model.name}"
    return found


def test_the_internal_policy_is_a_jwt_filter_with_our_issuer_and_jwks(gateway: Translation) -> None:
    assert INTERNAL_HOST
    manager = hcm(gateway, GATEWAY, INTERNAL_HOST)
    assert [f["name"] for f in manager["httpFilters"]] == [JWT_AUTHN, RBAC, ROUTER]
    jwt = manager["httpFilters"][0]["typedConfig"]
    for served in SERVED:
        for route in model_routes(gateway, served):  # the model's rule and the not-found rule alike
            requirement = jwt["requirementMap"][per_route(route)[JWT_AUTHN]["requirementName"]]
            provider = jwt["providers"][requirement["providerName"]]
            assert provider["issuer"] == CONFIG.oidc_issuer
            assert provider["audiences"] == [CONFIG.oidc_audience]
            jwks = provider["remoteJwks"]["httpUri"]
            assert jwks["uri"] == CONFIG.jwks_uri
            assert jwks["cluster"] in clusters(gateway, GATEWAY)  # Envoy can fetch the keys
            assert {(c["claimName"], c["headerName"]) for c in provider["claimToHeaders"]} == {
                (CONFIG.oidc_groups_claim, "X-Auth-Groups"), (CONFIG.oidc_username_claim, "X-Auth-User")}
            # Envoy Gateway always forwards the user's token upstream (`forward: true`, no policy field for it).
            assert provider["forward"] is True


def test_only_a_token_with_one_of_the_models_groups_gets_through(gateway: Translation) -> None:
    assert with_token(gateway, TEAMS, None).status == 401
    assert with_token(gateway, TEAMS, token("research", iss="https://other.example/realms/x")).status == 401
    assert with_token(gateway, TEAMS, token("research", aud="someone-else")).status == 401
    for groups in (["research"], ["ml-team"], ["other", "ml-team"]):
        outcome = with_token(gateway, TEAMS, token(*groups))
        assert (outcome.status, outcome.cluster) == (200, cluster_of(TEAMS, "internal")), groups
    for groups in ([], ["other"], ["ML-team"], ["ml-team-2"]):
        assert with_token(gateway, TEAMS, token(*groups)).status == 403, groups
    assert with_token(gateway, TEAMS, {**token(), "groups": "research"}).status == 403  # a string, not a list


def test_the_groups_rule_reads_the_verified_token_not_a_header(gateway: Translation) -> None:
    rule = per_route(model_routes(gateway, TEAMS)[0])[RBAC]
    assert set(values_of(rule, "filter")) == {JWT_AUTHN}  # the verified payload jwt_authn wrote
    assert values_of(rule, "headerName") == []  # no request header: X-Auth-Groups could come from the client


def test_access_public_admits_any_valid_token(gateway: Translation) -> None:
    assert with_token(gateway, PUBLIC, None).status == 401
    for groups in ([], ["other"]):
        outcome = with_token(gateway, PUBLIC, token(*groups))
        assert (outcome.status, outcome.cluster) == (200, cluster_of(PUBLIC, "internal"))
    assert all(RBAC not in per_route(route) for route in model_routes(gateway, PUBLIC))


def test_a_model_without_groups_admits_no_one(gateway: Translation) -> None:
    for groups in ([], ["ml-team"], ["research"]):
        assert with_token(gateway, NOBODY, token(*groups)).status == 403


def test_the_internal_policies_are_accepted(gateway: Translation) -> None:
    for served in SERVED:
        policy = gateway.status("securityPolicies", "models", f"{served.model.name}-internal-auth")
        [ancestor] = policy["ancestors"]
        assert {c["type"]: c["status"] for c in ancestor["conditions"]} == {"Accepted": "True"}
