"""The chart's values for the web page's sign-in: every one reaches the key manager, the client secret and the
session key come from a Secret (never a value), and the key manager may get, update and watch the one
ConfigMap where replicas record logouts, and no other (checked by the real API server)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from llmpack.keymanager.settings import load_settings
from llmpack_dev.cluster import LocalCluster
from tests.cluster.test_chart import CHART, KUBE_VERSION, helm
from tests.cluster.test_key_manager_rbac import KEY_MANAGER_SA, RBAC_KINDS, RELEASE, container

NAMESPACE = "keys-login-system"  # not the RBAC test's: a namespace being deleted cannot be created again

LOGIN = ("--set", "keyManager.enabled=true", "--set", "auth.oidc.issuer=https://id.example.test/realms/ai",
         "--set", "platform.baseDomain=ai.example.test",
         "--set", "keyManager.login.enabled=true", "--set", "keyManager.login.clientId=llm-keys",
         "--set", "keyManager.login.existingSecret=llm-keys-login", "--set", "keyManager.login.sessionLifetime=4h",
         "--set", "keyManager.login.scopes={openid,email,groups}",
         "--set", "keyManager.route.enabled=true", "--set", "keyManager.route.hostname=keys.ai.example.test")
SESSIONS = f"{KEY_MANAGER_SA}-sessions"


def render(cluster: LocalCluster, *values: str) -> list[dict[str, Any]]:
    values = values or LOGIN[:4]
    out = helm(cluster, "template", RELEASE, str(CHART), "-n", NAMESPACE, "--kube-version", KUBE_VERSION, *values)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def resolved_env(c: dict[str, Any], secret: dict[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet fills it, with `secret` as the login Secret's data."""
    env = {}
    for entry in c["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif "secretKeyRef" in entry.get("valueFrom", {}):
            ref = entry["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "llm-keys-login", ref
            env[entry["name"]] = secret[ref["key"]]
    return env


def test_every_login_value_reaches_the_key_manager_and_the_secrets_come_from_the_secret(
        cluster: LocalCluster) -> None:
    objects = render(cluster, *LOGIN)
    c = container(objects, KEY_MANAGER_SA)
    settings = load_settings(None, resolved_env(c, {"client-secret": "s3cret", "session-key": "k" * 40}))
    assert (settings.client_id, settings.client_secret, settings.session_keys) == ("llm-keys", "s3cret", ("k" * 40,))
    assert settings.public_url == "https://keys.ai.example.test"
    assert (settings.secure_cookies, settings.session_lifetime) == (True, 4 * 3600)
    assert settings.scopes == ("openid", "email", "groups")
    assert settings.sessions_config_map == f"{NAMESPACE}/{SESSIONS}"
    assert settings.external_url == "https://llm.ai.example.test"
    assert "s3cret" not in yaml.safe_dump_all(objects)
    [config_map] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == SESSIONS]
    assert "data" not in config_map  # a helm upgrade never wipes the recorded logouts

    refused = helm(cluster, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, *LOGIN[:8],
                   "--set", "keyManager.login.enabled=true", check=False)
    assert refused.returncode != 0
    assert "keyManager.login.enabled needs keyManager.login.clientId and keyManager.login.existingSecret" in (
        refused.stderr)
    without = render(cluster)
    assert not [o for o in without if o["metadata"]["name"] == SESSIONS]


@pytest.fixture
def login_rbac(cluster: LocalCluster) -> Iterator[None]:
    objects = [o for o in render(cluster, *LOGIN) if o["kind"] in RBAC_KINDS]
    cluster.kubectl("create", "namespace", NAMESPACE)
    try:
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))
        yield
    finally:
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", stdin=yaml.safe_dump_all(objects), check=False)
        cluster.kubectl("delete", "namespace", NAMESPACE, "--timeout=45s", check=False)


def test_the_key_manager_may_touch_only_the_sessions_configmap_of_its_namespace(
        cluster: LocalCluster, login_rbac: None) -> None:
    def can(verb: str, what: str) -> bool:
        result = cluster.kubectl("auth", "can-i", verb, what, "-n", NAMESPACE,
                                 f"--as=system:serviceaccount:{NAMESPACE}:{KEY_MANAGER_SA}", check=False)
        return result.stdout.strip() == "yes"

    for verb in ("get", "update", "watch", "list"):
        assert can(verb, f"configmaps/{SESSIONS}"), verb
    for verb in ("update", "delete", "create", "patch"):
        assert not can(verb, "configmaps/something-else"), verb
    assert not can("delete", f"configmaps/{SESSIONS}")
    assert not can("get", "secrets/llm-keys-login")  # the kubelet reads the Secret, not the key manager
