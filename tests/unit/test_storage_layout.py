"""The seed's "Shared Storage" page, sentence by sentence, against the renderer."""

from __future__ import annotations

import pytest

from llmpack.config import Config
from llmpack.render import render
from tests.unit.factories import model
from tests.unit.render_helpers import container, find, job_of, pod_spec

CONFIG = Config(downloader_image="example.org/downloader:1", serving_image="example.org/vllm:1")


def test_huggingface_model_gets_a_pvc_named_after_it_in_its_namespace() -> None:
    objects = render(model(), CONFIG)
    pvc = find(objects, "PersistentVolumeClaim")
    assert pvc is not None
    assert pvc["metadata"]["name"] == "qwen-model-storage"
    assert pvc["metadata"]["namespace"] == "models"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "30Gi"


@pytest.mark.parametrize("source", ["huggingface", ""])
def test_any_source_but_oci_means_hugging_face(source: str) -> None:
    objects = render(model({"model": {"source": source}}), CONFIG)
    assert find(objects, "PersistentVolumeClaim") is not None
    assert container(objects, "model-downloader") is not None
    assert container(objects, "model-loader") is None


def test_downloader_runs_hf_download_arguments_into_model_cache() -> None:
    downloader = container(render(model(), CONFIG), "model-downloader")
    assert downloader is not None
    assert downloader["image"] == "example.org/downloader:1"
    assert downloader["args"] == ["Qwen/Qwen3-8B", "--local-dir", "/model-cache"]
    assert {"name": "model-storage", "mountPath": "/model-cache"} in downloader["volumeMounts"]


def test_revision_is_passed_to_the_downloader() -> None:
    downloader = container(render(model({"model": {"revision": "v2"}}), CONFIG), "model-downloader")
    assert downloader is not None
    assert downloader["args"][-2:] == ["--revision", "v2"]


def test_pvc_is_mounted_at_model_cache_in_downloader_and_vllm() -> None:
    objects = render(model(), CONFIG)
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    assert volumes["model-storage"]["persistentVolumeClaim"]["claimName"] == "qwen-model-storage"
    for name in ("model-downloader", "vllm"):
        c = container(objects, name)
        assert c is not None
        assert {"name": "model-storage", "mountPath": "/model-cache"} in c["volumeMounts"]


def test_vllm_reads_the_model_from_model_cache_and_serves_it_by_repo_id() -> None:
    vllm = container(render(model(), CONFIG), "vllm")
    assert vllm is not None
    args = vllm["args"]
    assert args[args.index("--model") + 1] == "/model-cache"
    assert args[args.index("--served-model-name") + 1] == "Qwen/Qwen3-8B"


def test_gated_model_token_reaches_the_downloader_only() -> None:
    objects = render(model({"model": {"authSecretName": "hf-token"}}), CONFIG)
    downloader = container(objects, "model-downloader")
    assert downloader is not None
    token = {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "HF_TOKEN"}}}
    assert token in downloader["env"]
    vllm = container(objects, "vllm")
    assert vllm is not None
    assert "HF_TOKEN" not in str(vllm)


def test_pvc_access_mode_is_read_write_once_by_default() -> None:
    pvc = find(render(model(), CONFIG), "PersistentVolumeClaim")
    assert pvc is not None
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_pvc_access_mode_is_configurable_unlike_the_seed() -> None:
    objects = render(model({"model": {"storage": {"accessMode": "ReadWriteMany"}}}), CONFIG)
    pvc = find(objects, "PersistentVolumeClaim")
    assert pvc is not None
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    pvc = find(render(model(), Config(access_mode="ReadWriteMany")), "PersistentVolumeClaim")
    assert pvc is not None
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_an_oci_model_opted_out_of_image_volumes_copies_models_into_an_emptydir_and_creates_no_pvc() -> None:
    image = "registry.example.com/models/my-model@sha256:" + "a" * 64
    objects = render(model({"model": {"source": "oci", "image": image, "imageVolume": False}}), CONFIG)
    assert find(objects, "PersistentVolumeClaim") is None
    loader = container(objects, "model-loader")
    assert loader is not None
    assert loader["image"] == image
    assert loader["command"] == ["cp", "-r", "/models/.", "/shared-models/"]
    assert loader["volumeMounts"] == [{"name": "model-storage", "mountPath": "/shared-models"}]
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    assert volumes["model-storage"] == {"name": "model-storage", "emptyDir": {}}
    assert container(objects, "model-downloader") is None


def test_emptydir_storage_for_hugging_face_has_no_pvc_and_uses_size_as_limit() -> None:
    objects = render(model({"model": {"storage": {"type": "emptyDir", "size": "4Gi"}}}), CONFIG)
    assert find(objects, "PersistentVolumeClaim") is None
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    assert volumes["model-storage"]["emptyDir"] == {"sizeLimit": "4Gi"}
    assert container(objects, "model-downloader") is not None


def test_emptydir_without_size_has_no_limit() -> None:
    objects = render(model({"model": {"storage": {"type": "emptyDir", "size": None}}}), CONFIG)
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    assert volumes["model-storage"]["emptyDir"] == {}


