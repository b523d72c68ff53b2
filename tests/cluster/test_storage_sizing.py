"""Sizing from the Hub on the real API server: the sizing Job's container is run as kubelet would run it (its
env resolved from the pod template, the token read from the Secret it names, the model's ServiceAccount token
for the Lease) against the test Hub, while kwok, which would otherwise complete the Job without running
anything, is paused."""

from __future__ import annotations

import base64
import contextlib
import copy
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import PersistentVolumeClaim, Secret

from llmpack.quantity import format_bytes
from llmpack_dev.cluster import LocalCluster
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.waiting import eventually
from tests.download.conftest import TOKEN, env_for
from tests.hub.server import HubServer, synthetic_repo

SHARD = 4 << 20
READY_WITHIN = 60.0


@pytest.fixture
def hub() -> Iterator[HubServer]:
    server = HubServer([synthetic_repo("org/model", shards=2, shard_size=SHARD, revisions=2),
                        synthetic_repo("org/gated", shards=1, shard_size=SHARD, token=TOKEN)]).start()
    yield server
    server.stop()


@contextlib.contextmanager
def kwok_paused(cluster: LocalCluster) -> Iterator[None]:
    """No pod moves meanwhile: the sizing Job stays running until its container has really run."""
    pid = cluster._pids()["kwok"]
    os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(pid, signal.SIGCONT)


def repo_bytes(hub: HubServer, repo: str, revision: str = "main") -> int:
    r = hub.repos[repo]
    return sum(len(data) for data in r.commits[r.refs[revision]].values())


def manifest(name: str, namespace: str, model: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(models.manifest(name, namespace, {"model": model}))  # it shares BASE_SPEC's dicts
    del body["spec"]["model"]["storage"]["size"]  # no size: sized from the Hub
    body["spec"]["model"]["storage"].update(model.get("storage") or {})
    return body


def apply(cluster: LocalCluster, body: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))


async def sizing_job(client: AsyncClient, namespace: str) -> Any:
    async def found() -> Any:
        jobs = [j async for j in client.list(Job, namespace=namespace)
                if j.spec.template.metadata.labels.get("app.kubernetes.io/name") == "model-size"]  # type: ignore[union-attr]
        return jobs[0] if jobs else None

    return await eventually(found, what="the operator to create the sizing Job")


async def download_jobs(client: AsyncClient, namespace: str) -> list[Any]:
    return [j async for j in client.list(Job, namespace=namespace)
            if j.spec.template.metadata.labels.get("app.kubernetes.io/name") == "model-download"]  # type: ignore[union-attr]


def service_account_kubeconfig(cluster: LocalCluster, namespace: str, account: str, tmp: Path) -> Path:
    """What the pod's projected token gives its container: the model's ServiceAccount, nothing more."""
    token = cluster.kubectl("create", "token", account, "-n", namespace).stdout.strip()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": account, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = account
    path = tmp / f"kubeconfig-{account}"
    path.write_text(yaml.safe_dump(config))
    return path


async def run_container(cluster: LocalCluster, client: AsyncClient, job: Any, hub: HubServer,
                        tmp: Path) -> subprocess.Popen[str]:
    """The Job's only container, as kubelet runs it: `llmpack download` (the image's entrypoint) with its args
    and its env resolved (values, Secret keys, the pod's own name and namespace)."""
    args, env = await container_env(client, job)
    kubeconfig = service_account_kubeconfig(cluster, job.metadata.namespace, job.spec.template.spec.serviceAccountName,
                                            tmp)
    return start(args, env_for(hub, tmp, KUBECONFIG=str(kubeconfig), **env))


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "llmpack.cli", "download", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def container_env(client: AsyncClient, job: Any) -> tuple[list[str], dict[str, str]]:
    pod = job.spec.template.spec
    (container,) = pod.containers
    namespace = job.metadata.namespace
    env: dict[str, str] = {}
    for var in container.env or []:
        if var.value is not None:
            env[var.name] = var.value
        elif var.valueFrom.secretKeyRef is not None:
            ref = var.valueFrom.secretKeyRef
            secret = await client.get(Secret, ref.name, namespace=namespace)
            env[var.name] = base64.b64decode((secret.data or {})[ref.key]).decode()
        elif var.valueFrom.fieldRef is not None:
            env[var.name] = {"metadata.name": f"{job.metadata.name}-pod", "metadata.namespace": namespace}[
                var.valueFrom.fieldRef.fieldPath]
    return list(container.args), env


@pytest.fixture
async def sizers() -> AsyncIterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def pvc_size(client: AsyncClient, name: str, namespace: str) -> str | None:
    try:
        pvc = await client.get(PersistentVolumeClaim, f"{name}-model-storage", namespace=namespace)
    except Exception:
        return None
    return str(pvc.spec.resources.requests["storage"])  # type: ignore[index,union-attr]


