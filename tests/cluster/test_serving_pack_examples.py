"""The Serving Pack's own example manifests, applied unchanged in the namespace they name, on GPU nodes labelled
as real ones are: every model is admitted without a complaint about its GPU type, is scheduled, and reaches Ready."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from lightkube import AsyncClient
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod

from llmpack_dev.cluster import LocalCluster
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_operator_lifecycle import READY_WITHIN, phases_until
from tests.serving_pack import EXAMPLES

NAMESPACE = "nebari-llm-serving-system"  # where every pack example lives
CPU_MODEL = Path(__file__).parent / "manifests" / "pack-style-cpu-model.yaml"
GPU_NODES = {"gpu-node-1", "gpu-node-2"}


@pytest.fixture
def pack_namespace(cluster: LocalCluster) -> Iterator[str]:
    """The pack's namespace with the token Secret its gated examples name."""
    cluster.kubectl("create", "namespace", NAMESPACE)
    cluster.kubectl("create", "secret", "generic", "hf-token", "-n", NAMESPACE, "--from-literal=HF_TOKEN=hf_test")
    yield NAMESPACE
    cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s")


def _name(manifest: Path) -> str:
    return str(yaml.safe_load(manifest.read_text())["metadata"]["name"])


async def _nodes(client: AsyncClient, name: str) -> set[str]:
    return {pod.spec.nodeName async for pod in client.list(Pod, namespace=NAMESPACE, labels={  # type: ignore[union-attr]
        "app.kubernetes.io/instance": name, "app.kubernetes.io/name": "llmmodel"})}


async def test_every_example_model_of_the_pack_applies_unchanged_and_reaches_ready(
        cluster: LocalCluster, client: AsyncClient, pack_namespace: str, running_operator: OperatorProcess) -> None:
    assert len(EXAMPLES) == 5, EXAMPLES  # the reference folder is in place, with all five
    manifests = [*EXAMPLES, CPU_MODEL]
    applied = cluster.kubectl("apply", *(arg for m in manifests for arg in ("-f", str(m))))
    names = [_name(m) for m in manifests]
    assert all(f"llmmodel.llm.nebari.dev/{n} created" in applied.stdout for n in names), applied.stdout
    assert "gpu.type" not in applied.stderr  # `type: nvidia`, the pack's default, is a vendor: nothing to warn about

    seen = await asyncio.gather(*(phases_until(client, n, NAMESPACE, "Ready", within=3 * READY_WITHIN)
                                  for n in names))
    assert all(phases[-1] == "Ready" for phases in seen), dict(zip(names, seen, strict=True))

    # Placed as the manifests ask: advanced-scheduling wants an NVIDIA-L4 on a g6.xlarge (gpu-node-2); the
    # others any GPU node; the CPU-only model no GPU node (it does not tolerate their taint).
    assert await _nodes(client, "advanced-scheduling") == {"gpu-node-2"}
    for name in ("my-model", "devstral-small", "my-oci-model", "qwen3-5-35b-a3b-gptq-int4"):
        assert await _nodes(client, name) <= GPU_NODES, name
        deployment = await client.get(Deployment, name, namespace=NAMESPACE)
        pod = deployment.spec.template.spec  # type: ignore[union-attr]
        assert pod is not None
        assert pod.containers[0].resources.limits["nvidia.com/gpu"] == "1"  # type: ignore[union-attr,index]
        assert not pod.nodeSelector, pod.nodeSelector  # no product picked: any NVIDIA node will do
    assert await _nodes(client, "tiny-cpu") == {"cpu-node-1"}
    cpu = await client.get(Deployment, "tiny-cpu", namespace=NAMESPACE)
    container = cpu.spec.template.spec.containers[0]  # type: ignore[union-attr]
    assert container.command == ["python", "/server.py"]
    assert "nvidia.com/gpu" not in (container.resources.limits or {})  # type: ignore[union-attr]
