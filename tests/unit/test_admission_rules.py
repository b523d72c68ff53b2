"""Every admission rule's Python side (what `llmpack render` and offline checks use; the API server holds the same
rules in CEL): what it refuses, what it warns about, and that it names the field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmpack.admission.rules import Finding, review
from llmpack.admission.table import Settings
from tests.unit.factories import body, merge
from tests.unit.strategies import model_bodies


def findings(spec: dict[str, Any] | None = None, old: dict[str, Any] | None = None, **kw: Any) -> list[Finding]:
    new = body(spec, **kw)
    before = None if old is None else body(old, **kw)
    return review(new, before)


def errors(*args: Any, **kw: Any) -> list[str]:
    return [str(f) for f in findings(*args, **kw) if f.level == "error"]


def warnings(*args: Any, **kw: Any) -> list[str]:
    return [str(f) for f in findings(*args, **kw) if f.level == "warning"]


def test_a_plain_pvc_model_passes_without_findings() -> None:
    assert findings() == []


@pytest.mark.parametrize(("spec", "field"), [
    ({"model": {"preload": False, "storage": {"size": None}}}, "spec.model.storage.size"),
    ({"model": {"storage": {"size": "30 gigabytes"}}}, "spec.model.storage.size"),
    ({"model": {"storage": {"size": "0"}}}, "spec.model.storage.size"),
    ({"model": {"storage": {"size": "1e99999999"}}}, "spec.model.storage.size"),
    ({"model": {"storage": {"size": "8Ei"}}}, "spec.model.storage.size"),
    ({"resources": {"limits": {"memory": "1e99999999"}}}, "spec.resources.limits.memory"),
    ({"resources": {"requests": {"cpu": 10**5000}}}, "spec.resources.requests.cpu"),
    ({"model": {"source": "oci"}}, "spec.model.image"),
    ({"model": {"name": ""}}, "spec.model.name"),
    ({"model": {"name": "not a repo"}}, "spec.model.name"),
    ({"model": {"name": "org/too/deep"}}, "spec.model.name"),
    ({"model": {"name": "org/bad--name"}}, "spec.model.name"),
    ({"serving": {"replicas": -1}}, "spec.serving.replicas"),
    ({"resources": {"gpu": {"count": -2}}}, "spec.resources.gpu.count"),
    ({"resources": {"gpu": {"count": 2}}, "serving": {"tensorParallelism": 2, "dataParallelism": 2}},
     "spec.serving.tensorParallelism"),
    ({"endpoints": {"requestTimeout": "ten minutes"}}, "spec.endpoints.requestTimeout"),
    ({"model": {"authSecretName": "Not_A_Secret"}}, "spec.model.authSecretName"),
])
def test_bad_input_is_denied_naming_the_field(spec: dict[str, Any], field: str) -> None:
    found = errors(spec)
    assert found, spec
    assert found[0].startswith(f"{field}: "), found


@pytest.mark.parametrize(("obj", "kind"), [(None, "null"), ([], "a list"), ("qwen", "a string"), (3, "a number"),
                                           ([body()], "a list")])
def test_an_object_that_is_not_a_mapping_is_denied_naming_object(obj: Any, kind: str) -> None:
    assert [str(f) for f in review(obj)] == [f"object: must be an LLMModel (a mapping), not {kind}"]


def test_a_name_too_long_for_its_service_is_denied() -> None:
    found = errors(name="m" * 60)
    assert found
    assert found[0].startswith("metadata.name: must be at most 59 characters")


def test_oci_model_names_need_not_be_repo_ids() -> None:
    oci = {"model": {"source": "oci", "name": "my model", "image": "r.example/m@sha256:" + "a" * 64}}
    assert errors(oci) == []


@pytest.mark.parametrize(("old", "new", "field", "advice"), [
    ({"model": {"storage": {"size": "80Gi"}}}, {"model": {"storage": {"size": "30Gi"}}},
     "spec.model.storage.size", "a PVC can only grow"),
    ({}, {"model": {"storage": {"type": "emptyDir"}}}, "spec.model.storage.type", "create a new LLMModel"),
    ({}, {"model": {"storage": {"storageClassName": "efs"}}}, "spec.model.storage.storageClassName",
     "Create a new LLMModel"),
])
def test_updates_that_would_break_the_cache_are_denied_with_advice(old: dict[str, Any], new: dict[str, Any],
                                                                    field: str, advice: str) -> None:
    found = errors(new, old=old)
    assert len(found) == 1
    assert found[0].startswith(f"{field}: ")
    assert advice in found[0]


def test_growing_a_pvc_is_allowed() -> None:
    assert errors({"model": {"storage": {"size": "100Gi"}}}, old={"model": {"storage": {"size": "80Gi"}}}) == []


def test_emptydir_with_preload_warns_that_every_restart_downloads_again() -> None:
    assert any("every pod restart downloads the model again" in w
               for w in warnings({"model": {"storage": {"type": "emptyDir", "size": "4Gi"}}}))
    assert warnings({"model": {"preload": False, "storage": {"type": "emptyDir", "size": "4Gi"}}}) == []


def test_emptydir_without_a_size_warns_about_the_nodes_disk() -> None:
    found = warnings({"model": {"preload": False, "storage": {"type": "emptyDir", "size": None}}})
    assert found == ["spec.model.storage.size: the emptyDir holding the weights has no size limit: it can fill "
                     "the node's disk; set storage.type emptyDir with a size"]


def test_oci_image_by_tag_warns_and_by_digest_does_not() -> None:
    oci = {"model": {"source": "oci", "image": "r.example/m:v1", "storage": {"type": "emptyDir", "size": "9Gi"}}}
    assert any(w.startswith("spec.model.image: 'r.example/m:v1' is referenced by tag") for w in warnings(oci))
    pinned = merge(oci, {"model": {"image": "r.example/m@sha256:" + "a" * 64}})
    assert warnings(pinned) == []


def test_several_replicas_on_a_read_write_once_pvc_warn_about_one_node() -> None:
    assert any("must run on one node" in w for w in warnings({"serving": {"replicas": 3}}))
    assert warnings({"serving": {"replicas": 3}, "model": {"storage": {"accessMode": "ReadWriteMany"}}}) == []


def test_several_replicas_warn_by_the_operators_default_access_mode_when_the_model_names_none() -> None:
    shared = Settings(default_access_mode="ReadWriteMany")
    assert [f for f in review(body({"serving": {"replicas": 3}}), None, shared) if f.level == "warning"] == []
    pinned = body({"serving": {"replicas": 3}, "model": {"storage": {"accessMode": "ReadWriteOnce"}}})
    assert [f.field for f in review(pinned, None, shared)] == ["spec.serving.replicas"]


def test_a_model_known_to_be_larger_than_its_pvc_warns() -> None:
    old = body({"model": {"storage": {"size": "30Gi"}}})
    old["status"] = {"modelSize": "42Gi"}
    found = review(body({"model": {"storage": {"size": "30Gi"}}}), old)
    assert [str(f) for f in found] == [
        "spec.model.storage.size: the model needs 42Gi (the Hub's figure for its files), the PVC is 30Gi: nothing "
        "is downloaded until it fits; set spec.model.storage.size to 42Gi plus 15% or more"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=6), inner, max_size=2),
    max_leaves=5)


@pytest.mark.parametrize("gpu_type", ["nvidia", "NVIDIA", "amd", "intel", ""])
def test_a_gpu_vendor_as_the_pack_writes_it_is_admitted_without_findings(gpu_type: str) -> None:
    assert findings({"resources": {"gpu": {"count": 1, "type": gpu_type}}}) == []


def test_a_gpu_type_that_names_no_vendor_is_admitted_with_a_warning_on_how_to_pick_a_product() -> None:
    assert errors({"resources": {"gpu": {"type": "NVIDIA-A100-SXM4-80GB"}}}) == []
    found = warnings({"resources": {"gpu": {"type": "NVIDIA-A100-SXM4-80GB"}}})
    assert len(found) == 1
    assert found[0].startswith("spec.resources.gpu.type: 'NVIDIA-A100-SXM4-80GB' is not a GPU vendor (nvidia, amd, "
                               "intel), so the pods ask for nvidia.com/gpu on any GPU node")
    assert "resources.gpu.product" in found[0]
    assert "advanced.vllm.nodeSelector" in found[0]
    assert warnings({"resources": {"gpu": {"count": 0, "type": "tpu"}}}) == []  # no GPU asked for: nothing to say


@pytest.mark.parametrize("config", [["a", "list"], 42, "just words", "{not: yaml"])
def test_a_scheduler_config_that_is_no_endpoint_picker_config_is_denied(config: object) -> None:
    found = errors({"advanced": {"inferencePool": {"schedulerConfig": config}}})
    assert found == ["spec.advanced.inferencePool.schedulerConfig: must be an EndpointPickerConfig: an object "
                     "(kind, plugins, schedulingProfiles), or the same written as YAML text (at most 65536 "
                     "characters, with its kind: EndpointPickerConfig)"]


@pytest.mark.parametrize("config", [{"kind": "EndpointPickerConfig"}, {}, None,
                                    "apiVersion: x/v1alpha1\nkind: EndpointPickerConfig\nplugins: []\n",
                                    '{"kind": "EndpointPickerConfig", "plugins": []}'])
def test_a_scheduler_config_object_or_text_with_its_kind_is_admitted(config: object) -> None:
    assert errors({"advanced": {"inferencePool": {"schedulerConfig": config}}}) == []


def test_a_gpu_product_that_is_no_label_value_is_denied() -> None:
    assert errors({"resources": {"gpu": {"product": "NVIDIA H100"}}})[0].startswith("spec.resources.gpu.product: ")


@given(model_bodies(), model_bodies(), st.sampled_from(["model", "serving", "resources", "endpoints", "advanced"]),
       json_values)
def test_rules_never_raise_and_every_finding_names_a_field(new: dict[str, Any], old: dict[str, Any], part: str,
                                                           junk: Any) -> None:
    for candidate in (new, {**new, "spec": {**new["spec"], part: junk}}):
        for finding in review(candidate, old) + review(candidate, None):
            assert finding.field.startswith(("spec.", "metadata.")), finding
            assert finding.message
