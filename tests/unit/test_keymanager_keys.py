"""The key manager's pure decisions: keys and client ids, records, pending marks and repairs, who may use a
model, identities from token claims, settings, and the Role the operator makes for it."""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmpack.api.names import key_manager_role as role_name
from llmpack.config import Config, ConfigError
from llmpack.keymanager.auth import identity_from_claims
from llmpack.keymanager.catalog import Catalog, entry, may_use
from llmpack.keymanager.keys import (
    KeyRecord,
    new_api_key,
    new_client_id,
    orphans,
    parse_records,
    pending_annotation,
    pending_of,
    still_pending,
    user_part,
    valid_client_id,
)
from llmpack.keymanager.kinds import LLMMODEL
from llmpack.keymanager.oidc import TokenError
from llmpack.keymanager.settings import load_settings, parse_duration
from llmpack.render.keymanager_rbac import access_for, key_objects
from tests.unit.factories import body, model
from tests.unit.strategies import model_names

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def test_an_api_key_is_sk_and_32_random_bytes_never_twice() -> None:
    keys = {new_api_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert key.startswith("sk-")
        assert len(base64.urlsafe_b64decode(key[3:] + "=")) == 32


@given(model_names, st.text(max_size=80))
def test_a_client_id_is_a_safe_data_key_that_names_its_model_first(model_name: str, username: str) -> None:
    client_id = new_client_id(model_name, username, taken=set())
    assert valid_client_id(client_id)
    assert client_id.split("_")[0] == model_name  # model names hold no "_": no two models share an id
    assert ".." not in client_id
    assert "/" not in client_id


def test_a_client_id_is_never_one_the_namespace_already_has() -> None:
    taken = {f"qwen_alice_{i:08x}" for i in range(200)}
    assert all(new_client_id("qwen", "alice", taken) not in taken for _ in range(50))


@pytest.mark.parametrize(("username", "part"), [
    ("alice", "alice"), ("alice@example.com", "alice-example.com"), ("../../etc", "etc"), ("a..b", "a.b"),
    ("", "user"), ("____", "user"), ("Ünïcødé", "n-c-d"), ("x" * 100, "x" * 48)])
def test_the_user_part_of_a_client_id_is_readable_and_safe(username: str, part: str) -> None:
    assert user_part(username) == part


@pytest.mark.parametrize("text", ["a/b", "..", ".", "a..b", ".hidden", "", "x" * 254, "a b", "a%2Fb"])
def test_client_ids_that_could_escape_a_path_or_a_secret_are_invalid(text: str) -> None:
    assert not valid_client_id(text)


@pytest.mark.parametrize("text", ["qwen_alice_0a1b2c3d", "user-chuck-phi4-mini-0123abcd-1", "team-a", "a.b.c"])
def test_the_serving_packs_and_our_client_ids_are_valid(text: str) -> None:
    assert valid_client_id(text)


def test_records_round_trip_in_the_serving_packs_shape_and_junk_is_skipped() -> None:
    record = KeyRecord(client_id="qwen_alice_1", creator="alice", description="d", created_at=T0,
                       model_name="qwen", namespace="ml", expires_at=T0 + datetime.timedelta(days=1))
    theirs = json.dumps({"clientId": "old", "creator": "bob", "description": "", "createdAt": "2025-05-01T10:00:00Z",
                         "modelName": "qwen", "namespace": "ml"})
    parsed = parse_records({"qwen_alice_1": record.to_json(), "old": theirs, "junk": "{", "wrong": record.to_json()})
    assert set(parsed) == {"qwen_alice_1", "old"}  # a record filed under another id is not trusted
    assert parsed["qwen_alice_1"] == record
    assert parsed["old"].expires_at is None
    assert json.loads(record.to_json())["expiresAt"] == "2026-01-02T00:00:00Z"
    assert record.expired(T0 + datetime.timedelta(days=1))
    assert not parsed["old"].expired(T0 + datetime.timedelta(days=3650))


def test_a_pending_key_without_its_record_is_an_orphan_only_after_a_while() -> None:
    pending = pending_of({"llm.nebari.dev/pending-keys": pending_annotation({"a": T0, "b": T0, "c": T0})})
    present = {"a", "b", "by-hand"}
    recorded = {"b"}
    assert orphans(pending, recorded, present, T0 + datetime.timedelta(seconds=30), after=120) == set()
    assert orphans(pending, recorded, present, T0 + datetime.timedelta(seconds=120), after=120) == {"a"}
    # b has its record and c left the Secret: their marks go; a is still in flight.
    assert still_pending(pending, recorded, present) == {"a": T0}
    assert pending_of({"llm.nebari.dev/pending-keys": "not json"}) == {}
    assert pending_annotation({}) is None


def test_a_model_is_usable_when_public_or_open_to_one_of_the_callers_groups() -> None:
    team = entry(LLMMODEL, body({"access": {"groups": ["b", "a"]}}))
    assert team.groups == ("a", "b")
    assert may_use(team, ["x", "a"])
    assert not may_use(team, ["x"])
    assert may_use(entry(LLMMODEL, body({"access": {"public": True}})), [])
    assert not may_use(entry(LLMMODEL, body()), ["a"])  # no access block: the gateway denies everyone


def test_the_catalog_answers_by_name_namespace_and_groups_and_counts_its_changes() -> None:
    catalog = Catalog()
    catalog.reset(LLMMODEL, [entry(LLMMODEL, body({"access": {"public": True}}, name="m", namespace=ns))
                             for ns in ("b", "a")])
    version = catalog.version
    catalog.put(entry(LLMMODEL, body({"access": {"public": True}}, name="m", namespace="a")))
    assert catalog.version == version  # the same model again changes nothing
    assert [m.namespace for m in catalog.named("m")] == ["a", "b"]
    assert [m.namespace for m in catalog.visible([])] == ["a", "b"]
    catalog.drop(LLMMODEL, "a", "m")
    assert catalog.exists(("b", "m"))
    assert not catalog.exists(("a", "m"))
    assert catalog.version > version
    catalog.reset(LLMMODEL, [], namespace="b")
    assert catalog.all() == []


def test_an_identity_comes_from_the_configured_claims_and_admin_groups() -> None:
    claims = {"sub": "s1", "email": "a@x", "roles": ["ops", 3], "name": "A"}
    identity = identity_from_claims(claims, username_claim="email", groups_claim="roles", admin_groups=["ops"])
    assert (identity.username, identity.groups, identity.admin) == ("a@x", ("ops",), True)
    fallback = identity_from_claims({"sub": "s1", "groups": "solo"}, username_claim="preferred_username",
                                    groups_claim="groups")
    assert (fallback.username, fallback.groups, fallback.admin) == ("s1", ("solo",), False)
    with pytest.raises(TokenError, match="neither"):
        identity_from_claims({}, username_claim="preferred_username", groups_claim="groups")


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("24h", 86400), ("1h30m", 5400), ("250ms", 0.25),
                                               ("45", 45), (12, 12)])
