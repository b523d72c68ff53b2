"""The key manager against the real API server, signing users in with the test OIDC issuer: what a user
sees, creates and revokes, every refusal, expiry, concurrency, crash repair and the grace period."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from lightkube import AsyncClient, codecs
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import ConfigMap, Event, Secret

from llmpack.api import LLMModel
from llmpack.keymanager.keys import PENDING_ANNOTATION, parse_records
from llmpack.keymanager.kinds import LLMMODEL
from llmpack.render.auth import api_key_objects
from llmpack.render.keymanager_rbac import retained_key_objects
from llmpack_dev.cluster import LocalCluster
from tests.cluster import models, pack_layout
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.waiting import eventually
from tests.oidc.issuer import Issuer
from tests.oidc.service import RunningKeyManager, start_key_manager

ADMINS = "llm-admins"


# -- the cluster side: models and the key objects the operator would create ---------------------------------

async def make_model(client: AsyncClient, namespace: str, name: str, access: dict[str, Any] | None = None, *,
                     served: str = "Qwen/Qwen3-8B", key_objects: str = "owned") -> dict[str, Any]:
    """An LLMModel and, as the operator creates them, its key objects: "owned" (owner reference to the model,
    no key manager configured), "retained" (the key manager's mode: they outlive the model) or "none"."""
    spec = {"model": {"name": served}, **({"access": access} if access is not None else {})}
    body = models.manifest(name, namespace, spec)
    created = (await client.create(LLMMODEL.resource.from_dict(body))).to_dict()
    model = LLMModel.from_body(created)
    objects = {"owned": api_key_objects, "retained": retained_key_objects}.get(key_objects)
    for obj in objects(model) if objects else []:
        await client.apply(codecs.from_dict(obj), field_manager="llmpack", force=True)
    return dict(created)


async def secret_keys(client: AsyncClient, namespace: str, model: str) -> dict[str, str]:
    secret = await client.get(Secret, f"{model}-api-keys", namespace=namespace)
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


async def records(client: AsyncClient, namespace: str, model: str) -> dict[str, Any]:
    config_map = await client.get(ConfigMap, f"{model}-api-key-metadata", namespace=namespace)
    return parse_records(config_map.data)


async def versions(client: AsyncClient, namespace: str, model: str) -> tuple[str, str]:
    """resourceVersions of the key objects, once the key manager has made the Secret its ConfigMap's dependent
    (its one write to a model it has not served yet)."""
    async def adopted() -> Secret | None:
        secret = await client.get(Secret, f"{model}-api-keys", namespace=namespace)
        owners = [o.kind for o in secret.metadata.ownerReferences or []]  # type: ignore[union-attr]
        return secret if owners == ["ConfigMap"] else None

    secret = await eventually(adopted, within=10, what="the Secret adopted by its ConfigMap")
    config_map = await client.get(ConfigMap, f"{model}-api-key-metadata", namespace=namespace)
    return str(secret.metadata.resourceVersion), str(config_map.metadata.resourceVersion)  # type: ignore[union-attr]


async def events(client: AsyncClient, namespace: str, reason: str) -> list[Event]:
    return [e async for e in client.list(Event, namespace=namespace) if e.reason == reason]


async def create(http: httpx.AsyncClient, model: str, **body: Any) -> httpx.Response:
    return await http.post("/api/keys", json={"modelName": model, "description": "", **body})


async def new_key(http: httpx.AsyncClient, model: str, **body: Any) -> dict[str, Any]:
    answer = await create(http, model, **body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


# -- fixtures -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    server = Issuer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def km(kubeconfig: Path, issuer: Issuer, crd_installed: None) -> AsyncIterator[RunningKeyManager]:
    running = await start_key_manager(kubeconfig, issuer, admin_groups=(ADMINS,), max_keys_per_user=60)
    yield running
    await running.stop()


@pytest.fixture
def ns(namespace: str, operator: OperatorProcess) -> str:
    """A fresh namespace where the tests play the operator's part: each creates a model's key objects as the
    operator would, in the mode the test needs (owned, retained by a key manager, or not yet), so the session's
    operator is stopped (it would create them at the first reconcile; the CRD's rules still admit or refuse)."""
    operator.stop()
    return namespace


# -- what a user sees ---------------------------------------------------------------------------------------

async def test_a_user_sees_who_they_are_and_only_the_models_open_to_their_groups(
        client: AsyncClient, ns: str, km: RunningKeyManager) -> None:
    await make_model(client, ns, "open", {"public": True}, served="org/open")
    await make_model(client, ns, "team", {"groups": ["ml-team", "other"]}, served="org/team")
    await make_model(client, ns, "closed", {"groups": ["finance"]}, served="org/closed")
    await make_model(client, ns, "unset", None, served="org/unset")  # no access block: nobody

    async with km.as_user("alice", ["ml-team"]) as alice:
        me = (await alice.get("/api/me")).json()
        assert me == {"username": "alice", "name": "Alice", "email": "alice@example.test", "groups": ["ml-team"],
                      "admin": False}

        async def mine() -> list[dict[str, Any]] | None:
            listed = [m for m in (await alice.get("/api/models")).json()["models"] if m["Namespace"] == ns]
            return listed if len(listed) == 2 else None

        listed = await eventually(mine, within=10, what="both models alice may use")
    assert [m["Name"] for m in listed] == ["open", "team"]
    team = listed[1]
    assert team["ModelName"] == "org/team"
    assert team["Groups"] == ["ml-team", "other"]
    assert (team["Public"], team["Passthrough"], team["Provider"], team["Kind"]) == (False, False, "", "LLMModel")
    assert team["Phase"] in {"Pending", "Downloading", "Starting", "Ready"}
    assert team["Endpoints"] == {}


async def test_a_created_key_is_stored_where_envoy_reads_it_and_shown_only_once(
        client: AsyncClient, ns: str, km: RunningKeyManager, caplog: pytest.LogCaptureFixture) -> None:
    await make_model(client, ns, "qwen", {"groups": ["ml-team"]})
    caplog.set_level(logging.INFO, logger="llmpack.keymanager.audit")
    async with km.as_user("alice", ["ml-team"]) as alice:
        await eventually(lambda: _listed(alice, ns, "qwen"), within=10, what="the model in the catalog")
        answer = await create(alice, "qwen", namespace=ns, description="laptop", expiresInDays=30)
        assert answer.status_code == 201, answer.text
        created = answer.json()
        client_id, key = created["clientId"], created["apiKey"]
        assert key.startswith("sk-")
        assert len(base64.urlsafe_b64decode(key[3:] + "==")) >= 32
        assert client_id.startswith("qwen_alice_")
        assert (created["modelName"], created["namespace"]) == ("qwen", ns)

        assert await secret_keys(client, ns, "qwen") == {client_id: key}
        record = (await records(client, ns, "qwen"))[client_id]
        assert (record.creator, record.description, record.model_name, record.namespace) == (
            "alice", "laptop", "qwen", ns)
        assert record.expires_at is not None
        assert 29 <= (record.expires_at - record.created_at).days <= 30

        listed = (await alice.get("/api/keys")).json()["keys"]
        mine = [k for k in listed if k["namespace"] == ns]
        assert [k["clientId"] for k in mine] == [client_id]
        assert "apiKey" not in mine[0]
        assert key not in json.dumps(listed)
    async with km.as_user("bob", ["ml-team"]) as bob:
        assert [k for k in (await bob.get("/api/keys")).json()["keys"] if k["namespace"] == ns] == []

    # Audit: a structured log line and an Event on the model; neither holds the key.
    [line] = [r for r in caplog.records if getattr(r, "audit", {}).get("clientId") == client_id]
    assert line.audit == {"action": "created", "actor": "alice", "namespace": ns, "model": "qwen",  # type: ignore[attr-defined]
                          "clientId": client_id}
    assert key not in line.getMessage()
    [event] = await eventually(lambda: events(client, ns, "APIKeyCreated"), within=10, what="the Event")
    assert event.involvedObject.kind == "LLMModel"
    assert event.involvedObject.name == "qwen"
    assert client_id in (event.message or "")
    assert key not in (event.message or "")


async def _listed(http: httpx.AsyncClient, namespace: str, name: str) -> bool:
    return any(m["Namespace"] == namespace and m["Name"] == name
               for m in (await http.get("/api/models")).json()["models"])


# -- who may do what ----------------------------------------------------------------------------------------

async def test_a_model_the_caller_may_not_use_is_403_an_unknown_one_404_and_nothing_is_written(
        client: AsyncClient, ns: str, km: RunningKeyManager) -> None:
    await make_model(client, ns, "closed", {"groups": ["finance"]})
    await make_model(client, ns, "waiting", {"public": True}, key_objects="none")
    before = await versions(client, ns, "closed")
    async with km.as_user("alice", ["ml-team"]) as alice:
        await eventually(lambda: _listed(alice, ns, "waiting"), within=10, what="the model in the catalog")
        refused = await create(alice, "closed", namespace=ns)
        assert refused.status_code == 403
        assert "not open to any of your groups" in refused.json()["detail"]
        unknown = await create(alice, "nonexistent", namespace=ns)
        assert unknown.status_code == 404
        assert "no model named nonexistent" in unknown.json()["detail"]
        # The model exists, but the operator has not made its key objects yet (no replica Ready).
        early = await create(alice, "waiting", namespace=ns)
        assert early.status_code == 409
        assert "has no key objects yet" in early.json()["detail"]
    assert await versions(client, ns, "closed") == before


async def test_models_of_one_name_in_two_namespaces_need_the_namespace(
        client: AsyncClient, ns: str, km: RunningKeyManager, cluster: LocalCluster) -> None:
    other = f"{ns}-b"
    cluster.kubectl("create", "namespace", other)
    try:
        await make_model(client, ns, "shared", {"public": True})
        await make_model(client, other, "shared", {"public": True})
        async with km.as_user("alice") as alice:
            await eventually(lambda: _listed(alice, other, "shared"), within=10, what="both models")
            ambiguous = await create(alice, "shared")
            assert ambiguous.status_code == 409
            assert f"namespaces {ns}, {other}" in ambiguous.json()["detail"]
            chosen = await create(alice, "shared", namespace=other)
            assert chosen.status_code == 201
            assert chosen.json()["namespace"] == other
        assert list(await secret_keys(client, other, "shared")) == [chosen.json()["clientId"]]
        assert await secret_keys(client, ns, "shared") == {}
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false")


async def test_only_the_creator_or_an_admin_revokes_and_a_revoked_key_leaves_the_secret(
        client: AsyncClient, ns: str, km: RunningKeyManager) -> None:
    await make_model(client, ns, "qwen", {"public": True})
    async with km.as_user("alice") as alice, km.as_user("bob") as bob, km.as_user("root", [ADMINS]) as admin:
        await eventually(lambda: _listed(alice, ns, "qwen"), within=10, what="the model in the catalog")
        alices = (await new_key(alice, "qwen", namespace=ns))["clientId"]
        bobs = (await new_key(bob, "qwen", namespace=ns))["clientId"]

        refused = await bob.delete(f"/api/keys/{ns}/qwen/{alices}")
        assert refused.status_code == 403
        assert "belongs to another user" in refused.json()["detail"]
        assert (await alice.delete(f"/api/keys/{ns}/qwen/{alices}")).status_code == 204
        assert alices not in await secret_keys(client, ns, "qwen")
        assert alices not in await records(client, ns, "qwen")
        again = await alice.delete(f"/api/keys/{ns}/qwen/{alices}")
        assert again.status_code == 404
        assert (await alice.delete(f"/api/keys/{ns}/qwen/qwen_nobody_00000000")).status_code == 404

        # An admin lists everyone's keys and revokes any; nobody else may list them all.
        assert (await bob.get("/api/keys", params={"all": "true"})).status_code == 403
        everyone = (await admin.get("/api/keys", params={"all": "true"})).json()["keys"]
        assert bobs in [k["clientId"] for k in everyone]
        assert (await admin.get("/api/me")).json()["admin"] is True
        assert (await admin.delete(f"/api/keys/{ns}/qwen/{bobs}")).status_code == 204
        assert await secret_keys(client, ns, "qwen") == {}
        # A key written into the Secret by hand (no record) is invisible to users; an admin may revoke it.
        await client.patch(Secret, "qwen-api-keys", {"data": {"by-hand": base64.b64encode(b"sk-x").decode()}},
                           namespace=ns)
        assert (await bob.delete(f"/api/keys/{ns}/qwen/by-hand")).status_code == 404
        assert (await admin.delete(f"/api/keys/{ns}/qwen/by-hand")).status_code == 204
        assert await secret_keys(client, ns, "qwen") == {}
    revoked = await eventually(lambda: events(client, ns, "APIKeyRevoked"), within=10, what="revoke Events")
    assert {e.involvedObject.name for e in revoked} == {"qwen"}


async def test_revoke_all_takes_the_callers_keys_or_for_an_admin_everyones(
        client: AsyncClient, ns: str, km: RunningKeyManager) -> None:
    await make_model(client, ns, "qwen", {"public": True})
    async with km.as_user("alice") as alice, km.as_user("bob") as bob, km.as_user("root", [ADMINS]) as admin:
        await eventually(lambda: _listed(alice, ns, "qwen"), within=10, what="the model in the catalog")
        mine = {(await new_key(alice, "qwen", namespace=ns))["clientId"] for _ in range(2)}
        bobs = (await new_key(bob, "qwen", namespace=ns))["clientId"]
        answer = await alice.delete(f"/api/keys/{ns}/qwen")
        assert answer.json() == {"revoked": sorted(mine)}
        assert list(await secret_keys(client, ns, "qwen")) == [bobs]
        assert (await admin.delete(f"/api/keys/{ns}/qwen")).json() == {"revoked": [bobs]}
        assert await secret_keys(client, ns, "qwen") == {}
        assert (await alice.delete(f"/api/keys/{ns}/nomodel")).status_code == 404


# -- authentication -----------------------------------------------------------------------------------------

def _forged_hs256(issuer: Issuer) -> str:
    """Signed with the issuer's *public* key as an HMAC secret: the classic algorithm-confusion forgery."""
    from cryptography.hazmat.primitives import serialization

    public = issuer.signing.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib
    import hmac

    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": issuer.signing.kid}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps({"iss": issuer.url, "preferred_username": "mallory",
                                                "exp": 9999999999}).encode()).rstrip(b"=")
    signature = base64.urlsafe_b64encode(hmac.new(public, header + b"." + body, hashlib.sha256).digest()).rstrip(b"=")
    return (header + b"." + body + b"." + signature).decode()