async def test_a_model_without_a_size_gets_a_pvc_sized_from_the_hub_and_reaches_ready_at_the_resolved_commit(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess,
        hub: HubServer, tmp_path: Path, sizers: list[subprocess.Popen[str]]) -> None:
    commit = hub.repos["org/model"].refs["main"]
    with kwok_paused(cluster):
        apply(cluster, manifest("sized", namespace, {"name": "org/model"}))
        job = await sizing_job(client, namespace)

        async def asking() -> bool:
            return models.condition(await models.status(client, "sized", namespace), "ModelReady").get(
                "reason") == "Sizing"

        await eventually(asking, what="ModelReady to say the Hub is being asked")
        assert await pvc_size(client, "sized", namespace) is None  # no PVC before its size is known
        assert await download_jobs(client, namespace) == []
        sizers.append(await run_container(cluster, client, job, hub, tmp_path))
        assert sizers[0].wait(60) == 0, sizers[0].stderr.read() if sizers[0].stderr else ""

        async def sized() -> dict[str, Any] | None:
            st = await models.status(client, "sized", namespace)
            return st if st.get("resolvedRevision") == commit else None

        status = await eventually(sized, what="status.resolvedRevision to show the commit main resolved to")
        assert status["modelSize"] == format_bytes(repo_bytes(hub, "org/model"))  # before any byte is fetched
        assert await pvc_size(client, "sized", namespace) == "1Gi"
        (download,) = await eventually(lambda: download_jobs(client, namespace), what="the download Job")
        assert download.spec.template.spec.containers[0].args[-2:] == ["--revision", commit]
        assert hub.served == {}  # the sizing step fetched no file
    await eventually(lambda: ready(client, "sized", namespace), within=READY_WITHIN, what="the model to be Ready")
    wide = cluster.kubectl("get", "llmmodel", "sized", "-n", namespace, "-o", "wide").stdout
    assert "REVISION" in wide.splitlines()[0]
    assert commit in wide.splitlines()[1]


async def ready(client: AsyncClient, name: str, namespace: str) -> bool:
    return await models.phase(client, name, namespace) == "Ready"


async def test_a_gated_models_size_is_read_with_its_token(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess,
        hub: HubServer, tmp_path: Path, sizers: list[subprocess.Popen[str]]) -> None:
    await client.create(Secret(metadata=ObjectMeta(name="hf-token", namespace=namespace),
                               stringData={"HF_TOKEN": TOKEN}))
    with kwok_paused(cluster):
        apply(cluster, manifest("gated", namespace, {"name": "org/gated", "authSecretName": "hf-token"}))
        job = await sizing_job(client, namespace)
        env = {e.name: e for e in job.spec.template.spec.containers[0].env}
        assert env["HF_TOKEN"].valueFrom.secretKeyRef.name == "hf-token"  # the pod's, never the operator's
        sizers.append(await run_container(cluster, client, job, hub, tmp_path))
        assert sizers[0].wait(60) == 0, sizers[0].stderr.read() if sizers[0].stderr else ""

        async def sized() -> bool:
            st = await models.status(client, "gated", namespace)
            return st.get("modelSize") == format_bytes(repo_bytes(hub, "org/gated"))

        await eventually(sized, what="status.modelSize from the gated repo's listing")
        assert await pvc_size(client, "gated", namespace) == "1Gi"


async def test_an_unreachable_hub_waits_saying_what_to_set_and_recovers_when_it_answers(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess,
        hub: HubServer, tmp_path: Path, sizers: list[subprocess.Popen[str]]) -> None:
    hub.faults.api_errors = [(503, None)] * 10_000
    with kwok_paused(cluster):
        apply(cluster, manifest("offline", namespace, {"name": "org/model"}))
        job = await sizing_job(client, namespace)
        sizers.append(await run_container(cluster, client, job, hub, tmp_path))

        async def waiting() -> dict[str, Any] | None:
            st = await models.status(client, "offline", namespace)
            ready = models.condition(st, "ModelReady")
            return st if ready.get("reason") == "HubUnreachable" else None

        status = await eventually(waiting, within=30, what="ModelReady to say the Hub is out of reach")
        assert status["phase"] == "Pending"
        assert "spec.model.storage.size" in models.condition(status, "ModelReady")["message"]
        assert await pvc_size(client, "offline", namespace) is None
        hub.faults.api_errors.clear()
        assert sizers[0].wait(60) == 0, sizers[0].stderr.read() if sizers[0].stderr else ""
        await eventually(lambda: pvc_size(client, "offline", namespace), what="the PVC once the Hub answered")
        assert await eventually(lambda: download_jobs(client, namespace), what="the download Job")


async def test_a_pvc_too_small_is_an_error_with_both_figures_and_no_job_and_growing_it_proceeds(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess,
        hub: HubServer, tmp_path: Path, sizers: list[subprocess.Popen[str]]) -> None:
    needs = format_bytes(repo_bytes(hub, "org/model"))
    with kwok_paused(cluster):
        apply(cluster, manifest("small", namespace, {"name": "org/model", "storage": {"size": "4Mi"}}))
        job = await sizing_job(client, namespace)
        sizers.append(await run_container(cluster, client, job, hub, tmp_path))
        assert sizers[0].wait(60) == 0, sizers[0].stderr.read() if sizers[0].stderr else ""

        async def refused() -> dict[str, Any] | None:
            st = await models.status(client, "small", namespace)
            return st if st.get("phase") == "Error" else None

        status = await eventually(refused, what="phase Error once the Hub's figure is known")
        ready = models.condition(status, "Ready")
        assert ready["reason"] == "StorageTooSmall"
        assert f"needs {needs}" in ready["message"]
        assert "the PVC is 4Mi" in ready["message"]
        assert "at least 1Gi" in ready["message"]
        assert await download_jobs(client, namespace) == []
        models.patch(cluster, "small", namespace, {"model": {"storage": {"size": "1Gi"}}})
        assert await eventually(lambda: download_jobs(client, namespace), what="the download Job once it fits")

    async def grown() -> bool:
        return await pvc_size(client, "small", namespace) == "1Gi" and \
            await models.phase(client, "small", namespace) != "Error"

    await eventually(grown, what="the PVC to grow and the Error to clear")
