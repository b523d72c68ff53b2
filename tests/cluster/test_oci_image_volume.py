"""OCI models on our 1.36 control plane: the operator reads the server's version, mounts the image's /models
read-only at /model-cache as an image volume (the API server validates the pod), and an explicit opt-out keeps
the Serving Pack's copy into an emptyDir. kwok plays the pods, so both reach Ready."""

from __future__ import annotations

from typing import Any

from lightkube import AsyncClient
from lightkube.resources.apps_v1 import Deployment

from llmpack_dev.cluster import LocalCluster
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.waiting import eventually
from tests.unit.factories import merge

IMAGE = "registry.example.com/models/my-model@sha256:" + "d" * 64
OCI = {"model": {"source": "oci", "name": "my-org/my-model", "image": IMAGE}, "resources": {"gpu": {"count": 0}}}


async def ready(client: AsyncClient, name: str, namespace: str) -> dict[str, Any] | None:
    st = await models.status(client, name, namespace)
    return st if st.get("phase") == "Ready" else None


async def test_an_oci_model_is_mounted_from_its_image_without_a_copy_and_reaches_ready(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    models.apply(cluster, "mounted", namespace, OCI)
    status = await eventually(lambda: ready(client, "mounted", namespace), within=60, what="the OCI model Ready")
    assert status["loading"] == "ImageVolume"
    pod = (await client.get(Deployment, "mounted", namespace=namespace)).spec.template.spec  # type: ignore[union-attr]
    assert pod is not None
    assert not pod.initContainers
    (weights,) = [v for v in pod.volumes or [] if v.name == "model-storage"]
    assert weights.image is not None
    assert weights.image.reference == IMAGE
    assert weights.emptyDir is None
    (mount,) = [m for m in pod.containers[0].volumeMounts or [] if m.name == "model-storage"]
    assert (mount.mountPath, mount.subPath, mount.readOnly) == ("/model-cache", "models", True)


async def test_an_oci_model_opted_out_is_copied_into_an_empty_dir_and_reaches_ready(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    models.apply(cluster, "copied", namespace, merge(OCI, {"model": {"imageVolume": False}}))
    status = await eventually(lambda: ready(client, "copied", namespace), within=60, what="the OCI model Ready")
    assert status["loading"] == "Copy"
    pod = (await client.get(Deployment, "copied", namespace=namespace)).spec.template.spec  # type: ignore[union-attr]
    assert pod is not None
    assert [c.name for c in pod.initContainers or []] == ["model-loader"]
    (weights,) = [v for v in pod.volumes or [] if v.name == "model-storage"]
    assert weights.emptyDir is not None
    assert weights.image is None
