"""What the test cluster holds before any test: kwok nodes (two with 8 GPUs, one CPU-only) and a
default StorageClass served by our fake provisioner."""

from __future__ import annotations

from typing import Any

from llmpack_dev.provisioner import PROVISIONER

GPU_PRODUCT = "NVIDIA-A100-SXM4-80GB"
STORAGE_CLASS = "standard"


def node(name: str, *, cpu: str, memory: str, gpus: int = 0) -> dict[str, Any]:
    capacity = {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "1Ti"}
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "type": "kwok"}
    spec: dict[str, Any] = {}
    if gpus:
        capacity["nvidia.com/gpu"] = str(gpus)
        labels |= {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": GPU_PRODUCT}
        # As on real GPU pools: only pods that tolerate the taint (ours do when they ask for GPUs) land here.
        spec["taints"] = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
        "spec": spec,
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS,
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": True,
    }


def bootstrap_objects() -> list[dict[str, Any]]:
    return [
        storage_class(),
        node("gpu-node-1", cpu="64", memory="512Gi", gpus=8),
        node("gpu-node-2", cpu="64", memory="512Gi", gpus=8),
        node("cpu-node-1", cpu="16", memory="64Gi"),
    ]
