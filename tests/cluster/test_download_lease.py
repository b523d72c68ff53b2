"""Exactly one downloader across nodes: a Lease on the real API server, a holder killed mid-shard, and the
waiter taking over and resuming its partial file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lightkube import AsyncClient
from lightkube.resources.coordination_v1 import Lease

from llmpack.downloader.lease import PROGRESS_ANNOTATION
from llmpack_dev.cluster import LocalCluster
from tests.cluster.waiting import eventually
from tests.download.conftest import assert_complete, end, env_for, files_of
from tests.hub.server import HubServer, synthetic_repo

SHARD = "model-00001-of-00001.safetensors"
SIZE = 8 << 20


@pytest.fixture
def hub() -> Iterator[HubServer]:
    server = HubServer([synthetic_repo("org/model", shards=1, shard_size=SIZE)]).start()
    yield server
    server.stop()


def start(hub: HubServer, cluster: LocalCluster, namespace: str, pod: str, target: Path,
          tmp: Path) -> subprocess.Popen[str]:
    env = env_for(hub, tmp, KUBECONFIG=str(cluster.kubeconfig), LLMPACK_LEASE_NAME="m-model-download",
                  POD_NAME=pod, POD_NAMESPACE=namespace, LLMPACK_LEASE_SECONDS="3", LLMPACK_LEASE_RENEW_SECONDS="0.5")
    return subprocess.Popen([sys.executable, "-m", "llmpack.cli", "download", "org/model", "--local-dir", str(target)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_a_killed_holder_is_taken_over_and_its_partial_file_resumed(
        cluster: LocalCluster, client: AsyncClient, namespace: str, hub: HubServer, tmp_path: Path) -> None:
    hub.faults.rate = 2 << 20
    target = tmp_path / "pvc"
    first = start(hub, cluster, namespace, "pod-a", target, tmp_path)

    async def progress_of(holder: str) -> dict[str, object] | None:
        lease = await client.get(Lease, "m-model-download", namespace=namespace)
        raw = (lease.metadata.annotations or {}).get(PROGRESS_ANNOTATION)  # type: ignore[union-attr]
        held = lease.spec is not None and lease.spec.holderIdentity == holder
        return json.loads(raw) if held and raw else None

    await eventually(lambda: progress_of("pod-a"), within=30, what="pod-a to hold the Lease and report progress")
    second = start(hub, cluster, namespace, "pod-b", target, tmp_path)
    part = target / ".llmpack" / "partial" / f"{SHARD}.part"

    async def half_done() -> bool:
        return part.exists() and part.stat().st_size >= SIZE // 2

    await eventually(half_done, within=30, interval=0.05, what="pod-a to be half way through the shard")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    hub.faults.rate = None

    assert second.wait(60) == 0
    log = second.stderr.read() if second.stderr else ""
    assert '"phase": "waiting", "holder": "pod-a"' in log  # it said who held the work while it waited
    assert hub.served[f"org/model/{SHARD}"] - SIZE <= 1 << 20, "the takeover re-fetched more than one chunk"
    lease = await client.get(Lease, "m-model-download", namespace=namespace)
    assert lease.spec is not None
    assert not lease.spec.holderIdentity  # released at once, nobody waits out the expiry
    assert (lease.spec.leaseTransitions or 0) >= 1
    final = json.loads(lease.metadata.annotations[PROGRESS_ANNOTATION])  # type: ignore[union-attr,index]
    assert (final["phase"], final["percent"], final["holder"]) == ("complete", 100, "pod-b")


async def test_a_holder_paused_past_the_lease_stops_writing_and_leaves_its_successors_lease_alone(
        cluster: LocalCluster, client: AsyncClient, namespace: str, hub: HubServer, tmp_path: Path) -> None:
    hub.faults.rate = 2 << 20
    target = tmp_path / "pvc"
    part = target / ".llmpack" / "partial" / f"{SHARD}.part"

    def written() -> int:
        return part.stat().st_size if part.exists() else 0

    async def at_least(n: int) -> bool:
        return written() >= n

    first = start(hub, cluster, namespace, "pod-a", target, tmp_path)
    second: subprocess.Popen[str] | None = None
    try:
        await eventually(lambda: at_least(SIZE // 4), within=30, interval=0.05, what="pod-a to write a quarter")
        os.kill(first.pid, signal.SIGSTOP)  # past the 3 s Lease: pod-b takes it over
        paused_at = written()
        second = start(hub, cluster, namespace, "pod-b", target, tmp_path)
        await eventually(lambda: at_least(paused_at + (1 << 20)), within=30, interval=0.05,
                         what="pod-b to take the Lease over and resume")
        os.kill(first.pid, signal.SIGCONT)
        code = first.wait(30)
        log = first.stderr.read() if first.stderr else ""
        assert code == 11, log
        (line,) = [ln for ln in log.splitlines() if not ln.startswith("{")]
        assert line.startswith("llmpack download: ")
        assert "pod-b" in line
        assert "stopped writing" in line
        assert second.wait(60) == 0
    finally:
        end(first, second)
    lease = await client.get(Lease, "m-model-download", namespace=namespace)
    assert lease.spec is not None
    assert not lease.spec.holderIdentity  # released by pod-b; pod-a wrote nothing over it
    final = json.loads(lease.metadata.annotations[PROGRESS_ANNOTATION])  # type: ignore[union-attr,index]
    assert (final["phase"], final["percent"], final["holder"]) == ("complete", 100, "pod-b")
    assert_complete(target, files_of(hub))
