"""Our CRDs reach the cluster and stay current: the operator replaces the Serving Pack's LLMModel and
PassthroughModel CRDs with exactly ours (keeping every object, and from then on keeping our status fields),
only checks them when crds.manage is off, and after a `helm upgrade` from an older release serves the new
fields without restarting a model's pods. A control plane of this module's own: the CRDs are swapped under it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmpack_dev.cluster import LocalCluster
from tests.cluster import models
from tests.cluster.conftest import ROOT, own_cluster
from tests.cluster.old_release import PREVIOUS_CRD_COMMIT, MissingHistory, checkout
from tests.cluster.operator_process import OperatorProcess, settle_audit, writes_by
from tests.cluster.test_chart import CHART, helm
from tests.cluster.test_key_manager_rbac import NAMESPACE, OPERATOR_SA, RBAC_KINDS, render, token_kubeconfig

PACK_CRD_DIR = ROOT / "tests" / "cluster" / "manifests" / "serving-pack-crds"  # the pack's own, as test data
PACK_CRDS = ("llmmodel-crd.yaml", "passthroughmodel-crd.yaml")
OURS = {"llmmodels.llm.nebari.dev": "llmmodel", "passthroughmodels.llm.nebari.dev": "passthroughmodel"}
PACK_MODEL = ROOT / "tests" / "cluster" / "manifests" / "pack-style-cpu-model.yaml"
PACK_PASSTHROUGH = ROOT.parent / "shared" / "reference" / "serving-pack" / "examples" / "passthrough-openrouter.yaml"
WITHIN = 30.0
RELEASE, RELEASE_NAMESPACE, MODELS = "llmpack", "llmpack-system", "team"
NO_WEBHOOK = ("--set", "webhook.enabled=false")  # out of cluster the API server could not reach it


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with own_cluster(tmp_path_factory.mktemp("crd-plane")) as cluster:
        yield cluster


@pytest.fixture
def no_crds(plane: LocalCluster) -> None:
    """Neither of our CRDs (nor, with them, any of their objects): each test installs its own."""
    plane.kubectl("delete", "crd", *OURS, "--ignore-not-found", "--wait=true", "--timeout=60s")



def llmpack_crd(kind: str) -> dict[str, Any]:
    """What `llmpack crd` prints, the reference every served definition must equal."""
    out = subprocess.run([sys.executable, "-m", "llmpack.cli", "crd", "--kind", kind], capture_output=True,
                         text=True, check=True).stdout
    return dict(yaml.safe_load(out))


def pack_crd(name: str) -> str:
    """One of the Serving Pack's CRDs, exactly as its chart installs them (README.md beside them)."""
    return (PACK_CRD_DIR / name).read_text()


def served(cluster: LocalCluster, name: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", "crd", name, "-o", "json").stdout))


def exactly_ours(cluster: LocalCluster, name: str) -> bool:
    spec, ours = served(cluster, name)["spec"], llmpack_crd(OURS[name])["spec"]
    return spec == {"conversion": {"strategy": "None"}, **ours}  # the one default the API server adds


def until(what: str, done: Any, within: float = WITHIN) -> None:
    deadline = time.monotonic() + within
    while not done():
        assert time.monotonic() < deadline, f"timed out after {within}s waiting for {what}"
        time.sleep(0.25)


def get(cluster: LocalCluster, kind: str, name: str, namespace: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout))


def write_status(cluster: LocalCluster, name: str, namespace: str, status: dict[str, Any]) -> dict[str, Any]:
    """Status as a writer of ours sets it (the status subresource), and what the API server kept of it."""
    cluster.kubectl("patch", "llmmodel", name, "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": status}))
    return dict(get(cluster, "llmmodel", name, namespace).get("status") or {})


def chart_rbac(cluster: LocalCluster, *values: str) -> None:
    """The chart's ServiceAccount and RBAC (rendered with `values`), applied for real."""
    objects = [o for o in render(cluster, *values) if o["kind"] in RBAC_KINDS]
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump_all(objects))


def started(cluster: LocalCluster, log: Path, env: dict[str, str]) -> OperatorProcess:
    """`llmpack run` as the chart's ServiceAccount, once its watches have listed."""
    process = OperatorProcess(token_kubeconfig(cluster, OPERATOR_SA, log.with_suffix(".kubeconfig")), log, env=env)
    process.start()
    until("the operator's watches to list", lambda: "LLMModels in every namespace" in log.read_text())
    return process


