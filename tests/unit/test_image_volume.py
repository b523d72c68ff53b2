"""OCI models without a copy: the image's /models mounted read-only at /model-cache as an image volume on
clusters that mount them (Kubernetes 1.35+), the Serving Pack's copy into an emptyDir elsewhere or when asked."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmpack.api import LLMModel
from llmpack.assess.status import Observed, compute
from llmpack.config import Config
from llmpack.operator.kube import serves_image_volumes
from llmpack.render import render
from llmpack.render.storage import loading
from tests.unit.factories import model
from tests.unit.render_helpers import find

CONFIG = Config()
IMAGE = "registry.example/models/m@sha256:" + "a" * 64


def oci(**fields: Any) -> LLMModel:
    return model({"model": {"source": "oci", "image": IMAGE, **fields}})


def pod_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = find(objects, "Deployment")
    assert deployment is not None
    return dict(deployment["spec"]["template"]["spec"])


def weights(pod: dict[str, Any]) -> dict[str, Any]:
    return next(v for v in pod["volumes"] if v["name"] == "model-storage")


def test_an_oci_model_mounts_its_image_read_only_with_no_init_container_and_no_empty_dir() -> None:
    pod = pod_of(render(oci(), CONFIG))
    assert weights(pod) == {"name": "model-storage", "image": {"reference": IMAGE, "pullPolicy": "IfNotPresent"}}
    assert "initContainers" not in pod
    (vllm,) = pod["containers"]
    assert {"name": "model-storage", "mountPath": "/model-cache", "subPath": "models", "readOnly": True} in \
        vllm["volumeMounts"]
    assert vllm["args"][:2] == ["--model", "/model-cache"]


def test_an_explicit_opt_out_and_an_older_cluster_keep_the_copy_into_an_empty_dir() -> None:
    for objects in (render(oci(imageVolume=False), CONFIG), render(oci(), CONFIG, image_volumes=False)):
        pod = pod_of(objects)
        assert weights(pod) == {"name": "model-storage", "emptyDir": {}}
        (loader,) = pod["initContainers"]
        assert loader["image"] == IMAGE
        assert loader["command"] == ["cp", "-r", "/models/.", "/shared-models/"]
    assert "initContainers" not in pod_of(render(oci(imageVolume=True), CONFIG, image_volumes=False))


@given(choice=st.sampled_from([None, True, False]), cluster=st.booleans(), preload=st.booleans())
def test_an_oci_pod_gets_the_image_volume_or_the_copy_never_both_and_status_says_which(
        choice: bool | None, cluster: bool, preload: bool) -> None:
    m = oci(imageVolume=choice, preload=preload)
    pod = pod_of(render(m, CONFIG, image_volumes=cluster))
    mounted = "image" in weights(pod)
    assert mounted == (preload and (cluster if choice is None else choice))
    assert mounted != ("emptyDir" in weights(pod))
    if mounted:
        assert "initContainers" not in pod
    assert find(render(m, CONFIG, image_volumes=cluster), "PersistentVolumeClaim") is None
    expected = "ImageVolume" if mounted else ("Copy" if preload else "Manual")
    assert loading(m, cluster) == expected
    assert compute(m, Observed(loading=loading(m, cluster)), None).loading == expected


@pytest.mark.parametrize(("version", "mounts"), [
    ({"major": "1", "minor": "36"}, True),
    ({"major": "1", "minor": "35"}, True),
    ({"major": "1", "minor": "35+"}, True),  # EKS, GKE
    ({"major": "1", "minor": "34"}, False),
    ({"major": "2", "minor": "0"}, True),
    ({"major": "1"}, False),
    ({"major": "one", "minor": "x"}, False),
])
def test_image_volumes_are_used_from_kubernetes_1_35_by_the_servers_version(version: dict[str, str],
                                                                             mounts: bool) -> None:
    assert serves_image_volumes(version) is mounts


def test_the_hugging_face_paths_say_which_they_are() -> None:
    assert loading(model(), True) == "DownloadJob"
    assert loading(model({"model": {"storage": {"type": "emptyDir"}}}), True) == "PodDownload"
    assert loading(model({"model": {"preload": False}}), True) == "Manual"
