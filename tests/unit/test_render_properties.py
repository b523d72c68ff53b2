"""Invariants of the renderer over arbitrary valid LLMModels (hypothesis)."""

from __future__ import annotations

import copy
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmpack.api import LLMModel
from llmpack.config import Config
from llmpack.render import render
from tests.unit.render_helpers import container, find, pod_spec
from tests.unit.strategies import model_bodies

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
CONFIG = Config()


def _render(body: dict[str, Any]) -> list[dict[str, Any]]:
    return render(LLMModel.from_body(body), CONFIG)


@given(model_bodies())
def test_rendering_is_deterministic_and_does_not_touch_its_input(body: dict[str, Any]) -> None:
    before = copy.deepcopy(body)
    assert _render(body) == _render(copy.deepcopy(body))
    assert body == before


@given(model_bodies())
def test_every_mount_names_a_defined_volume(body: dict[str, Any]) -> None:
    spec = pod_spec(_render(body))
    volumes = {v["name"] for v in spec["volumes"]}
    for c in [*spec.get("initContainers", []), *spec["containers"]]:
        for mount in c.get("volumeMounts", []):
            assert mount["name"] in volumes


@given(model_bodies())
def test_every_name_is_valid_and_within_limits(body: dict[str, Any]) -> None:
    for obj in _render(body):
        name = obj["metadata"]["name"]
        assert DNS_SUBDOMAIN.match(name), name
        assert len(name) <= 253, name
        if obj["kind"] == "Service":
            assert DNS_LABEL.match(name), name
            assert len(name) <= 63, name
        for value in obj["metadata"]["labels"].values():
            assert len(value) <= 63


@given(model_bodies())
def test_the_token_never_reaches_the_vllm_container(body: dict[str, Any]) -> None:
    objects = _render(body)
    vllm = container(objects, "vllm")
    assert vllm is not None
    assert "HF_TOKEN" not in repr(vllm)
    assert "secretKeyRef" not in repr(vllm)


@given(model_bodies())
def test_pvc_exists_iff_type_is_pvc_and_source_is_not_oci(body: dict[str, Any]) -> None:
    model = body["spec"]["model"]
    wants_pvc = model["storage"]["type"] == "pvc" and model["source"] != "oci"
    assert (find(_render(body), "PersistentVolumeClaim") is not None) == wants_pvc


@given(model_bodies())
def test_vllm_always_reads_model_cache(body: dict[str, Any]) -> None:
    vllm = container(_render(body), "vllm")
    assert vllm is not None
    assert vllm["args"][:2] == ["--model", "/model-cache"]
    assert any(m["name"] == "model-storage" and m["mountPath"] == "/model-cache" for m in vllm["volumeMounts"])


@given(model_bodies())
def test_there_is_an_init_container_iff_preload_and_the_weights_are_not_mounted_from_an_image(
        body: dict[str, Any]) -> None:
    spec = pod_spec(_render(body))
    mounted = any("image" in v for v in spec["volumes"])
    assert bool(spec.get("initContainers")) == (body["spec"]["model"]["preload"] and not mounted)


@settings(max_examples=50)
@given(model_bodies(), st.integers(0, 20))
def test_replica_count_does_not_change_the_pod_template(body: dict[str, Any], replicas: int) -> None:
    other = copy.deepcopy(body)
    other["spec"]["serving"]["replicas"] = replicas
    a, b = find(_render(body), "Deployment"), find(_render(other), "Deployment")
    assert a is not None
    assert b is not None
    assert a["spec"]["template"] == b["spec"]["template"]


VENDOR_RESOURCES = {"nvidia.com/gpu", "amd.com/gpu", "gpu.intel.com/i915"}


@given(model_bodies())
def test_a_replica_asks_for_one_vendors_gpus_and_tolerates_exactly_that_vendors_taint(body: dict[str, Any]) -> None:
    objects = _render(body)
    vllm = container(objects, "vllm")
    assert vllm is not None
    gpu = body["spec"]["resources"]["gpu"]
    asked = {k for k in vllm.get("resources", {}).get("limits", {}) if k in VENDOR_RESOURCES}
    tolerated = {t["key"] for t in pod_spec(objects).get("tolerations", [])}
    if gpu["count"] == 0:
        assert asked == set()
        assert tolerated == set()
    else:
        assert len(asked) == 1
        assert tolerated == asked
        assert vllm["resources"]["limits"][asked.pop()] == str(gpu["count"])


@given(model_bodies())
def test_a_product_label_is_selected_only_when_a_product_is_asked_for(body: dict[str, Any]) -> None:
    selector = pod_spec(_render(body)).get("nodeSelector", {})
    gpu = body["spec"]["resources"]["gpu"]
    if gpu["count"] > 0 and "product" in gpu:
        assert list(selector.values()) == [gpu["product"]]
    else:
        assert selector == {}  # whatever type says, never a product nobody asked for
