"""Moving a running Serving Pack install to llmpack, as docs/coming-from-the-serving-pack.md says: the pack's
CRD and a model's objects as its operator left them (tests/cluster/pack_layout.py), then our CRD over the
pack's, our operator started, and the model taken over in place: the same PVC and Deployment, pods replaced
once, the pack's fields gone, its keys still authorizing, and the weights on the PVC kept."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import AsyncClient, KubeConfig
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap, PersistentVolumeClaim, Pod, Secret, Service

from llmpack.admission import policies
from llmpack.admission.table import Settings
from llmpack.api import crd
from llmpack.assess.crds import differences
from llmpack.downloader.lease import PROGRESS_ANNOTATION
from llmpack.operator.kube import (
    AIGatewayRouteResource,
    InferencePoolResource,
    LLMModelResource,
    SecurityPolicyResource,
)
from llmpack_dev.cluster import LocalCluster
from llmpack_dev.crds import ai_gateway_crds, install, routing_crds
from tests.cluster import pack_layout as pack
from tests.cluster.conftest import OPERATOR_ENV, ROOT
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_key_manager_rbac import NAMESPACE as CHART_NAMESPACE
from tests.cluster.test_key_manager_rbac import OPERATOR_SA, RBAC_KINDS, render, token_kubeconfig
from tests.cluster.waiting import eventually
from tests.download.conftest import env_for
from tests.hub.server import HubServer, synthetic_repo

NAMESPACE = "nebari-llm-serving-system"
MODEL, REPO = "qwen", "org/model"
ALICE = pack.pack_client_id("alice", MODEL)
ALICE_KEY = "sk-" + "A" * 32


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    server = HubServer([synthetic_repo(REPO, shards=2, shard_size=2 << 20)]).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pack_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A control plane of this module's own: the pack's CRD where ours would be, and the routing CRDs."""
    cluster = LocalCluster(tmp_path_factory.mktemp("pack"), Path(os.environ.get("LLMPACK_TESTBIN",
                                                                              ROOT / ".testbin")))
    try:
        cluster.up()
        cluster.kubectl("create", "--field-manager=helm", "-f", "-", stdin=yaml.safe_dump(pack.CRD))
        cluster.kubectl("wait", "--for=condition=Established", "crd/llmmodels.llm.nebari.dev", "--timeout=30s")
        install(cluster, [*routing_crds(), *ai_gateway_crds("v0.5.0")])
        cluster.kubectl("create", "namespace", NAMESPACE)
        yield cluster
    finally:
        cluster.down(keep_state=bool(os.environ.get("LLMPACK_KEEP_CLUSTER")))


@pytest.fixture
async def api(pack_cluster: LocalCluster) -> AsyncIterator[AsyncClient]:
    client = AsyncClient(KubeConfig.from_file(str(pack_cluster.kubeconfig)), field_manager="llmpack-tests")
    yield client
    await client.close()


def pack_install(cluster: LocalCluster) -> str:
    """The model as the pack's operator leaves it, Ready; returns its uid."""
    manifest = {"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel",
                "metadata": {"name": MODEL, "namespace": NAMESPACE},
                "spec": {"model": {"name": REPO, "storage": {"type": "pvc", "size": "1Gi"}},
                         "resources": {"gpu": {"count": 1}}}}
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    pack.add_finalizer(cluster, MODEL, NAMESPACE)
    uid = cluster.kubectl("get", "llmmodel", MODEL, "-n", NAMESPACE, "-o", "jsonpath={.metadata.uid}").stdout
    pack.create(cluster, pack.children(MODEL, REPO, NAMESPACE, uid, "1Gi"))
    pack.create(cluster, pack.routing(MODEL, REPO, NAMESPACE, uid))
    pack.create(cluster, pack.key_objects(MODEL, NAMESPACE, {ALICE: ALICE_KEY}, "alice"), manager=pack.KEY_MANAGER)
    pack.write_status(cluster, MODEL, NAMESPACE, {
        "phase": "Ready", "observedGeneration": 1, "replicas": {"ready": 1, "desired": 1},
        "endpoints": {"external": "https://llm.example.test", "internal": "https://llm-internal.example.test"}})
    pack.create(cluster, [pack.webhook(NAMESPACE)], manager="helm")  # its operator (the webhook's server) is gone
    return uid


