"""What the test cluster holds before any test: kwok nodes (two with 8 GPUs, one CPU-only) and a
default StorageClass served by our fake provisioner.

The GPU nodes carry the labels real ones do, so placement is tested against what clusters hold: NVIDIA's
GPU feature discovery names the product (`nvidia.com/gpu.product`), clouds name the instance type. One is
an H100 node, the other an L4 node of the type the Serving Pack's advanced-scheduling example asks for.
"""

from __future__ import annotations

from typing import Any

from llmpack_dev.provisioner import PROVISIONER

STORAGE_CLASS = "standard"
H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.memory": "81559",
        "node.kubernetes.io/instance-type": "p5.48xlarge"}
L4 = {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.memory": "23034",
      "node.kubernetes.io/instance-type": "g6.xlarge"}


def node(name: str, *, cpu: str, memory: str, gpus: int = 0, gpu_labels: dict[str, str] | None = None
         ) -> dict[str, Any]:
    capacity = {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "1Ti"}
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "type": "kwok"}
    spec: dict[str, Any] = {}
    if gpus:
        capacity["nvidia.com/gpu"] = str(gpus)
        labels |= {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": str(gpus), **(gpu_labels or {})}
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
        node("gpu-node-1", cpu="64", memory="512Gi", gpus=8, gpu_labels=H100),
        # 8 GPUs like its neighbour (tests count on 16 in all), though a real g6.xlarge has one L4.
        node("gpu-node-2", cpu="64", memory="512Gi", gpus=8, gpu_labels=L4),
        node("cpu-node-1", cpu="16", memory="64Gi"),
    ]
