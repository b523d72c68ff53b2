"""What the LLM Serving Pack leaves in a cluster for one model, written from its documented layout (its
operator's reconcilers, its key manager, its chart's CRD; read for facts, not copied): the objects, their
labels, owner references and field managers, and a PVC's files as `hf download --local-dir` leaves them.

Its operator is controller-runtime built as the binary `manager`: every object it creates or updates is filed
under manager `manager`, operation Update; its key manager (binary `key-manager`) updates the key objects'
data. Objects in the CRDs' groups without an owner reference (the InferencePool, routes, policies, key objects)
are as the pack makes them: its finalizer `llm.nebari.dev/cleanup` deletes the key objects.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import yaml

from llmpack_dev.cluster import LocalCluster

MANAGER = "manager"
KEY_MANAGER = "key-manager"
FINALIZER = "llm.nebari.dev/cleanup"
CONFIG_HASH = "llm.nebari.dev/model-config-hash"

# The pack's CRD, reduced to what matters here: the same names, printer columns and subresource, a spec it
# does not prune, and a status of its own five fields (ours would be pruned to these).
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "llmmodels.llm.nebari.dev"},
    "spec": {
        "group": "llm.nebari.dev", "scope": "Namespaced",
        "names": {"kind": "LLMModel", "listKind": "LLMModelList", "plural": "llmmodels", "singular": "llmmodel"},
        "versions": [{
            "name": "v1alpha1", "served": True, "storage": True, "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"jsonPath": ".status.phase", "name": "Phase", "type": "string"},
                {"jsonPath": ".spec.model.name", "name": "Model", "type": "string"},
                {"jsonPath": ".status.replicas.ready", "name": "Replicas", "type": "string"},
                {"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "date"}],
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "status": {"type": "object", "properties": {
                    "phase": {"type": "string"},
                    "observedGeneration": {"type": "integer", "format": "int64"},
                    "modelSize": {"type": "string"},
                    "replicas": {"type": "object", "properties": {"ready": {"type": "integer"},
                                                                  "desired": {"type": "integer"}}},
                    "endpoints": {"type": "object", "properties": {"external": {"type": "string"},
                                                                   "internal": {"type": "string"}}}}}}}},
        }],
    },
}


WEBHOOK = "nebari-llm-serving-validating-webhook"


def webhook(namespace: str) -> dict[str, Any]:
    """The pack chart's webhook on LLMModels: failurePolicy Fail, so with its operator stopped every create and
    update of an LLMModel is refused until it is deleted (the guide's first step)."""
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": WEBHOOK},
            "webhooks": [{"name": "vllmmodel-v1alpha1.kb.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                          "failurePolicy": "Fail",
                          "clientConfig": {"service": {"name": "nebari-llm-serving-webhook-service",
                                                       "namespace": namespace,
                                                       "path": "/validate-llm-nebari-dev-v1alpha1-llmmodel"}},
                          "rules": [{"apiGroups": ["llm.nebari.dev"], "apiVersions": ["v1alpha1"],
                                     "operations": ["CREATE", "UPDATE"], "resources": ["llmmodels"]}]}]}


def labels(model: str) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": "nebari-llm-operator", "app.kubernetes.io/instance": model,
            "app.kubernetes.io/name": "llmmodel", "llm.nebari.dev/model": model}


def owner(model: str, uid: str) -> list[dict[str, Any]]:
    return [{"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel", "name": model, "uid": uid,
             "controller": True, "blockOwnerDeletion": True}]


def meta(model: str, name: str, namespace: str, uid: str | None, extra: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {**labels(model), **(extra or {})}}
    if uid:
        out["ownerReferences"] = owner(model, uid)
    return out


