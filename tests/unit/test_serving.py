"""The vLLM Deployment, Service and ServiceAccount."""

from __future__ import annotations

import pytest

from llmpack.config import Config
from llmpack.render import render
from llmpack.wellknown import IDENTITY_ANNOTATION
from tests.unit.factories import model
from tests.unit.render_helpers import container, find, pod_spec

CONFIG = Config(serving_image="example.org/vllm:1")


def _args(spec: dict[str, object]) -> list[str]:
    vllm = container(render(model(spec), CONFIG), "vllm")
    assert vllm is not None
    return list(vllm["args"])


def test_parallelism_defaults_to_gpu_count_then_user_args_then_extra_args() -> None:
    args = _args({
        "resources": {"gpu": {"count": 4}},
        "serving": {"vllmArgs": ["--max-model-len", "8192"]},
        "advanced": {"vllm": {"extraArgs": ["--enforce-eager"]}},
    })
    assert args == [
        "--model", "/model-cache", "--served-model-name", "Qwen/Qwen3-8B",
        "--tensor-parallel-size", "4", "--data-parallel-size", "1",
        "--max-model-len", "8192", "--enforce-eager",
    ]


def test_explicit_tensor_parallelism_wins_over_gpu_count() -> None:
    args = _args({"resources": {"gpu": {"count": 4}}, "serving": {"tensorParallelism": 2, "dataParallelism": 2}})
    assert args[args.index("--tensor-parallel-size") + 1] == "2"
    assert args[args.index("--data-parallel-size") + 1] == "2"


def test_the_packs_gpu_type_nvidia_asks_for_nvidia_gpus_of_any_product() -> None:
    objects = render(model({"resources": {"gpu": {"count": 2, "type": "nvidia"}}}), CONFIG)
    vllm = container(objects, "vllm")
    assert vllm is not None
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == "2"
    spec = pod_spec(objects)
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert "nodeSelector" not in spec  # never nvidia.com/gpu.product=nvidia, which no node carries


@pytest.mark.parametrize(("gpu_type", "resource"), [
    ("amd", "amd.com/gpu"), ("intel", "gpu.intel.com/i915"), ("AMD", "amd.com/gpu"), ("", "nvidia.com/gpu"),
])
def test_each_vendor_gets_its_own_gpu_resource_and_tolerates_its_taint(gpu_type: str, resource: str) -> None:
    objects = render(model({"resources": {"gpu": {"count": 1, "type": gpu_type}}}), CONFIG)
    vllm = container(objects, "vllm")
    assert vllm is not None
    assert vllm["resources"] == {"requests": {resource: "1"}, "limits": {resource: "1"}}
    assert pod_spec(objects)["tolerations"] == [{"key": resource, "operator": "Exists", "effect": "NoSchedule"}]