def retired_before_our_rules(cluster: LocalCluster) -> None:
    """A second pack model, admitted by the pack with a schedulerConfig llmpack's admission policy refuses, then
    llmpack's policies installed (as `helm install` does) and enforced on a write of its spec."""
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump({
        "apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel",
        "metadata": {"name": "retired", "namespace": NAMESPACE, "finalizers": [pack.FINALIZER]},
        "spec": {"model": {"name": REPO, "storage": {"size": "1Gi"}},
                 "advanced": {"inferencePool": {"schedulerConfig": "not an EndpointPickerConfig"}}}}))
    cluster.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(policies.objects(Settings())))
    spec_write = ["patch", "llmmodel", "retired", "-n", NAMESPACE, "--dry-run=server", "--type=merge", "-p",
                  json.dumps({"spec": {"advanced": {"inferencePool": {"schedulerConfig": "still not one"}}}})]

    def enforced() -> bool:
        return "ValidatingAdmissionPolicy 'llmmodel-denials'" in cluster.kubectl(*spec_write, check=False).stderr

    deadline = time.monotonic() + 30
    while not enforced():
        assert time.monotonic() < deadline, "llmpack's admission policies not enforced within 30 s"
        time.sleep(0.5)


async def pods_of(client: AsyncClient) -> list[Pod]:
    selector = {"app.kubernetes.io/instance": MODEL, "app.kubernetes.io/name": "llmmodel"}
    return [p async for p in client.list(Pod, namespace=NAMESPACE, labels=selector)]


async def replica_sets(client: AsyncClient) -> list[ReplicaSet]:
    return [rs async for rs in client.list(ReplicaSet, namespace=NAMESPACE)
            if any(o.name == MODEL and o.kind == "Deployment" for o in rs.metadata.ownerReferences or ())]  # type: ignore[union-attr]


def managers(obj: Any) -> set[str]:
    return {f.manager for f in obj.metadata.managedFields or ()}