async def test_every_api_call_without_a_good_token_is_401_with_a_challenge_and_writes_nothing(
        client: AsyncClient, ns: str, kubeconfig: Path, issuer: Issuer) -> None:
    await make_model(client, ns, "qwen", {"public": True})
    before = await versions(client, ns, "qwen")
    strict = await start_key_manager(kubeconfig, issuer, oidc_audience="llm-api", leeway=0)
    stranger = Issuer().start()
    try:
        bad = {
            "no token": None,
            "expired": issuer.token("alice", audience="llm-api", expires_in=-60),
            "wrong audience": issuer.token("alice", audience="another-app"),
            "no audience": issuer.token("alice"),
            "not yet valid": issuer.token("alice", audience="llm-api", not_before=600),
            "another issuer": issuer.token("alice", audience="llm-api", issuer="https://evil.example"),
            "a key the issuer does not publish": stranger.token("alice", audience="llm-api", issuer=issuer.url),
            "not a JWT": "hello",
            "HS256 with the public key": _forged_hs256(issuer),
        }
        for what, token in bad.items():
            async with strict.http(token) as http:
                for method, path, body in (("GET", "/api/me", None), ("GET", "/api/models", None),
                                           ("GET", "/api/keys", None),
                                           ("POST", "/api/keys", {"modelName": "qwen", "namespace": ns}),
                                           ("DELETE", f"/api/keys/{ns}/qwen/qwen_alice_00000000", None)):
                    answer = await http.request(method, path, json=body)
                    assert answer.status_code == 401, (what, method, path, answer.text)
                    assert answer.headers["www-authenticate"].startswith('Bearer realm="llmpack-key-manager"')
                    assert answer.json()["detail"]
        async with strict.http() as http:
            basic = await http.get("/api/me", headers={"Authorization": "Basic YTpi"})
            assert basic.status_code == 401
            assert 'error="invalid_token"' in basic.headers["www-authenticate"]
            expired = await http.get("/api/me", headers={
                "Authorization": f"Bearer {issuer.token('a', audience='llm-api', expires_in=-60)}"})
            assert expired.json()["detail"] == "the token has expired: sign in again"
            wrong = await http.get("/api/me", headers={"Authorization": f"Bearer {issuer.token('a', audience='x')}"})
            assert "audience must be 'llm-api'" in wrong.json()["detail"]
            good = await http.get("/api/me", headers={
                "Authorization": f"Bearer {issuer.token('alice', audience=['llm-api', 'other'])}"})
            assert good.status_code == 200
            assert (await http.get("/healthz")).status_code == 200  # probes carry no token
    finally:
        stranger.stop()
        await strict.stop()
    assert await versions(client, ns, "qwen") == before


