"""The chart takes the Serving Pack's values.yaml unchanged: it renders, lints and installs; each setting the pack
spells its own way reaches the operator, by one rule when both spellings are given; the pack's images never run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmpack.config import SETTINGS, Config, load_config
from llmpack_dev.cluster import LocalCluster, install_admission, remove_policies
from llmpack_dev.crds import cert_manager_crds, gateway_api_crds
from llmpack_dev.crds import install as install_crds
from llmpack_dev.crds import uninstall as uninstall_crds
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_chart import CHART, KUBE_VERSION, helm, template
from tests.serving_pack import VALUES, spelling_pairs
from tests.unit.factories import merge

NAMESPACE = "nebari-llm-serving-system"
FIELD_OF = {values_path: field for values_path, _, field in SETTINGS}
OURS = "ghcr.io/nebari-dev/llmpack/"


def _values(tmp_path: Path, values: dict[str, Any], name: str = "values.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values))
    return str(path)


def _pack_values(**changes: Any) -> dict[str, Any]:
    return merge(yaml.safe_load(VALUES.read_text()), changes)


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def _config(objects: list[dict[str, Any]]) -> Config:
    env = {e["name"]: e["value"] for e in _container(objects)["env"] if "value" in e}
    return load_config(None, env=env)


def _nested(dotted: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return out


PAIRS = spelling_pairs()


def _effective(objects: list[dict[str, Any]], ours: str) -> Any:
    if ours in FIELD_OF:
        return getattr(_config(objects), FIELD_OF[ours])
    assert ours == "routing.tls.certManager.clusterIssuer", ours  # not an operator setting: the Certificate's
    certificate = next(o for o in objects if o["kind"] == "Certificate")
    return certificate["spec"]["issuerRef"]["name"]


def test_the_schema_names_the_pack_spelling_of_every_pack_setting() -> None:
    assert {pack for pack, _, _ in PAIRS} == {
        "platform.baseDomain", "platform.gateway.external.name", "platform.gateway.external.namespace",
        "platform.gateway.internal.name", "platform.gateway.internal.namespace",
        "platform.gateway.manageSharedListeners", "platform.tls.clusterIssuer", "platform.tls.secretName",
        "auth.oidc.issuerURL", "defaults.epp.image"}


@pytest.mark.parametrize(("pack", "ours", "kind"), PAIRS, ids=[p for p, _, _ in PAIRS])
def test_one_rule_for_two_spellings_llmpacks_when_set_else_the_packs_else_the_default(
        cluster: LocalCluster, tmp_path: Path, pack: str, ours: str, kind: str) -> None:
    pack_value, our_value = (True, False) if kind == "boolean" else ("pack-spelt", "llmpack-spelt")
    base = {"routing": {"baseDomain": "ai.example.test"}} if ours.startswith("routing.tls.certManager") else {}
    only_pack = template(cluster, "-f", _values(tmp_path, merge(base, _nested(pack, pack_value)), "a.yaml"))
    assert _effective(only_pack, ours) == pack_value
    both = merge(merge(base, _nested(pack, pack_value)), _nested(ours, our_value))
    assert _effective(template(cluster, "-f", _values(tmp_path, both, "b.yaml")), ours) == our_value
    if ours in FIELD_OF:  # neither: the chart's built-in default is the operator's own
        assert _effective(template(cluster), ours) == getattr(Config(), FIELD_OF[ours])


def test_the_packs_values_render_and_lint_unchanged_and_never_name_the_packs_images(cluster: LocalCluster) -> None:
    lint = helm(cluster, "lint", "--strict", str(CHART), "-f", str(VALUES), check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    objects = template(cluster, "-f", str(VALUES))
    container = _container(objects)
    assert container["image"] == f"{OURS}operator:0.1.0"
    config = _config(objects)
    assert config.downloader_image == f"{OURS}model-downloader:0.1.0"
    assert "llm-serving-pack" not in yaml.safe_dump_all(objects)
    # What the pack's file does set, as the pack means it.
    assert config.serving_image == "ghcr.io/llm-d/llm-d-cuda:v0.7.0"
    assert config.epp_image == "ghcr.io/llm-d/llm-d-inference-scheduler:v0.8.0"
    assert (config.external_gateway_name, config.internal_gateway_name) == ("nebari-gateway", "nebari-internal-gateway")
    assert config.manage_listeners is True
    assert config.tls_secret_namespace == "llmpack-system"  # the pack keeps the certificate beside its operator
    assert "Certificate" not in {o["kind"] for o in objects}  # it waits for a base domain


def test_a_copy_with_domain_issuer_and_class_set_reaches_the_operator_under_the_packs_spelling(
        cluster: LocalCluster, tmp_path: Path) -> None:
    copy = _pack_values(platform={"baseDomain": "ai.example.test"},
                        auth={"oidc": {"issuerURL": "https://sso.example.test/realms/nebari"}},
                        defaults={"storage": {"storageClassName": "efs-sc"}})
    objects = template(cluster, "-f", _values(tmp_path, copy))
    config = _config(objects)
    assert config.base_domain == "ai.example.test"
    assert config.oidc_issuer == "https://sso.example.test/realms/nebari"
    assert config.storage_class_name == "efs-sc"
    certificate = next(o for o in objects if o["kind"] == "Certificate")
    assert certificate["spec"]["dnsNames"] == ["llm.ai.example.test", "llm-internal.ai.example.test"]
    assert certificate["spec"]["issuerRef"]["name"] == "letsencrypt-production"


def test_the_issuer_from_the_packs_existing_secret_is_read_when_the_pod_starts(
        cluster: LocalCluster, tmp_path: Path) -> None:
    values = _values(tmp_path, {"auth": {"oidc": {"existingSecret": "llm-oidc-client"}}})
    env = {e["name"]: e for e in _container(template(cluster, "-f", values))["env"]}
    assert env["LLMPACK_OIDC_ISSUER"]["valueFrom"] == {
        "secretKeyRef": {"name": "llm-oidc-client", "key": "issuer-url", "optional": True}}


def test_a_pack_image_that_is_not_the_packs_own_is_used(cluster: LocalCluster, tmp_path: Path) -> None:
    values = _values(tmp_path, {"modelDownloader": {"image": {"repository": "mirror.example.test/downloader",
                                                              "tag": "1.2"}}})
    assert _config(template(cluster, "-f", values)).downloader_image == "mirror.example.test/downloader:1.2"


@pytest.mark.parametrize("typo", [{"platform": {"baseDomian": "x"}}, {"keyManager": {"enable": True}},
                                  {"frontend": {"image": {"repo": "x"}}}])
def test_a_misspelt_pack_key_is_refused(cluster: LocalCluster, tmp_path: Path, typo: dict[str, Any]) -> None:
    result = helm(cluster, "template", "llmpack", str(CHART), "--kube-version", KUBE_VERSION,
                  "-f", str(VALUES), "-f", _values(tmp_path, typo), check=False)
    assert result.returncode != 0
    assert "additional properties" in result.stderr


def test_helm_assumes_a_kubernetes_version_within_the_charts_floor_offline(
        cluster: LocalCluster, tmp_path: Path) -> None:
    """`.testbin/helm template` works without --kube-version, as a released helm does."""
    probe = tmp_path / "probe"
    (probe / "templates").mkdir(parents=True)
    (probe / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (probe / "templates" / "version.yaml").write_text("kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}\n")
    assumed = yaml.safe_load(helm(cluster, "template", str(probe)).stdout)["kubeVersion"]
    floor = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]  # ">=1.30.0-0"
    assert tuple(map(int, assumed.lstrip("v").split(".")[:2])) >= tuple(map(int, floor.lstrip(">=").split(".")[:2]))
    assert helm(cluster, "template", "llmpack", str(CHART)).returncode == 0


@pytest.fixture
def chart_stands_in(cluster: LocalCluster, operator: OperatorProcess) -> Iterator[None]:
    """The session operator and admission policies step aside (the chart owns objects of the same names), and what a
    cluster running the pack has is there: the Gateway API and cert-manager CRDs (the listeners' ReferenceGrant
    and certificate) and the namespace of its Gateways (the chart grants the operator their listeners)."""
    crds = [*gateway_api_crds(), *cert_manager_crds()]
    install_crds(cluster, crds)
    gateways = cluster.kubectl("create", "namespace", "envoy-gateway-system", check=False).returncode == 0
    operator.stop()
    cluster.kubectl("delete", "validatingwebhookconfiguration", "llmpack-validating-webhook", "--ignore-not-found")
    remove_policies(cluster)
    try:
        yield
    finally:
        helm(cluster, "uninstall", "llmpack", "-n", NAMESPACE, "--kubeconfig", str(cluster.kubeconfig), "--wait",
             check=False)
        cluster.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=120s")
        if gateways:
            cluster.kubectl("delete", "namespace", "envoy-gateway-system", "--wait=false")
        uninstall_crds(cluster, crds)
        install_admission(cluster)
        operator.start()


def test_helm_install_with_the_packs_values_then_a_copy_with_a_domain(
        cluster: LocalCluster, tmp_path: Path, chart_stands_in: None) -> None:
    common = ["-n", NAMESPACE, "--kubeconfig", str(cluster.kubeconfig)]
    installed = helm(cluster, "install", "llmpack", str(CHART), "--create-namespace", "-f", str(VALUES), *common,
                     check=False)
    assert installed.returncode == 0, installed.stderr
    assert "operator.image names the LLM Serving Pack's operator" in installed.stdout  # NOTES.txt
    assert "Accepted from the Serving Pack's values but not acted on: createNamespace" in installed.stdout
    assert "no base domain is set" in installed.stdout
    assert "No OIDC issuer, so the internal endpoint gets no route" in installed.stdout
    pods = cluster.kubectl("get", "deployment", "llmpack", "-n", NAMESPACE, "-o",
                           "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert pods == f"{OURS}operator:0.1.0"

    copy = _pack_values(platform={"baseDomain": "ai.example.test"},
                        auth={"oidc": {"issuerURL": "https://sso.example.test/realms/nebari"}},
                        defaults={"storage": {"storageClassName": "efs-sc"}})
    upgraded = helm(cluster, "upgrade", "llmpack", str(CHART), "-f", _values(tmp_path, copy), *common, check=False)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "no base domain is set" not in upgraded.stdout
    certificate = cluster.kubectl("get", "certificate", "llm-gateway-tls", "-n", NAMESPACE, "-o",
                                  "jsonpath={.spec.dnsNames}").stdout
    assert json.loads(certificate) == ["llm.ai.example.test", "llm-internal.ai.example.test"]