def test_our_crds_replace_the_serving_packs_keeping_every_object_and_our_status_fields(
        plane: LocalCluster, no_crds: None, tmp_path: Path) -> None:
    for name in PACK_CRDS:  # as the pack's Helm chart leaves them: created from its crds/
        plane.kubectl("create", "-f", "-", stdin=pack_crd(name))
    plane.kubectl("wait", "--for=condition=Established", *(f"crd/{n}" for n in OURS), "--timeout=30s")
    # What a server-side apply of ours would keep: a conversion webhook another manager set (never called with
    # one version, but the API server would send every object through it once there were two).
    plane.kubectl("patch", "crd", "llmmodels.llm.nebari.dev", "--field-manager=someone-else", "--type=merge", "-p",
                  json.dumps({"spec": {"conversion": {"strategy": "Webhook", "webhook": {
                      "conversionReviewVersions": ["v1"], "clientConfig": {"url": "https://gone.example.test/c"}}}}}))
    model = yaml.safe_load(PACK_MODEL.read_text())
    namespace = model["metadata"]["namespace"]
    plane.kubectl("create", "namespace", namespace)
    plane.kubectl("apply", "-f", str(PACK_MODEL))
    plane.kubectl("apply", "-n", namespace, "-f", str(PACK_PASSTHROUGH))
    passthrough = yaml.safe_load(PACK_PASSTHROUGH.read_text())["metadata"]["name"]
    uids = {kind: get(plane, kind, name, namespace)["metadata"]["uid"]
            for kind, name in (("llmmodel", model["metadata"]["name"]), ("passthroughmodel", passthrough))}
    ours = {"phase": "Downloading", "download": {"bytesDone": 1024, "bytesTotal": 4096, "percent": 25},
            "resolvedRevision": "0123456789abcdef0123456789abcdef01234567"}
    kept = write_status(plane, model["metadata"]["name"], namespace, ours)
    assert kept.get("phase") == "Downloading", kept
    assert "download" not in kept, kept  # the pack's schema prunes what it does not name
    assert "resolvedRevision" not in kept, kept

    # GitOps: with crds.manage off the operator may only read them, writes nothing, and says so in a line each.
    chart_rbac(plane, "--set", "crds.manage=false")
    log = tmp_path / "check.log"
    checker = started(plane, log, {"LLMPACK_MANAGE_CRDS": "false"})
    checker.stop()
    warned = [line for line in log.read_text().splitlines() if "crds.manage is off" in line]
    assert len(warned) == 2, warned
    assert all(" is not llmpack " in line and ": missing" in line for line in warned), warned
    assert not any(exactly_ours(plane, name) for name in OURS)

    chart_rbac(plane)
    log = tmp_path / "operator.log"
    operator = started(plane, log, {})
    try:
        for name in OURS:
            until(f"{name} to be exactly `llmpack crd`'s", lambda n=name: exactly_ours(plane, n))
            assert f"CRD {name} replaced by llmpack" in log.read_text()
        for kind, uid in uids.items():
            name = model["metadata"]["name"] if kind == "llmmodel" else passthrough
            assert get(plane, kind, name, namespace)["metadata"]["uid"] == uid, f"{kind} {name} was recreated"

        # Restarted, it finds them current and writes no CRD at all.
        user = f"system:serviceaccount:{NAMESPACE}:{OPERATOR_SA}"
        operator.stop()
        settle_audit()
        before = [w for w in writes_by(plane.audit_log, user) if "customresourcedefinitions" in w]
        assert len(before) == 2, before  # one update each, nothing else
        operator.start()
        until("the restarted operator's watches to list",
              lambda: log.read_text().count("LLMModels in every namespace") == 2)
        settle_audit()
        assert [w for w in writes_by(plane.audit_log, user) if "customresourcedefinitions" in w] == before
    finally:
        operator.stop()
    kept = write_status(plane, model["metadata"]["name"], namespace, ours)
    assert kept["download"] == ours["download"], kept
    assert kept["resolvedRevision"] == ours["resolvedRevision"], kept
    plane.kubectl("delete", "namespace", namespace, "--wait=false")



