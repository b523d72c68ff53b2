"""examples/passthrough-openrouter.yaml through Envoy Gateway's translator: every rule of its routes sends the
request to the provider's hostname on 443, over TLS with that hostname as SNI, checked against the system CAs.

The input is what the plan applies: the Backend `<p>-backend` and BackendTLSPolicy `<p>-backend-tls`, and
the HTTPRoutes AI Gateway writes for the AIGatewayRoutes. Assumption (Envoy AI Gateway v1.1.0, ai_gateway.py):
a rule's AIServiceBackend becomes, in the HTTPRoute, the backendRef the AIServiceBackend holds, here
`gateway.envoyproxy.io/Backend <p>-backend` in the route's namespace. egctl translates with Envoy Gateway's
Backend API on (`BackendEnabled: true` in its translate.go).

Not shown here: the provider's key. The BackendSecurityPolicy is applied by AI Gateway (its extension server
and external processor), which egctl does not run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from llmpack.api import names
from llmpack.api.passthrough import PassthroughModel
from llmpack.certs import KeyPair
from llmpack.render.auth import MODEL_HEADER
from tests.translate.clients import EXTERNAL_HOST, GATEWAY
from tests.translate.cluster_state import CONFIG, gateway_objects, key_secret_of, passthrough_objects
from tests.translate.conftest import Translate
from tests.translate.egctl import Translation
from tests.translate.envoy import Request, clusters, send

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "passthrough-openrouter.yaml"
NAMESPACE = "team-a"
KEYS = {"router-app": "sk-router-app-0003"}
UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"


def example() -> PassthroughModel:
    body = yaml.safe_load(EXAMPLE.read_text())
    body["metadata"] |= {"namespace": NAMESPACE, "uid": "u-openrouter"}
    return PassthroughModel.from_body(body)


def cluster_objects(pm: PassthroughModel, tls: KeyPair) -> list[dict[str, Any]]:
    secret = key_secret_of(pm, KEYS)
    return [*gateway_objects(CONFIG, tls), secret,
            *passthrough_objects(pm, CONFIG, frozenset({secret["metadata"]["name"]}), KEYS)]


@pytest.fixture(scope="module")
def translation(egctl: Translate, tls: KeyPair) -> Translation:
    return egctl(cluster_objects(example(), tls))


def provider_clusters(t: Translation) -> dict[str, dict[str, Any]]:
    """The clusters of the PassthroughModel's routes (`httproute/<ns>/<route>/rule/<n>`), both sides."""
    prefixes = tuple(f"httproute/{NAMESPACE}/{names.route(example().name, side)}/"
                     for side in ("external", "internal"))
    return {name: c for name, c in clusters(t, GATEWAY).items() if name.startswith(prefixes)}


def endpoint_tls(cluster: dict[str, Any]) -> list[tuple[str, int, dict[str, Any]]]:
    """Each endpoint's address, port and the TLS context Envoy uses for it (its transport socket match)."""
    sockets = {m["name"]: m["transportSocket"] for m in cluster.get("transportSocketMatches", [])}
    out = []
    for locality in cluster["loadAssignment"]["endpoints"]:
        for lb in locality["lbEndpoints"]:
            address = lb["endpoint"]["address"]["socketAddress"]
            match = lb.get("metadata", {}).get("filterMetadata", {}).get("envoy.transport_socket_match", {})
            socket = sockets.get(match.get("name"), cluster.get("transportSocket", {}))
            assert socket["typedConfig"]["@type"] == UPSTREAM_TLS, socket
            out.append((address["address"], int(address["portValue"]), socket["typedConfig"]))
    return out


def test_the_provider_backend_and_its_tls_policy_are_accepted(translation: Translation) -> None:
    pm = example()
    backend = translation.status("backends", NAMESPACE, names.provider_backend(pm.name))
    assert [(c["type"], c["status"]) for c in backend["conditions"]] == [("Accepted", "True")]
    policy = translation.status("backendTLSPolicies", NAMESPACE, names.provider_tls(pm.name))
    listeners = {a["ancestorRef"].get("sectionName") for a in policy["ancestors"]}
    assert listeners == {"llm-https", "llm-internal-https"}
    for ancestor in policy["ancestors"]:
        assert {c["type"]: c["status"] for c in ancestor["conditions"]} == {"Accepted": "True",
                                                                           "ResolvedRefs": "True"}


def test_a_declared_id_goes_to_a_cluster_of_the_providers_hostname(translation: Translation) -> None:
    assert EXTERNAL_HOST
    outcome = send(translation, GATEWAY, Request(EXTERNAL_HOST, {MODEL_HEADER: "openai/gpt-5.2",
                                                                "Authorization": f"Bearer {KEYS['router-app']}"}))
    assert outcome.status == 200
    assert outcome.cluster in provider_clusters(translation)
    assert [(host, port) for host, port, _ in endpoint_tls(provider_clusters(translation)[outcome.cluster])] == [
        ("openrouter.ai", 443)]


def test_every_provider_rule_reaches_the_hostname_over_tls_with_its_sni_checked_against_the_system_cas(
        translation: Translation) -> None:
    pm = example()
    found = provider_clusters(translation)
    # external: declared ids, catch-all; internal: the same two rules.
    assert len(found) == 4, sorted(found)
    for name, cluster in found.items():
        endpoints = endpoint_tls(cluster)
        assert [(host, port) for host, port, _ in endpoints] == [("openrouter.ai", 443)], name
        context = endpoints[0][2]
        assert context["sni"] == "openrouter.ai"
        validation = context["commonTlsContext"]["combinedValidationContext"]
        assert validation["defaultValidationContext"]["matchTypedSubjectAltNames"] == [
            {"sanType": "DNS", "matcher": {"exact": "openrouter.ai"}}]
        # The CA bundle is an SDS Secret that egctl's dump leaves out; Envoy Gateway builds it from the IR's
        # `useSystemTrustStore` (the proxy's /etc/ssl/certs/ca-certificates.crt, translator.go).
        ca = validation["validationContextSdsSecretConfig"]["name"]
        [setting] = translation.destination_settings(GATEWAY, name)
        assert setting["tls"]["useSystemTrustStore"] is True
        assert setting["tls"]["caCertificate"] == {"name": ca}
        assert setting["tls"]["sni"] == "openrouter.ai"
        assert setting["metadata"] == {"kind": "Backend", "name": names.provider_backend(pm.name),
                                       "namespace": NAMESPACE}