async def test_a_running_pack_model_is_taken_over_in_place_with_its_weights_and_keys(
        pack_cluster: LocalCluster, api: AsyncClient, hub: HubServer, tmp_path: Path) -> None:
    uid = pack_install(pack_cluster)

    async def pack_pod_ready() -> list[Pod]:
        return [p for p in await pods_of(api) if any(c.type == "Ready" and c.status == "True"
                                                     for c in p.status.conditions or ())]  # type: ignore[union-attr]

    (pack_pod,) = await eventually(pack_pod_ready, within=30, what="the pack's pod to serve")
    pvc_before = await api.get(PersistentVolumeClaim, f"{MODEL}-model-storage", namespace=NAMESPACE)
    deployment_before = await api.get(Deployment, MODEL, namespace=NAMESPACE)

    # The guide: the pack's operator scaled to 0 (here it never ran) and its webhook deleted (with no server
    # behind it, it refuses every change to an LLMModel, the removal of the pack's finalizer too), then our
    # operator, which replaces the pack's CRD with ours when it starts (nothing applies it by hand).
    refused = pack_cluster.kubectl("label", "llmmodel", MODEL, "-n", NAMESPACE, "x=y", check=False)
    assert refused.returncode != 0
    assert "vllmmodel-v1alpha1.kb.io" in refused.stderr, refused.stderr
    pack_cluster.kubectl("delete", "validatingwebhookconfiguration", pack.WEBHOOK)
    retired_before_our_rules(pack_cluster)
    # As the chart's ServiceAccount, with exactly the chart's RBAC: what proves that RBAC for a takeover.
    pack_cluster.kubectl("create", "namespace", CHART_NAMESPACE)
    rbac = [o for o in render(pack_cluster, "--set", f"auth.oidc.issuer={OPERATOR_ENV['LLMPACK_OIDC_ISSUER']}")
            if o["kind"] in RBAC_KINDS]
    pack_cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(rbac))
    kubeconfig = token_kubeconfig(pack_cluster, OPERATOR_SA, tmp_path / "kubeconfig-chart")
    operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", env=OPERATOR_ENV)
    operator.start()
    try:
        async def taken_over() -> dict[str, Any] | None:
            model = await api.get(LLMModelResource, MODEL, namespace=NAMESPACE)
            done = (model.status or {}).get("phase") == "Ready" and not model.metadata.finalizers  # type: ignore[union-attr]
            return dict(model.status or {}) if done else None

        status = await eventually(taken_over, within=60, interval=0.5,
                                  what="the model Ready under llmpack, the pack's finalizer removed")
        routes = {c["type"]: c["reason"] for c in status["conditions"]}
        await eventually(lambda: _routed(api), within=20, what="the pack's routing objects to be ours")
        # A pack model deleted now is not held by the pack's finalizer: nothing else would ever remove it. This
        # one has a schedulerConfig the pack took and our admission policy refuses: its finalizer still goes.
        pack_cluster.kubectl("delete", "llmmodel", "retired", "-n", NAMESPACE, "--wait=false")

        async def retired_gone() -> bool:
            found = pack_cluster.kubectl("get", "llmmodel", "retired", "-n", NAMESPACE, check=False)
            return found.returncode != 0 and "NotFound" in found.stderr

        await eventually(retired_gone, within=20, what="the deleted pack model to go")
        await asyncio.sleep(3)  # long enough for a second roll to show, if there were one
        final_pods = await pods_of(api)
        rs = await replica_sets(api)
    finally:
        operator.stop()
    log = (tmp_path / "operator.log").read_text()
    assert "taken over from the Serving Pack" in log, log[-3000:]
    served = json.loads(pack_cluster.kubectl("get", "crd", "llmmodels.llm.nebari.dev", "-o", "json").stdout)
    assert differences(served, crd.crd()) == [], "the pack's CRD is still served, not ours"

    # Never recreated: the same PVC (its spec untouched) and Deployment; pods replaced once.
    pvc = await api.get(PersistentVolumeClaim, f"{MODEL}-model-storage", namespace=NAMESPACE)
    assert pvc.metadata.uid == pvc_before.metadata.uid  # type: ignore[union-attr]
    assert pvc.spec == pvc_before.spec
    deployment = await api.get(Deployment, MODEL, namespace=NAMESPACE)
    assert deployment.metadata.uid == deployment_before.metadata.uid  # type: ignore[union-attr]
    assert len(rs) == 2, [r.metadata.name for r in rs]  # type: ignore[union-attr]  # the pack's, and ours
    assert pack_pod.metadata.uid not in {p.metadata.uid for p in final_pods}  # type: ignore[union-attr]
    assert len(final_pods) == 1
    # The pack's selector is kept (a Deployment's cannot change); everything else is ours, and only ours.
    assert deployment.spec.selector.matchLabels == {"app.kubernetes.io/instance": MODEL}  # type: ignore[union-attr]
    template = deployment.spec.template.spec  # type: ignore[union-attr]
    assert {v.name for v in template.volumes or ()} >= {"model-storage"}
    assert "shm" not in {v.name for v in template.volumes or ()}, "the pack's volume survived the takeover"
    assert pack.CONFIG_HASH not in (deployment.metadata.annotations or {})  # type: ignore[union-attr]
    assert template.containers[0].startupProbe.initialDelaySeconds is None  # type: ignore[union-attr]
    for obj in (deployment, pvc, await api.get(Service, MODEL, namespace=NAMESPACE)):
        assert obj.metadata.labels["app.kubernetes.io/managed-by"] == "llmpack"  # type: ignore[union-attr,index]
        assert [(o.uid, o.controller) for o in obj.metadata.ownerReferences] == [(uid, True)]  # type: ignore[union-attr]
        assert pack.MANAGER not in managers(obj) or obj is pvc  # a PVC's spec stays the pack's: it cannot change
    assert pack.MANAGER not in {f.manager for f in pvc.metadata.managedFields if f.fieldsV1 and  # type: ignore[union-attr]
                                "f:metadata" in f.fieldsV1}

    # The routing objects, the pack's without owners, are the model's now, with only our fields.
    for resource, name in ROUTING:
        obj = await api.get(resource, name, namespace=NAMESPACE)
        assert [(o.uid, o.controller) for o in obj.metadata.ownerReferences or ()] == [(uid, True)], name
        assert pack.MANAGER not in managers(obj), name
    epp = (await api.get(Deployment, f"{MODEL}-epp", namespace=NAMESPACE)).spec.template.spec  # type: ignore[union-attr]
    assert "--zap-encoder" not in (epp.containers[0].args or ())
    assert [v.name for v in epp.volumes or ()] == ["config"]

    # The model's own fields: its status is ours, the pack's manager holds nothing on it any more.
    assert pack.MANAGER not in managers(await api.get(LLMModelResource, MODEL, namespace=NAMESPACE))

    # Our status, served by our CRD (not pruned to the pack's five fields).
    assert {"Ready", "StorageReady"} <= set(routes)
    adopted = next(c for c in status["conditions"] if c["type"] == "Adopted")
    assert (adopted["status"], adopted["reason"]) == ("True", "KeptFromServingPack")
    assert f"Deployment {MODEL} keeps the selector" in adopted["message"]
    printed = pack_cluster.kubectl("get", "llmmodel", "-n", NAMESPACE).stdout
    assert "Ready" in printed.splitlines()[1]

    # The pack's key: unchanged, pooled into the policy, and allowed by it.
    secret = await api.get(Secret, f"{MODEL}-api-keys", namespace=NAMESPACE)
    assert base64.b64decode((secret.data or {})[ALICE]).decode() == ALICE_KEY
    metadata = await api.get(ConfigMap, f"{MODEL}-api-key-metadata", namespace=NAMESPACE)
    assert json.loads((metadata.data or {})[ALICE])["creator"] == "alice"
    # Without a key manager the model owns its key metadata now (the pack's finalizer deleted it before).
    assert [o.uid for o in metadata.metadata.ownerReferences or ()] == [uid]  # type: ignore[union-attr]
    policy = await api.get(SecurityPolicyResource, f"{MODEL}-external-auth", namespace=NAMESPACE)
    assert {"group": "", "kind": "Secret", "name": f"{MODEL}-api-keys"} in policy.spec["apiKeyAuth"]["credentialRefs"]
    (rule,) = policy.spec["authorization"]["rules"]
    assert rule["principal"]["headers"][0]["values"] == [ALICE]

    # The weights the pack's downloader left: our downloader checks them against the Hub's hashes and fetches
    # nothing, reporting on the model's Lease.
    cache = tmp_path / "pvc"
    commit = hub.repos[REPO].refs["main"]
    pack.fill_like_hf_download(cache, hub.repos[REPO].commits[commit], commit)
    env = env_for(hub, tmp_path, KUBECONFIG=str(pack_cluster.kubeconfig),
                  LLMPACK_LEASE_NAME=f"{MODEL}-model-download", POD_NAME="downloader", POD_NAMESPACE=NAMESPACE)
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "llmpack.cli", "download", REPO,
                                                    "--local-dir", str(cache)],
                                   env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    fetched = sum(n for key, n in hub.served.items() if key.startswith(f"{REPO}/"))
    assert fetched == 0, dict(hub.served)
    lease = await api.get(Lease, f"{MODEL}-model-download", namespace=NAMESPACE)
    progress = json.loads(lease.metadata.annotations[PROGRESS_ANNOTATION])  # type: ignore[union-attr,index]
    assert (progress["phase"], progress["percent"]) == ("complete", 100)


ROUTING = ((InferencePoolResource, MODEL), (AIGatewayRouteResource, f"{MODEL}-external"),
           (SecurityPolicyResource, f"{MODEL}-external-auth"), (Deployment, f"{MODEL}-epp"),
           (ConfigMap, f"{MODEL}-epp-config"), (Service, f"{MODEL}-epp"))


async def _routed(client: AsyncClient) -> bool:
    for resource, name in ROUTING:
        obj = await client.get(resource, name, namespace=NAMESPACE)
        if (obj.metadata.labels or {}).get("app.kubernetes.io/managed-by") != "llmpack":  # type: ignore[union-attr]
            return False
    return True