def rollout(cluster: LocalCluster, name: str) -> dict[str, Any]:
    """What a restart would change: the Deployment's uid and generation, its pod template, its pods' uids."""
    deployment = get(cluster, "deployment", name, MODELS)
    pods = json.loads(cluster.kubectl("get", "pods", "-n", MODELS, "-l", f"app.kubernetes.io/instance={name}",
                                      "-o", "json").stdout)["items"]
    return {"uid": deployment["metadata"]["uid"], "generation": deployment["metadata"]["generation"],
            "template": deployment["spec"]["template"],
            "pods": sorted(p["metadata"]["uid"] for p in pods if p["metadata"].get("ownerReferences"))}


def ready(cluster: LocalCluster, name: str) -> bool:
    return (get(cluster, "llmmodel", name, MODELS).get("status") or {}).get("phase") == "Ready"


def test_a_helm_upgrade_from_a_release_with_older_crds_serves_the_new_fields_and_restarts_no_pod(
        plane: LocalCluster, no_crds: None, tmp_path: Path) -> None:
    try:
        old_chart = checkout("charts/llmpack", tmp_path / "old", PREVIOUS_CRD_COMMIT)
        old_src = checkout("src/llmpack", tmp_path / "old", PREVIOUS_CRD_COMMIT).parent
    except MissingHistory as exc:
        pytest.fail(str(exc), pytrace=False)
    kube = ("-n", RELEASE_NAMESPACE, "--kubeconfig", str(plane.kubeconfig))
    helm(plane, "install", RELEASE, str(old_chart), "--create-namespace", *NO_WEBHOOK, *kube)
    plane.kubectl("create", "namespace", MODELS)
    old = OperatorProcess(token_kubeconfig(plane, RELEASE, tmp_path / "old.kubeconfig", RELEASE_NAMESPACE),
                          tmp_path / "old.log", env={"PYTHONPATH": str(old_src)})
    old.start()
    try:
        models.apply(plane, "qwen", MODELS)  # a PVC, its download Job, one GPU replica
        models.apply(plane, "small", MODELS, {"model": {"name": "Qwen/Qwen3-0.6B", "preload": False,
                                                        "storage": {"type": "emptyDir"}}})
        for name in ("qwen", "small"):
            until(f"{name} Ready under the previous release", lambda n=name: ready(plane, n), within=60)
    finally:
        old.stop()
    uids = {n: get(plane, "llmmodel", n, MODELS)["metadata"]["uid"] for n in ("qwen", "small")}
    before = {n: rollout(plane, n) for n in uids}
    assert all(r["pods"] for r in before.values()), before

    upgraded = helm(plane, "upgrade", RELEASE, str(CHART), *NO_WEBHOOK, *kube, check=False)
    assert upgraded.returncode == 0, upgraded.stderr
    assert not exactly_ours(plane, "llmmodels.llm.nebari.dev")  # Helm left the previous release's CRD
    current = OperatorProcess(token_kubeconfig(plane, RELEASE, tmp_path / "new.kubeconfig", RELEASE_NAMESPACE),
                              tmp_path / "new.log")
    current.start()
    try:
        for name in OURS:  # replaced, and the release's new CRD created, with the upgraded chart's RBAC
            until(f"{name} to be exactly `llmpack crd`'s", lambda n=name: exactly_ours(plane, n))
        for name, uid in uids.items():
            until(f"{name}'s status.loading, new since {PREVIOUS_CRD_COMMIT[:7]}",
                  lambda n=name: (get(plane, "llmmodel", n, MODELS).get("status") or {}).get("loading"))
            assert get(plane, "llmmodel", name, MODELS)["metadata"]["uid"] == uid, f"{name} was recreated"
            assert ready(plane, name)
        plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(models.manifest("oci", MODELS, {"model": {
            "name": "Qwen/Qwen3-0.6B", "source": "oci", "image": "registry.example.test/qwen:1", "imageVolume": False,
            "storage": {"type": "emptyDir"}}})))
        assert get(plane, "llmmodel", "oci", MODELS)["spec"]["model"]["imageVolume"] is False  # served, kept
        plane.kubectl("apply", "-n", MODELS, "-f", "-", stdin=PACK_PASSTHROUGH.read_text().replace(
            "namespace: nebari-llm-serving-system", f"namespace: {MODELS}"))
        until("the oci model reconciled", lambda: ready(plane, "oci"), within=60)
        assert {n: rollout(plane, n) for n in uids} == before  # no Deployment changed, no pod replaced
    finally:
        current.stop()
        helm(plane, "uninstall", RELEASE, *kube, "--wait", check=False)