def children(model: str, repo: str, namespace: str, uid: str, size: str) -> list[dict[str, Any]]:
    """The objects the pack's operator creates for a Hugging Face model on a PVC with one GPU."""
    sa, cache = f"{model}-sa", "/model-cache"
    http = {"name": "http", "containerPort": 8000, "protocol": "TCP"}
    vllm = {
        "name": "vllm", "image": "ghcr.io/llm-d/llm-d-cuda:v0.7.0",
        "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
        "args": ["--model", cache, "--served-model-name", repo, "--tensor-parallel-size", "1",
                 "--data-parallel-size", "1"],
        "ports": [http], "resources": {"limits": {"nvidia.com/gpu": "1"}},
        "volumeMounts": [{"name": "model-storage", "mountPath": cache}, {"name": "shm", "mountPath": "/dev/shm"}],
        "startupProbe": {"httpGet": {"path": "/v1/models", "port": "http"}, "initialDelaySeconds": 15,
                         "periodSeconds": 30, "failureThreshold": 120},
        "readinessProbe": {"httpGet": {"path": "/v1/models", "port": "http"}, "periodSeconds": 5,
                           "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10, "failureThreshold": 3},
    }
    downloader = {"name": "model-downloader", "image": "ghcr.io/nebari-dev/llm-serving-pack/model-downloader:latest",
                  "args": [repo, "--local-dir", cache], "volumeMounts": [{"name": "model-storage", "mountPath": cache}]}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {**meta(model, model, namespace, uid), "annotations": {CONFIG_HASH: "0123456789abcdef"}},
        "spec": {
            "replicas": 1, "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app.kubernetes.io/instance": model}},
            "template": {"metadata": {"labels": labels(model)}, "spec": {
                "serviceAccountName": sa, "initContainers": [downloader], "containers": [vllm],
                "volumes": [{"name": "model-storage", "persistentVolumeClaim": {"claimName": f"{model}-model-storage"}},
                            {"name": "shm", "emptyDir": {"medium": "Memory"}}],
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "securityContext": {"fsGroup": 65532, "fsGroupChangePolicy": "OnRootMismatch"}}}},
    }
    return [
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(model, f"{model}-model-storage",
                                                                                namespace, uid),
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": meta(model, f"{model}-deny-direct", namespace, uid),
         "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": model, "llm.nebari.dev/model": model}},
                  "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                      "kubernetes.io/metadata.name": "envoy-gateway-system"}}}]},
                      {"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "epp"}}}]}]}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(model, sa, namespace, uid)},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta(model, model, namespace, uid),
         "spec": {"type": "ClusterIP", "selector": {"app.kubernetes.io/instance": model},
                  "ports": [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]}},
        deployment,
    ]


