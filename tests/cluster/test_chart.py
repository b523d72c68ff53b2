"""The Helm chart: lints, renders as reviewed, refuses typos, passes every value to the operator, installs
into a real API server, and its RBAC is enough for the operator's whole lifecycle and no more."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError

from llmpack.config import load_config
from llmpack.operator.kube import SecurityPolicyResource
from llmpack_dev.cluster import LocalCluster, install_admission, remove_policies, wait_for_admission
from llmpack_dev.crds import cert_manager_crds, gateway_api_crds, routing_crds, service_monitor_crd
from llmpack_dev.crds import install as install_crds
from llmpack_dev.crds import uninstall as uninstall_crds
from tests.cluster import models
from tests.cluster.old_release import checkout
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_operator_lifecycle import READY_WITHIN, _none_left, phases_until, ready_replicas
from tests.cluster.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "llmpack"
CUSTOM = Path(__file__).parent / "chart-values-custom.yaml"
GOLDEN = Path(__file__).parent / "golden"
KUBE_VERSION = "1.36.3"
RELEASE, NAMESPACE = "llmpack", "llmpack-system"


def helm(cluster: LocalCluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(cluster.bin_dir / "helm"), *args], capture_output=True, text=True, timeout=120,
                          check=check, env={**os.environ, "HELM_CACHE_HOME": str(cluster.state / "helm"),
                                            "HELM_CONFIG_HOME": str(cluster.state / "helm"),
                                            "HELM_DATA_HOME": str(cluster.state / "helm")})


def template(cluster: LocalCluster, *values: str) -> list[dict[str, Any]]:
    out = helm(cluster, "template", RELEASE, str(CHART), "-n", NAMESPACE, "--kube-version", KUBE_VERSION, *values)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.mark.parametrize("values", [[], ["-f", str(CUSTOM)]], ids=["default", "custom"])
def test_chart_lints_strictly_and_renders_as_reviewed(cluster: LocalCluster, values: list[str]) -> None:
    lint = helm(cluster, "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, *values, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    text = yaml.safe_dump_all(template(cluster, *values), sort_keys=True)
    golden = GOLDEN / f"chart-{'custom' if values else 'default'}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"{golden.name} differs: review, then UPDATE_GOLDEN=1"


def test_a_typo_in_values_fails_at_install(cluster: LocalCluster, tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("defaults:\n  storage:\n    storageClass: efs\n")
    result = helm(cluster, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "-f", str(typo),
                  check=False)
    assert result.returncode != 0
    assert "additional properties 'storageClass' not allowed" in result.stderr


def _operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def test_every_value_reaches_the_operator(cluster: LocalCluster) -> None:
    objects = template(cluster, "-f", str(CUSTOM))
    container = _operator_container(objects)
    config = load_config(None, env={e["name"]: e["value"] for e in container["env"]})
    values = yaml.safe_load(CUSTOM.read_text())
    assert config.downloader_image == values["modelDownloader"]["image"]
    assert config.serving_image == values["defaults"]["serving"]["image"]
    assert config.fs_group == values["defaults"]["serving"]["fsGroup"]
    assert config.storage_class_name == values["defaults"]["storage"]["storageClassName"]
    assert config.access_mode == values["defaults"]["storage"]["accessMode"]
    assert config.watch_namespaces == tuple(values["watchNamespaces"])
    assert config.manage_crds is values["crds"]["manage"] is False
    assert config.epp_image == values["inferencePool"]["eppImage"]
    routing, oidc = values["routing"], values["auth"]["oidc"]
    assert config.base_domain == routing["baseDomain"]
    assert (config.external_gateway_namespace, config.external_gateway_name) == ("edge", "public")
    assert (config.internal_gateway_namespace, config.internal_gateway_name) == ("intranet", "private")
    assert config.monitoring_namespace == routing["monitoringNamespace"]
    assert config.manage_listeners is True
    assert (config.tls_secret_name, config.tls_secret_namespace) == ("llm-tls", NAMESPACE)  # the Certificate's
    assert (config.oidc_issuer, config.oidc_jwks_uri, config.oidc_audience) == (
        oidc["issuer"], oidc["jwksUri"], oidc["audience"])
    assert (config.oidc_groups_claim, config.oidc_username_claim) == ("roles", "email")
    assert container["image"] == "registry.example.com/llmpack:9.9.9"
    assert container["imagePullPolicy"] == "Always"
    assert {"--namespace=team-a", "--namespace=team-b", "--webhook-port=10443", "--verbose"} <= set(container["args"])
    assert container["resources"] == values["resources"]
    assert config.metrics_port == values["metrics"]["port"]
    assert {"name": "metrics", "containerPort": 9102} in container["ports"]
    pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == values["nodeSelector"]
    assert pod["tolerations"] == values["tolerations"]
    assert values["podSecurityContext"].items() <= pod["securityContext"].items()  # Helm merges with defaults
    kinds = {(o["kind"], o["metadata"].get("namespace")) for o in objects}
    assert {("RoleBinding", "team-a"), ("RoleBinding", "team-b"), ("Certificate", NAMESPACE),
            ("Role", "edge"), ("Role", "intranet"), ("ReferenceGrant", NAMESPACE)} <= kinds
    bindings = {o["metadata"]["name"] for o in objects if o["kind"] == "ClusterRoleBinding"}
    assert bindings == {"llmpack-cluster"}  # only the cluster-scoped needs: CRD watch, its webhook configuration


def test_metrics_are_served_by_default_and_service_monitors_made_only_when_asked(cluster: LocalCluster) -> None:
    default = template(cluster, "--set", "keyManager.enabled=true", "--set", "auth.oidc.issuer=https://id.example")
    assert [o for o in default if o["kind"] == "ServiceMonitor"] == []
    service = next(o for o in default if o["metadata"]["name"] == "llmpack-metrics")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8081, "targetPort": "metrics"}]
    assert {"name": "LLMPACK_METRICS_PORT", "value": "8081"} in _operator_container(default)["env"]

    off = template(cluster, "--set", "metrics.port=0", "--set", "metrics.serviceMonitor.enabled=true")
    assert not [o for o in off if o["kind"] == "ServiceMonitor" or o["metadata"]["name"] == "llmpack-metrics"]
    assert {"name": "LLMPACK_METRICS_PORT", "value": "0"} in _operator_container(off)["env"]

    custom = template(cluster, "-f", str(CUSTOM))
    services = {o["metadata"]["name"]: o for o in custom if o["kind"] == "Service"}
    for monitor in (o for o in custom if o["kind"] == "ServiceMonitor"):
        assert monitor["metadata"]["labels"]["release"] == "prom"
        assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
        selected = [s for s in services.values()
                    if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
        assert [p["port"] for s in selected for p in s["spec"]["ports"] if p["name"] == "metrics"] == [9102]
    monitored = {o["metadata"]["name"] for o in custom if o["kind"] == "ServiceMonitor"}
    assert monitored == {"llmpack", "llmpack-key-manager"}


def test_the_grafana_dashboard_is_a_configmap_for_grafanas_sidecar_only_when_asked(cluster: LocalCluster) -> None:
    def dashboards(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")]

    assert dashboards(template(cluster)) == []
    (default,) = dashboards(template(cluster, "--set", "metrics.dashboard.enabled=true"))
    assert (default["metadata"]["namespace"], default["metadata"]["labels"]["grafana_dashboard"]) == (NAMESPACE, "1")
    shipped = json.loads((CHART / "dashboards" / "llmpack.json").read_text())
    assert json.loads(default["data"]["llmpack.json"]) == shipped

    (moved,) = dashboards(template(cluster, "--set", "metrics.dashboard.enabled=true",
                                   "--set", "metrics.dashboard.label=example.com/dashboard",
                                   "--set", "metrics.dashboard.labelValue=llm",
                                   "--set", "metrics.dashboard.namespace=monitoring",
                                   "--set", "metrics.dashboard.annotations.grafana_folder=LLM"))
    assert moved["metadata"]["namespace"] == "monitoring"
    assert moved["metadata"]["labels"]["example.com/dashboard"] == "llm"
    assert "grafana_dashboard" not in moved["metadata"]["labels"]
    assert moved["metadata"]["annotations"] == {"grafana_folder": "LLM"}
    refused = helm(cluster, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION,
                   "--set", "metrics.dashboard.label=not a label", check=False)
    assert refused.returncode != 0
    assert "at '/metrics/dashboard/label'" in refused.stderr

    default["metadata"]["namespace"] = "default"  # one that exists
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(default), check=False)
    assert result.returncode == 0, result.stderr  # the API server takes it (a ConfigMap holds at most 1 MiB)


def test_every_object_of_the_custom_render_passes_the_real_schemas(cluster: LocalCluster) -> None:
    """cert-manager's Certificate and Issuer, Gateway API's ReferenceGrant: a server-side dry run of each."""
    crds = [*cert_manager_crds(), *gateway_api_crds(), service_monitor_crd()]
    install_crds(cluster, crds)
    # The webhook configuration's name is the session operator's too: a dry run would merge the two.
    objects = [o for o in template(cluster, "-f", str(CUSTOM)) if o["kind"] != "ValidatingWebhookConfiguration"]
    wanted = sorted({o["metadata"]["namespace"] for o in objects if o["metadata"].get("namespace")})
    existing = set(cluster.kubectl("get", "namespaces", "-o", "name").stdout.split())
    created = [ns for ns in wanted if f"namespace/{ns}" not in existing]
    try:
        for ns in created:
            cluster.kubectl("create", "namespace", ns)
        result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(objects),
                                 check=False)
        assert result.returncode == 0, result.stderr
        assert "certificate.cert-manager.io/llm-tls created (server dry run)" in result.stdout
        assert "referencegrant.gateway.networking.k8s.io/llmpack-gateway-tls created (server dry run)" in result.stdout
        assert "servicemonitor.monitoring.coreos.com/llmpack-key-manager created (server dry run)" in result.stdout
    finally:
        for ns in created:
            cluster.kubectl("delete", "namespace", ns, "--timeout=60s")  # later tests install into these
        uninstall_crds(cluster, crds)


def test_image_tags_default_to_the_app_version_never_latest(cluster: LocalCluster) -> None:
    container = _operator_container(template(cluster))
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert container["image"].endswith(f":{app_version}")
    downloader = next(e["value"] for e in container["env"] if e["name"] == "LLMPACK_DOWNLOADER_IMAGE")
    assert downloader.endswith(f":{app_version}")
    assert "latest" not in yaml.safe_dump(template(cluster))


@pytest.fixture
def installed(cluster: LocalCluster, operator: OperatorProcess) -> Iterator[None]:
    """The chart installed for real; the session operator (which owns the same webhook name) and the session's
    admission policies (the chart ships its own, of the same names) step aside."""
    operator.stop()
    cluster.kubectl("delete", "validatingwebhookconfiguration", "llmpack-validating-webhook", "--ignore-not-found")
    remove_policies(cluster)
    try:
        result = helm(cluster, "install", RELEASE, str(CHART), "-n", NAMESPACE, "--create-namespace",
                      "--set", "auth.oidc.issuer=https://id.example.test/realms/llm",
                      "--kubeconfig", str(cluster.kubeconfig), check=False)
        assert result.returncode == 0, result.stderr
        yield
    finally:
        helm(cluster, "uninstall", RELEASE, "-n", NAMESPACE, "--kubeconfig", str(cluster.kubeconfig), "--wait",
             check=False)
        install_admission(cluster)
        operator.start()


def _webhook(cluster: LocalCluster) -> dict[str, Any]:
    got = cluster.kubectl("get", "validatingwebhookconfiguration", "llmpack-validating-webhook", "-o", "yaml")
    (hook,) = yaml.safe_load(got.stdout)["webhooks"]
    return dict(hook)


def test_an_upgrade_from_the_chart_whose_webhook_failed_closed_stops_blocking_and_ships_the_policies(
        cluster: LocalCluster, operator: OperatorProcess, tmp_path: Path) -> None:
    """The chart's pods never run here (kwok), so its webhook never answers: the old one blocks every apply,
    the upgraded one blocks none, and the policies it brings warn without any pod."""
    old_chart = checkout("charts/llmpack", tmp_path)
    model = yaml.safe_dump({"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel",
                            "metadata": {"name": "m", "namespace": "default"},
                            "spec": {"model": {"name": "Qwen/Qwen3-8B", "storage": {"type": "emptyDir"}}}})
    operator.stop()
    cluster.kubectl("delete", "validatingwebhookconfiguration", "llmpack-validating-webhook", "--ignore-not-found")
    remove_policies(cluster)
    kube = ("-n", NAMESPACE, "--kubeconfig", str(cluster.kubeconfig))
    try:
        helm(cluster, "install", RELEASE, str(old_chart), "--create-namespace", *kube)
        assert _webhook(cluster)["failurePolicy"] == "Fail"
        blocked = cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=model, check=False)
        assert "failed calling webhook" in blocked.stderr, blocked.stderr

        upgraded = helm(cluster, "upgrade", RELEASE, str(CHART), *kube, check=False)
        assert upgraded.returncode == 0, upgraded.stderr
        hook = _webhook(cluster)
        assert (hook["failurePolicy"], hook["timeoutSeconds"]) == ("Ignore", 2)
        wait_for_admission(cluster)  # the chart's policies, loaded by the API server
        applied = cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=model, check=False)
        assert applied.returncode == 0, applied.stderr
        assert "emptyDir with preload: every pod restart downloads the model again" in applied.stderr
    finally:
        helm(cluster, "uninstall", RELEASE, *kube, "--wait", check=False)
        install_admission(cluster)
        operator.start()


def _token_kubeconfig(cluster: LocalCluster, path: Path) -> Path:
    token = cluster.kubectl("create", "token", RELEASE, "-n", NAMESPACE, "--duration=1h").stdout.strip()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": "chart-sa", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "chart-sa"
    path.write_text(yaml.safe_dump(config))
    return path


def can_i(cluster: LocalCluster, verb: str, resource: str, namespace: str = "default") -> bool:
    result = cluster.kubectl("auth", "can-i", verb, resource, "-n", namespace,
                             f"--as=system:serviceaccount:{NAMESPACE}:{RELEASE}", check=False)
    return result.stdout.strip() == "yes"


async def test_installed_chart_runs_the_lifecycle_with_exactly_its_rbac(
        cluster: LocalCluster, client: AsyncClient, namespace: str, installed: None, tmp_path: Path) -> None:
    objects = cluster.kubectl("get", "deployment,service,serviceaccount", "-n", NAMESPACE, "-o", "name").stdout
    assert f"deployment.apps/{RELEASE}" in objects
    assert f"service/{RELEASE}-webhook" in objects

    assert not can_i(cluster, "list", "secrets")
    assert not can_i(cluster, "watch", "secrets")
    assert can_i(cluster, "get", "secrets")  # only to say when a named token Secret is missing
    # Why a PVC does not bind: its StorageClass by name, the Events about it by field selector; nothing watched.
    assert can_i(cluster, "get", "storageclasses")
    assert can_i(cluster, "list", "events")
    for verb, resource in (("list", "storageclasses"), ("watch", "events"), ("get", "events")):
        assert not can_i(cluster, verb, resource), f"the operator may {verb} {resource}"
    for verb, resource in [("delete", "deployments"), ("delete", "persistentvolumeclaims"), ("create", "pods"),
                           ("create", "nodes"), ("delete", "llmmodels"), ("create", "clusterroles"),
                           ("patch", "validatingwebhookconfigurations/other")]:
        assert not can_i(cluster, verb, resource), f"the operator may {verb} {resource}"

    # Our two CRDs, by name, kept current at start; no one else's CRD, and it deletes none.
    assert can_i(cluster, "update", "customresourcedefinitions/llmmodels.llm.nebari.dev")
    assert can_i(cluster, "update", "customresourcedefinitions/passthroughmodels.llm.nebari.dev")
    for verb, resource in [("update", "customresourcedefinitions/gateways.gateway.networking.k8s.io"),
                           ("patch", "customresourcedefinitions/llmmodels.llm.nebari.dev"),
                           ("delete", "customresourcedefinitions/llmmodels.llm.nebari.dev")]:
        assert not can_i(cluster, verb, resource), f"the operator may {verb} {resource}"
    # The operator keeps the chart's webhook configuration current: it may patch that one, and only that one.
    kubeconfig = _token_kubeconfig(cluster, tmp_path / "kubeconfig")
    patched = cluster.kubectl("patch", "validatingwebhookconfiguration", "llmpack-validating-webhook",
                              "--type=merge", "-p", '{"metadata":{"annotations":{"rbac-proof":"yes"}}}',
                              kubeconfig=kubeconfig, check=False)
    assert patched.returncode == 0, patched.stderr
    assert not can_i(cluster, "patch", "validatingwebhookconfigurations/someone-elses")
    # Out of cluster, the API server cannot reach a webhook behind the chart's Service (its DNS name does not
    # resolve here), so the chart's configuration steps aside while the operator reconciles as the chart's
    # ServiceAccount (a TokenRequest token) through a whole lifecycle.
    cluster.kubectl("delete", "validatingwebhookconfiguration", "llmpack-validating-webhook")
    process = OperatorProcess(kubeconfig, tmp_path / "operator.log",
                              env={"LLMPACK_OIDC_ISSUER": "https://id.example.test/realms/llm"})
    crds = routing_crds()
    install_crds(cluster, crds)  # so routing, keys and policies run as the chart's identity too
    process.start()
    try:
        models.apply(cluster, "qwen", namespace, {"model": {"authSecretName": "hf-token"}})
        cluster.kubectl("create", "secret", "generic", "hf-token", "-n", namespace, "--from-literal=HF_TOKEN=hf_x")
        await phases_until(client, "qwen", namespace, "Ready", within=60)
        models.patch(cluster, "qwen", namespace, {"serving": {"replicas": 2}})
        await eventually(lambda: ready_replicas(client, "qwen", namespace, 2), within=READY_WITHIN, what="2 replicas")
        for name in ("qwen-external-auth", "qwen-internal-auth"):
            await eventually(lambda n=name: client.get(SecurityPolicyResource, n, namespace=namespace),  # type: ignore[misc]
                             within=30, what=f"SecurityPolicy {name}")
        models.patch(cluster, "qwen", namespace, {"endpoints": {"internal": {"enabled": False}}})
        await eventually(lambda: _gone(client.get(SecurityPolicyResource, "qwen-internal-auth", namespace=namespace)),
                         within=30, what="the disabled side's policy deleted")
        cluster.kubectl("delete", "llmmodel", "qwen", "-n", namespace, "--wait=true")
        await eventually(lambda: _none_left(client, namespace), within=60, what="children gone")
        denials = [line for line in (tmp_path / "operator.log").read_text().splitlines()
                   if f"system:serviceaccount:{NAMESPACE}:{RELEASE}" in line and "forbidden" in line.lower()]
        assert denials == [], denials[:3]
    finally:
        process.stop()
        uninstall_crds(cluster, crds)


async def _gone(request: Awaitable[object]) -> bool:
    try:
        await request
    except ApiError as exc:
        return exc.status.code == 404
    return False


def test_uninstall_leaves_nothing_but_the_crd(cluster: LocalCluster, operator: OperatorProcess) -> None:
    operator.stop()
    cluster.kubectl("delete", "validatingwebhookconfiguration", "llmpack-validating-webhook", "--ignore-not-found")
    remove_policies(cluster)
    try:
        helm(cluster, "install", RELEASE, str(CHART), "-n", NAMESPACE, "--create-namespace",
             "--kubeconfig", str(cluster.kubeconfig))
        helm(cluster, "uninstall", RELEASE, "-n", NAMESPACE, "--kubeconfig", str(cluster.kubeconfig), "--wait")

        def left() -> str:
            found = cluster.kubectl("get", "clusterrole,clusterrolebinding,validatingwebhookconfiguration,"
                                    "validatingadmissionpolicy,validatingadmissionpolicybinding",
                                    "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name").stdout
            found += cluster.kubectl("get", "all,serviceaccount,rolebinding", "-n", NAMESPACE,
                                     "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name").stdout
            return found.strip()

        deadline = time.monotonic() + 30  # the garbage collector removes the pods after their Deployment
        while left() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert left() == ""
        assert cluster.kubectl("get", "crd", "llmmodels.llm.nebari.dev", check=False).returncode == 0
    finally:
        install_admission(cluster)
        operator.start()
