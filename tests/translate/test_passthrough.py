"""A PassthroughModel with a catch-all beside an LLMModel, through Envoy Gateway's translator: each exact id
reaches its own rule, and the catch-all takes only the ids nobody declares, even when its route is the older.

Both objects come from the plans the operator applies; AI Gateway's HTTPRoute for the PassthroughModel's
route names the Envoy Gateway Backend its AIServiceBackend holds (ai_gateway.py). Which rule a request
matched is what these tests read; test_provider_tls.py reads where the provider's rules send it.
"""

from __future__ import annotations

import pytest

from llmpack.api.passthrough import PassthroughModel
from llmpack.certs import KeyPair
from llmpack.render.auth import MODEL_HEADER
from tests.translate.clients import EXTERNAL_HOST, GATEWAY
from tests.translate.cluster_state import CONFIG, Served, cluster, key_secret_of, passthrough_objects
from tests.translate.conftest import Translate
from tests.translate.egctl import Translation
from tests.translate.envoy import Outcome, Request, send
from tests.unit.factories import model

NAMESPACE = "team-a"
QWEN = Served(model({"model": {"name": "acme/qwen-8b"}, "access": {"public": True}}, name="qwen",
                    namespace=NAMESPACE), {"qwen-app": "sk-qwen-app-0001"})
PROVIDER_KEYS = {"router-app": "sk-router-app-0002"}
OLDER, NEWER = "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"


def provider() -> PassthroughModel:
    return PassthroughModel.from_body({
        "apiVersion": "llm.nebari.dev/v1alpha1", "kind": "PassthroughModel",
        "metadata": {"name": "router", "namespace": NAMESPACE, "uid": "u-router"},
        "spec": {"provider": {"hostname": "openrouter.ai", "schemaVersion": "api/v1",
                              "credentialSecretName": "openrouter-api-key"},
                 "models": {"declared": ["openai/gpt-5.2"], "catchAll": True}, "access": {"public": True}}})


def translated(egctl: Translate, tls: KeyPair, provider_created: str) -> Translation:
    objects = cluster([QWEN], tls)
    for obj in objects:
        if obj["kind"] == "HTTPRoute":
            obj["metadata"]["creationTimestamp"] = OLDER if provider_created == NEWER else NEWER
    pm = provider()
    secrets = frozenset({"qwen-api-keys", "router-api-keys"})
    return egctl([*objects, key_secret_of(pm, PROVIDER_KEYS),
                  *passthrough_objects(pm, CONFIG, secrets, PROVIDER_KEYS, provider_created)])


def ask(t: Translation, model_id: str, key: str) -> Outcome:
    assert EXTERNAL_HOST
    return send(t, GATEWAY, Request(EXTERNAL_HOST, {MODEL_HEADER: model_id, "Authorization": f"Bearer {key}"}))


def rule_of(outcome: Outcome) -> str:
    """`route/rule` of the HTTPRoute rule a request matched."""
    assert outcome.route is not None
    parts = outcome.route.split("/")
    return f"{parts[2]}/{parts[4]}"


@pytest.mark.parametrize("provider_created", [OLDER, NEWER], ids=["provider route older", "provider route newer"])
def test_each_exact_id_reaches_its_own_rule_and_the_catch_all_takes_only_the_others(
        egctl: Translate, tls: KeyPair, provider_created: str) -> None:
    t = translated(egctl, tls, provider_created)
    assert ask(t, "acme/qwen-8b", QWEN.keys["qwen-app"]).cluster == f"httproute/{NAMESPACE}/qwen-external/rule/0"
    # The served id never reaches the provider, not even with the provider's key: its own rule takes the request
    # and refuses the key (401 here: cluster() gives qwen's policy only the LLMModels' key Secrets).
    shadowed = ask(t, "acme/qwen-8b", PROVIDER_KEYS["router-app"])
    assert rule_of(shadowed) == "qwen-external/0"
    assert shadowed.status in (401, 403)
    assert rule_of(ask(t, "openai/gpt-5.2", PROVIDER_KEYS["router-app"])) == "router-external/0"
    assert rule_of(ask(t, "anything/else", PROVIDER_KEYS["router-app"])) == "router-external/1"
    # And the catch-all lets only the provider's clients through.
    assert ask(t, "anything/else", QWEN.keys["qwen-app"]).status == 403
