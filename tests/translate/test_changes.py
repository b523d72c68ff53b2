"""What the cluster holds after a change, translated again: a disabled endpoint, a revoked key and a deleted
model leave nothing that still lets their keys or tokens through (no stale allow)."""

from __future__ import annotations

import pytest

from llmpack.certs import KeyPair
from tests.translate.clients import EXTERNAL_HOST, GATEWAY, INTERNAL_HOST, cluster_of, token, with_key, with_token
from tests.translate.cluster_state import Served, cluster
from tests.translate.conftest import Translate
from tests.translate.egctl import Translation
from tests.translate.envoy import clusters, routes
from tests.unit.factories import merge, model

ALPHA_SPEC = {"model": {"name": "acme/alpha-8b"}, "access": {"groups": ["ml-team"]}}
ALPHA = Served(model(ALPHA_SPEC, name="alpha"),
               {"alpha-app": "sk-alpha-app-0001", "alpha-batch": "sk-alpha-batch-0002"})
BETA = Served(model({"model": {"name": "acme/beta-70b"}, "access": {"groups": ["ml-team"]}}, name="beta"),
              {"beta-app": "sk-beta-app-0003"})


def traces_of(t: Translation, name: str) -> list[str]:
    """Every route and cluster of the Gateway that names the model's routes."""
    found = [c for c in clusters(t, GATEWAY) if f"/{name}-" in c]
    for host in (EXTERNAL_HOST, INTERNAL_HOST):
        assert host
        found += [str(r["name"]) for r in routes(t, GATEWAY, host) if f"/{name}-" in str(r["name"])]
    return found


@pytest.fixture(scope="module")
def before(egctl: Translate, tls: KeyPair) -> Translation:
    t = egctl(cluster([ALPHA, BETA], tls))
    # What each change below takes away, working before it.
    for key in ALPHA.keys.values():
        assert with_key(t, ALPHA, key).status == 200
    assert with_token(t, ALPHA, token("ml-team")).status == 200
    return t


def test_a_disabled_external_endpoint_leaves_no_way_in_with_its_keys(before: Translation, egctl: Translate,
                                                                   tls: KeyPair) -> None:
    off = Served(model(merge(ALPHA_SPEC, {"endpoints": {"external": {"enabled": False}}}), name="alpha"),
                 ALPHA.keys)
    after = egctl(cluster([off, BETA], tls))
    for key in ALPHA.keys.values():
        assert with_key(after, ALPHA, key).status == 403  # only beta's catch-all is left, and refuses them
        assert with_key(after, BETA, key).status == 403
    assert not [trace for trace in traces_of(after, "alpha") if "external" in trace]
    # The other side and the other model are untouched.
    outcome = with_token(after, ALPHA, token("ml-team"))
    assert (outcome.status, outcome.cluster) == (200, cluster_of(ALPHA, "internal"))
    assert with_key(after, BETA, BETA.keys["beta-app"]).status == 200


def test_a_revoked_key_is_refused_everywhere(before: Translation, egctl: Translate, tls: KeyPair) -> None:
    revoked = Served(ALPHA.model, {"alpha-app": ALPHA.keys["alpha-app"]})
    after = egctl(cluster([revoked, BETA], tls))
    for target in (ALPHA, BETA):
        assert with_key(after, target, ALPHA.keys["alpha-batch"]).status == 401
    assert with_key(after, ALPHA, ALPHA.keys["alpha-app"]).status == 200


def test_a_deleted_models_keys_open_nothing_while_a_key_manager_keeps_them(before: Translation, egctl: Translate,
                                                                         tls: KeyPair) -> None:
    """With a key manager the deleted model's key Secret outlives it (its grace period), so the namespace's
    other policies still pool its keys: they authenticate, and are allowed nowhere."""
    after = egctl(cluster([BETA], tls, retained=[ALPHA]))
    assert traces_of(after, "alpha") == []
    for key in ALPHA.keys.values():
        assert with_key(after, ALPHA, key).status == 403
        assert with_key(after, BETA, key).status == 403
    # The same group may use beta: its token passes beta's catch-all, which answers AI Gateway's 404.
    assert with_token(after, ALPHA, token("ml-team")).status == 404
    assert with_key(after, BETA, BETA.keys["beta-app"]).status == 200


def test_a_deleted_models_keys_are_unknown_once_its_secret_is_gone(before: Translation, egctl: Translate,
                                                                  tls: KeyPair) -> None:
    after = egctl(cluster([BETA], tls))
    for key in ALPHA.keys.values():
        assert with_key(after, BETA, key).status == 401
