"""What lets the downloaders of one model coordinate: a Lease, a Role that may touch only that Lease, a
binding for the model's ServiceAccount, and an API token mounted into the downloader container alone."""

from __future__ import annotations

from typing import Any

from llmpack.api import LLMModel, StorageType, names
from llmpack.render.meta import metadata

TOKEN_VOLUME = "downloader-api-token"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"  # where in-cluster clients look


def needs_lease(model: LLMModel) -> bool:
    """Replicas share a download only on a PVC; an emptyDir is each pod's own."""
    m = model.spec.model
    return m.preload and not m.is_oci and m.storage.type == StorageType.PVC


def lease(model: LLMModel) -> dict[str, Any]:
    # No spec: the downloaders own holder and renew time; the operator only creates it and owns its labels.
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": metadata(model, names.download_lease(model.name))}


def role(model: LLMModel) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(model, names.download_lease(model.name)),
        "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                   "resourceNames": [names.download_lease(model.name)], "verbs": ["get", "update", "patch"]}],
    }


def role_binding(model: LLMModel) -> dict[str, Any]:
    name = names.download_lease(model.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(model, name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": names.service_account(model.name),
                      **({"namespace": model.namespace} if model.namespace else {})}],
    }


def token_volume() -> dict[str, Any]:
    """The service account token, CA and namespace, as kubelet would mount them, for one container."""
    return {"name": TOKEN_VOLUME, "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
    ]}}


def downloader_additions(model: LLMModel) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(env, volumeMounts) the downloader container gets to hold the Lease."""
    env: list[dict[str, Any]] = [
        {"name": "LLMPACK_LEASE_NAME", "value": names.download_lease(model.name)},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    mounts: list[dict[str, Any]] = [{"name": TOKEN_VOLUME, "mountPath": TOKEN_PATH, "readOnly": True}]
    return env, mounts


def objects(model: LLMModel) -> list[dict[str, Any]]:
    return [lease(model), role(model), role_binding(model)] if needs_lease(model) else []