async def test_a_rotated_signing_key_is_fetched_once_when_a_token_names_it(
        kubeconfig: Path, crd_installed: None) -> None:
    issuer = Issuer().start()
    running = await start_key_manager(kubeconfig, issuer, jwks_refetch_cooldown=30)
    try:
        async with running.as_user("alice") as http:
            assert (await http.get("/api/me")).status_code == 200
        fetched = issuer.jwks_requests
        issuer.rotate(keep_old=False)
        tokens = [issuer.token(f"user{i}") for i in range(10)]

        async def me(token: str) -> int:
            async with running.http(token) as http:
                return (await http.get("/api/me")).status_code

        assert await asyncio.gather(*(me(t) for t in tokens)) == [200] * 10
        assert issuer.jwks_requests == fetched + 1  # ten callers, one fetch
        # An unknown kid right after: within the cooldown, no fetch; the caller is refused.
        stranger = Issuer().start()
        async with running.http(stranger.token("mallory", issuer=issuer.url)) as http:
            refused = await http.get("/api/me")
        stranger.stop()
        assert refused.status_code == 401
        assert "which the issuer does not publish" in refused.json()["detail"]
        assert issuer.jwks_requests == fetched + 1
    finally:
        await running.stop()
        issuer.stop()


async def test_the_api_answers_503_until_the_issuers_keys_are_fetched(
        kubeconfig: Path, crd_installed: None) -> None:
    issuer = Issuer(jwks_down=True).start()
    running = await start_key_manager(kubeconfig, issuer, wait_ready=False)
    try:
        async with running.as_user("alice") as http:
            answer = await http.get("/api/me")
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "5"
            assert "OIDC issuer's keys" in answer.json()["detail"]
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert any("OIDC issuer's keys" in w for w in ready.json()["waitingFor"])
            issuer.jwks_down = False

            async def me() -> int | None:
                code = (await http.get("/api/me")).status_code
                return code if code == 200 else None

            await eventually(me, within=15, what="the key manager to fetch the keys once the issuer is up")
    finally:
        await running.stop()
        issuer.stop()


