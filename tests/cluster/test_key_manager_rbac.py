"""Least privilege, proven on the real API server with the chart's RBAC (rendered by `helm template`): the
key manager may read and update only the key objects of models, never list or watch Secrets; the operator
(as the chart's ServiceAccount) can grant it exactly that per model; and the whole life of a key, down to
the grace period after the model is deleted, runs without one refusal."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import ConfigMap, Secret
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding

from llmpack.config import load_config
from llmpack.keymanager.settings import load_settings
from llmpack_dev.cluster import LocalCluster
from llmpack_dev.crds import install, routing_crds, uninstall
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_chart import CHART, CUSTOM, KUBE_VERSION, helm
from tests.cluster.test_key_manager import new_key, secret_keys
from tests.cluster.test_operator_lifecycle import READY_WITHIN, ready_replicas
from tests.cluster.waiting import eventually
from tests.oidc.issuer import Issuer
from tests.oidc.service import start_key_manager

RELEASE, NAMESPACE = "keys", "keys-system"
OPERATOR_SA, KEY_MANAGER_SA = "keys-llmpack", "keys-llmpack-key-manager"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def render(cluster: LocalCluster, *values: str) -> list[dict[str, Any]]:
    """The chart with the key manager: as the custom values set it, or enabled with an issuer."""
    values = values or ("--set", "keyManager.enabled=true", "--set", "auth.oidc.issuer=https://id.example.test")
    out = helm(cluster, "template", RELEASE, str(CHART), "-n", NAMESPACE, "--kube-version", KUBE_VERSION, *values)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def container(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == name)
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def env_of(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", [])}


def test_every_key_manager_value_reaches_the_key_manager(cluster: LocalCluster) -> None:
    objects = render(cluster, "-f", str(CUSTOM))
    values = yaml.safe_load(CUSTOM.read_text())["keyManager"]
    c = container(objects, KEY_MANAGER_SA)
    settings = load_settings(None, env=env_of(c))
    assert settings.admin_groups == tuple(values["adminGroups"])
    assert settings.max_keys_per_user == values["maxKeysPerUser"]
    assert (settings.default_expiry_days, settings.max_expiry_days) == (30, 90)
    assert (settings.sweep_interval, settings.grace_period, settings.repair_interval) == (15, 48 * 3600, 300)
    assert (settings.oidc_issuer, settings.oidc_jwks_uri, settings.oidc_audience) == (
        "https://sso.example.com/realms/ai", "https://sso.example.com/jwks", "llm-api")
    assert (settings.groups_claim, settings.username_claim) == ("roles", "email")
    assert settings.namespaces == ("team-a", "team-b")
    assert c["image"] == "registry.example.com/keys:8.8.8"
    assert c["args"] == ["key-manager", "--port=9090", "--metrics-port=9102"]  # the custom values' metrics.port
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["resources"] == values["resources"]
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == KEY_MANAGER_SA)
    assert deployment["spec"]["replicas"] == 2
    route = next(o for o in objects if o["kind"] == "HTTPRoute")
    assert route["spec"]["hostnames"] == ["llm-keys.ai.example.com"]
    wanted = {"name": "public", "namespace": "edge", "sectionName": "https"}
    assert route["spec"]["parentRefs"][0].items() >= wanted.items()
    operator = load_config(None, env=env_of(container(objects, OPERATOR_SA)))
    assert operator.key_manager_service_account == f"{NAMESPACE}/{KEY_MANAGER_SA}"
    # Without keyManager.enabled the operator is told of no key manager, and no Deployment is rendered for one.
    plain = [d for d in yaml.safe_load_all(helm(cluster, "template", RELEASE, str(CHART), "--kube-version",
                                                KUBE_VERSION).stdout) if d]
    assert "LLMPACK_KEY_MANAGER_SERVICE_ACCOUNT" not in env_of(container(plain, OPERATOR_SA))
    assert [o for o in plain if "key-manager" in o["metadata"]["name"]] == []


@pytest.fixture
def chart_rbac(cluster: LocalCluster) -> Iterator[list[dict[str, Any]]]:
    """The chart's ServiceAccounts and RBAC, applied for real (no pods: the processes run here, as them)."""
    objects = [o for o in render(cluster) if o["kind"] in RBAC_KINDS]
    cluster.kubectl("create", "namespace", NAMESPACE)
    try:
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))
        yield objects
    finally:
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", stdin=yaml.safe_dump_all(objects), check=False)
        cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false")


def token_kubeconfig(cluster: LocalCluster, service_account: str, path: Path, namespace: str = NAMESPACE) -> Path:
    token = cluster.kubectl("create", "token", service_account, "-n", namespace, "--duration=1h").stdout.strip()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": service_account, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = service_account
    path.write_text(yaml.safe_dump(config))
    return path


def can_i(cluster: LocalCluster, verb: str, resource: str, namespace: str) -> bool:
    result = cluster.kubectl("auth", "can-i", verb, resource, "-n", namespace,
                             f"--as=system:serviceaccount:{NAMESPACE}:{KEY_MANAGER_SA}", check=False)
    return result.stdout.strip() == "yes"


async def _gone(client: AsyncClient, kind: Any, name: str, namespace: str) -> bool:
    try:
        await client.get(kind, name, namespace=namespace)
    except ApiError as exc:
        return exc.status.code == 404
    return False