def test_a_type_that_names_no_vendor_still_asks_for_nvidia_gpus_and_selects_no_product() -> None:
    objects = render(model({"resources": {"gpu": {"count": 1, "type": "NVIDIA-A100-SXM4-80GB"}}}), CONFIG)
    vllm = container(objects, "vllm")
    assert vllm is not None
    assert vllm["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert "nodeSelector" not in pod_spec(objects)


@pytest.mark.parametrize(("gpu_type", "label", "product"), [
    ("nvidia", "nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"),
    ("amd", "amd.com/gpu.product-name", "AMD_Instinct_MI300X_OAM"),
    ("intel", "gpu.intel.com/product", "Max_1550"),
])
def test_a_product_places_pods_by_the_vendors_product_label(gpu_type: str, label: str, product: str) -> None:
    objects = render(model({"resources": {"gpu": {"count": 1, "type": gpu_type, "product": product}}}), CONFIG)
    assert pod_spec(objects)["nodeSelector"] == {label: product}


def test_the_users_own_node_selector_wins_over_the_product() -> None:
    objects = render(model({"resources": {"gpu": {"product": "NVIDIA-H100-80GB-HBM3"}},
                            "advanced": {"vllm": {"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"}}}}), CONFIG)
    assert pod_spec(objects)["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}


def test_a_gpu_toleration_the_user_gives_is_not_repeated() -> None:
    mine = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    objects = render(model({"advanced": {"vllm": {"tolerations": [mine]}}}), CONFIG)
    assert pod_spec(objects)["tolerations"] == [mine]
    narrower = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    objects = render(model({"advanced": {"vllm": {"tolerations": [narrower]}}}), CONFIG)
    assert pod_spec(objects)["tolerations"] == [narrower, mine]  # "Equal true" does not cover "present"


def test_vllm_starts_as_the_openai_server_unless_a_command_is_given() -> None:
    vllm = container(render(model(), CONFIG), "vllm")
    assert vllm is not None
    assert vllm["command"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    vllm = container(render(model({"serving": {"command": ["vllm", "serve"]}}), CONFIG), "vllm")
    assert vllm is not None
    assert vllm["command"] == ["vllm", "serve"]


def test_cpu_only_model_asks_for_no_gpu() -> None:
    objects = render(model({"resources": {"gpu": {"count": 0}}}), CONFIG)
    vllm = container(objects, "vllm")
    assert vllm is not None
    assert "nvidia.com/gpu" not in str(vllm.get("resources", {}))
    assert "tolerations" not in pod_spec(objects)
    assert _args({"resources": {"gpu": {"count": 0}}})[5] == "1"


def test_shared_memory_is_capped_by_the_memory_limit() -> None:
    objects = render(model({"resources": {"limits": {"memory": "64Gi"}}}), CONFIG)
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Gi"}


def test_startup_probe_allows_at_least_an_hour_to_load_weights() -> None:
    vllm = container(render(model(), CONFIG), "vllm")
    assert vllm is not None
    probe = vllm["startupProbe"]
    assert probe["httpGet"]["path"] == "/v1/models"
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 3600
    assert vllm["readinessProbe"]["httpGet"]["path"] == "/v1/models"
    assert vllm["livenessProbe"]["httpGet"]["path"] == "/health"


def test_pods_run_as_non_root_and_share_files_through_fs_group() -> None:
    spec = pod_spec(render(model(), CONFIG))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["fsGroup"] == 65532
    assert spec["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"


def test_user_env_overrides_ours_by_name() -> None:
    vllm = container(render(model({"advanced": {"vllm": {"extraEnv": [{"name": "HOME", "value": "/data"}]}}}), CONFIG),
                     "vllm")
    assert vllm is not None
    assert [e for e in vllm["env"] if e["name"] == "HOME"] == [{"name": "HOME", "value": "/data"}]


def test_rolling_update_never_surges_past_the_gpus_the_model_has() -> None:
    deployment = find(render(model({"serving": {"updateStrategy": "RollingUpdate"}}), CONFIG), "Deployment")
    assert deployment is not None
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    deployment = find(render(model(), CONFIG), "Deployment")
    assert deployment is not None
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_identity_annotation_changes_with_the_weights_and_only_with_them() -> None:
    def identity(spec: dict[str, object]) -> str:
        deployment = find(render(model(spec), CONFIG), "Deployment")
        assert deployment is not None
        return str(deployment["spec"]["template"]["metadata"]["annotations"][IDENTITY_ANNOTATION])

    base = identity({})
    assert identity({"model": {"revision": "v2"}}) != base
    assert identity({"model": {"name": "Qwen/Other"}}) != base
    assert identity({"model": {"storage": {"type": "emptyDir"}}}) != base
    assert identity({"model": {"source": ""}}) == base  # "" is Hugging Face too
    assert identity({"serving": {"replicas": 3, "vllmArgs": ["--enforce-eager"]}}) == base


def test_service_selects_the_vllm_pods_on_port_8000() -> None:
    objects = render(model(), CONFIG)
    service = find(objects, "Service")
    deployment = find(objects, "Deployment")
    assert service is not None
    assert deployment is not None
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["port"] == 8000
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert set(service["spec"]["selector"].items()) <= set(template_labels.items())


def test_every_child_carries_the_standard_labels_and_an_owner() -> None:
    for obj in render(model(), CONFIG):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "llmpack"
        assert labels["app.kubernetes.io/instance"] == "qwen"
        assert labels["app.kubernetes.io/name"] == "llmmodel"
        assert labels["llm.nebari.dev/model"] == "qwen"
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "1234-uid"


def test_replicas_sharing_a_read_write_once_pvc_are_kept_on_one_node() -> None:
    spec = pod_spec(render(model(), CONFIG))
    term = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == {"app.kubernetes.io/instance": "qwen",
                                                    "app.kubernetes.io/name": "llmmodel"}
    shared = pod_spec(render(model({"model": {"storage": {"accessMode": "ReadWriteMany"}}}), CONFIG))
    assert "affinity" not in shared
    theirs = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    assert pod_spec(render(model({"advanced": {"vllm": {"affinity": theirs}}}), CONFIG))["affinity"] == theirs