# -- bad input ----------------------------------------------------------------------------------------------

async def test_bad_input_gets_one_clear_line_and_writes_nothing(
        client: AsyncClient, ns: str, km: RunningKeyManager) -> None:
    await make_model(client, ns, "qwen", {"public": True})
    before = await versions(client, ns, "qwen")
    async with km.as_user("alice") as alice:
        await eventually(lambda: _listed(alice, ns, "qwen"), within=10, what="the model in the catalog")
        cases: list[tuple[str, dict[str, Any], int, str]] = [
            ("malformed JSON", {"content": b'{"modelName": "qwen",', "headers": {"Content-Type": "application/json"}},
             400, "the body is not valid JSON"),
            ("not an object", {"json": ["qwen"]}, 400, "must be a JSON object"),
            ("10 MB description", {"json": {"modelName": "qwen", "description": "x" * (10 << 20)}}, 413,
             "larger than 65536 bytes"),
            ("long description", {"json": {"modelName": "qwen", "description": "x" * 257}}, 422,
             "description: at most 256 characters"),
            ("unknown field", {"json": {"modelName": "qwen", "expiresInDay": 3}}, 422, "expiresInDay"),
            ("no model", {"json": {"description": "x"}}, 422, "modelName"),
            ("bad model name", {"json": {"modelName": "../secrets"}}, 422, "modelName"),
            ("negative expiry", {"json": {"modelName": "qwen", "expiresInDays": -1}}, 422, "expiresInDays"),
            ("too long expiry", {"json": {"modelName": "qwen", "namespace": ns, "expiresInDays": 4000}}, 400,
             "expiresInDays: at most 365 days"),
        ]
        for what, request, status, says in cases:
            answer = await alice.post("/api/keys", **request)
            assert answer.status_code == status, (what, answer.text)
            assert says in answer.json()["detail"], (what, answer.json())
            assert "\n" not in answer.json()["detail"]
        for path in (f"/api/keys/{ns}/qwen/a%2Fb", f"/api/keys/{ns}/qwen/a/b", f"/api/keys/{ns}/qwen/%2E%2E",
                     f"/api/keys/{ns}/qwen/a..b", f"/api/keys/{ns}/Q_W/abc", f"/api/keys/{ns}/qwen/x/y/z"):
            answer = await alice.delete(path)
            assert answer.status_code == 400, (path, answer.text)
            assert "client ids hold only letters" in answer.json()["detail"]
        unknown = await alice.get("/api/nothing")
        assert unknown.status_code == 404
        assert unknown.json()["detail"].startswith("no such endpoint")
    assert await versions(client, ns, "qwen") == before


