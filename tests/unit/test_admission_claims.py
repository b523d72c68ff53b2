"""At the door: a model that claims an id another object owns is admitted with a warning naming the owner,
never refused; the warning says what the model's conditions will say."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from llmpack.admission.claims import id_owned_elsewhere
from llmpack.admission.reviews import answer, verdict
from llmpack.admission.webhook import HANDLER_ID, serving_cert
from llmpack.assess.claims import Claim, ClaimIndex
from llmpack.operator import admission_server
from llmpack.operator.store import Store
from llmpack_dev.cluster import free_port
from tests.unit.factories import body as model_body
from tests.unit.strategies import model_specs

QWEN = "Qwen/Qwen3-8B"
OWNER = Claim("LLMModel", "team-a", "qwen", frozenset({QWEN}), "2026-01-01T00:00:00Z", uid="a")
LOSER = Claim("LLMModel", "team-b", "late", frozenset({QWEN}), "2026-02-01T00:00:00Z", uid="b")
INDEX: ClaimIndex = {QWEN: {OWNER.key: OWNER, LOSER.key: LOSER}}


def request(namespace: str, name: str, model_id: str, old_id: str | None = None) -> dict[str, Any]:
    new = model_body({"model": {"name": model_id}}, name=name, namespace=namespace)
    old = model_body({"model": {"name": old_id}}, name=name, namespace=namespace) if old_id else None
    return {"uid": "u-1", "operation": "UPDATE" if old else "CREATE", "namespace": namespace, "object": new,
            "oldObject": old}


def warnings(req: dict[str, Any], index: ClaimIndex = INDEX) -> list[str]:
    return [str(f) for f in id_owned_elsewhere(req, index)]


def test_a_new_model_claiming_an_owned_id_is_warned_with_the_owner_named() -> None:
    [warned] = warnings(request("team-c", "qwen", QWEN))
    assert warned.startswith("spec.model.name: model id Qwen/Qwen3-8B is already claimed by LLMModel team-a/qwen")
    assert "ModelIdConflict" in warned
    assert "still serves inside the cluster" in warned


def test_an_edit_to_an_owned_id_is_warned_even_for_an_object_older_than_the_owner() -> None:
    assert len(warnings(request("team-c", "ancient", QWEN, old_id="Mistral/Small"))) == 1


def test_the_owner_and_models_of_free_ids_are_not_warned() -> None:
    assert warnings(request("team-a", "qwen", QWEN, old_id=QWEN)) == []
    assert warnings(request("team-c", "llama", "meta-llama/Llama-3.1-8B")) == []
    assert warnings(request("team-c", "qwen", QWEN), index={}) == []


def test_a_model_that_already_lost_its_id_is_warned_again_on_each_apply() -> None:
    assert len(warnings(request("team-b", "late", QWEN, old_id=QWEN))) == 1


def test_the_answer_carries_the_warning_to_kubectl_and_allows() -> None:
    raw = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                      "request": request("team-c", "qwen", QWEN)}).encode()
    response = json.loads(answer(raw, INDEX).body)["response"]
    assert response["allowed"] is True
    assert [w for w in response["warnings"] if "team-a/qwen" in w]
    assert "warnings" not in json.loads(answer(raw).body)["response"]  # no claims given: no cross-object rule


@given(model_specs(), st.sampled_from(["team-a", "team-b", "team-c"]), st.booleans())
def test_claims_never_change_whether_a_model_is_allowed_nor_its_other_findings(
        spec: dict[str, Any], namespace: str, owned: bool) -> None:
    new = model_body(spec, name="qwen", namespace=namespace)
    model_id = spec["model"]["name"]
    claim = Claim("LLMModel", "team-z", "first", frozenset({model_id}), "2026-01-01T00:00:00Z")
    req = {"uid": "u", "namespace": namespace, "object": new}
    plain = verdict(req)["response"]
    with_claims = verdict(req, {model_id: {claim.key: claim}} if owned else {})["response"]
    assert with_claims["allowed"] == plain["allowed"]
    assert with_claims.get("status") == plain.get("status")
    extra = [w for w in with_claims.get("warnings", []) if w not in plain.get("warnings", [])]
    assert len(extra) == (1 if owned else 0)


async def test_the_operators_webhook_warns_from_the_claims_its_store_holds(tmp_path: Path) -> None:
    store = Store(synced=True)
    store.put_model({**model_body(name="qwen", namespace="team-a"),
                     "metadata": {"name": "qwen", "namespace": "team-a", "uid": "a",
                                  "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 1}})
    cert = serving_cert(tmp_path, ("127.0.0.1",))
    port = free_port()
    server = await admission_server.start("127.0.0.1", port, cert, claims=lambda: store.claim_index)
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request("team-b", "qwen",
                                                                                                 QWEN)}
    try:
        async with aiohttp.ClientSession() as session, session.post(
                f"https://127.0.0.1:{port}/{HANDLER_ID}", json=review,
                ssl=ssl.create_default_context(cafile=str(cert.ca))) as reply:
            response = (await reply.json())["response"]
    finally:
        await server.cleanup()
    assert response["allowed"] is True
    assert any("LLMModel team-a/qwen" in w for w in response["warnings"])