def test_preload_false_adds_no_init_container_but_still_creates_and_mounts_the_pvc() -> None:
    objects = render(model({"model": {"preload": False}}), CONFIG)
    assert "initContainers" not in pod_spec(objects)
    assert find(objects, "PersistentVolumeClaim") is not None
    vllm = container(objects, "vllm")
    assert vllm is not None
    assert {"name": "model-storage", "mountPath": "/model-cache"} in vllm["volumeMounts"]


def test_storage_class_comes_from_spec_then_operator_default_then_cluster_default() -> None:
    def storage_class(spec: dict[str, object], config: Config) -> object:
        pvc = find(render(model(spec), config), "PersistentVolumeClaim")
        assert pvc is not None
        return pvc["spec"].get("storageClassName")

    gp3 = Config(storage_class_name="gp3")
    assert storage_class({"model": {"storage": {"storageClassName": "efs-sc"}}}, gp3) == "efs-sc"
    assert storage_class({}, Config(storage_class_name="gp3")) == "gp3"
    assert storage_class({}, Config()) is None


def test_retained_cache_has_no_owner_so_it_outlives_the_model() -> None:
    owned = find(render(model(), CONFIG), "PersistentVolumeClaim")
    retained = find(render(model({"model": {"storage": {"retainOnDelete": True}}}), CONFIG), "PersistentVolumeClaim")
    assert owned is not None
    assert retained is not None
    assert owned["metadata"]["ownerReferences"][0]["kind"] == "LLMModel"
    assert "ownerReferences" not in retained["metadata"]


def test_downloaders_of_a_shared_pvc_coordinate_through_a_lease_only_they_can_touch() -> None:
    objects = render(model(), CONFIG)
    lease = find(objects, "Lease")
    role = find(objects, "Role")
    binding = find(objects, "RoleBinding")
    assert lease is not None
    assert role is not None
    assert binding is not None
    assert lease["metadata"]["name"] == "qwen-model-download"
    assert "spec" not in lease  # holder and renew time belong to the downloaders
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "resourceNames": ["qwen-model-download"], "verbs": ["get", "update", "patch"]}]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "qwen", "namespace": "models"}]
    downloader = container(objects, "model-downloader")
    assert downloader is not None
    env = {e["name"]: e for e in downloader["env"]}
    assert env["LLMPACK_LEASE_NAME"]["value"] == "qwen-model-download"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    token_mount = {"name": "downloader-api-token", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                   "readOnly": True}
    assert token_mount in downloader["volumeMounts"]
    vllm = container(objects, "vllm")
    assert vllm is not None
    assert all(m["name"] != "downloader-api-token" for m in vllm["volumeMounts"])  # vLLM gets no API token


@pytest.mark.parametrize("spec", [
    {"model": {"storage": {"type": "emptyDir"}}},
    {"model": {"preload": False}},
    {"model": {"source": "oci", "image": "r.example/m@sha256:" + "a" * 64}},
])
def test_no_lease_where_nothing_is_shared_or_downloaded(spec: dict[str, object]) -> None:
    objects = render(model(spec), CONFIG)
    assert find(objects, "Lease") is None
    assert find(objects, "Role") is None


def test_the_download_runs_in_a_job_without_gpus_before_any_replica_starts() -> None:
    m = model({"resources": {"gpu": {"count": 4}}, "serving": {"replicas": 3}})
    waiting = render(m, CONFIG)
    job = job_of(waiting, "model-download")
    deployment = find(waiting, "Deployment")
    assert job is not None
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 0  # no GPU is held while the weights download
    pod = job["spec"]["template"]["spec"]
    (downloader,) = pod["containers"]
    assert downloader["args"] == ["Qwen/Qwen3-8B", "--local-dir", "/model-cache"]
    assert "nvidia.com/gpu" not in str(pod)
    assert "tolerations" not in pod
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "model-download"
    ready = find(render(m, CONFIG, weights_ready=True), "Deployment")
    assert ready is not None
    assert ready["spec"]["replicas"] == 3
    other = job_of(render(model({"model": {"revision": "v2"}}), CONFIG), "model-download")
    assert other is not None
    assert other["metadata"]["name"] != job["metadata"]["name"]  # new weights, new Job


def test_no_download_job_where_the_weights_live_in_each_pod() -> None:
    for spec in ({"model": {"storage": {"type": "emptyDir"}}}, {"model": {"preload": False}},
                 {"model": {"source": "oci", "image": "r.example/m@sha256:" + "a" * 64}}):
        objects = render(model(spec), CONFIG)
        assert find(objects, "Job") is None
        deployment = find(objects, "Deployment")
        assert deployment is not None
        assert deployment["spec"]["replicas"] == 1


def test_download_job_names_fit_a_label_for_any_valid_model_name() -> None:
    from llmpack.api.names import MAX_MODEL_NAME_LENGTH, download_job

    for length in range(1, MAX_MODEL_NAME_LENGTH + 1):
        name = download_job("m" * length, "0123456789abcdef")
        assert len(name) <= 63
        assert name.endswith("-dl-01234567")
    assert download_job("a" * 59, "x" * 16) != download_job("a" * 58 + "b", "x" * 16)
