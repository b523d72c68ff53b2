"""The download's progress, written by the downloader onto the model's Lease, shows in the LLMModel."""

from __future__ import annotations

import json

from lightkube import AsyncClient
from lightkube.resources.coordination_v1 import Lease

from llmpack.wellknown import PROGRESS_ANNOTATION
from llmpack_dev.cluster import LocalCluster
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.waiting import eventually


async def test_progress_on_the_lease_reaches_status_and_kubectl(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    models.apply(cluster, "qwen", namespace)
    lease = await eventually(lambda: client.get(Lease, "qwen-model-download", namespace=namespace),
                             what="the operator to create the download Lease")
    assert lease.metadata.ownerReferences[0].kind == "LLMModel"  # type: ignore[index,union-attr]

    async def annotate(progress: dict[str, object]) -> None:
        await client.patch(Lease, "qwen-model-download", namespace=namespace,
                           obj={"metadata": {"annotations": {PROGRESS_ANNOTATION: json.dumps(progress)}}})

    await annotate({"phase": "verifying", "bytes_done": 6 << 30, "bytes_total": 20 << 30, "percent": 30,
                    "rate": "1.0Gi/s", "eta": "14s", "holder": "qwen-7d9f-abcde", "model_bytes": 20 << 30})

    async def checking() -> dict[str, object] | None:
        st = await models.status(client, "qwen", namespace)
        return st if (st.get("download") or {}).get("phase") == "verifying" else None

    st = await eventually(checking, what="status.download to show the files being verified")
    assert (st["download"]["percent"], st["modelSize"]) == (30, "20.0Gi")
    wide = cluster.kubectl("get", "llmmodel", "qwen", "-n", namespace, "-o", "wide").stdout
    assert "30" in wide.splitlines()[1].split()
    await annotate({"phase": "downloading", "bytes_done": 8 << 30, "bytes_total": 20 << 30, "percent": 40,
                    "rate": "200.0Mi/s", "eta": "61s", "holder": "qwen-7d9f-abcde"})

    async def mirrored() -> dict[str, object] | None:
        st = await models.status(client, "qwen", namespace)
        return st.get("download") if (st.get("download") or {}).get("percent") == 40 else None

    download = await eventually(mirrored, what="status.download to show 40%")
    assert download["holder"] == "qwen-7d9f-abcde"
    assert (await models.status(client, "qwen", namespace))["modelSize"] == "20.0Gi"
    wide = cluster.kubectl("get", "llmmodel", "qwen", "-n", namespace, "-o", "wide").stdout
    assert "40" in wide.splitlines()[1].split()

    await annotate({"phase": "complete", "bytes_done": 20 << 30, "bytes_total": 20 << 30, "percent": 100})

    async def finished() -> bool:
        st = await models.status(client, "qwen", namespace)
        return "download" not in st and st.get("modelSize") == "20.0Gi"

    await eventually(finished, what="status.download to go and modelSize to stay")