# -- limits, concurrency, expiry, repair --------------------------------------------------------------------

async def test_fifty_parallel_creates_on_one_model_from_two_replicas_leave_fifty_listed_keys(
        client: AsyncClient, ns: str, km: RunningKeyManager, kubeconfig: Path, issuer: Issuer) -> None:
    await make_model(client, ns, "qwen", {"public": True})
    second = await start_key_manager(kubeconfig, issuer, admin_groups=(ADMINS,))  # only the resourceVersion
    try:                                                                        # serialises the two
        async def one(i: int) -> str:
            replica = km if i % 2 else second
            async with replica.as_user(f"user{i}") as http:
                await eventually(lambda: _listed(http, ns, "qwen"), within=10, what="the model")
                answer = await create(http, "qwen", namespace=ns, description=f"key {i}")
                assert answer.status_code == 201, answer.text
                return str(answer.json()["clientId"])

        ids = await asyncio.gather(*(one(i) for i in range(50)))
    finally:
        await second.stop()
    assert len(set(ids)) == 50
    stored = await secret_keys(client, ns, "qwen")
    assert set(stored) == set(ids)
    assert len(set(stored.values())) == 50
    assert set(await records(client, ns, "qwen")) == set(ids)
    async with km.as_user("root", [ADMINS]) as admin:
        async def listed() -> bool:
            keys = (await admin.get("/api/keys", params={"all": "true"})).json()["keys"]
            return {k["clientId"] for k in keys if k["namespace"] == ns} == set(ids)

        await eventually(listed, within=10, what="all 50 keys listed")
    secret = await client.get(Secret, "qwen-api-keys", namespace=ns)
    pending = json.loads((secret.metadata.annotations or {}).get(PENDING_ANNOTATION) or "{}")  # type: ignore[union-attr]
    assert set(pending) <= set(ids)  # marks of finished creates are pruned lazily, never orphan keys


