"""A model's status tells a straight story: every status write over a whole lifecycle, recorded from a watch,
moves forward (Downloading, Starting, Ready) and no condition flips back within the generation."""

from __future__ import annotations

import asyncio
from typing import Any

from lightkube import AsyncClient

from llmpack.operator.kube import LLMModelResource
from llmpack_dev.cluster import LocalCluster
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_operator_lifecycle import READY_WITHIN

Write = tuple[str, dict[str, str]]  # (phase, condition type -> status)


async def status_writes_until_ready(client: AsyncClient, name: str, namespace: str) -> list[Write]:
    """Every distinct status the API server held for the model, in order, until it is Ready."""
    writes: list[Write] = []

    async def record() -> None:
        async for _, obj in client.watch(LLMModelResource, namespace=namespace, fields={"metadata.name": name}):
            status: dict[str, Any] = dict(obj.status or {})
            if not status.get("phase"):
                continue
            write = (status["phase"], {c["type"]: c["status"] for c in status.get("conditions") or []})
            if not writes or writes[-1] != write:
                writes.append(write)
            if status["phase"] == "Ready":
                return

    await asyncio.wait_for(record(), READY_WITHIN)
    return writes


async def test_every_status_write_from_apply_to_ready_moves_forward(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    watching = asyncio.create_task(status_writes_until_ready(client, "qwen", namespace))
    await asyncio.sleep(0.5)  # the watch is open before the model exists
    models.apply(cluster, "qwen", namespace)
    writes = await watching

    phases = [phase for phase, _ in writes]
    story = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    assert story in (["Pending", "Downloading", "Starting", "Ready"], ["Downloading", "Starting", "Ready"]), writes
    for type_ in ("StorageReady", "ModelReady", "Available", "Ready"):
        seen = [conditions[type_] for _, conditions in writes if type_ in conditions]
        went_true = seen.index("True") if "True" in seen else len(seen)
        assert all(s == "True" for s in seen[went_true:]), f"{type_} flipped back: {writes}"