async def test_the_key_manager_may_touch_only_model_key_objects_and_keys_outlive_a_deleted_model(
        cluster: LocalCluster, client: AsyncClient, namespace: str, operator: OperatorProcess,
        chart_rbac: list[dict[str, Any]], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The session operator steps aside; the chart's operator identity, told of the key manager as the chart
    # tells it, runs instead.
    operator.stop()
    cluster.kubectl("delete", "validatingwebhookconfiguration", "llmpack-validating-webhook", "--ignore-not-found")
    crds = routing_crds()
    install(cluster, crds)
    issuer = Issuer().start()
    env = {k: v for k, v in env_of(container(render(cluster), OPERATOR_SA)).items()
           if k in ("LLMPACK_KEY_MANAGER_SERVICE_ACCOUNT",)}
    chart_operator = OperatorProcess(token_kubeconfig(cluster, OPERATOR_SA, tmp_path / "operator"),
                                     tmp_path / "operator.log", env={**env, "LLMPACK_OIDC_ISSUER": issuer.url})
    chart_operator.start()
    km = None
    try:
        models.apply(cluster, "qwen", namespace, {"access": {"public": True}})
        await eventually(lambda: ready_replicas(client, "qwen", namespace, 1), within=READY_WITHIN, what="Ready")
        role = await eventually(lambda: client.get(Role, "qwen-key-manager", namespace=namespace), within=30,
                                what="the operator's Role for the key manager")
        assert [(o.kind, o.name) for o in role.metadata.ownerReferences or []] == [  # type: ignore[union-attr]
            ("ConfigMap", "qwen-api-key-metadata")]
        secret = await client.get(Secret, "qwen-api-keys", namespace=namespace)
        assert not secret.metadata.ownerReferences  # type: ignore[union-attr]  # it outlives the model

        # Proven by the API server's own authorizer.
        allowed = [("get", "secrets/qwen-api-keys"), ("update", "secrets/qwen-api-keys"),
                   ("get", "configmaps/qwen-api-key-metadata"), ("update", "configmaps/qwen-api-key-metadata"),
                   ("delete", "configmaps/qwen-api-key-metadata"), ("list", "configmaps"), ("watch", "configmaps"),
                   ("list", "llmmodels.llm.nebari.dev"), ("watch", "llmmodels.llm.nebari.dev"), ("create", "events")]
        refused = [("list", "secrets"), ("watch", "secrets"), ("get", "secrets/hf-token"),
                   ("update", "secrets/hf-token"), ("create", "secrets"), ("delete", "secrets/qwen-api-keys"),
                   ("patch", "secrets/qwen-api-keys"), ("get", "configmaps/kube-root-ca.crt"),
                   ("update", "configmaps/qwen-epp-config"), ("delete", "configmaps/other"),
                   ("update", "llmmodels.llm.nebari.dev/qwen"), ("create", "roles"), ("create", "rolebindings"),
                   ("get", "secrets/qwen-api-keys-other")]
        for verb, resource in allowed:
            assert can_i(cluster, verb, resource, namespace), f"the key manager may not {verb} {resource}"
        for verb, resource in refused:
            assert not can_i(cluster, verb, resource, namespace), f"the key manager may {verb} {resource}"
        for verb, resource in (("list", "secrets"), ("watch", "secrets"), ("get", "secrets/qwen-api-keys")):
            assert not can_i(cluster, verb, resource, "default"), f"the key manager may {verb} {resource} elsewhere"

        # The key manager as its ServiceAccount: create, list, revoke, and the grace period, without a refusal.
        caplog.set_level(logging.WARNING, logger="llmpack.keymanager")
        km = await start_key_manager(token_kubeconfig(cluster, KEY_MANAGER_SA, tmp_path / "km"), issuer,
                                     grace_period=4)
        async with km.as_user("alice") as alice:
            key = await new_key(alice, "qwen", namespace=namespace)
            other = await new_key(alice, "qwen", namespace=namespace)
            assert set(await secret_keys(client, namespace, "qwen")) == {key["clientId"], other["clientId"]}
            assert (await alice.delete(f"/api/keys/{namespace}/qwen/{other['clientId']}")).status_code == 204

        cluster.kubectl("delete", "llmmodel", "qwen", "-n", namespace, "--wait=true")
        await eventually(lambda: _gone(client, RoleBinding, "qwen-model-download", namespace), within=30,
                         what="the model's own children collected")
        assert await secret_keys(client, namespace, "qwen") == {key["clientId"]: key["apiKey"]}  # kept, for now
        for kind, name in ((Secret, "qwen-api-keys"), (ConfigMap, "qwen-api-key-metadata"),
                           (Role, "qwen-key-manager"), (RoleBinding, "qwen-key-manager")):
            await eventually(lambda k=kind, n=name: _gone(client, k, n, namespace), within=30,  # type: ignore[misc]
                             what=f"{kind.__name__} {name} gone after the grace period")
        refusals = [r.getMessage() for r in caplog.records if "forbidden" in r.getMessage().lower()]
        assert refusals == []
        log = (tmp_path / "operator.log").read_text()
        assert [line for line in log.splitlines() if "forbidden" in line.lower()] == []
    finally:
        if km is not None:
            await km.stop()
        chart_operator.stop()
        issuer.stop()
        uninstall(cluster, crds)
        operator.start()