async def test_a_user_at_the_key_limit_is_refused_until_they_revoke_one(
        client: AsyncClient, ns: str, kubeconfig: Path, issuer: Issuer) -> None:
    await make_model(client, ns, "qwen", {"public": True})
    running = await start_key_manager(kubeconfig, issuer, max_keys_per_user=2)
    try:
        async with running.as_user("alice") as alice:
            await eventually(lambda: _listed(alice, ns, "qwen"), within=10, what="the model in the catalog")
            answers = await asyncio.gather(*(create(alice, "qwen", namespace=ns) for _ in range(4)))
            assert sorted(a.status_code for a in answers) == [201, 201, 409, 409]
            refused = next(a for a in answers if a.status_code == 409)
            assert "you hold 2 keys, the most one user may" in refused.json()["detail"]
            first = next(a for a in answers if a.status_code == 201).json()["clientId"]
            assert (await alice.delete(f"/api/keys/{ns}/qwen/{first}")).status_code == 204
            assert (await create(alice, "qwen", namespace=ns)).status_code == 201
    finally:
        await running.stop()
    assert len(await secret_keys(client, ns, "qwen")) == 2


async def test_an_expired_key_is_removed_from_the_secret_by_the_sweep(
        client: AsyncClient, ns: str, km: RunningKeyManager) -> None:
    await make_model(client, ns, "qwen", {"public": True})
    async with km.as_user("alice") as alice:
        await eventually(lambda: _listed(alice, ns, "qwen"), within=10, what="the model in the catalog")
        short = (await new_key(alice, "qwen", namespace=ns, expiresInDays=2 / 86400))
        lasting = (await new_key(alice, "qwen", namespace=ns))
        assert set(await secret_keys(client, ns, "qwen")) == {short["clientId"], lasting["clientId"]}

        async def expired() -> bool:
            return list(await secret_keys(client, ns, "qwen")) == [lasting["clientId"]]

        await eventually(expired, within=10, what="the expired key removed (sweep every 0.5 s here)")
        assert list(await records(client, ns, "qwen")) == [lasting["clientId"]]
        assert short["clientId"] not in {k["clientId"] for k in (await alice.get("/api/keys")).json()["keys"]}
    [event] = await eventually(lambda: events(client, ns, "APIKeyExpired"), within=10, what="the expiry Event")
    assert short["clientId"] in (event.message or "")


