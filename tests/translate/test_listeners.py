"""The listeners the operator merges into the Gateway, through Envoy Gateway's own translator."""

from __future__ import annotations

import pytest

from llmpack.certs import KeyPair
from llmpack.render.auth import LISTENERS
from tests.translate.clients import EXTERNAL_HOST, GATEWAY, INTERNAL_HOST
from tests.translate.cluster_state import CONFIG, Served, cluster
from tests.translate.conftest import Translate
from tests.translate.egctl import GATEWAY_NAMESPACE, Translation
from tests.translate.envoy import values_of
from tests.unit.factories import model


@pytest.fixture(scope="module")
def gateway(egctl: Translate, tls: KeyPair) -> Translation:
    return egctl(cluster([Served(model(name="qwen"), {"app": "sk-app-0001"})], tls))


def test_both_listeners_are_programmed_each_on_its_own_hostname(gateway: Translation) -> None:
    status = gateway.status("gateways", GATEWAY_NAMESPACE, CONFIG.external_gateway_name)
    listeners = {listener["name"]: listener for listener in status["listeners"]}
    assert set(listeners) == set(LISTENERS.values())
    for listener in listeners.values():
        conditions = {c["type"]: c["status"] for c in listener["conditions"]}
        assert conditions["Accepted"] == conditions["Programmed"] == conditions["ResolvedRefs"] == "True"
        assert listener["attachedRoutes"] == 1
    chains = [chain for item in gateway.resources_of(GATEWAY, "ListenersConfigDump")
              for chain in item["activeState"]["listener"].get("filterChains", [])]
    assert sorted(values_of(chains, "serverNames")) == sorted([[EXTERNAL_HOST], [INTERNAL_HOST]])


def test_one_certificate_for_both_hostnames_limits_clients_to_http_1_1(gateway: Translation) -> None:
    """Envoy Gateway's answer to listeners that share a certificate (docs/routing.md says so)."""
    status = gateway.status("gateways", GATEWAY_NAMESPACE, CONFIG.external_gateway_name)
    for listener in status["listeners"]:
        overlap = {c["type"]: c for c in listener["conditions"]}["OverlappingTLSConfig"]
        assert overlap["status"] == "True"
    assert values_of(gateway.xds[GATEWAY], "alpnProtocols") == [["http/1.1"], ["http/1.1"]]