def test_durations_read_as_go_writes_them(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_settings_name_the_key_that_is_wrong() -> None:
    env = {"LLMPACK_OIDC_ISSUER": "https://id.example", "LLMPACK_KEY_MANAGER_ADMIN_GROUPS": "a, b",
           "LLMPACK_KEY_MANAGER_GRACE_PERIOD": "2h", "LLMPACK_WATCH_NAMESPACES": "x,y"}
    settings = load_settings(None, env)
    assert (settings.admin_groups, settings.grace_period, settings.namespaces) == (("a", "b"), 7200, ("x", "y"))
    assert settings.oidc_jwks_uri == "https://id.example/protocol/openid-connect/certs"
    with pytest.raises(ConfigError, match=r"^auth.oidc.issuer \(LLMPACK_OIDC_ISSUER\) is required"):
        load_settings(None, {})
    with pytest.raises(ConfigError, match="LLMPACK_KEY_MANAGER_SWEEP_INTERVAL: '2 minutes' is not a duration"):
        load_settings(None, {**env, "LLMPACK_KEY_MANAGER_SWEEP_INTERVAL": "2 minutes"})
    with pytest.raises(ConfigError, match="LLMPACK_KEY_MANAGER_SWEEP_INTERVAL: Input should be less than or equal"):
        load_settings(None, {**env, "LLMPACK_KEY_MANAGER_SWEEP_INTERVAL": "5m"})  # expiry within a minute


def test_without_a_key_manager_key_objects_are_owned_and_nobody_gets_a_role() -> None:
    plain = Config()
    assert all(o["metadata"]["ownerReferences"][0]["kind"] == "LLMModel" for o in key_objects(model(), plain))
    assert access_for(model(), plain, "u") == []


def test_with_a_key_manager_key_objects_outlive_the_model_and_its_role_names_only_them() -> None:
    config = Config(key_manager_service_account="llmpack/llmpack-key-manager")
    objects = key_objects(model(), config)
    assert [o["kind"] for o in objects] == ["Secret", "ConfigMap"]
    assert all("ownerReferences" not in o["metadata"] for o in objects)
    assert all(o["metadata"]["labels"]["llm.nebari.dev/model-name"] == "qwen" for o in objects)
    assert access_for(model(), config, None) == []  # the ConfigMap's uid is needed first
    role, binding = access_for(model(), config, "cm-uid")
    assert role["metadata"]["name"] == binding["metadata"]["name"] == role_name("qwen")
    assert role["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "ConfigMap",
                                                    "name": "qwen-api-key-metadata", "uid": "cm-uid"}]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["qwen-api-keys"], "verbs": ["get", "update"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["qwen-api-key-metadata"],
         "verbs": ["get", "update", "delete"]}]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "namespace": "llmpack", "name": "llmpack-key-manager"}]
    with pytest.raises(ValueError, match="key_manager_service_account"):
        Config(key_manager_service_account="no-slash")


def test_the_key_manager_command_refuses_missing_or_bad_settings_in_one_line(tmp_path: Path) -> None:
    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("LLMPACK_")}
        return subprocess.run([sys.executable, "-m", "llmpack.cli", "key-manager", *args], capture_output=True,
                              text=True, timeout=60, check=False, env={**clean, **env})

    missing = run()
    assert missing.returncode == 2
    assert missing.stderr == ("llmpack key-manager: auth.oidc.issuer (LLMPACK_OIDC_ISSUER) is required: the key "
                              "manager signs users in with it\n")
    values = tmp_path / "values.yaml"
    values.write_text("auth: {oidc: {issuer: https://id.example}}\nkeyManager: {maxKeysPerUser: 0}\n")
    bad = run("--values", str(values))
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"llmpack key-manager: {values}: keyManager.maxKeysPerUser: Input should be")
    assert "Traceback" not in bad.stderr
    helped = run("--help")
    assert "/api/keys" in helped.stdout
    assert "docs/key-manager.md" in helped.stdout