async def test_a_create_that_died_between_its_two_writes_is_repaired_and_hand_written_keys_stay(
        client: AsyncClient, ns: str, km: RunningKeyManager) -> None:
    await make_model(client, ns, "qwen", {"public": True})
    async with km.as_user("alice") as alice:
        await eventually(lambda: _listed(alice, ns, "qwen"), within=10, what="the model in the catalog")
        kept = (await new_key(alice, "qwen", namespace=ns))["clientId"]
    await client.patch(Secret, "qwen-api-keys", {"data": {"by-hand": base64.b64encode(b"sk-hand").decode()}},
                       namespace=ns)
    # The first half of a create, as a key manager that then died would have left it: key in, no record.
    store, ref = km.service.store, (ns, "qwen")
    holding = km.service.holdings.get(ref)
    assert holding is not None
    crashed = await store.write_key(ref, holding, "alice", "sk-never-handed-out")
    assert crashed in await secret_keys(client, ns, "qwen")
    async with km.as_user("alice") as alice:
        assert crashed not in {k["clientId"] for k in (await alice.get("/api/keys")).json()["keys"]}
    # And a revoke that died after the Secret: a record whose key is gone.
    secret = await client.get(Secret, "qwen-api-keys", namespace=ns)
    data = dict(secret.data or {})
    del data[kept]
    secret.data = data
    await client.replace(secret)

    async def repaired() -> bool:
        return set(await secret_keys(client, ns, "qwen")) == {"by-hand"} and await records(client, ns, "qwen") == {}

    await eventually(repaired, within=15, what="the orphan key and the stale record removed")
    async def both_told() -> bool:  # Events are posted after the repair, in the background
        reasons = [e.message or "" for e in await events(client, ns, "APIKeyRepaired")]
        return any(crashed in m and "never finished" in m for m in reasons) and \
            any(kept in m and "no longer in the Secret" in m for m in reasons)

    await eventually(both_told, within=10, what="an APIKeyRepaired Event for each repair")


async def test_keys_outlive_a_deleted_model_for_the_grace_period_then_go(
        client: AsyncClient, ns: str, kubeconfig: Path, issuer: Issuer, cluster: LocalCluster) -> None:
    await make_model(client, ns, "qwen", {"public": True}, key_objects="retained")
    running = await start_key_manager(kubeconfig, issuer, grace_period=6, admin_groups=(ADMINS,))
    try:
        async with running.as_user("alice") as alice:
            await eventually(lambda: _listed(alice, ns, "qwen"), within=10, what="the model in the catalog")
            key = (await new_key(alice, "qwen", namespace=ns))
        secret = await client.get(Secret, "qwen-api-keys", namespace=ns)
        assert [(o.kind, o.name) for o in secret.metadata.ownerReferences or []] == [  # type: ignore[union-attr]
            ("ConfigMap", "qwen-api-key-metadata")]

        async def gone_since() -> str | None:
            config_map = await client.get(ConfigMap, "qwen-api-key-metadata", namespace=ns)
            return (config_map.metadata.annotations or {}).get("llm.nebari.dev/model-gone-since")  # type: ignore[union-attr]

        # Deleted and re-created within the grace period (a GitOps prune): the keys stay.
        cluster.kubectl("delete", "llmmodel", "qwen", "-n", ns, "--wait=true")
        await eventually(gone_since, within=10, what="the model noted as gone")
        await make_model(client, ns, "qwen", {"public": True}, key_objects="retained")
        await eventually(lambda: _none(gone_since()), within=10, what="the note cleared when it came back")
        assert await secret_keys(client, ns, "qwen") == {key["clientId"]: key["apiKey"]}
        assert await eventually(lambda: events(client, ns, "APIKeysKept"), within=10, what="the Event")

        # Deleted for longer than the grace period: the key objects go, the Secret with its ConfigMap.
        cluster.kubectl("delete", "llmmodel", "qwen", "-n", ns, "--wait=true")

        async def objects_gone() -> bool:
            for kind, name in ((Secret, "qwen-api-keys"), (ConfigMap, "qwen-api-key-metadata")):
                try:
                    await client.get(kind, name, namespace=ns)
                    return False
                except ApiError as exc:
                    if exc.status.code != 404:
                        raise
            return True

        await eventually(objects_gone, within=30, what="the key objects deleted after the grace period")
        retired = await eventually(lambda: events(client, ns, "APIKeysRetired"), within=10, what="the Event")
        assert retired[0].involvedObject.kind == "ConfigMap"
    finally:
        await running.stop()