def routing(model: str, repo: str, namespace: str, uid: str) -> list[dict[str, Any]]:
    """Its InferencePool and endpoint picker, and the external route and its API-key policy (the pack gives the
    pool, routes and policies no owner reference)."""
    epp = f"{model}-epp"
    epp_labels = {**labels(model), "app.kubernetes.io/name": "epp"}
    epp_selector = {"app.kubernetes.io/instance": model, "app.kubernetes.io/name": "epp"}

    def epp_meta(name: str) -> dict[str, Any]:
        return {**meta(model, name, namespace, uid), "labels": epp_labels}

    container = {
        "name": "epp", "image": "ghcr.io/llm-d/llm-d-inference-scheduler:v0.8.0",
        "args": ["--pool-name", model, "--pool-namespace", namespace, "--grpc-port", "9002", "--grpc-health-port",
                 "9003", "--metrics-port", "9090", "--config-file", "/etc/epp/epp-config.yaml", "--zap-encoder",
                 "json", "--v", "4"],
        "ports": [{"name": "grpc", "containerPort": 9002}, {"name": "grpc-health", "containerPort": 9003},
                  {"name": "metrics", "containerPort": 9090}],
        "volumeMounts": [{"name": "epp-config", "mountPath": "/etc/epp", "readOnly": True}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": epp_meta(epp)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": epp_meta(epp),
         "rules": [{"apiGroups": ["inference.networking.k8s.io"], "resources": ["inferencepools"],
                    "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": epp_meta(epp),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": epp},
         "subjects": [{"kind": "ServiceAccount", "name": epp}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": epp_meta(f"{epp}-config"),
         "data": {"epp-config.yaml": "kind: EndpointPickerConfig\n"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": epp_meta(epp),
         "spec": {"selector": epp_selector, "ports": [{"name": "grpc", "port": 9002, "targetPort": "grpc"},
                                                      {"name": "metrics", "port": 9090, "targetPort": "metrics"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": epp_meta(epp),
         "spec": {"replicas": 1, "selector": {"matchLabels": epp_selector},
                  "template": {"metadata": {"labels": epp_labels}, "spec": {
                      "serviceAccountName": epp, "containers": [container],
                      "volumes": [{"name": "epp-config", "configMap": {"name": f"{epp}-config"}}]}}}},
        {"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
         "metadata": meta(model, model, namespace, None),
         "spec": {"targetPorts": [{"number": 8000}],
                  "selector": {"matchLabels": {"app.kubernetes.io/instance": model,
                                               "app.kubernetes.io/name": "llmmodel"}},
                  "endpointPickerRef": {"name": epp, "kind": "Service", "port": {"number": 9002}}}},
        {"apiVersion": "aigateway.envoyproxy.io/v1alpha1", "kind": "AIGatewayRoute",
         "metadata": meta(model, f"{model}-external", namespace, None),
         "spec": {"parentRefs": [{"name": "nebari-gateway", "namespace": "envoy-gateway-system",
                                  "sectionName": "llm-https"}],
                  "rules": [{"matches": [{"headers": [{"type": "Exact", "name": "x-ai-eg-model", "value": repo}]}],
                             "backendRefs": [{"group": "inference.networking.k8s.io", "kind": "InferencePool",
                                              "name": model}],
                             "timeouts": {"request": "600s"}}]}},
        {"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "SecurityPolicy",
         "metadata": meta(model, f"{model}-external-auth", namespace, None),
         "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                  "name": f"{model}-external"}],
                  "apiKeyAuth": {"credentialRefs": [{"group": "", "kind": "Secret", "name": f"{model}-api-keys"}],
                                 "extractFrom": [{"headers": ["Authorization"]}],
                                 "forwardClientIDHeader": "x-llm-client-id", "sanitize": True},
                  "authorization": {"defaultAction": "Deny"}}},
    ]


def key_objects(model: str, namespace: str, keys: dict[str, str], creator: str) -> list[dict[str, Any]]:
    """`<m>-api-keys` and `<m>-api-key-metadata` as the pack's operator creates them (no owner: its finalizer
    deletes them) and its key manager fills them: data[clientId] = key, and a JSON record per clientId."""
    extra = {"llm.nebari.dev/model-name": model}
    records = {cid: json.dumps({"clientId": cid, "creator": creator, "description": "laptop",
                                "createdAt": "2026-05-04T10:11:12Z", "modelName": model, "namespace": namespace})
               for cid in keys}
    return [
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": meta(model, f"{model}-api-keys",
                                                                                 namespace, None, extra),
         "data": {cid: base64.b64encode(key.encode()).decode() for cid, key in keys.items()}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(model, f"{model}-api-key-metadata", namespace,
                                                                   None, extra), "data": records},
    ]


def pack_client_id(user: str, model: str, sequence: int = 1) -> str:
    """The shape of the pack key manager's client ids: user-<user>-<model>-<32 hex>-<n>."""
    import hashlib

    digest = hashlib.sha256(f"{user}\0{model}".encode()).hexdigest()[:32]
    return f"user-{user}-{model}-{digest}-{sequence}"


def create(cluster: LocalCluster, objects: list[dict[str, Any]], manager: str = MANAGER) -> None:
    """Created as the pack's programs create them: an Update by `manager`."""
    cluster.kubectl("create", f"--field-manager={manager}", "-f", "-", stdin=yaml.safe_dump_all(objects))


def write_status(cluster: LocalCluster, model: str, namespace: str, status: dict[str, Any]) -> None:
    cluster.kubectl("patch", "llmmodel", model, "-n", namespace, "--subresource=status", "--type=merge",
                    f"--field-manager={MANAGER}", "-p", json.dumps({"status": status}))


def add_finalizer(cluster: LocalCluster, model: str, namespace: str) -> None:
    cluster.kubectl("patch", "llmmodel", model, "-n", namespace, "--type=merge", f"--field-manager={MANAGER}",
                    "-p", json.dumps({"metadata": {"finalizers": [FINALIZER]}}))


def fill_like_hf_download(directory: Path, files: dict[str, bytes], commit: str) -> None:
    """A directory as `hf download <repo> --local-dir DIR` leaves it: the files at their paths and, per file,
    huggingface_hub's `.cache/huggingface/download/<path>.metadata` (commit, etag, timestamp)."""
    for path, data in files.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        record = directory / ".cache" / "huggingface" / "download" / f"{path}.metadata"
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(f"{commit}\n\"etag-{len(data)}\"\n1767225600.0\n")
    (directory / ".cache" / "huggingface" / ".gitignore").write_text("*")
