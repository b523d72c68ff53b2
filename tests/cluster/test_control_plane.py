"""The test control plane behaves like a real cluster: scheduling, GPUs, volumes, GC, CRDs, webhooks."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from lightkube import AsyncClient, codecs
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, PersistentVolumeClaim, Pod

from llmpack import certs as pki
from llmpack.api.crd import crd
from llmpack_dev.cluster import LocalCluster
from tests.cluster.waiting import eventually


def _pod(name: str, namespace: str, gpus: int) -> dict[str, Any]:
    resources = {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "example.org/busy:1", "resources": resources}],
                 "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
    }


async def test_deployment_pods_become_running_and_ready_on_a_kwok_node(client: AsyncClient, namespace: str) -> None:
    labels = {"app": "web"}
    await client.create(codecs.from_dict({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "web", "image": "example.org/web:1"}]}}},
    }))

    async def ready() -> int | None:
        d = await client.get(Deployment, "web", namespace=namespace)
        return d.status.readyReplicas if d.status and d.status.readyReplicas == 2 else None

    await eventually(ready, what="2 ready replicas")
    pods = [p async for p in client.list(Pod, namespace=namespace)]
    assert len(pods) == 2
    for pod in pods:
        assert pod.status is not None
        assert pod.spec is not None
        assert pod.status.phase == "Running"
        assert pod.spec.nodeName == "cpu-node-1"  # the GPU nodes are tainted


async def test_gpu_pod_lands_on_a_gpu_node_and_an_impossible_one_stays_pending(
        client: AsyncClient, namespace: str) -> None:
    await client.create(codecs.from_dict(_pod("one-gpu", namespace, 1)))
    await client.create(codecs.from_dict(_pod("nine-gpus", namespace, 9)))

    async def placed() -> str | None:
        pod = await client.get(Pod, "one-gpu", namespace=namespace)
        return pod.spec.nodeName if pod.spec and pod.status and pod.status.phase == "Running" else None

    assert (await eventually(placed, what="the 1-GPU pod to run")).startswith("gpu-node-")

    async def unschedulable() -> bool:
        pod = await client.get(Pod, "nine-gpus", namespace=namespace)
        conditions = pod.status.conditions if pod.status else None
        return any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in conditions or [])

    await eventually(unschedulable, what="the 9-GPU pod to be reported unschedulable")
    pod = await client.get(Pod, "nine-gpus", namespace=namespace)
    assert pod.status is not None
    assert pod.status.phase == "Pending"
    assert pod.spec is not None
    assert pod.spec.nodeName is None


async def test_pvc_of_the_default_class_binds(client: AsyncClient, namespace: str) -> None:
    await client.create(codecs.from_dict({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "cache", "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "30Gi"}}},
    }))

    async def bound() -> str | None:
        pvc = await client.get(PersistentVolumeClaim, "cache", namespace=namespace)
        return pvc.spec.storageClassName if pvc.status and pvc.status.phase == "Bound" and pvc.spec else None

    assert await eventually(bound, what="the PVC to bind") == "standard"


async def test_deleting_an_owner_garbage_collects_its_dependents(client: AsyncClient, namespace: str) -> None:
    owner = await client.create(codecs.from_dict({"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "owner", "namespace": namespace}}))
    assert owner.metadata is not None
    await client.create(codecs.from_dict({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "dependent", "namespace": namespace,
                     "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                                          "uid": owner.metadata.uid}]},
    }))
    await client.delete(ConfigMap, "owner", namespace=namespace)

    async def gone() -> bool:
        return "dependent" not in [c.metadata.name async for c in client.list(ConfigMap, namespace=namespace)
                                   if c.metadata]

    await eventually(gone, what="the garbage collector to delete the dependent")


def test_llmmodel_crd_is_accepted_and_its_cel_rules_reject_oci_without_image(
        cluster: LocalCluster, tmp_path: Path) -> None:
    applied = cluster.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(crd()))
    assert "llmmodels.llm.nebari.dev serverside-applied" in applied.stdout
    cluster.kubectl("wait", "--for=condition=Established", "crd/llmmodels.llm.nebari.dev", "--timeout=30s")
    bad = {"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel", "metadata": {"name": "bad-oci"},
           "spec": {"model": {"name": "org/m", "source": "oci"}}}
    result = cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(bad), check=False)
    assert result.returncode != 0
    assert "spec.model.image: Invalid value: required when spec.model.source is oci" in result.stderr
    good = {**bad, "metadata": {"name": "good-oci"},
            "spec": {"model": {"name": "org/m", "source": "oci", "image": "r.example/m@sha256:" + "c" * 64}}}
    result = cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(good), check=False)
    assert result.returncode == 0, result.stderr
    cluster.kubectl("delete", "llmmodel", "good-oci")


class _Recorder(BaseHTTPRequestHandler):
    calls: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append(review["request"])
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": {"uid": review["request"]["uid"], "allowed": True}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook_server(tmp_path: Path) -> Iterator[tuple[int, bytes]]:
    ca = pki.make_ca(tmp_path, "webhook-ca")
    leaf = pki.issue(ca, tmp_path, "webhook", common_name="127.0.0.1", hosts=("127.0.0.1",), server=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(leaf.cert, leaf.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], ca.cert.read_bytes()
    server.shutdown()


async def test_api_server_calls_a_tls_webhook_on_loopback(cluster: LocalCluster, client: AsyncClient, namespace: str,
                                                          webhook_server: tuple[int, bytes]) -> None:
    port, ca_pem = webhook_server
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": f"smoke-{namespace}"},
        "webhooks": [{
            "name": "smoke.llmpack.test", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail", "timeoutSeconds": 5,
            "clientConfig": {"url": f"https://127.0.0.1:{port}/validate",
                             "caBundle": base64.b64encode(ca_pem).decode()},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["configmaps"]}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        }],
    }
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(config))
    try:
        async def called() -> bool:
            name = f"probe-{len(_Recorder.calls)}"
            await client.create(codecs.from_dict({"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": name, "namespace": namespace}}))
            return any(c["namespace"] == namespace and c["kind"]["kind"] == "ConfigMap" for c in _Recorder.calls)

        await eventually(called, what="the API server to call the webhook")
    finally:
        cluster.kubectl("delete", "validatingwebhookconfiguration", f"smoke-{namespace}")