async def test_keys_the_serving_packs_key_manager_wrote_are_listed_kept_and_revoked_in_its_layout(
        client: AsyncClient, ns: str, km: RunningKeyManager) -> None:
    """The pack's key objects (its labels, no owner, records without expiresAt, its client ids) as they are."""
    await make_model(client, ns, "qwen", {"public": True}, key_objects="none")
    first, second = pack_layout.pack_client_id("alice", "qwen", 1), pack_layout.pack_client_id("alice", "qwen", 2)
    for obj in pack_layout.key_objects("qwen", ns, {first: "sk-" + "a" * 32, second: "sk-" + "b" * 32}, "alice"):
        await client.create(codecs.from_dict(obj))
    async with km.as_user("alice") as alice, km.as_user("bob") as bob:
        await eventually(lambda: _listed(alice, ns, "qwen"), within=10, what="the model in the catalog")
        listed = {k["clientId"]: k for k in (await alice.get("/api/keys")).json()["keys"]}
        assert set(listed) == {first, second}
        assert (listed[first]["description"], listed[first]["createdAt"], listed[first]["expiresAt"]) == (
            "laptop", "2026-05-04T10:11:12Z", None)  # the pack's keys never expired; they still do not
        assert (await bob.delete(f"/api/keys/{ns}/qwen/{first}")).status_code == 403
        assert (await alice.delete(f"/api/keys/{ns}/qwen/{first}")).status_code == 204
        new = await new_key(alice, "qwen", namespace=ns)
        await asyncio.sleep(1)  # two sweeps (every 0.5 s here): a key without expiresAt is not one of theirs
        assert await secret_keys(client, ns, "qwen") == {second: "sk-" + "b" * 32, new["clientId"]: new["apiKey"]}
        assert set(await records(client, ns, "qwen")) == {second, new["clientId"]}


async def _none(value: Any) -> bool:
    return await value is None


async def test_the_openapi_document_lists_every_endpoint(km: RunningKeyManager) -> None:
    async with km.http() as http:
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert (await http.get("/docs")).status_code == 200
    assert set(paths) == {"/api/me", "/api/models", "/api/keys", "/api/keys/{namespace}/{model}/{client_id}",
                          "/api/keys/{namespace}/{model}"}
    assert set(paths["/api/keys"]) == {"get", "post"}


def test_tokens_of_the_test_issuer_verify_with_its_published_keys(issuer: Issuer) -> None:
    """The issuer itself: what it signs checks out against what it publishes, and nothing else does."""
    keys = httpx.get(issuer.jwks_uri).json()["keys"]
    discovery = httpx.get(issuer.url + "/.well-known/openid-configuration").json()
    assert discovery["jwks_uri"] == issuer.jwks_uri
    token = issuer.token("alice", ["g"], audience="a")
    key = jwt.PyJWK.from_dict(keys[0])
    assert jwt.decode(token, key.key, algorithms=["RS256"], audience="a")["groups"] == ["g"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(Issuer().token("alice", issuer=issuer.url), key.key, algorithms=["RS256"])
